/**
 * The manifest is the last entry of every dbzip archive (`manifest.json`).
 * Its shape is versioned by `formatVersion`; readers refuse versions they do not know.
 */

export const MANIFEST_NAME = 'manifest.json';
export const VERSION_NAME = 'VERSION';
/** `VERSION` holds one version string: larger is not ours, in a data directory or in an archive. */
export const MAX_VERSION_BYTES = 64 * 1024;
export const MANIFEST_FORMAT = 'dbzip';
export const MANIFEST_FORMAT_VERSION = 1;

export type JournalMode = 'wal' | 'rollback';

/** Why a file that looked like a database was not archived. */
export type SkipCode =
  | 'NOT_SQLITE' // no SQLite header (includes empty files)
  | 'NOT_REGULAR_FILE' // a folder, socket, fifo… with a database ending
  | 'SYMLINK' // links are never followed, inside or outside the data dir
  | 'UNREADABLE' // permission denied or I/O error while probing
  | 'BAD_NAME' // not valid UTF-8, or holds a backslash: unsafe as a zip entry name
  | 'EXCLUDED' // left out by the `databases` option
  | 'SNAPSHOT_FAILED'; // opened as SQLite but could not be snapshotted (locked, corrupt…)

export interface SkippedEntry {
  /** Path relative to the data directory, `/`-separated. */
  path: string;
  code: SkipCode;
  reason: string;
}

export interface DatabaseEntry {
  /** Entry name in the zip = path relative to the data directory. */
  path: string;
  bytes: number;
  sha256: string;
  /** CRC-32 of the bytes, 8 lowercase hex digits (fixed width keeps the manifest's length predictable). */
  crc32: string;
  pageSize: number;
  pageCount: number;
  journalMode: JournalMode;
  userVersion: number;
  /**
   * `'ok'`: `PRAGMA quick_check` of the snapshot passed (a failing database is skipped, never shipped).
   * `'skipped'`: the backup was made with `check: 'none'` and this image was not checked.
   */
  quickCheck: 'ok' | 'skipped';
  /** True when this database was fixed at the shared moment (see `pin`). */
  pinned: boolean;
}

export interface AssetEntry {
  /** Entry name in the zip, starting with the asset folder's name. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface PinInfo {
  mode: 'none' | 'all' | 'all-blocking';
  /** Databases fixed together, by path, in the order they were pinned. */
  databases: string[];
  /** Milliseconds between fixing the first and the last pinned database; null when not measured (reproducible mode). */
  windowMs: number | null;
  /**
   * Databases the mode would pin that were read each at its own moment instead, because pinning them
   * too would pass the process's file-descriptor budget; absent when every one was pinned.
   */
  notPinned?: { databases: string[]; reason: string };
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_FORMAT_VERSION;
  createdAt: string;
  dbzipVersion: string;
  sqliteVersion: string;
  /** The content of the `VERSION` entry. */
  appVersion: string;
  /** 0 = stored, 1–9 = deflate level. */
  level: number;
  pin: PinInfo;
  databases: DatabaseEntry[];
  assets: AssetEntry[];
  skipped: SkippedEntry[];
}

/** Serialised with stable key order and a trailing newline, so the same data gives the same bytes. */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}
