/**
 * The ceiling a backup is compared with, and the cost of each stage of a snapshot, measured
 * on the same database files in the same run (run in a bench child, as plain JavaScript).
 *
 * - read: every database file read raw, 1 MiB at a time (no SQLite, no snapshot);
 * - crc32: zlib.crc32 over the same bytes already in memory;
 * - copy: read + write the same bytes to one output file (the page cache, like the backups);
 * - copy+fsync: the same, made durable at the end, as the CLI does before its rename.
 *
 * Stages take each database the way src/snapshot/requests.ts does (serialize inside a read
 * transaction; quick_check in that transaction for WAL, on an in-memory copy for a rollback journal —
 * src/ checks a rollback-journal database of 16 MiB or more alongside serialize() in a second worker, so
 * there the check's cost overlaps the read; sha256; crc32) and deflate it, one step at a time.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { crc32, deflateRaw } from 'node:zlib';
import Database from 'better-sqlite3';

const CHUNK = 1024 * 1024;

export interface CeilingResult {
  bytes: number;
  readMs: number;
  crc32Ms: number;
  copyMs: number;
  copyFsyncMs: number;
}

function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

function readAll(files: readonly string[], each: (chunk: Buffer) => void): number {
  const buffer = Buffer.allocUnsafe(CHUNK);
  let total = 0;
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      for (;;) {
        const n = fs.readSync(fd, buffer, 0, CHUNK, null);
        if (n === 0) break;
        total += n;
        each(n === CHUNK ? buffer : buffer.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return total;
}

function copy(files: readonly string[], outPath: string, fsync: boolean): number {
  const out = fs.openSync(outPath, 'w');
  try {
    return timed(() => {
      readAll(files, (chunk) => fs.writeSync(out, chunk));
      if (fsync) fs.fsyncSync(out);
    });
  } finally {
    fs.closeSync(out);
    fs.rmSync(outPath, { force: true });
  }
}

export function measureCeiling(files: readonly string[], outPath: string): CeilingResult {
  let bytes = 0;
  const readMs = timed(() => {
    bytes = readAll(files, () => {});
  });
  // CRC alone: files are read whole first, only the crc32 calls are timed.
  let crc32Ms = 0;
  for (const file of files) {
    const data = fs.readFileSync(file);
    crc32Ms += timed(() => {
      let crc = 0;
      for (let i = 0; i < data.length; i += CHUNK) crc = crc32(data.subarray(i, i + CHUNK), crc);
    });
  }
  return { bytes, readMs, crc32Ms, copyMs: copy(files, outPath, false), copyFsyncMs: copy(files, outPath, true) };
}

export interface StageResult {
  bytes: number;
  /** Summed over every database, ms. */
  serializeMs: number;
  /** new Database(image) (a full copy) + PRAGMA quick_check, for every database. */
  quickCheckMs: number;
  /** quick_check's own cost: inside the read transaction for a WAL database, on a copy for a rollback-journal one (src/ overlaps it with serialize from 16 MiB). */
  checkMs: number;
  /** Alternatives src/ could take, measured on the same files. */
  serializeMmapMs: number;
  quickCheckSourceMs: number;
  sha256Ms: number;
  crc32Ms: number;
  /** level -> ms of raw deflate of every image (one zlib stream each, on the thread pool). */
  deflateMs: Record<string, number>;
  deflatedBytes: Record<string, number>;
  /** Per database, so the largest one's share is visible. */
  perDatabase: { path: string; bytes: number; serializeMs: number; serializeMmapMs: number; quickCheckMs: number; quickCheckSourceMs: number; sha256Ms: number }[];
}

const deflateRawAsync = promisify(deflateRaw);

function serialize(file: string, mmap: boolean): Buffer {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    // mmap: pages are copied straight from the page cache instead of one read() each through SQLite's cache.
    if (mmap) db.pragma(`mmap_size = ${fs.statSync(file).size + 1024 * 1024}`);
    db.exec('BEGIN');
    const image = db.serialize();
    db.exec('COMMIT');
    return image;
  } finally {
    db.close();
  }
}

/** As src/snapshot/image-check.ts: the in-memory VFS refuses a WAL header, so mark it rollback for the copy. */
function quickCheck(image: Buffer): void {
  const saved = [image[18] ?? 1, image[19] ?? 1] as const;
  image[18] = 1;
  image[19] = 1;
  const db = new Database(image);
  image[18] = saved[0];
  image[19] = saved[1];
  try {
    expectOk(db.prepare('PRAGMA quick_check').pluck().all());
  } finally {
    db.close();
  }
}

function expectOk(rows: unknown[]): void {
  if (rows.length !== 1 || rows[0] !== 'ok') throw new Error(`quick_check: ${rows.join('; ')}`);
}

/** As src/ checks a WAL snapshot: quick_check on the connection, inside the read transaction. */
function quickCheckSource(file: string): void {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.exec('BEGIN');
    expectOk(db.prepare('PRAGMA quick_check').pluck().all());
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

export async function measureStages(files: readonly string[], levels: readonly number[]): Promise<StageResult> {
  const result: StageResult = {
    bytes: 0,
    serializeMs: 0,
    quickCheckMs: 0,
    checkMs: 0,
    serializeMmapMs: 0,
    quickCheckSourceMs: 0,
    sha256Ms: 0,
    crc32Ms: 0,
    deflateMs: {},
    deflatedBytes: {},
    perDatabase: [],
  };
  for (const file of files) {
    const serializeMmapMs = timed(() => serialize(file, true));
    const quickCheckSourceMs = timed(() => quickCheckSource(file));
    let image: Buffer = Buffer.alloc(0);
    const serializeMs = timed(() => {
      image = serialize(file, false);
    });
    const quickCheckMs = timed(() => quickCheck(image));
    const sha256Ms = timed(() => createHash('sha256').update(image).digest());
    result.crc32Ms += timed(() => crc32(image));
    result.bytes += image.length;
    result.serializeMs += serializeMs;
    result.quickCheckMs += quickCheckMs;
    result.checkMs += image[18] === 2 ? quickCheckSourceMs : quickCheckMs; // byte 18 = 2: WAL
    result.serializeMmapMs += serializeMmapMs;
    result.quickCheckSourceMs += quickCheckSourceMs;
    result.sha256Ms += sha256Ms;
    result.perDatabase.push({ path: file, bytes: image.length, serializeMs, serializeMmapMs, quickCheckMs, quickCheckSourceMs, sha256Ms });
    for (const level of levels) {
      const start = performance.now();
      const out = await deflateRawAsync(image, { level });
      result.deflateMs[level] = (result.deflateMs[level] ?? 0) + performance.now() - start;
      result.deflatedBytes[level] = (result.deflatedBytes[level] ?? 0) + out.length;
    }
  }
  return result;
}
