/**
 * Checks a database image (the bytes of a whole SQLite file) without writing it anywhere.
 * Used on fresh snapshots (quick_check, on the connection that took them or on a copy) and on
 * images read back from an archive (integrity_check).
 */
import Database from 'better-sqlite3';
import type { JournalMode } from '../archive/manifest.js';

export type ImageCheckKind = 'quick' | 'integrity';

export interface ImageCheckResult {
  ok: boolean;
  /** The rows SQLite returned (`['ok']` when fine), or the error that stopped the check. */
  messages: string[];
}

export interface ImageHeader {
  pageSize: number;
  /** The "in-header database size"; serialize() keeps it in step with the image. */
  pageCount: number;
  journalMode: JournalMode;
  userVersion: number;
}

const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const HEADER_BYTES = 100;
/** Byte 18 / 19: file format write / read version; 2 means WAL. */
const WRITE_VERSION_OFFSET = 18;
const READ_VERSION_OFFSET = 19;
const WAL_VERSION = 2;

function hasMagic(image: Buffer): boolean {
  return image.length >= HEADER_BYTES && image.subarray(0, MAGIC.length).equals(MAGIC);
}

/** Parses the 100-byte header; throws a plain Error (the caller knows which database it is). */
export function readImageHeader(image: Buffer): ImageHeader {
  if (image.length < HEADER_BYTES) throw new Error(`image is ${image.length} bytes, shorter than the 100-byte SQLite header`);
  if (!hasMagic(image)) throw new Error('image does not start with "SQLite format 3\\0"');
  const rawPageSize = image.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize;
  // A power of two from 512 to 65536, as SQLite itself requires.
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) throw new Error(`invalid page size ${rawPageSize} in the SQLite header`);
  return {
    pageSize,
    pageCount: image.readUInt32BE(28),
    journalMode: image[WRITE_VERSION_OFFSET] === WAL_VERSION ? 'wal' : 'rollback',
    // Signed, as PRAGMA user_version reports it.
    userVersion: image.readInt32BE(60),
  };
}

/** Runs the check on an open connection; SQLITE_CORRUPT / SQLITE_NOTADB become messages, not exceptions. */
export function checkConnection(db: Database.Database, kind: ImageCheckKind): ImageCheckResult {
  try {
    const rows = db.prepare(kind === 'quick' ? 'PRAGMA quick_check' : 'PRAGMA integrity_check').pluck().all() as unknown[];
    const messages = rows.map((row) => String(row));
    return { ok: messages.length === 1 && messages[0] === 'ok', messages };
  } catch (error) {
    return { ok: false, messages: [error instanceof Error ? error.message : String(error)] };
  }
}

/**
 * True when some page of the image is all zeros. `serialize()` zero-fills a page it cannot read,
 * so a check that read the pages itself vouches for the image only when no page is all zeros.
 */
export function hasZeroPage(image: Buffer, pageSize: number): boolean {
  for (let offset = 0; offset < image.length; offset += pageSize) {
    // Every b-tree page starts with its non-zero type byte: only other pages need the full compare.
    if (image[offset] !== 0) continue;
    const end = Math.min(offset + pageSize, image.length);
    if (image.subarray(offset, end).every((byte) => byte === 0)) return true;
  }
  return false;
}

/**
 * Runs `PRAGMA quick_check` or `PRAGMA integrity_check` on an in-memory copy of the image.
 * Never throws for a bad image: corruption that stops SQLite outright is reported in `messages`.
 */
export function checkDatabaseImage(image: Buffer, kind: ImageCheckKind): ImageCheckResult {
  // An empty buffer opens as an empty database and would pass: refuse anything without a header.
  if (!hasMagic(image)) return { ok: false, messages: ['not a SQLite database image (no "SQLite format 3" header)'] };

  // SQLite's in-memory VFS cannot open an image whose header says WAL ("unable to open database file").
  // Bytes 18/19 only name the journal mode, so mark it rollback while better-sqlite3 copies the image,
  // and put the caller's bytes back at once: the copy is made synchronously inside the constructor.
  const wal = image[WRITE_VERSION_OFFSET] === WAL_VERSION || image[READ_VERSION_OFFSET] === WAL_VERSION;
  const saved = [image[WRITE_VERSION_OFFSET] ?? 0, image[READ_VERSION_OFFSET] ?? 0] as const;
  let db: Database.Database | undefined;
  try {
    try {
      if (wal) {
        image[WRITE_VERSION_OFFSET] = 1;
        image[READ_VERSION_OFFSET] = 1;
      }
      db = new Database(image);
    } finally {
      if (wal) {
        image[WRITE_VERSION_OFFSET] = saved[0];
        image[READ_VERSION_OFFSET] = saved[1];
      }
    }
    return checkConnection(db, kind);
  } catch (error) {
    // Opening the copy failed: SQLITE_NOTADB and the like.
    return { ok: false, messages: [error instanceof Error ? error.message : String(error)] };
  } finally {
    db?.close();
  }
}
