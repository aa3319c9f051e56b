/**
 * Where a snapshot's quick_check runs, and which all-zero pages make dbzip check the image itself.
 * Debian's libsqlite3 (so python3's sqlite3 module and the sqlite3 shell) is built with
 * SQLITE_SECURE_DELETE: every freed page is zeroed. Those pages are expected; a zero page that is not
 * free is what serialize() leaves where it could not read.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, onTestFinished } from 'vitest';
import { backupToZip, breakLeafPage, makeBigDatabase, makeDatabase, readImage } from './helpers/backup.js';
import { rowCount } from './http-helpers.js';
import { test } from './helpers/tmp.js';
import { freePages, suspiciousZeroPage } from '../src/snapshot/image-check.js';
import { SnapshotSession } from '../src/snapshot/session.js';
import { createBigLedgerDatabase, ledgerOfImage, startWriter } from './helpers/writer.js';

type Journal = 'wal' | 'delete';

/** Rows, then a retention delete under secure_delete: a freelist of zeroed pages. */
function secureDeleteDatabase(file: string, journal: Journal, rows = 3000): void {
  makeDatabase(file, { journal, rows });
  const db = new Database(file);
  db.pragma('secure_delete = on');
  db.exec('DELETE FROM t WHERE id > 100');
  if (journal === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

const hasPython = (() => {
  try {
    return execFileSync('python3', ['-c', 'import sqlite3; print(1)']).toString().trim() === '1';
  } catch {
    return false;
  }
})();

/** The same, written by python3's sqlite3 module (Debian's libsqlite3, secure_delete by default). */
function pythonDatabase(file: string, journal: Journal): void {
  const script = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute('pragma journal_mode=${journal}')
assert db.execute('pragma secure_delete').fetchone()[0] == 1, 'this libsqlite3 is not built with SQLITE_SECURE_DELETE'
db.execute('create table events (id integer primary key, ts integer, payload text)')
db.execute('create index events_ts on events(ts)')
db.executemany('insert into events (ts, payload) values (?, ?)', ((i, 'event %d ' % i * 8) for i in range(20000)))
db.commit()
db.execute('delete from events where ts < 5000')
db.commit()
${journal === 'wal' ? "db.execute('pragma wal_checkpoint(truncate)')" : ''}
db.close()
`;
  execFileSync('python3', ['-c', script, file]);
}

function facts(file: string): { image: Buffer; pageSize: number; freelistCount: number } {
  const db = new Database(file, { readonly: true });
  try {
    return { image: db.serialize(), pageSize: db.pragma('page_size', { simple: true }) as number, freelistCount: db.pragma('freelist_count', { simple: true }) as number };
  } finally {
    db.close();
  }
}

function zeroPages(image: Buffer, pageSize: number): number[] {
  const zeros = Buffer.alloc(pageSize);
  const pages: number[] = [];
  for (let offset = 0; offset < image.length; offset += pageSize) if (image.subarray(offset, offset + pageSize).equals(zeros)) pages.push(offset / pageSize + 1);
  return pages;
}

async function snapshotMeta(file: string) {
  const session = new SnapshotSession();
  onTestFinished(() => session.close());
  const outcome = await session.snapshot(file, 1 << 30, 1_000, 'quick');
  if (!outcome.ok) throw new Error(`snapshot failed: ${outcome.failure.reason}`);
  for await (const _ of outcome.snapshot.chunks());
  return outcome.snapshot;
}

/** A session whose checker worker is already listening, as a backup starts it while it plans. */
async function sessionWithChecker(): Promise<SnapshotSession> {
  const session = new SnapshotSession();
  onTestFinished(() => session.close());
  await session.prepareChecker();
  return session;
}

/** A rollback-journal database over 16 MiB whose last pages are table leaves (rows added after the blobs). */
function bigRollbackDatabase(file: string): void {
  makeBigDatabase(file, 20, 'delete');
  const db = new Database(file);
  db.transaction(() => {
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    for (let i = 0; i < 20_000; i++) insert.run(`row ${i} ${'x'.repeat(60)}`);
  })();
  db.close();
}

describe('free pages', () => {
  for (const journal of ['wal', 'delete'] as const) {
    test(`a secure_delete freelist (${journal}) is read whole from the image, and its zeroed pages are not suspicious`, ({ tmpDir }) => {
      const file = path.join(tmpDir, 'zeroed.db');
      secureDeleteDatabase(file, journal);
      const { image, pageSize, freelistCount } = facts(file);
      const zeros = zeroPages(image, pageSize);
      expect(zeros.length).toBeGreaterThan(10);
      const free = freePages(image, pageSize)!;
      expect(free.size).toBe(freelistCount);
      expect(zeros.every((page) => free.has(page))).toBe(true);
      expect(suspiciousZeroPage(image, pageSize)).toBeUndefined();
    });
  }

  test('a zeroed page that is not free is found, as serialize() leaves a page it could not read', ({ tmpDir }) => {
    const file = path.join(tmpDir, 'zeroed.db');
    secureDeleteDatabase(file, 'wal');
    const { image, pageSize } = facts(file);
    const free = freePages(image, pageSize)!;
    const inUse = [...Array(image.length / pageSize).keys()].map((i) => i + 1).find((page) => page >= 2 && !free.has(page) && image[(page - 1) * pageSize] === 0x0d)!;
    image.fill(0, (inUse - 1) * pageSize, inUse * pageSize);
    expect(suspiciousZeroPage(image, pageSize)).toBe(inUse);
  });

  test('a freelist that does not add up makes every zero page suspicious: wrong count, a trunk outside the image, a loop', ({ tmpDir }) => {
    const file = path.join(tmpDir, 'zeroed.db');
    secureDeleteDatabase(file, 'delete');
    const { image, pageSize } = facts(file);
    const firstZero = zeroPages(image, pageSize)[0]!;
    const count = image.readUInt32BE(36);
    const trunk = image.readUInt32BE(32);

    const wrongCount = Buffer.from(image);
    wrongCount.writeUInt32BE(count + 1, 36);
    expect(freePages(wrongCount, pageSize)).toBeUndefined();
    expect(suspiciousZeroPage(wrongCount, pageSize)).toBe(firstZero);

    const outside = Buffer.from(image);
    outside.writeUInt32BE(image.length / pageSize + 1, 32);
    expect(freePages(outside, pageSize)).toBeUndefined();

    const loop = Buffer.from(image);
    loop.writeUInt32BE(trunk, (trunk - 1) * pageSize);
    expect(freePages(loop, pageSize)).toBeUndefined();

    const tooManyLeaves = Buffer.from(image);
    tooManyLeaves.writeUInt32BE(pageSize, (trunk - 1) * pageSize + 4);
    expect(freePages(tooManyLeaves, pageSize)).toBeUndefined();
  });
});

describe('where the check runs (one check, never a second on a copy, for a healthy database)', () => {
  test('WAL with a secure_delete freelist: checked on the connection, no copy', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'zeroed.db');
    secureDeleteDatabase(file, 'wal');
    expect((await snapshotMeta(file)).checkedOn).toBe('connection');
  });

  test('a rollback-journal database over 64 MiB with a secure_delete freelist: checked on the connection, no copy', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'big.db');
    makeBigDatabase(file, 70, 'delete');
    const db = new Database(file);
    db.pragma('secure_delete = on');
    db.exec('DELETE FROM blobs WHERE id % 10 = 0');
    db.close();
    const { image, pageSize } = facts(file);
    expect(zeroPages(image, pageSize).length).toBeGreaterThan(100);
    expect((await snapshotMeta(file)).checkedOn).toBe('connection');
  });

  test('a rollback-journal database of 16 MiB or more is checked alongside its read, by a second worker, with no copy', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'big.db');
    bigRollbackDatabase(file);
    const session = await sessionWithChecker();
    const outcome = await session.snapshot(file, 1 << 30, 1_000, 'quick', true);
    expect(outcome.ok && outcome.snapshot.checkedOn).toBe('alongside');
    if (outcome.ok) expect((await readImage(outcome.snapshot)).equals(fs.readFileSync(file))).toBe(true);
  });

  test('a check alongside catches a corrupt page: the snapshot fails with quick_check\'s message', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'big.db');
    bigRollbackDatabase(file);
    breakLeafPage(file);
    const session = await sessionWithChecker();
    const outcome = await session.snapshot(file, 1 << 30, 1_000, 'quick', true);
    expect(outcome).toMatchObject({ ok: false, failure: { code: 'SNAPSHOT_CORRUPT', reason: expect.stringMatching(/^quick_check of the snapshot failed: ./) } });
  });

  test('a WAL database is never checked alongside: a second WAL reader may see a later moment', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'big.db');
    makeBigDatabase(file, 20, 'wal');
    const session = await sessionWithChecker();
    const outcome = await session.snapshot(file, 1 << 30, 1_000, 'quick', true);
    expect(outcome.ok && outcome.snapshot.checkedOn).toBe('connection');
  });

  test('under a rollback-journal writer in another process, the check alongside joins the same moment: every image is whole and consistent', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'ledger.db');
    createBigLedgerDatabase(file, 'delete', 20);
    const writer = await startWriter({ dbPath: file, journal: 'delete', blobBytes: 100 });
    const checkedOn: string[] = [];
    const counters = new Set<number>();
    try {
      const session = await sessionWithChecker();
      for (let run = 0; run < 6; run++) {
        const outcome = await session.snapshot(file, 1 << 30, 5_000, 'quick', true);
        if (!outcome.ok) throw new Error(`snapshot failed: ${outcome.failure.reason}`);
        checkedOn.push(outcome.snapshot.checkedOn);
        const check = ledgerOfImage(await readImage(outcome.snapshot));
        expect(check, `run ${run}`).toMatchObject({ sum: 0, integrity: 'ok', ok: true });
        counters.add(check.counter);
      }
    } finally {
      const stats = await writer.stop();
      expect(stats.errorMessages).toEqual([]);
    }
    // Our process already holds the shared lock, so SQLite lets the checker in even while the writer waits for its commit.
    expect(checkedOn).toEqual(Array(6).fill('alongside'));
    expect(counters.size).toBeGreaterThan(1);
  });

  test('a small rollback-journal database is checked once, on a copy, after its lock is released', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'zeroed.db');
    secureDeleteDatabase(file, 'delete');
    expect((await snapshotMeta(file)).checkedOn).toBe('copy');
  });

  for (const journal of ['wal', 'delete'] as const) {
    test.skipIf(!hasPython)(`a database written by python3 with Debian's libsqlite3 (${journal}) is archived whole, checked once`, async ({ tmpDir }) => {
      const file = path.join(tmpDir, 'events.db');
      pythonDatabase(file, journal);
      const { image, pageSize } = facts(file);
      expect(zeroPages(image, pageSize).length).toBeGreaterThan(10);
      expect(suspiciousZeroPage(image, pageSize)).toBeUndefined();
      expect((await snapshotMeta(file)).checkedOn).toBe(journal === 'wal' ? 'connection' : 'copy');
      const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
      expect(manifest.databases.map((d) => [d.path, d.quickCheck])).toEqual([['events.db', 'ok']]);
      expect(rowCount(zip.files.get('events.db')!, 'events')).toBe(15000);
    });
  }

  test('the sqlite3 shell (Debian\'s libsqlite3) writes the same kind of freelist, and it is not suspicious', ({ tmpDir }) => {
    const file = path.join(tmpDir, 'shell.db');
    execFileSync('sqlite3', [file], {
      input: 'PRAGMA journal_mode=wal;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\nWITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO t (v) SELECT printf(\'row %d %s\', i, hex(randomblob(40))) FROM n;\nDELETE FROM t WHERE id < 10000;\nPRAGMA wal_checkpoint(TRUNCATE);\n',
    });
    const { image, pageSize, freelistCount } = facts(file);
    expect(freelistCount).toBeGreaterThan(10);
    expect(zeroPages(image, pageSize).length).toBeGreaterThan(10);
    expect(suspiciousZeroPage(image, pageSize)).toBeUndefined();
  });
});
