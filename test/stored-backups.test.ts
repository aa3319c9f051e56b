import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { closeApp, createApp } from '../src/http/app.js';
import { startServer, type RunningServer } from '../src/http/server.js';
import { openStore } from '../src/store/open.js';
import type { BackupStore, PutOptions } from '../src/store/store.js';
import { captureLogger, makeSmallDatabase, newKey, rowCount, unzip, waitFor, type LogLine } from './http-helpers.js';
import { startS3, TEST_CREDENTIALS, type S3Server } from './helpers/s3.js';
import { test, withTimeout } from './helpers/tmp.js';

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

/** A real folder store whose uploads wait until the test opens the gate (or fail, when told to). */
function gatedStore(inner: BackupStore): BackupStore & { open(): void; failWith: Error | undefined; puts: number } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const store = {
    kind: inner.kind,
    display: inner.display,
    failWith: undefined as Error | undefined,
    puts: 0,
    open: () => release(),
    async put(name: string, body: Readable, options?: PutOptions) {
      store.puts += 1;
      if (store.failWith !== undefined) {
        body.destroy();
        throw store.failWith;
      }
      await gate;
      return inner.put(name, body, options);
    },
    list: () => inner.list(),
    stat: (name: string) => inner.stat(name),
    get: (name: string, signal?: AbortSignal) => inner.get(name, signal),
    getRange: (name: string, start: number, end: number) => inner.getRange(name, start, end),
    delete: (name: string) => inner.delete(name),
    close: () => inner.close(),
  };
  return store;
}

const runLines = (lines: LogLine[]) => lines.filter((l) => l['event'] === 'stored-backup');

describe('schedule', () => {
  test('a per-second schedule backs up into the store and keeps the newest; retention deletes oldest first', async ({ tmpDir }) => {
    makeSmallDatabase(path.join(tmpDir, 'data', 'a.db'));
    const { logger, lines } = captureLogger();
    const folder = path.join(tmpDir, 'store');
    const app = createApp({ dataDir: path.join(tmpDir, 'data'), auth: { none: true }, logger, store: folder, schedule: '* * * * * *', keep: 2 });
    try {
      await waitFor(() => runLines(lines).filter((l) => l['outcome'] === 'ok').length >= 4, 40_000, 'four scheduled backups');
    } finally {
      await closeApp(app);
    }
    const ok = runLines(lines).filter((l) => l['outcome'] === 'ok');
    for (const line of ok) {
      expect(line).toMatchObject({ trigger: 'schedule', store: folder, name: expect.stringMatching(/^dbzip-backup-\d{8}-\d{6}\.zip$/), error: null });
      expect(line['bytes']).toBeGreaterThan(0);
      // Retention only removes backups older than this run's, oldest first.
      const removed = line['removed'] as string[];
      expect([...removed].sort()).toEqual(removed);
      for (const name of removed) expect(name < (line['name'] as string)).toBe(true);
    }
    const names = ok.map((l) => l['name'] as string).sort();
    const left = fs.readdirSync(folder).filter((f) => f.endsWith('.zip')).sort();
    expect(left).toEqual(names.slice(-2));
  });

  test('a run still going makes the next ticks skip (logged), holds a download slot, and refuses Back up now', async ({ tmpDir }) => {
    makeSmallDatabase(path.join(tmpDir, 'data', 'a.db'));
    const { logger, lines } = captureLogger();
    const store = gatedStore(await openStore(path.join(tmpDir, 'store')));
    const key = newKey();
    const app = createApp({ dataDir: path.join(tmpDir, 'data'), auth: { apiKey: key }, logger, store, schedule: '* * * * * *', maxConcurrent: 1 });
    const headers = { 'X-API-Key': key };
    try {
      await waitFor(() => store.puts === 1, 10_000, 'the first scheduled upload');
      await waitFor(() => lines.some((l) => l.msg === 'scheduled backup skipped'), 10_000, 'a skipped tick');
      expect(lines.find((l) => l.msg === 'scheduled backup skipped')).toMatchObject({ outcome: 'skipped', trigger: 'schedule', reason: expect.stringMatching(/already running/) });
      expect(store.puts).toBe(1);
      // The same limit as downloads: with maxConcurrent 1 a download now waits its turn.
      expect((await app.request('/api/backup', { headers })).status).toBe(429);
      expect((await app.request('/api/backups', { method: 'POST', headers })).status).toBe(429);
      const status = (await (await app.request('/api/backups', { headers })).json()) as { running: unknown; skipped: number; schedule: { nextRun: string } };
      expect(status.running).toMatchObject({ trigger: 'schedule' });
      expect(status.skipped).toBeGreaterThanOrEqual(1);
      expect(Date.parse(status.schedule.nextRun)).toBeGreaterThan(Date.now() - 1000);
      store.open();
      await waitFor(() => runLines(lines).some((l) => l['outcome'] === 'ok'), 20_000, 'the held run to finish');
    } finally {
      await closeApp(app);
    }
  });

  test('a failed run is kept with its reason, and retention never runs after it', async ({ tmpDir }) => {
    makeSmallDatabase(path.join(tmpDir, 'data', 'a.db'));
    const folder = path.join(tmpDir, 'store');
    const old = ['dbzip-backup-20200101-000000.zip', 'dbzip-backup-20200102-000000.zip', 'dbzip-backup-20200103-000000.zip'];
    fs.mkdirSync(folder);
    for (const name of old) fs.writeFileSync(path.join(folder, name), 'x');
    const store = gatedStore(await openStore(folder));
    store.failWith = new Error('bucket on fire');
    const { logger, lines } = captureLogger();
    const key = newKey();
    const app = createApp({ dataDir: path.join(tmpDir, 'data'), auth: { apiKey: key }, logger, store, keep: 1 });
    try {
      expect((await app.request('/api/backups', { method: 'POST', headers: { 'X-API-Key': key } })).status).toBe(202);
      await waitFor(() => runLines(lines).length === 1, 20_000, 'the run');
      expect(runLines(lines)[0]).toMatchObject({ outcome: 'failed', trigger: 'manual', error: { message: expect.stringContaining('bucket on fire') } });
      expect(fs.readdirSync(folder).sort()).toEqual(old);
      expect((await app.request('/api/health?details=1')).status).toBe(401);
      const health = (await (await app.request('/api/health?details=1', { headers: { 'X-API-Key': key } })).json()) as { storedBackups: Record<string, unknown> };
      expect(health.storedBackups).toMatchObject({ lastSuccess: null, lastFailure: { outcome: 'failed', error: { message: expect.stringContaining('bucket on fire') } } });
      // The plain health check still needs no key and says nothing more.
      expect(await (await app.request('/api/health')).json()).toEqual({ status: 'ok' });
    } finally {
      await closeApp(app);
    }
  });

  test('bad schedules and retention options are refused when the app is created', ({ tmpDir }) => {
    const base = { dataDir: tmpDir, auth: { none: true } as const };
    expect(() => createApp({ ...base, schedule: 'every night' })).toThrow(/schedule.cron/);
    expect(() => createApp({ ...base, schedule: { cron: '0 3 * * *', timezone: 'Mars/Olympus' } })).toThrow(/time zone/);
    expect(() => createApp({ ...base, keep: 3 })).toThrow(/need a "store"/);
    expect(() => createApp({ ...base, store: 's3://bkt/x', keep: 0 })).toThrow(/keep/);
    expect(() => createApp({ ...base, store: 's3://user:pw@bkt/x' })).toThrow(/credentials/);
  });
});

describe('HTTP routes for stored backups (real server on loopback)', () => {
  let server: RunningServer | undefined;

  async function serve(tmpDir: string, store: string | BackupStore | undefined) {
    makeSmallDatabase(path.join(tmpDir, 'data', 'a.db'), 5);
    const key = newKey();
    server = await startServer({ dataDir: path.join(tmpDir, 'data'), auth: { apiKey: key }, port: 0, logger: captureLogger().logger, ...(store === undefined ? {} : { store }) });
    const url = server.url;
    const call = (p: string, init: RequestInit = {}) => fetch(`${url}${p}`, { ...init, headers: { 'X-API-Key': key, ...(init.headers as Record<string, string> | undefined) } });
    return { call, url, dataDir: path.join(tmpDir, 'data') };
  }

  async function backUpNow(call: (p: string, init?: RequestInit) => Promise<Response>): Promise<string> {
    const started = await call('/api/backups', { method: 'POST' });
    expect(started.status).toBe(202);
    let name: string | null = null;
    await withTimeout(
      (async () => {
        for (;;) {
          const list = (await (await call('/api/backups')).json()) as { lastSuccess: { name: string } | null; lastFailure: unknown };
          if (list.lastFailure !== null) throw new Error(`run failed: ${JSON.stringify(list.lastFailure)}`);
          if (list.lastSuccess !== null) {
            name = list.lastSuccess.name;
            return;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
      30_000,
      'Back up now',
    );
    return name ?? '';
  }

  test('without a store the routes say how to configure one', async ({ tmpDir }) => {
    const { call } = await serve(tmpDir, undefined);
    try {
      const res = await call('/api/backups');
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 'STORE_NOT_CONFIGURED', message: expect.stringContaining('--store') } });
    } finally {
      await server?.close();
    }
  });

  test('back up now, list, download with Content-Length, dry-run and real restore, delete (folder store)', async ({ tmpDir }) => {
    const { call, url, dataDir } = await serve(tmpDir, path.join(tmpDir, 'store'));
    try {
      const name = await backUpNow(call);
      const list = (await (await call('/api/backups')).json()) as { backups: { name: string; size: number }[]; store: string };
      expect(list.store).toBe(path.join(tmpDir, 'store'));
      expect(list.backups.map((b) => b.name)).toEqual([name]);
      const download = await call(`/api/backups/${name}`);
      expect(download.status).toBe(200);
      expect(download.headers.get('content-disposition')).toBe(`attachment; filename="${name}"`);
      const bytes = Buffer.from(await download.arrayBuffer());
      expect(Number(download.headers.get('content-length'))).toBe(bytes.length);
      expect(bytes.length).toBe(list.backups[0]?.size);
      expect(rowCount((await unzip(bytes)).get('a.db') ?? Buffer.alloc(0))).toBe(5);

      const verified = await call(`/api/backups/${name}/verify`, { method: 'POST' });
      expect(await verified.json()).toMatchObject({ name, ok: true, problems: [], databases: [{ path: 'a.db', integrity: 'ok' }] });

      // Change the data, then restore: a dry run changes nothing, the real one brings the 5 rows back.
      makeSmallDatabase(path.join(tmpDir, 'other', 'a.db'), 9);
      fs.copyFileSync(path.join(tmpDir, 'other', 'a.db'), path.join(dataDir, 'a.db'));
      const dry = await call(`/api/backups/${name}/restore?dryRun=1`, { method: 'POST' });
      expect(dry.status).toBe(200);
      expect(await dry.json()).toMatchObject({ dryRun: true, applied: false, verify: { ok: true } });
      const real = await call(`/api/backups/${name}/restore`, { method: 'POST' });
      expect(real.status).toBe(200);
      expect(await real.json()).toMatchObject({ applied: true, preRestore: expect.stringMatching(/^\.dbzip\/pre-restore-/) });
      expect(rowCount(fs.readFileSync(path.join(dataDir, 'a.db')))).toBe(5);

      // Names are checked before the store is asked; the routes need the key.
      for (const bad of ['..%2F..%2Fetc%2Fpasswd', 'dbzip-backup-20260231-000000.zip', 'x.zip']) expect((await call(`/api/backups/${bad}`)).status).toBe(400);
      expect((await fetch(`${url}/api/backups`)).status).toBe(401);
      expect((await fetch(`${url}/api/backups/${name}`, { method: 'DELETE' })).status).toBe(401);

      const del = await call(`/api/backups/${name}`, { method: 'DELETE' });
      expect(del.status).toBe(200);
      expect((await call(`/api/backups/${name}`, { method: 'DELETE' })).status).toBe(404);
      expect((await call(`/api/backups/${name}`)).status).toBe(404);
      expect(((await (await call('/api/backups')).json()) as { backups: unknown[] }).backups).toEqual([]);

      const doc = (await (await call('/api/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
      expect(Object.keys(doc.paths['/api/backups'] ?? {}).sort()).toEqual(['get', 'post']);
      expect(Object.keys(doc.paths['/api/backups/{name}'] ?? {}).sort()).toEqual(['delete', 'get']);
      expect(Object.keys(doc.paths['/api/backups/{name}/restore'] ?? {})).toEqual(['post']);
      expect(Object.keys(doc.paths['/api/backups/{name}/verify'] ?? {})).toEqual(['post']);
    } finally {
      await server?.close();
    }
  });

  test('an S3 store serves the same routes: back up now, download with Content-Length, delete', async ({ tmpDir }) => {
    await s3.createBucket('http-routes');
    const store = await openStore({ url: s3.url('http-routes', 'app'), credentials: TEST_CREDENTIALS, env: {} });
    const { call } = await serve(tmpDir, store);
    try {
      const name = await backUpNow(call);
      const download = await call(`/api/backups/${name}`);
      const bytes = Buffer.from(await download.arrayBuffer());
      expect(Number(download.headers.get('content-length'))).toBe(bytes.length);
      expect([...(await unzip(bytes)).keys()]).toContain('a.db');
      // Verified in the bucket with ranged reads.
      expect(await (await call(`/api/backups/${name}/verify`, { method: 'POST' })).json()).toMatchObject({ ok: true, databases: [{ path: 'a.db' }] });
      expect((await call(`/api/backups/${name}`, { method: 'DELETE' })).status).toBe(200);
      expect(((await (await call('/api/backups')).json()) as { backups: unknown[]; store: string }).backups).toEqual([]);
    } finally {
      await server?.close();
    }
  });
});
