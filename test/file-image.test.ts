/**
 * A rollback-journal database read from its file under the read lock (src/snapshot/file-image.ts)
 * instead of through serialize(): the same bytes, the same moment, and no lock of this process lost.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, onTestFinished } from 'vitest';
import { makeBigDatabase, makeDatabase, readImage } from './helpers/backup.js';
import { createBigLedgerDatabase, ledgerOfImage, startWriter } from './helpers/writer.js';
import { test } from './helpers/tmp.js';
import { SnapshotSession, type Snapshot } from '../src/snapshot/session.js';
import type { CheckMode } from '../src/options.js';

function session(): SnapshotSession {
  const s = new SnapshotSession();
  onTestFinished(() => s.close());
  return s;
}

async function take(s: SnapshotSession, file: string, check: CheckMode, alongside = false): Promise<Snapshot> {
  if (alongside) await s.prepareChecker();
  const outcome = await s.snapshot(file, 2 ** 31, 1_000, check, alongside);
  if (!outcome.ok) throw new Error(`snapshot failed: ${outcome.failure.reason}`);
  return outcome.snapshot;
}

function serialized(file: string): Buffer {
  const db = new Database(file, { readonly: true });
  try {
    return db.serialize();
  } finally {
    db.close();
  }
}

/** Tries one commit from another process without waiting for a lock: 'committed' or SQLite's error. */
function commitFromAnotherProcess(file: string): string {
  const script = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0)
try:
    db.execute("insert into t (v) values ('from python')")
    db.commit()
    print('committed')
except sqlite3.OperationalError as e:
    print(e)
`;
  return execFileSync('python3', ['-c', script, file]).toString().trim();
}

describe('a rollback-journal database is read from its file', () => {
  test('unchecked and checked alongside, the image is byte-identical to serialize() and its hash is the image\'s', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'big.db');
    makeBigDatabase(file, 20, 'delete');
    const expected = serialized(file);
    const s = session();
    for (const [check, alongside] of [['none', false], ['quick', true]] as const) {
      const snapshot = await take(s, file, check, alongside);
      expect(snapshot).toMatchObject({ readFrom: 'file', checkedOn: check === 'none' ? 'none' : 'alongside', bytes: expected.length });
      const image = await readImage(snapshot);
      expect(image.equals(expected)).toBe(true);
      expect(await snapshot.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
    }
  });

  test('a WAL database, and a small rollback-journal one checked on a copy, are serialize()d', async ({ tmpDir }) => {
    const wal = path.join(tmpDir, 'wal.db');
    const small = path.join(tmpDir, 'small.db');
    makeDatabase(wal, { journal: 'wal', rows: 500 });
    makeDatabase(small, { journal: 'delete', rows: 500 });
    const s = session();
    expect(await take(s, wal, 'none')).toMatchObject({ readFrom: 'serialize', journalMode: 'wal' });
    await readImage(await take(s, wal, 'none'));
    const checked = await take(s, small, 'quick');
    expect(checked).toMatchObject({ readFrom: 'serialize', checkedOn: 'copy' });
    expect((await readImage(checked)).equals(serialized(small))).toBe(true);
  });

  test.skipIf(process.platform !== 'linux')('reading the file keeps every lock this process holds on it: a host connection\'s read transaction still blocks another process\'s commit', async ({ tmpDir }) => {
    // Closing any descriptor of a file drops all of the process's POSIX locks on it, SQLite's included.
    const file = path.join(tmpDir, 'host.db');
    makeBigDatabase(file, 2, 'delete');
    const host = new Database(file);
    onTestFinished(() => void host.close());
    host.exec('BEGIN');
    host.prepare('SELECT count(*) FROM t').get();
    expect(commitFromAnotherProcess(file)).toBe('database is locked');
    const s = session();
    for (const [check, alongside] of [['none', false], ['quick', true]] as const) {
      const snapshot = await take(s, file, check, alongside);
      expect(snapshot.readFrom).toBe('file');
      await readImage(snapshot);
      expect(commitFromAnotherProcess(file), `after a snapshot with check ${check}`).toBe('database is locked');
    }
    host.exec('COMMIT');
    expect(commitFromAnotherProcess(file)).toBe('committed');
  });

  test('under a rollback-journal writer in another process, every unchecked image is whole and consistent', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'ledger.db');
    // 20 MiB, so a read takes long enough for a commit to land in it were the lock lost.
    createBigLedgerDatabase(file, 'delete', 20);
    const writer = await startWriter({ dbPath: file, journal: 'delete', blobBytes: 100 });
    const counters = new Set<number>();
    try {
      const s = session();
      for (let run = 0; run < 8; run++) {
        const snapshot = await take(s, file, 'none');
        expect(snapshot.readFrom).toBe('file');
        const check = ledgerOfImage(await readImage(snapshot));
        expect(check, `run ${run}`).toMatchObject({ sum: 0, integrity: 'ok', ok: true });
        counters.add(check.counter);
      }
    } finally {
      const stats = await writer.stop();
      expect(stats.errorMessages).toEqual([]);
    }
    expect(counters.size).toBeGreaterThan(1);
  });

  test('a database replaced after it was pinned still gives the pinned moment\'s image', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'app.db');
    const replacement = path.join(tmpDir, 'replacement.db');
    makeBigDatabase(file, 2, 'delete');
    makeBigDatabase(replacement, 3, 'delete');
    const pinnedImage = serialized(file);
    const s = session();
    const pin = await s.pin([file], 1_000);
    expect(pin.pinned).toHaveLength(1);
    fs.renameSync(replacement, file);
    const snapshot = await take(s, file, 'none');
    expect(snapshot.pinned).toBe(true);
    expect((await readImage(snapshot)).equals(pinnedImage)).toBe(true);
  });

  test('past 1 GiB: the lock-byte page comes out all zeros whatever the file holds there, as serialize() gives it', { timeout: 60_000 }, async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'huge.db');
    const db = new Database(file);
    db.pragma('page_size = 65536');
    db.pragma('journal_mode = delete');
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('one')");
    db.close();
    // A sparse file of 16,400 pages of 64 KiB (past 1 GiB) whose header says so; of the pages past the
    // first, only the lock-byte page is written, with junk SQLite never reads.
    const lockByte = 2 ** 30;
    const pages = 16_400;
    const fd = fs.openSync(file, 'r+');
    const count = Buffer.alloc(4);
    count.writeUInt32BE(pages);
    fs.writeSync(fd, count, 0, 4, 28);
    fs.ftruncateSync(fd, pages * 65536);
    fs.writeSync(fd, Buffer.alloc(65536, 0xa5), 0, 65536, lockByte);
    fs.closeSync(fd);
    const expected = serialized(file);
    expect(expected.subarray(lockByte, lockByte + 65536).equals(Buffer.alloc(65536))).toBe(true);
    const snapshot = await take(session(), file, 'none');
    expect(snapshot).toMatchObject({ readFrom: 'file', pageCount: pages, bytes: expected.length });
    // Chunk by chunk: one more 1 GiB buffer would make this test slow.
    let offset = 0;
    const differ: number[] = [];
    for await (const chunk of snapshot.chunks()) {
      if (!chunk.equals(expected.subarray(offset, offset + chunk.length))) differ.push(offset);
      offset += chunk.length;
    }
    expect({ offset, differ }).toEqual({ offset: expected.length, differ: [] });
  });
});
