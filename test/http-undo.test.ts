/**
 * What the admin page's new parts call: the pre-restore backups over HTTP (undo from the page), the
 * download progress route, and the page's note on why a download's size is unknown. Through app.request().
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { restore } from '../src/restore/index.js';
import { createApp } from '../src/http/app.js';
import type { AppOptions } from '../src/http/options.js';
import { backupToFile, logicalHashOfFile } from './helpers/restore.js';
import { makeDatabase } from './helpers/backup.js';
import { test } from './helpers/tmp.js';
import { captureLogger, newKey, unzip } from './http-helpers.js';

function appFor(dataDir: string, options: Partial<AppOptions> = {}) {
  const key = newKey();
  const app = createApp({ dataDir, auth: { apiKey: key }, logger: captureLogger().logger, ...options });
  const headers = { 'X-API-Key': key, Accept: 'application/json' };
  return { app, headers };
}

/** Fixtures, a backup of them, then a change and a restore of that backup: one pre-restore backup holds the change. */
async function restoredOnce(tmpDir: string): Promise<{ data: string; changedHash: string }> {
  const data = path.join(tmpDir, 'data');
  await generateFixtures(data);
  const zip = path.join(tmpDir, 'before.zip');
  await backupToFile(zip, { dataDir: data });
  const db = new Database(path.join(data, 'settings.db'));
  db.exec("CREATE TABLE note (v TEXT); INSERT INTO note VALUES ('made after the backup')");
  db.close();
  const changedHash = logicalHashOfFile(path.join(data, 'settings.db'));
  await restore({ archive: zip, dataDir: data });
  expect(logicalHashOfFile(path.join(data, 'settings.db'))).not.toBe(changedHash);
  return { data, changedHash };
}

interface Listing {
  backups: { name: string; bytes: number; createdAt: string }[];
}

describe('pre-restore backups over HTTP (undo from the page)', () => {
  test('GET /api/pre-restore lists them newest first; GET one downloads it whole; other names are 400, a missing one 404, and the key is needed', async ({ tmpDir }) => {
    const { data } = await restoredOnce(tmpDir);
    const { app, headers } = appFor(data);
    expect((await app.request('/api/pre-restore')).status).toBe(401);
    const listing = (await (await app.request('/api/pre-restore', { headers })).json()) as Listing;
    expect(listing.backups).toHaveLength(1);
    const [only] = listing.backups;
    expect(only!.name).toMatch(/^pre-restore-\d{8}-\d{6}\.zip$/);
    const onDisk = path.join(data, '.dbzip', only!.name);
    expect(only!.bytes).toBe(fs.statSync(onDisk).size);
    expect(Math.abs(Date.parse(only!.createdAt) - fs.statSync(onDisk).mtimeMs)).toBeLessThan(60_000);

    const download = await app.request(`/api/pre-restore/${only!.name}`, { headers });
    expect(download.status).toBe(200);
    expect(download.headers.get('content-length')).toBe(String(only!.bytes));
    expect(download.headers.get('content-disposition')).toBe(`attachment; filename="${only!.name}"`);
    const body = Buffer.from(await download.arrayBuffer());
    expect(body.equals(fs.readFileSync(onDisk))).toBe(true);
    expect([...(await unzip(body)).keys()]).toContain('settings.db');

    for (const name of ['restore.lock', '..%2Fapp.db', 'pre-restore-1.zip', 'backups']) {
      expect((await app.request(`/api/pre-restore/${name}`, { headers })).status, name).toBe(400);
    }
    expect((await app.request('/api/pre-restore/pre-restore-20000101-000000.zip', { headers })).status).toBe(404);
  });

  test('POST /api/pre-restore/<name>/restore: a dry run plans and changes nothing; then it undoes the restore and saves the state before as a new pre-restore backup', async ({ tmpDir }) => {
    const { data, changedHash } = await restoredOnce(tmpDir);
    const { app, headers } = appFor(data);
    const [only] = ((await (await app.request('/api/pre-restore', { headers })).json()) as Listing).backups;
    const url = `/api/pre-restore/${only!.name}/restore`;

    const dry = await app.request(`${url}?dryRun=1`, { method: 'POST', headers });
    expect(dry.status).toBe(200);
    const plan = (await dry.json()) as { applied: boolean; plan: { items: { path: string; action: string }[] }; preRestore: string | null };
    expect(plan.applied).toBe(false);
    expect(Object.fromEntries(plan.plan.items.map((i) => [i.path, i.action]))).toMatchObject({ 'settings.db': 'replaced', 'app.db': 'unchanged' });
    expect(logicalHashOfFile(path.join(data, 'settings.db'))).not.toBe(changedHash);

    const done = await app.request(url, { method: 'POST', headers });
    expect(done.status).toBe(200);
    const report = (await done.json()) as { applied: boolean; preRestore: string };
    expect(report.applied).toBe(true);
    expect(report.preRestore).toMatch(/^\.dbzip\/pre-restore-\d{8}-\d{6}(-\d+)?\.zip$/);
    expect(logicalHashOfFile(path.join(data, 'settings.db'))).toBe(changedHash);
    const after = ((await (await app.request('/api/pre-restore', { headers })).json()) as Listing).backups.map((b) => b.name);
    expect(after).toEqual([report.preRestore.slice('.dbzip/'.length), only!.name]);
  });
});

describe('GET /api/backup/progress', () => {
  test('reports the page\'s download by its token: the bytes sent of the exact size, then ok; an estimate when the size is unknown; unknown tokens 404', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'wal.db'), { rows: 500 });
    const { app, headers } = appFor(tmpDir);
    const download = await app.request('/api/backup?dl=Tok3nWal1', { headers: { ...headers, Accept: 'application/zip' } });
    const bytes = (await download.arrayBuffer()).byteLength;
    const report = async (token: string) => (await app.request(`/api/backup/progress?dl=${token}`, { headers })).json() as Promise<Record<string, unknown>>;
    expect(await report('Tok3nWal1')).toMatchObject({ state: 'ok', bytes, size: bytes, estimatedSize: null });

    makeDatabase(path.join(tmpDir, 'legacy.db'), { rows: 500, journal: 'delete' });
    const unknown = await app.request('/api/backup?dl=Tok3nRoll2', { headers: { ...headers, Accept: 'application/zip' } });
    expect(unknown.headers.get('x-dbzip-length')).toBe('unknown');
    const reader = unknown.body!.getReader();
    await reader.read();
    const running = await report('Tok3nRoll2');
    expect(running).toMatchObject({ state: 'running', size: null });
    expect(running['estimatedSize']).toBe(fs.statSync(path.join(tmpDir, 'wal.db')).size + fs.statSync(path.join(tmpDir, 'legacy.db')).size);
    while (!(await reader.read()).done);
    expect(await report('Tok3nRoll2')).toMatchObject({ state: 'ok' });

    expect((await app.request('/api/backup/progress?dl=NeverUsed9', { headers })).status).toBe(404);
    expect((await app.request('/api/backup/progress?dl=x', { headers })).status).toBe(400);
    expect((await app.request('/api/backup/progress?dl=Tok3nWal1')).status).toBe(401);
  });
});

describe('the page on an unknown download size', () => {
  const cookieFor = async (app: ReturnType<typeof createApp>, key: string) => {
    const res = await app.request('/signin', {
      method: 'POST',
      body: new URLSearchParams({ key }),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'http://localhost', 'Sec-Fetch-Site': 'same-origin' },
    });
    return res.headers.get('set-cookie')!.split(';')[0]!;
  };
  const pageOf = async (dataDir: string, options: Partial<AppOptions> = {}) => {
    const key = newKey();
    const app = createApp({ dataDir, auth: { apiKey: key }, logger: captureLogger().logger, ...options });
    return (await app.request('/', { headers: { Cookie: await cookieFor(app, key) } })).text();
  };
  const noteOf = (html: string) => /<p id="size-note" class="hint">([\s\S]*?)<\/p>/.exec(html)?.[1]?.replace(/<[^>]+>/g, '');

  test('names the rollback-journal databases and what to change; says nothing when every database is WAL; names compression and pin none', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'app.db'));
    expect(noteOf(await pageOf(tmpDir))).toBeUndefined();
    expect(await pageOf(tmpDir)).toMatch(/data-exact="1"/);

    makeDatabase(path.join(tmpDir, 'legacy.db'), { journal: 'delete' });
    makeDatabase(path.join(tmpDir, 'old.db'), { journal: 'delete' });
    const rollback = noteOf(await pageOf(tmpDir));
    expect(rollback).toContain('legacy.db and old.db use a rollback journal');
    expect(rollback).toContain('PRAGMA journal_mode=WAL');
    expect(rollback).toContain('--pin all-blocking');
    expect(rollback).not.toContain('app.db');
    expect(await pageOf(tmpDir)).toMatch(/about [\d.]+ KiB \(estimate\)/);

    expect(noteOf(await pageOf(tmpDir, { pin: 'all-blocking' }))).toBeUndefined();
    expect(noteOf(await pageOf(tmpDir, { level: 6 }))).toContain('compresses backups (level 6)');
    expect(noteOf(await pageOf(tmpDir, { pin: 'none' }))).toContain('--pin none');
  });
});
