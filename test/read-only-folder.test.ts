/** A WAL database in a folder dbzip cannot write to: SQLite cannot read it, and dbzip says why and what to do. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import type { Manifest } from '../src/archive/manifest.js';
import { createApp } from '../src/http/app.js';
import { backupToZip, makeDatabase } from './helpers/backup.js';
import { dbzip } from './helpers/cli.js';
import { captureLogger, newKey } from './http-helpers.js';
import { test } from './helpers/tmp.js';

/**
 * Makes `dir` read-only for this process and its children, for real: root ignores permission bits, so
 * as root the folder is made immutable (`chattr +i`, which root cannot write through either); any other
 * user gets mode 0555. Returns the undo.
 */
function makeReadOnly(dir: string): () => void {
  if (process.getuid?.() !== 0) {
    fs.chmodSync(dir, 0o555);
    return () => fs.chmodSync(dir, 0o755);
  }
  execFileSync('chattr', ['+i', dir]);
  return () => execFileSync('chattr', ['-i', dir]);
}

/** A WAL database whose owner is not running (so no -shm beside it) and a rollback one, in a read-only folder. */
function readOnlyData(tmpDir: string): { data: string; undo: () => void } {
  const data = path.join(tmpDir, 'data');
  makeDatabase(path.join(data, 'wal.db'), { journal: 'wal' });
  makeDatabase(path.join(data, 'rollback.db'), { journal: 'delete' });
  expect(fs.readdirSync(data).sort()).toEqual(['rollback.db', 'wal.db']);
  const undo = makeReadOnly(data);
  // The premise: the folder really cannot be written, by this process either.
  expect(() => fs.writeFileSync(path.join(data, 'probe'), '')).toThrow(/EACCES|EPERM|EROFS/);
  return { data, undo };
}

const WHY = /^cannot open: it is a WAL database without wal\.db-shm, in a folder dbzip cannot write to \((EACCES|EPERM|EROFS)\): SQLite must create wal\.db-shm and wal\.db-wal beside a WAL database to read it\. Give dbzip write access to the folder, or run the backup while the application has the database open \(SQLITE_CANTOPEN\)$/;

describe('a WAL database without -shm in a read-only folder', () => {
  test('is skipped with a reason that says why and what to do, in the manifest and the CLI; the rollback one beside it is archived', async ({ tmpDir }) => {
    const { data, undo } = readOnlyData(tmpDir);
    try {
      const { manifest } = await backupToZip({ dataDir: data });
      expect(manifest.databases.map((d) => d.path)).toEqual(['rollback.db']);
      expect(manifest.skipped).toHaveLength(1);
      expect(manifest.skipped[0]).toMatchObject({ path: 'wal.db', code: 'UNREADABLE' });
      expect(manifest.skipped[0]!.reason).toMatch(WHY);

      const list = await dbzip(['list', data]);
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(`wal.db  UNREADABLE: ${manifest.skipped[0]!.reason}`);
      const out = path.join(tmpDir, 'x.zip');
      const backup = await dbzip(['backup', data, '-o', out, '--json']);
      expect(backup.code).toBe(0);
      expect(backup.stderr).toContain(`dbzip: warning: skipped wal.db: ${manifest.skipped[0]!.reason}`);
      expect((JSON.parse(backup.stdout) as { manifest: Manifest }).manifest.skipped).toEqual(manifest.skipped);
    } finally {
      undo();
    }
    // With write access SQLite creates the -shm and the database is archived.
    const { manifest } = await backupToZip({ dataDir: data });
    expect(manifest.databases.map((d) => d.path)).toEqual(['rollback.db', 'wal.db']);
  });

  test('the admin page shows the same reason under Skipped files', async ({ tmpDir }) => {
    const { data, undo } = readOnlyData(tmpDir);
    try {
      const key = newKey();
      const app = createApp({ dataDir: data, auth: { apiKey: key }, logger: captureLogger().logger });
      const signIn = await app.request('/signin', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'http://localhost', 'Sec-Fetch-Site': 'same-origin' },
        body: new URLSearchParams({ key }).toString(),
      });
      expect(signIn.status).toBe(303);
      const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
      const html = await (await app.request('/', { headers: { Cookie: cookie } })).text();
      const skipped = html.slice(html.indexOf('id="skipped-title"'));
      expect(skipped).toContain('wal.db');
      expect(skipped).toMatch(/SQLite must create wal\.db-shm and wal\.db-wal beside a WAL database to read it\. Give dbzip write access to the folder, or run the backup while the application has the database open/);
    } finally {
      undo();
    }
  });

  test('opens when the application has it open: its -shm exists, and the folder stays read-only', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    makeDatabase(path.join(data, 'wal.db'), { journal: 'wal' });
    const app = new Database(path.join(data, 'wal.db'));
    app.prepare('SELECT COUNT(*) FROM t').get(); // the application reads: -wal and -shm now exist
    const undo = makeReadOnly(data);
    try {
      const { manifest } = await backupToZip({ dataDir: data });
      expect(manifest.databases.map((d) => d.path)).toEqual(['wal.db']);
    } finally {
      undo();
      app.close();
    }
  });
});
