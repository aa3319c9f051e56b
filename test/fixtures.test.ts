import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import { assertSafeOutDir, FIXTURE_FILES, generateFixtures } from '../fixtures/generate.js';
import { test, withTimeout } from './helpers/tmp.js';
import { checkLedgerInvariant, createLedgerDatabase, openSnapshotBuffer, startWriter, type WriterJournal } from './helpers/writer.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)).split(path.sep).join('/'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Header bytes 18–19: 1 = rollback journal, 2 = WAL. */
function headerJournal(file: string): number[] {
  const head = fs.readFileSync(file).subarray(0, 20);
  expect(head.subarray(0, 16).equals(SQLITE_MAGIC)).toBe(true);
  return [head[18] ?? -1, head[19] ?? -1];
}

/** Schema, user_version and a hash of every table's rows (order-independent), keyed by object name. */
function logicalDump(file: string): Record<string, string> {
  const db = openSnapshotBuffer(fs.readFileSync(file));
  try {
    const out: Record<string, string> = { user_version: String(db.pragma('user_version', { simple: true })) };
    const objects = db
      .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
      .all() as { type: string; name: string; sql: string }[];
    for (const { type, name, sql } of objects) {
      out[`${type}:${name}`] = sql;
      if (type !== 'table') continue;
      const rows = db
        .prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`)
        .raw()
        .all()
        .map((row) => JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? `blob:${v.toString('hex')}` : v)))
        .sort();
      out[`rows:${name}`] = `${rows.length} ${createHash('sha256').update(rows.join('\n')).digest('hex')}`;
    }
    return out;
  } finally {
    db.close();
  }
}

describe('fixtures/generate.ts', () => {
  test('makes exactly the listed files, with the promised properties', async ({ tmpDir }) => {
    const out = path.join(tmpDir, 'data');
    await generateFixtures(out);

    expect(listFiles(out)).toEqual([...FIXTURE_FILES]);
    expect(FIXTURE_FILES).toContain('assets/docs/ünïcødé ✓.txt'.normalize('NFC'));
    expect(fs.readdirSync(out).filter((n) => /-(wal|shm|journal)$/.test(n))).toEqual([]);

    expect(headerJournal(path.join(out, 'app.db'))).toEqual([2, 2]);
    expect(headerJournal(path.join(out, 'events.sqlite'))).toEqual([2, 2]);
    expect(headerJournal(path.join(out, 'settings.db'))).toEqual([1, 1]);

    const appBytes = fs.statSync(path.join(out, 'app.db')).size;
    expect(appBytes).toBeGreaterThan(200_000);
    expect(appBytes).toBeLessThan(1_000_000);
    expect(fs.statSync(path.join(out, 'empty.db')).size).toBe(0);
    const junk = fs.readFileSync(path.join(out, 'junk.db'));
    expect(junk.length).toBeGreaterThan(0);
    expect(junk.subarray(0, 16).equals(SQLITE_MAGIC)).toBe(false);
    expect(fs.readFileSync(path.join(out, 'VERSION'), 'utf8')).toBe('1.4.2\n');
    expect(fs.statSync(path.join(out, 'assets/img/pixel.bin')).size).toBe(4096);

    // Checked on in-memory copies: a read-only connection to a WAL database cannot remove
    // the -wal/-shm files it creates, so opening the fixtures read-only would leave them behind.
    const app = openSnapshotBuffer(fs.readFileSync(path.join(out, 'app.db')));
    try {
      expect(app.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").pluck().get()).toBeGreaterThan(0);
      expect(app.prepare('SELECT COUNT(*) FROM attachments WHERE length(data) > 1000').pluck().get()).toBeGreaterThan(10);
      expect(app.prepare('SELECT COUNT(*) FROM users WHERE json_valid(profile)').pluck().get()).toBe(200);
      expect(app.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      app.close();
    }
    const settings = openSnapshotBuffer(fs.readFileSync(path.join(out, 'settings.db')));
    try {
      expect(settings.pragma('user_version', { simple: true })).toBe(7);
      expect(settings.prepare('SELECT COUNT(*) FROM settings').pluck().get()).toBeGreaterThan(0);
    } finally {
      settings.close();
    }
    // Nothing above touched the directory.
    expect(listFiles(out)).toEqual([...FIXTURE_FILES]);
  });

  test('running it twice gives the same logical content', async ({ tmpDir }) => {
    const a = path.join(tmpDir, 'a');
    const b = path.join(tmpDir, 'b');
    await generateFixtures(a);
    fs.writeFileSync(path.join(a, 'stale.txt'), 'must disappear on the next run');
    await generateFixtures(a); // rebuilds from scratch
    await generateFixtures(b);
    expect(listFiles(a)).toEqual(listFiles(b));

    for (const name of ['app.db', 'settings.db', 'events.sqlite']) {
      const dumpA = logicalDump(path.join(a, name));
      expect(dumpA).toEqual(logicalDump(path.join(b, name)));
      expect(Object.keys(dumpA).some((k) => k.startsWith('rows:') && !dumpA[k]?.startsWith('0 '))).toBe(true);
    }
    // The raw bytes of the SQLite files are identical with one SQLite build today, but that
    // is not promised (the header records the SQLite version), so only non-SQLite files are compared bytewise.
    for (const name of FIXTURE_FILES.filter((f) => !/\.(db|sqlite)$/.test(f) || f === 'junk.db' || f === 'empty.db')) {
      expect(fs.readFileSync(path.join(a, name)).equals(fs.readFileSync(path.join(b, name))), name).toBe(true);
    }
  });

  test('refuses to wipe / or the repository', ({ tmpDir }) => {
    expect(() => assertSafeOutDir('/')).toThrow(/file system root/);
    expect(() => assertSafeOutDir(REPO_ROOT)).toThrow(/repository root/);
    expect(() => assertSafeOutDir(path.join(REPO_ROOT, 'fixtures', '..'))).toThrow(/repository root/);
    expect(() => assertSafeOutDir(path.dirname(REPO_ROOT))).toThrow(/contains it/);
    expect(assertSafeOutDir(path.join(tmpDir, 'x'))).toBe(path.join(tmpDir, 'x'));
    expect(assertSafeOutDir(path.join(REPO_ROOT, 'fixtures', 'data'))).toBe(path.join(REPO_ROOT, 'fixtures', 'data'));
  });
});

describe('test helpers', () => {
  test('withTimeout rejects with a clear message', async () => {
    await expect(withTimeout(new Promise(() => {}), 20, 'the hanging thing')).rejects.toThrow(
      'the hanging thing did not finish within 20 ms',
    );
    await expect(withTimeout(Promise.resolve(42), 1000, 'x')).resolves.toBe(42);
  });

  test('the writer refuses a database in the other journal mode', ({ tmpDir }) => {
    const dbPath = path.join(tmpDir, 'w.db');
    createLedgerDatabase(dbPath, 'wal');
    expect(() => createLedgerDatabase(dbPath, 'delete')).toThrow(/journal_mode=wal, the writer was asked for delete/);
  });

  test('checkLedgerInvariant notices a broken ledger', ({ tmpDir }) => {
    const dbPath = path.join(tmpDir, 'broken.db');
    createLedgerDatabase(dbPath, 'delete');
    const db = new Database(dbPath);
    try {
      expect(checkLedgerInvariant(db)).toMatchObject({ sum: 0, rows: 0, counter: 0, ok: true });
      db.prepare('INSERT INTO ledger (account, amount) VALUES (1, 5)').run();
      expect(checkLedgerInvariant(db)).toMatchObject({ sum: 5, rows: 1, counter: 0, integrity: 'ok', ok: false });
    } finally {
      db.close();
    }
  });

  test('the writer reports the errors it sees instead of hiding them', async ({ tmpDir }) => {
    const dbPath = path.join(tmpDir, 'errors.db');
    const writer = await withTimeout(startWriter({ dbPath, journal: 'wal' }), 30_000, 'startWriter');
    const db = new Database(dbPath);
    try {
      db.pragma('busy_timeout = 10000');
      db.prepare("DELETE FROM meta WHERE k = 'commits'").run(); // every later transaction fails and rolls back
    } finally {
      db.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stats = await withTimeout(writer.stop(), 30_000, 'writer.stop');
    expect(stats.errors).toBeGreaterThan(0);
    expect(stats.errorMessages.map((e) => e.message)).toContain("meta has no 'commits' row");
    expect(stats.errorMessages.reduce((n, e) => n + e.count, 0)).toBe(stats.errors);
  });

  describe.each<{ journal: WriterJournal; how: 'ipc' | 'sigterm' }>([
    { journal: 'wal', how: 'ipc' },
    { journal: 'delete', how: 'sigterm' },
  ])('writer process, journal=$journal', ({ journal, how }) => {
    test(`keeps its invariant under a concurrent reader and reports 0 errors (stop via ${how})`, async ({ tmpDir }) => {
      const dbPath = path.join(tmpDir, `ledger-${journal}.db`);
      const writer = await withTimeout(startWriter({ dbPath, journal, blobBytes: 256 }), 30_000, 'startWriter');
      expect(headerJournal(dbPath)).toEqual(journal === 'wal' ? [2, 2] : [1, 1]);

      const reader = new Database(dbPath, { readonly: true });
      reader.pragma('busy_timeout = 10000');
      let checks = 0;
      let lastCounter = 0;
      try {
        const until = Date.now() + 1000;
        let snapshotChecked = false;
        while (Date.now() < until) {
          const check = checkLedgerInvariant(reader);
          expect(check, `check #${checks}`).toMatchObject({ ok: true, sum: 0, integrity: 'ok' });
          expect(check.rows).toBe(2 * check.counter);
          expect(check.counter).toBeGreaterThanOrEqual(lastCounter);
          lastCounter = check.counter;
          checks += 1;
          if (!snapshotChecked && Date.now() > until - 500) {
            // An in-memory image of the live database, as a backup would hold it.
            const image = reader.serialize();
            const snap = openSnapshotBuffer(image);
            try {
              expect(checkLedgerInvariant(snap)).toMatchObject({ ok: true, sum: 0, integrity: 'ok' });
            } finally {
              snap.close();
            }
            snapshotChecked = true;
          }
          await tick();
        }
        expect(snapshotChecked).toBe(true);
      } finally {
        reader.close();
      }

      const stats = await withTimeout(writer.stop(how), 30_000, 'writer.stop');
      expect(stats.errorMessages).toEqual([]);
      expect(stats.errors).toBe(0);
      expect(stats.commits).toBeGreaterThan(10);
      expect(stats.commitsPerSecond).toBeGreaterThan(0);
      expect(stats.maxLatencyMs).toBeGreaterThan(0);
      expect(stats.counter).toBe(stats.commits);
      expect(stats.counter).toBeGreaterThanOrEqual(lastCounter);
      expect(checks).toBeGreaterThan(5);

      const final = new Database(dbPath, { readonly: true });
      try {
        expect(checkLedgerInvariant(final)).toEqual({
          sum: 0,
          rows: 2 * stats.commits,
          counter: stats.commits,
          payloadRows: stats.commits,
          integrity: 'ok',
          ok: true,
        });
      } finally {
        final.close();
      }
      console.log(`[writer ${journal}] ${JSON.stringify(stats)}; reader checks: ${checks}`);
    });
  });
});
