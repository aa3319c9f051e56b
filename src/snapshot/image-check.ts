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

/** Header fields that locate the freelist, and the bytes reserved at the end of every page. */
const RESERVED_BYTES_OFFSET = 20;
const FREELIST_TRUNK_OFFSET = 32;
const FREELIST_COUNT_OFFSET = 36;
/** SQLite never writes the page that holds this byte (its file locks live there): in images over 1 GiB it is all zeros. */
const LOCK_BYTE_OFFSET = 1_073_741_824;

/**
 * The image's free pages (trunk and leaf), read from the freelist the header points at (offset 32: the
 * first trunk page; offset 36: how many free pages there are; each trunk: the next trunk, a leaf count,
 * the leaf page numbers). `undefined` when the freelist does not add up: a page number outside the image
 * or seen twice, a trunk listing more leaves than it can hold, or a total other than the header's.
 */
export function freePages(image: Buffer, pageSize: number): Set<number> | undefined {
  if (image.length < HEADER_BYTES) return undefined;
  const pageCount = Math.floor(image.length / pageSize);
  const total = image.readUInt32BE(FREELIST_COUNT_OFFSET);
  const maxLeaves = (pageSize - (image[RESERVED_BYTES_OFFSET] ?? 0)) / 4 - 2;
  const pages = new Set<number>();
  const valid = (page: number) => page >= 2 && page <= pageCount && !pages.has(page);
  for (let trunk = image.readUInt32BE(FREELIST_TRUNK_OFFSET); trunk !== 0; ) {
    if (!valid(trunk)) return undefined;
    pages.add(trunk);
    const offset = (trunk - 1) * pageSize;
    const leaves = image.readUInt32BE(offset + 4);
    if (leaves > maxLeaves || pages.size + leaves > total) return undefined;
    for (let i = 0; i < leaves; i++) {
      const leaf = image.readUInt32BE(offset + 8 + 4 * i);
      if (!valid(leaf)) return undefined;
      pages.add(leaf);
    }
    trunk = image.readUInt32BE(offset);
  }
  return pages.size === total ? pages : undefined;
}

/**
 * The first all-zero page (1-based) that should not be all zeros, or `undefined`. `serialize()`
 * zero-fills a page it cannot read and still succeeds, so a check that read the pages itself vouches
 * for the image only when no other page is all zeros. Free pages may be (`secure_delete`, the default
 * of Debian's libsqlite3, zeroes every page it frees), and so is the lock-byte page. With a freelist
 * that does not add up, every all-zero page is suspect.
 */
export function suspiciousZeroPage(image: Buffer, pageSize: number): number | undefined {
  const zeros = Buffer.alloc(pageSize);
  const lockBytePage = image.length > LOCK_BYTE_OFFSET ? Math.floor(LOCK_BYTE_OFFSET / pageSize) + 1 : 0;
  let free: Set<number> | undefined | null = null;
  for (let offset = 0, page = 1; offset < image.length; offset += pageSize, page++) {
    // Every b-tree page starts with its non-zero type byte: only other pages can be all zeros.
    if (image[offset] !== 0 || page === lockBytePage) continue;
    // Read once, only for an image that has a candidate.
    if (free === null) free = freePages(image, pageSize);
    if (free?.has(page) === true) continue;
    const end = Math.min(offset + pageSize, image.length);
    if (image.subarray(offset, end).equals(zeros.subarray(0, end - offset))) return page;
  }
  return undefined;
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
