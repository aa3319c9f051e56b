/** Many databases against the process's file-descriptor limit: never a database dropped for our own resource use. */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import type { Manifest } from '../src/archive/manifest.js';
import { makeDatabase } from './helpers/backup.js';
import { BIN } from './helpers/cli.js';
import { test } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';

/**
 * `count` small WAL databases whose owner is not running: no -wal or -shm yet, so each pin opens three
 * files. Copies of one database (a file copy is cheap; creating each would fsync hundreds of times).
 */
function manyWalDatabases(dir: string, count: number): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const template = path.join(dir, '..', 'template.db');
  const db = new Database(template);
  db.pragma('journal_mode = wal');
  db.exec('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)');
  db.close();
  const names = Array.from({ length: count }, (_, i) => `d${String(i).padStart(3, '0')}.db`);
  for (const name of names) fs.copyFileSync(template, path.join(dir, name));
  fs.rmSync(template);
  return names;
}

describe('the descriptor budget', () => {
  test('under ulimit -n 256, a backup of 500 WAL databases archives every one; those past the budget are read unpinned and the manifest says why', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    const names = manyWalDatabases(data, 500);
    const out = path.join(tmpDir, 'x.zip');
    const run = await promisify(execFile)('bash', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, BIN, 'backup', data, '-o', out], { timeout: 120_000 });
    expect(run.stderr).toMatch(/^dbzip: warning: not pinned: \d+ database\(s\): pinning all 500 databases would hold up to 1500 file descriptors; with a limit of 256 \(ulimit -n\)/);
    expect(run.stderr).toContain('wrote');
    const zip = await readZip(out);
    const manifest = JSON.parse(zip.files.get('manifest.json')!.toString('utf8')) as Manifest;
    expect(manifest.skipped).toEqual([]);
    expect(manifest.databases.map((d) => d.path)).toEqual(names);
    const notPinned = manifest.pin.notPinned!;
    expect(notPinned.reason).toContain('raise ulimit -n to pin them all');
    expect(manifest.pin.databases.length).toBeGreaterThan(0);
    expect([...manifest.pin.databases, ...notPinned.databases].sort()).toEqual(names);
    expect(manifest.databases.filter((d) => !d.pinned).map((d) => d.path)).toEqual(notPinned.databases);
    for (const name of names.filter((_, i) => i % 50 === 0)) expect(zip.files.get(name)!.subarray(0, 15).toString()).toBe('SQLite format 3');
  }, 240_000);

  test('with enough descriptors every WAL database is pinned and the manifest has no notPinned', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    const names = manyWalDatabases(data, 20);
    const run = await promisify(execFile)(process.execPath, [BIN, 'backup', data, '-o', path.join(tmpDir, 'x.zip'), '-q', '--json']);
    const { manifest } = JSON.parse(run.stdout) as { manifest: Manifest };
    expect(manifest.pin.databases).toEqual(names);
    expect(manifest.pin).not.toHaveProperty('notPinned');
  });

  test('a database SQLite cannot open because the process has no descriptor left fails the backup naming EMFILE, never a skip', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    makeDatabase(path.join(data, 'a.db'));
    makeDatabase(path.join(data, 'b.db'));
    // In its own process: take every free descriptor once the backup has started (a.db is read before
    // createBackup resolves), so opening b.db fails for want of one.
    const script = `
      import fs from 'node:fs';
      import { createBackup } from ${JSON.stringify(path.resolve('dist/index.js'))};
      const backup = await createBackup({ dataDir: process.argv[2], pin: 'none' });
      const hog = [];
      for (;;) { try { hog.push(fs.openSync('/dev/null', 'r')); } catch { break; } }
      const result = await (async () => { for await (const _ of backup.stream); return backup.manifest; })().then(
        (m) => ({ ok: true, databases: m.databases.map((d) => d.path), skipped: m.skipped }),
        (e) => ({ ok: false, code: e.code, message: e.message }));
      for (const fd of hog) fs.closeSync(fd);
      console.log(JSON.stringify(result));
      process.exit(0);`;
    const file = path.join(tmpDir, 'hog.mjs');
    fs.writeFileSync(file, script);
    const run = spawnSync('bash', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, file, data], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout) as { ok: boolean; code?: string; message?: string };
    expect(result).toMatchObject({ ok: false, code: 'SNAPSHOT_FAILED' });
    expect(result.message).toMatch(/^b\.db: too many open files \(EMFILE\): the process's descriptor limit is reached, so SQLite cannot open b\.db\. Raise the limit/);
  });
});
