/**
 * POST /api/restore: upload a backup and get the data directory back. Routing, auth and outcomes
 * through app.request(); broken-off and concurrent uploads against a real server on port 0.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { createApp, type DbzipApp } from '../src/http/app.js';
import type { AppOptions } from '../src/http/options.js';
import { startServer } from '../src/http/server.js';
import { fingerprintTree, logicalHashOfFile, logicalHashOfImage, readArchive } from './helpers/restore.js';
import { writeRawZip } from './helpers/zip.js';
import { test, withTimeout } from './helpers/tmp.js';
import { captureLogger, newKey, unzip, waitFor, type LogLine } from './http-helpers.js';

const ZIP = { 'Content-Type': 'application/zip' };
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const SAME_ORIGIN = { Origin: 'http://localhost', 'Sec-Fetch-Site': 'same-origin' };

interface ErrorJson {
  error: { code: string; message: string; problems?: string[] };
}

interface ResultJson {
  applied: boolean;
  dryRun: boolean;
  mode: string;
  uploadBytes: number;
  verify: { ok: boolean; appVersion: string; databases: { path: string; integrity: string }[] };
  version: { archive: string; current: string | null; comparison: string };
  plan: { items: { kind: string; path: string; action: string; bytes: number }[]; summary: Record<string, number> };
  preRestore: string | null;
}

interface Setup {
  dataDir: string;
  key: string;
  app: DbzipApp;
  lines: LogLine[];
  text: () => string;
  /** A backup made through GET /api/backup before anything changed. */
  zip: Buffer;
}

async function setup(tmpDir: string, options: Partial<AppOptions> = {}): Promise<Setup> {
  const dataDir = path.join(tmpDir, 'data');
  await generateFixtures(dataDir);
  const key = newKey();
  const { logger, lines, text } = captureLogger();
  const app = createApp({ dataDir, auth: { apiKey: key }, logger, ...options });
  const res = await app.request('/api/backup', { headers: { 'X-API-Key': key } });
  expect(res.status).toBe(200);
  const zip = Buffer.from(await res.arrayBuffer());
  return { dataDir, key, app, lines, text, zip };
}

const post = (s: Pick<Setup, 'app' | 'key'>, body: Buffer | null, query = '', headers: Record<string, string> = {}) =>
  s.app.request(`/api/restore${query}`, { method: 'POST', body, headers: { ...ZIP, 'X-API-Key': s.key, ...headers } });

/** Every file and folder with content hashes, leaving out nothing but dbzip's own `.dbzip/`. */
const treeWithoutPrivate = (dir: string, options: { ignoreReaderSidecars?: boolean } = {}) =>
  fingerprintTree(dir, options)
    .split('\n')
    .filter((line) => !/^[DFL] \.dbzip(\/|\s|$)/.test(line))
    .join('\n');

const privateFiles = (dataDir: string) => (fs.existsSync(path.join(dataDir, '.dbzip')) ? fs.readdirSync(path.join(dataDir, '.dbzip')).sort() : []);
const uploads = (dataDir: string) => privateFiles(dataDir).filter((n) => n.startsWith('upload-'));

/** Changes the data dir after the backup: a table added to app.db, an asset rewritten, one added. */
function change(dataDir: string): void {
  const db = new Database(path.join(dataDir, 'app.db'));
  try {
    db.exec("CREATE TABLE later (x TEXT); INSERT INTO later VALUES ('written after the backup')");
  } finally {
    db.close();
  }
  fs.writeFileSync(path.join(dataDir, 'assets', 'logo.svg'), '<svg>changed</svg>');
  fs.writeFileSync(path.join(dataDir, 'assets', 'new.txt'), 'added after the backup');
}

/** The data dir holds what the zip holds: each database's content and each asset's bytes. */
async function expectContentsOf(zip: Buffer, dataDir: string): Promise<void> {
  const entries = await unzip(zip);
  const manifest = JSON.parse(entries.get('manifest.json')!.toString('utf8')) as { databases: { path: string }[]; assets: { path: string }[] };
  for (const db of manifest.databases) expect(logicalHashOfFile(path.join(dataDir, db.path)), db.path).toBe(logicalHashOfImage(entries.get(db.path)!));
  for (const asset of manifest.assets) expect(fs.readFileSync(path.join(dataDir, ...asset.path.split('/'))).equals(entries.get(asset.path)!), asset.path).toBe(true);
  expect(fs.readFileSync(path.join(dataDir, 'VERSION')).equals(entries.get('VERSION')!)).toBe(true);
}

/** Signs in on the page and returns `dbzip_session=<token>`. */
async function signIn(app: DbzipApp, key: string): Promise<string> {
  const res = await app.request('/signin', { method: 'POST', headers: { ...FORM, ...SAME_ORIGIN }, body: new URLSearchParams({ key }).toString() });
  expect(res.status).toBe(303);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

describe('POST /api/restore', () => {
  test.for(['online', 'offline'] as const)('%s: backup, change, upload the backup: the data dir holds the backup again, with a pre-restore backup that undoes it', async (mode, { tmpDir }) => {
    const s = await setup(tmpDir);
    {
      change(s.dataDir);
      const res = await post(s, s.zip, `?mode=${mode}`);
      const body = (await res.json()) as ResultJson;
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({ applied: true, dryRun: false, mode, uploadBytes: s.zip.length, verify: { ok: true, appVersion: '1.4.2' } });
      expect(body.verify.databases.map((d) => [d.path, d.integrity])).toEqual([['app.db', 'ok'], ['settings.db', 'ok']]);
      expect(body.preRestore).toMatch(/^\.dbzip\/pre-restore-\d{8}-\d{6}(-\d+)?\.zip$/);
      const actions = Object.fromEntries(body.plan.items.map((i) => [i.path, i.action]));
      expect(actions).toMatchObject({ 'app.db': 'replaced', 'settings.db': 'unchanged', 'assets/logo.svg': 'replaced', 'assets/new.txt': 'kept', VERSION: 'unchanged' });
      expect(JSON.stringify(body)).not.toContain(s.dataDir);
      await expectContentsOf(s.zip, s.dataDir);
      expect(fs.existsSync(path.join(s.dataDir, 'assets', 'new.txt')), 'kept without exact').toBe(true);
      expect(uploads(s.dataDir), 'the spool is gone').toEqual([]);

      const audit = s.lines.filter((l) => l['audit'] === 'restore');
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ outcome: 'ok', mode, dryRun: false, applied: true, preRestore: body.preRestore, uploadBytes: s.zip.length, summary: body.plan.summary });
      expect(s.text()).not.toContain(s.key);

      // The pre-restore backup is an ordinary archive: uploading it undoes the restore.
      const undo = fs.readFileSync(path.join(s.dataDir, body.preRestore!));
      const undone = await post(s, undo, `?mode=${mode}&exact=1`);
      expect(undone.status).toBe(200);
      await expectContentsOf(undo, s.dataDir);
      expect(fs.readFileSync(path.join(s.dataDir, 'assets', 'logo.svg'), 'utf8')).toBe('<svg>changed</svg>');
    }
  });

  test('dryRun=1 verifies and returns the plan with the version comparison, and changes nothing', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    change(s.dataDir);
    const before = treeWithoutPrivate(s.dataDir, { ignoreReaderSidecars: true });
    const res = await post(s, s.zip, '?dryRun=1&exact=1');
    const body = (await res.json()) as ResultJson;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ applied: false, dryRun: true, preRestore: null, version: { archive: '1.4.2', current: '1.4.2', comparison: 'same' } });
    expect(body.plan.items.find((i) => i.path === 'assets/new.txt')?.action).toBe('removed');
    expect(body.plan.summary).toMatchObject({ replaced: 2, removed: 1 });
    expect(treeWithoutPrivate(s.dataDir, { ignoreReaderSidecars: true })).toBe(before);
    expect(privateFiles(s.dataDir), 'no spool, no pre-restore backup').toEqual([]);
    expect(s.lines.find((l) => l['audit'] === 'restore')).toMatchObject({ outcome: 'dry-run', applied: false, preRestore: null });
  });

  test('a corrupted archive is 400 ARCHIVE_INVALID listing every problem; the data dir is byte-for-byte unchanged and the spool is gone', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    const zipPath = path.join(tmpDir, 'good.zip');
    fs.writeFileSync(zipPath, s.zip);
    const { entries } = await readArchive(zipPath);
    const broken = entries.map((e) => (e.name === 'app.db' ? { ...e, data: Buffer.concat([e.data.subarray(0, 4096), Buffer.alloc(4096, 0x5a), e.data.subarray(8192)]) } : e));
    broken.splice(1, 0, { name: 'unlisted.txt', data: Buffer.from('not in the manifest') });
    const badPath = path.join(tmpDir, 'bad.zip');
    writeRawZip(badPath, broken);
    const before = treeWithoutPrivate(s.dataDir);

    const res = await post(s, fs.readFileSync(badPath));
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorJson;
    expect(body.error.code).toBe('ARCHIVE_INVALID');
    expect(body.error.problems!.length).toBeGreaterThanOrEqual(2);
    expect(body.error.problems!.some((p) => p.includes('app.db'))).toBe(true);
    expect(body.error.problems!.some((p) => p.includes('unlisted.txt'))).toBe(true);
    expect(treeWithoutPrivate(s.dataDir)).toBe(before);
    expect(privateFiles(s.dataDir)).toEqual([]);
    expect(s.lines.find((l) => l['audit'] === 'restore')).toMatchObject({ outcome: 'rejected', code: 'ARCHIVE_INVALID', problems: body.error.problems!.length });

    // Not a zip at all, and no body at all: the same kind of answer.
    const junk = await post(s, Buffer.from('this is not a zip'));
    expect(junk.status).toBe(400);
    expect(((await junk.json()) as ErrorJson).error.code).toBe('ARCHIVE_INVALID');
    expect((await post(s, null)).status).toBe(400);
    expect(treeWithoutPrivate(s.dataDir)).toBe(before);
    expect(privateFiles(s.dataDir)).toEqual([]);
  });

  test('over maxUploadBytes is 413, by Content-Length before reading and by count without one; no spool is left', async ({ tmpDir }) => {
    const s = await setup(tmpDir, { maxUploadBytes: 10_000 });
    expect(s.zip.length).toBeGreaterThan(10_000);
    const before = treeWithoutPrivate(s.dataDir);
    const declared = await post(s, s.zip);
    expect(declared.status).toBe(413);
    expect(declared.headers.get('connection')).toBe('close');
    expect(((await declared.json()) as ErrorJson).error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: expect.stringMatching(/maxUploadBytes/) });

    // Chunked: no Content-Length, so the server counts and stops at the limit.
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < s.zip.length; at += 4096) controller.enqueue(s.zip.subarray(at, at + 4096));
        controller.close();
      },
    });
    const counted = await s.app.request('/api/restore', { method: 'POST', body: chunked, headers: { ...ZIP, 'X-API-Key': s.key }, duplex: 'half' } as RequestInit);
    expect(counted.status).toBe(413);
    expect(uploads(s.dataDir)).toEqual([]);
    expect(treeWithoutPrivate(s.dataDir)).toBe(before);
    expect(() => createApp({ dataDir: s.dataDir, auth: { none: true }, maxUploadBytes: 0 })).toThrow(/option "maxUploadBytes"/);
  });

  test('needs the key: 401 without one or with a wrong one, and the spool folder is not even created', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    for (const headers of [{}, { 'X-API-Key': newKey() }]) {
      const res = await s.app.request('/api/restore', { method: 'POST', body: s.zip, headers: { ...ZIP, ...headers } });
      expect(res.status).toBe(401);
      expect(res.headers.get('WWW-Authenticate')).toBe('Bearer realm="dbzip"');
    }
    expect(fs.existsSync(path.join(s.dataDir, '.dbzip'))).toBe(false);
  });

  test('a browser session works from the page itself, and is refused (403) from another origin or site', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    const cookie = await signIn(s.app, s.key);
    const asBrowser = (headers: Record<string, string>) =>
      s.app.request('/api/restore?dryRun=1', { method: 'POST', body: s.zip, headers: { ...ZIP, Cookie: cookie, ...headers } });
    for (const foreign of [{ Origin: 'http://evil.example' }, { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' }, { 'Sec-Fetch-Site': 'same-site' }]) {
      const res = await asBrowser(foreign);
      expect(res.status, JSON.stringify(foreign)).toBe(403);
      expect(((await res.json()) as ErrorJson).error.message).toMatch(/^cross-site request refused/);
    }
    expect(fs.existsSync(path.join(s.dataDir, '.dbzip'))).toBe(false);
    const ok = await asBrowser(SAME_ORIGIN);
    expect(ok.status).toBe(200);
  });

  test('an archive from a newer app version is refused with 409; force=1 restores it', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    const older = createApp({ dataDir: s.dataDir, auth: { apiKey: s.key }, version: '1.0.0', logger: captureLogger().logger });
    const refused = await post({ app: older, key: s.key }, s.zip);
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as ErrorJson).error).toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringMatching(/1\.4\.2.*1\.0\.0|newer/) });
    expect(uploads(s.dataDir)).toEqual([]);
    const forced = await post({ app: older, key: s.key }, s.zip, '?force=1');
    expect(forced.status).toBe(200);
    expect(((await forced.json()) as ResultJson).version).toMatchObject({ comparison: 'newer' });
  });

  test('a bad query, a multipart form or another content type is 400 naming what to send', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    for (const query of ['?mode=sideways', '?dryRun=maybe', '?unknown=1']) expect((await post(s, s.zip, query)).status, query).toBe(400);
    const form = new FormData();
    form.set('file', new Blob([s.zip]), 'backup.zip');
    const multipart = await s.app.request('/api/restore', { method: 'POST', body: form, headers: { 'X-API-Key': s.key } });
    expect(multipart.status).toBe(400);
    expect(((await multipart.json()) as ErrorJson).error.message).toMatch(/multipart forms are not accepted/);
    const urlencoded = await post(s, s.zip, '', FORM);
    expect(((await urlencoded.json()) as ErrorJson).error.message).toMatch(/Content-Type: application\/zip/);
    expect(privateFiles(s.dataDir)).toEqual([]);
  });

  test('the upload is spooled inside <data-dir>/.dbzip/ only: an empty TMPDIR stays empty', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    const emptyTmp = path.join(tmpDir, 'tmp');
    fs.mkdirSync(emptyTmp);
    const saved = process.env['TMPDIR'];
    process.env['TMPDIR'] = emptyTmp;
    try {
      expect(os.tmpdir()).toBe(emptyTmp);
      change(s.dataDir);
      expect((await post(s, s.zip, '?dryRun=1')).status).toBe(200);
      expect((await post(s, s.zip)).status).toBe(200);
      expect((await post(s, Buffer.from('not a zip'))).status).toBe(400);
    } finally {
      if (saved === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = saved;
    }
    // tsx-<uid>/ is tsx's compile cache: tests run the snapshot worker from TypeScript sources through
    // tsx's loader, which caches there. Built dbzip has no tsx; anything else here would be dbzip's.
    expect(fs.readdirSync(emptyTmp).filter((name) => !/^tsx-\d+$/.test(name))).toEqual([]);
    expect(uploads(s.dataDir)).toEqual([]);
  });
});

describe('POST /api/restore over the network', () => {
  /** A POST whose body the test writes itself; resolves with the response, or rejects when the connection breaks. */
  function openUpload(url: string, headers: Record<string, string>) {
    const req = http.request(url, { method: 'POST', headers, agent: false });
    const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    return { req, response };
  }

  test('an upload broken off before Content-Length is reached leaves no spool and the data dir unchanged', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    const { logger, lines } = captureLogger();
    const server = await startServer({ dataDir: s.dataDir, auth: { apiKey: s.key }, port: 0, logger });
    try {
      const before = treeWithoutPrivate(s.dataDir);
      const { req, response } = openUpload(`${server.url}/api/restore`, { ...ZIP, 'X-API-Key': s.key, 'Content-Length': String(s.zip.length) });
      response.catch(() => {});
      req.write(s.zip.subarray(0, Math.floor(s.zip.length / 2)));
      await waitFor(() => uploads(s.dataDir).length === 1, 20_000, 'the spool file appearing');
      req.destroy();
      await waitFor(() => lines.some((l) => l['audit'] === 'restore'), 20_000, 'the audit line of the broken-off restore');
      expect(lines.find((l) => l['audit'] === 'restore')).toMatchObject({ outcome: 'rejected', code: 'ARCHIVE_INVALID' });
      expect(uploads(s.dataDir)).toEqual([]);
      expect(treeWithoutPrivate(s.dataDir)).toBe(before);
      // The slot was given back: the next upload works.
      const next = await fetch(`${server.url}/api/restore?dryRun=1`, { method: 'POST', body: s.zip, headers: { ...ZIP, 'X-API-Key': s.key } });
      expect(next.status).toBe(200);
    } finally {
      await server.close(0);
    }
  });

  test('a second restore while one is uploading gets 429 with Retry-After at once; the first then completes', async ({ tmpDir }) => {
    const s = await setup(tmpDir);
    const server = await startServer({ dataDir: s.dataDir, auth: { apiKey: s.key }, port: 0, logger: captureLogger().logger });
    try {
      const first = openUpload(`${server.url}/api/restore?dryRun=1`, { ...ZIP, 'X-API-Key': s.key, 'Content-Length': String(s.zip.length) });
      const half = Math.floor(s.zip.length / 2);
      first.req.write(s.zip.subarray(0, half));
      await waitFor(() => uploads(s.dataDir).length === 1, 20_000, 'the first spool file appearing');
      const second = await fetch(`${server.url}/api/restore?dryRun=1`, { method: 'POST', body: s.zip, headers: { ...ZIP, 'X-API-Key': s.key } });
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(((await second.json()) as ErrorJson).error.message).toMatch(/a restore is already running/);
      // A backup is allowed meanwhile.
      expect((await fetch(`${server.url}/api/backup`, { headers: { 'X-API-Key': s.key } })).status).toBe(200);
      first.req.end(s.zip.subarray(half));
      const done = await withTimeout(first.response, 30_000, 'the first restore');
      expect(done.status, done.body).toBe(200);
      expect((JSON.parse(done.body) as ResultJson).dryRun).toBe(true);
      expect(uploads(s.dataDir)).toEqual([]);
    } finally {
      await server.close(0);
    }
  });
});
