import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { createBackup } from '../../src/backup.js';
import type { Manifest } from '../../src/archive/manifest.js';
import type { BackupOptions } from '../../src/options.js';
import type { Snapshot } from '../../src/snapshot/session.js';
import { openSnapshotBuffer } from './writer.js';
import { readZip, type ReadZip } from './zip.js';

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs a whole backup in memory and reads the zip back with yauzl. */
export async function backupToZip(options: BackupOptions): Promise<{ bytes: Buffer; zip: ReadZip; manifest: Manifest; size: number | null }> {
  const backup = await createBackup(options);
  const bytes = await collect(backup.stream);
  const manifest = await backup.manifest;
  return { bytes, zip: await readZip(bytes), manifest, size: backup.size };
}

/** A small database with one table; `journal` sets its journal mode. */
export function makeDatabase(file: string, { journal = 'wal', rows = 10, userVersion = 0 }: { journal?: 'wal' | 'delete'; rows?: number; userVersion?: number } = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma(`journal_mode = ${journal}`);
    db.pragma(`user_version = ${userVersion}`);
    db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(`row ${i}`);
    })();
  } finally {
    db.close();
  }
}

/**
 * A database of about `megabytes` MB of random blobs (incompressible, so the transfer
 * takes long enough to stop half-way), plus a table `t` with one row.
 */
export function makeBigDatabase(file: string, megabytes: number, journal: 'wal' | 'delete' = 'wal'): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma(`journal_mode = ${journal}`);
    db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB); CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const insert = db.prepare('INSERT INTO blobs (data) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < megabytes * 4; i++) insert.run(randomBytes(256 * 1024));
    })();
    db.prepare('INSERT INTO t (v) VALUES (?)').run('first');
    if (journal === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** Opens an image from a zip in memory and returns the number of rows of table t. */
/** Points the first cell of a table leaf page past the end of its page: quick_check reports it, opening still works. */
export function breakLeafPage(file: string): void {
  const bytes = fs.readFileSync(file);
  const pageSize = bytes.readUInt16BE(16);
  const pages = bytes.length / pageSize;
  for (let page = Math.floor(pages / 2); page < pages; page++) {
    const at = page * pageSize;
    if (bytes[at] !== 0x0d) continue; // 13: table b-tree leaf
    bytes.writeUInt16BE(0xfff0, at + 8);
    fs.writeFileSync(file, bytes);
    return;
  }
  throw new Error(`${file}: no table leaf page in its second half`);
}

export function countRows(image: Buffer): number {
  const db = openSnapshotBuffer(image);
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Regular files open in this process right now (Linux), as real paths. */
export function openFiles(): string[] {
  const files: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('/')) files.push(target);
    } catch {
      // the fd closed while we listed
    }
  }
  return files;
}

/** Every path under `dir`, relative, sorted. */
export function listTree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map((p) => p.split(path.sep).join('/')).sort();
}

/** A snapshot's image, read whole from its chunks. */
export function readImage(snapshot: Snapshot): Promise<Buffer> {
  return collect(Readable.from(snapshot.chunks()));
}
