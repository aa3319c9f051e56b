/** The real server on an ephemeral loopback port, with real HTTP clients (fetch and node:http). */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { serve } from '@hono/node-server';
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { DataDirError, OptionsError } from '../src/errors.js';
import { createApp } from '../src/http/app.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import type { ServerOptions } from '../src/http/options.js';
import {
  captureLogger,
  integrityCheck,
  makeSmallDatabase,
  newKey,
  openFdCount,
  rawGet,
  readAll,
  refusesConnections,
  rowCount,
  threadCount,
  unzip,
  waitFor,
  type LogLine,
} from './http-helpers.js';
import { makeBigDatabase } from './helpers/backup.js';
import { test, withTimeout } from './helpers/tmp.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

interface Started {
  server: RunningServer;
  key: string;
  lines: LogLine[];
  headers: Record<string, string>;
}

/** Starts a server on 127.0.0.1:0 and stops it when the test ends (close(0): nothing may outlive a test). */
async function start(onTestFinished: (fn: () => Promise<void>) => void, options: Partial<ServerOptions> & { dataDir: string }): Promise<Started> {
  const key = newKey();
  const { logger, lines } = captureLogger();
  const server = await startServer({ auth: { apiKey: key }, host: '127.0.0.1', port: 0, logger, ...options });
  onTestFinished(() => withTimeout(server.close(0), 10_000, 'server.close'));
  return { server, key, lines, headers: { 'X-API-Key': key } };
}

/** A data dir whose whole zip length is known in advance: WAL databases only (all pinned), stored. */
function walDataDir(dir: string, megabytes: number, { assets = true } = {}): void {
  makeBigDatabase(path.join(dir, 'big.db'), megabytes, 'wal');
  makeSmallDatabase(path.join(dir, 'small.db'), 3, 'wal');
  if (!assets) return;
  fs.mkdirSync(path.join(dir, 'assets'));
  fs.writeFileSync(path.join(dir, 'assets', 'note.txt'), 'hello\n');
}

const requestLines = (lines: LogLine[]) => lines.filter((l) => l.msg === 'request');

describe('a real download', () => {
  test('sends the zip with exact Content-Length and the download headers; every database opens and passes integrity_check', async ({ tmpDir, onTestFinished }) => {
    walDataDir(tmpDir, 8);
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir, filePrefix: 'acme' });
    const res = await withTimeout(fetch(`${server.url}/api/backup`, { headers }), 20_000, 'response head');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="acme-backup-\d{8}-\d{6}\.zip"$/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-dbzip-length')).toBeNull();
    const length = Number(res.headers.get('content-length'));
    const bytes = Buffer.from(await withTimeout(res.arrayBuffer(), 20_000, 'body'));
    expect(bytes.length).toBe(length);
    const files = await unzip(bytes);
    expect([...files.keys()]).toEqual(['VERSION', 'big.db', 'small.db', 'assets/note.txt', 'manifest.json']);
    for (const name of ['big.db', 'small.db']) expect(integrityCheck(files.get(name)!), name).toBe('ok');
    expect(rowCount(files.get('small.db')!)).toBe(3);
  });

  test('is chunked with X-Dbzip-Length: unknown when the size cannot be known (deflate, or an unpinned rollback database)', async ({ tmpDir, onTestFinished }) => {
    await generateFixtures(tmpDir);
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir });
    for (const url of [`${server.url}/api/backup`, `${server.url}/api/backup?level=9&db=app.db`]) {
      const res = await rawGet(url, headers);
      expect(res.status).toBe(200);
      expect(res.headers['transfer-encoding']).toBe('chunked');
      expect(res.headers['content-length']).toBeUndefined();
      expect(res.headers['x-dbzip-length']).toBe('unknown');
      const files = await unzip(await withTimeout(readAll(res.res), 20_000, 'body'));
      expect(integrityCheck(files.get('app.db')!)).toBe('ok');
    }
  });

  test('the first bytes leave before the last database is snapshotted', async ({ tmpDir, onTestFinished }) => {
    makeBigDatabase(path.join(tmpDir, 'a.db'), 24, 'wal');
    makeSmallDatabase(path.join(tmpDir, 'b.db'), 3, 'delete');
    // Unpinned, b.db is read when the stream reaches it; a row written after the first bytes arrived must be in it.
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir, pin: 'none' });
    const { res } = await rawGet(`${server.url}/api/backup`, headers);
    const body = readAll(res);
    await withTimeout(new Promise((resolve) => res.once('data', resolve)), 20_000, 'first chunk');
    res.pause();
    const db = new Database(path.join(tmpDir, 'b.db'));
    db.prepare('INSERT INTO t (v) VALUES (?)').run('written after the first byte');
    db.close();
    res.resume();
    const files = await unzip(await withTimeout(body, 20_000, 'body'));
    expect(rowCount(files.get('b.db')!)).toBe(4);
  });

  test('works mounted under a prefix in a host Hono app', async ({ tmpDir, onTestFinished }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const host = new Hono();
    host.get('/', (c) => c.text('host home'));
    host.route('/admin/backup', createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger }));
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: host.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
    });
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address() as { port: number };
    const base = `http://127.0.0.1:${address.port}`;
    expect(await (await fetch(`${base}/`)).text()).toBe('host home');
    expect((await fetch(`${base}/admin/backup/api/health`)).status).toBe(200);
    expect((await fetch(`${base}/admin/backup/api/backup`)).status).toBe(401);
    expect((await fetch(`${base}/api/backup`, { headers: { 'X-API-Key': key } })).status).toBe(404);
    const res = await fetch(`${base}/admin/backup/api/backup?db=settings.db`, { headers: { 'X-API-Key': key } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/dbzip-backup-/);
    const files = await unzip(Buffer.from(await res.arrayBuffer()));
    expect(integrityCheck(files.get('settings.db')!)).toBe('ok');
    const doc = (await (await fetch(`${base}/admin/backup/api/openapi.json`, { headers: { Authorization: `Bearer ${key}` } })).json()) as { servers: { url: string }[]; paths: object };
    expect(doc.servers).toEqual([{ url: '/admin/backup' }]);
    expect(Object.keys(doc.paths)).toContain('/api/backup');
    const dbs = (await (await fetch(`${base}/admin/backup/api/databases`, { headers: { 'X-API-Key': key } })).json()) as { databases: unknown[] };
    expect(dbs.databases).toHaveLength(2);
  });
});

describe('limits', () => {
  test('the (maxConcurrent + 1)th download gets 429 with Retry-After at once; the slot frees when a download ends', async ({ tmpDir, onTestFinished }) => {
    walDataDir(tmpDir, 16);
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir, maxConcurrent: 1 });
    const first = await rawGet(`${server.url}/api/backup`, headers);
    first.res.pause();
    const started = Date.now();
    const second = await fetch(`${server.url}/api/backup`, { headers });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('BUSY');
    expect(Date.now() - started).toBeLessThan(1_000);
    first.res.resume();
    await withTimeout(readAll(first.res), 20_000, 'first download');
    const third = await fetch(`${server.url}/api/backup`, { headers });
    expect(third.status).toBe(200);
    await third.arrayBuffer();
  });

  test('a per-client rate limit answers 429 with Retry-After', async ({ tmpDir, onTestFinished }) => {
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir, rateLimit: { max: 2, windowMs: 60_000 } });
    expect((await fetch(`${server.url}/api/openapi.json`, { headers })).status).toBe(200);
    expect((await fetch(`${server.url}/api/openapi.json`, { headers: { 'X-API-Key': newKey() } })).status).toBe(401);
    const limited = await fetch(`${server.url}/api/openapi.json`, { headers });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(50);
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
  });

  test('a client that stops reading is cut off after stallTimeoutMs, which frees its slot; snapshot time does not count', async ({ tmpDir, onTestFinished }) => {
    walDataDir(tmpDir, 64);
    // About as long as taking the 64 MB snapshot (only time the client leaves bytes unread counts), and
    // long enough that a healthy client sharing this busy process is never taken for a stalled one.
    const { server, headers, lines } = await start(onTestFinished, { dataDir: tmpDir, maxConcurrent: 1, stallTimeoutMs: 500 });
    const whole = await fetch(`${server.url}/api/backup`, { headers });
    expect((await whole.arrayBuffer()).byteLength).toBe(Number(whole.headers.get('content-length')));
    const stalled = await rawGet(`${server.url}/api/backup`, headers);
    stalled.res.pause();
    await waitFor(() => requestLines(lines).length === 2, 5_000, 'the stalled download cut off');
    expect(requestLines(lines)[1]).toMatchObject({ outcome: 'stalled' });
    const next = await fetch(`${server.url}/api/backup`, { headers });
    expect(next.status).toBe(200);
    await next.arrayBuffer();
    // A paused client only notices once it reads again: then its download fails, it never looks complete.
    const body = readAll(stalled.res);
    stalled.res.resume();
    await expect(withTimeout(body, 5_000, 'stalled body')).rejects.toThrow();
  });
});

describe('failures and cancellation', () => {
  test('a client that disconnects mid-download stops the backup: no leaked descriptors, threads or memory after 24 random aborts', async ({ tmpDir, onTestFinished }) => {
    // Databases only; aborts during asset reads have their own test below.
    walDataDir(tmpDir, 32, { assets: false });
    const { server, headers, lines } = await start(onTestFinished, { dataDir: tmpDir, maxConcurrent: 2 });
    // Warm up (thread pool, lazily loaded modules), then measure.
    const warm = await rawGet(`${server.url}/api/backup`, headers);
    const size = (await withTimeout(readAll(warm.res), 30_000, 'warm-up download')).length;
    await waitFor(() => requestLines(lines).length === 1, 5_000, 'warm-up request line');
    gc();
    const fds = openFdCount();
    const threads = threadCount();
    const memory = process.memoryUsage();

    const abortOne = async () => {
      const { res, req } = await rawGet(`${server.url}/api/backup`, headers);
      expect(res.statusCode).toBe(200);
      // At most half-way: the rest is more than the socket buffers can hold, so the server cannot have finished.
      const stopAt = Math.floor(Math.random() * size * 0.5);
      let received = 0;
      await new Promise<void>((resolve) => {
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received >= stopAt) {
            req.destroy();
            resolve();
          }
        });
        res.on('close', () => resolve());
      });
      expect(received).toBeLessThan(size);
    };
    for (let round = 0; round < 12; round++) await withTimeout(Promise.all([abortOne(), abortOne()]), 30_000, `abort round ${round}`);

    // The server sees each disconnect and aborts its backup: every worker thread ends, every handle closes.
    await waitFor(() => requestLines(lines).length === 25, 5_000, 'a request line for every aborted download');
    expect(requestLines(lines).slice(1).every((l) => l['outcome'] === 'aborted')).toBe(true);
    await waitFor(() => threadCount() <= threads, 5_000, `worker threads back to ${threads} (now ${threadCount()})`);
    await waitFor(() => openFdCount() <= fds + 2, 5_000, `descriptors back to ${fds} (now ${openFdCount()})`);
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const after = process.memoryUsage();
    // A 32 MB image per backup: a leak of even one would show here.
    expect(after.arrayBuffers - memory.arrayBuffers).toBeLessThan(24 * 1024 * 1024);
    expect(after.heapUsed - memory.heapUsed).toBeLessThan(24 * 1024 * 1024);

    // Every slot came back.
    const [a, b] = await Promise.all([rawGet(`${server.url}/api/backup`, headers), rawGet(`${server.url}/api/backup`, headers)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    await Promise.all([readAll(a.res), readAll(b.res)]);
  });

  // Regression: a read stream created with an aborted signal and autoClose: false emitted its AbortError twice
  // on Node 20, the second one uncaught, ending the process.
  test('a client that disconnects while assets are streamed does not crash the server', async ({ tmpDir, onTestFinished }) => {
    makeSmallDatabase(path.join(tmpDir, 'a.db'), 3, 'wal');
    fs.mkdirSync(path.join(tmpDir, 'assets'));
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(tmpDir, 'assets', `f${i}.bin`), Buffer.alloc(256 * 1024, i));
    const { server, headers, lines } = await start(onTestFinished, { dataDir: tmpDir, maxConcurrent: 4 });
    for (let round = 0; round < 20; round++) {
      const { res, req } = await rawGet(`${server.url}/api/backup`, headers);
      const stopAt = Math.floor(Math.random() * 8 * 1024 * 1024);
      let received = 0;
      await withTimeout(
        new Promise<void>((resolve) => {
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received >= stopAt) req.destroy();
          });
          res.on('close', () => resolve());
        }),
        10_000,
        `aborted download ${round}`,
      );
    }
    // Each aborted backup is over once its request line is logged: then the server must still answer.
    await waitFor(() => requestLines(lines).length === 20, 10_000, 'a request line for each aborted download');
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
  });

  test('a backup that fails after the first byte cuts the connection: the client sees a failed download, never a short one', async ({ tmpDir, onTestFinished }) => {
    walDataDir(tmpDir, 16);
    const asset = path.join(tmpDir, 'assets', 'note.txt');
    const { server, headers, lines } = await start(onTestFinished, { dataDir: tmpDir });
    for (const query of ['', '?level=6']) {
      fs.writeFileSync(asset, 'hello\n');
      const { res, headers: head } = await rawGet(`${server.url}/api/backup${query}`, headers);
      expect(head[query === '' ? 'content-length' : 'x-dbzip-length']).toBeDefined();
      const body = readAll(res);
      await withTimeout(new Promise((resolve) => res.once('data', resolve)), 20_000, 'first chunk');
      res.pause();
      // The asset grows after the scan measured it: the backup fails with ASSET_CHANGED when it gets there.
      fs.appendFileSync(asset, 'more bytes than were announced\n');
      res.resume();
      await expect(withTimeout(body, 20_000, 'broken body')).rejects.toThrow();
    }
    await waitFor(() => lines.filter((l) => l['audit'] === 'backup-download' && l['outcome'] === 'failed').length === 2, 5_000, 'two failed audit lines');
    const failed = lines.filter((l) => l.msg.startsWith('backup failed after the first byte'));
    expect(failed.map((l) => l['code'])).toEqual(['ASSET_CHANGED', 'ASSET_CHANGED']);
    expect(requestLines(lines).map((l) => l['outcome'])).toEqual(['failed', 'failed']);
  });
});

describe('shutdown', () => {
  test('close() stops accepting, lets a running download finish, then resolves', async ({ tmpDir, onTestFinished }) => {
    walDataDir(tmpDir, 16);
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir });
    const running = await rawGet(`${server.url}/api/backup`, headers);
    running.res.pause();
    const body = readAll(running.res);
    let closed = false;
    const closing = server.close(20_000).then(() => {
      closed = true;
    });
    await waitFor(() => refusesConnections(`${server.url}/api/health`), 5_000, 'the listener closed');
    // The paused download is still running, so close() cannot have finished.
    expect(closed).toBe(false);
    running.res.resume();
    const files = await unzip(await withTimeout(body, 20_000, 'download during shutdown'));
    expect(integrityCheck(files.get('big.db')!)).toBe('ok');
    await withTimeout(closing, 5_000, 'close after the download');
  });

  test('a request that arrives on an open connection while the server is closing gets 503 ABORTED with Retry-After', async ({ tmpDir, onTestFinished }) => {
    walDataDir(tmpDir, 16);
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir });
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const head = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${headers['X-API-Key']}\r\n\r\n`;
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(head('/api/backup'));
    await waitFor(() => received.length > 0, 10_000, 'the download started');
    socket.pause();
    const closing = server.close(20_000);
    await waitFor(() => refusesConnections(`${server.url}/api/health`), 5_000, 'the listener closed');
    // The same connection, still busy with the download, asks for something else (HTTP/1.1 pipelining).
    socket.write(head('/api/databases'));
    socket.resume();
    await withTimeout(ended, 20_000, 'the connection closed after the 503');
    const text = Buffer.concat(received).toString('latin1');
    const second = text.slice(text.lastIndexOf('HTTP/1.1 '));
    expect(text.startsWith('HTTP/1.1 200 ')).toBe(true);
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(second).toMatch(/\r\nretry-after: 5\r\n/i);
    expect(second).toContain('"code":"ABORTED"');
    expect(second).toContain('the server is shutting down');
    await withTimeout(closing, 5_000, 'close after the download');
  });

  test('close(timeout) cuts off a download that does not finish in time and still resolves', async ({ tmpDir, onTestFinished }) => {
    walDataDir(tmpDir, 24);
    const threads = threadCount();
    const { server, headers } = await start(onTestFinished, { dataDir: tmpDir });
    const stalled = await rawGet(`${server.url}/api/backup`, headers);
    stalled.res.pause();
    const body = readAll(stalled.res);
    const started = Date.now();
    await withTimeout(server.close(300), 5_000, 'close with a stalled download');
    expect(Date.now() - started).toBeLessThan(2_000);
    stalled.res.resume();
    await expect(withTimeout(body, 5_000, 'cut-off body')).rejects.toThrow();
    await waitFor(() => threadCount() <= threads, 5_000, 'snapshot worker ended');
  });
});

describe('startServer refuses unsafe or broken configurations', () => {
  test('no key, no auth on a non-loopback host, a weak key, a missing data dir', async ({ tmpDir }) => {
    await expect(startServer({ dataDir: tmpDir, port: 0 })).rejects.toThrow(OptionsError);
    await expect(startServer({ dataDir: tmpDir, port: 0 })).rejects.toThrow(/no API key configured/);
    await expect(startServer({ dataDir: tmpDir, port: 0, host: '0.0.0.0', auth: { none: true } })).rejects.toThrow(/refused on host "0\.0\.0\.0"/);
    await expect(startServer({ dataDir: tmpDir, port: 0, auth: { apiKey: 'changeme' } })).rejects.toThrow(/too weak/);
    await expect(startServer({ dataDir: path.join(tmpDir, 'nope'), port: 0, auth: { apiKey: newKey() } })).rejects.toThrow(DataDirError);
  });

  test('auth: { none: true } is allowed on loopback', async ({ tmpDir, onTestFinished }) => {
    await generateFixtures(tmpDir);
    const server = await startServer({ dataDir: tmpDir, port: 0, auth: { none: true }, logger: captureLogger().logger });
    onTestFinished(() => server.close(0));
    expect((await fetch(`${server.url}/api/databases`)).status).toBe(200);
  });
});

describe('client address in the logs', () => {
  test('is the peer; X-Forwarded-For counts only with trustProxy, and then a forged entry is not picked', async ({ tmpDir, onTestFinished }) => {
    const plain = await start(onTestFinished, { dataDir: tmpDir });
    await fetch(`${plain.server.url}/api/health`, { headers: { 'X-Forwarded-For': '203.0.113.9' } });
    const proxied = await start(onTestFinished, { dataDir: tmpDir, trustProxy: true });
    await fetch(`${proxied.server.url}/api/health`, { headers: { 'X-Forwarded-For': '198.51.100.1, 203.0.113.9' } });
    await waitFor(() => requestLines(plain.lines).length === 1 && requestLines(proxied.lines).length === 1, 5_000, 'request lines');
    expect(requestLines(plain.lines)[0]!['client']).toBe('127.0.0.1');
    // One trusted proxy (the peer) appended 203.0.113.9; 198.51.100.1 is whatever the client claimed.
    expect(requestLines(proxied.lines)[0]!['client']).toBe('203.0.113.9');
  });
});
