/**
 * Writes a verified database image into a database file through SQLite itself, for restore.
 *
 * Online: the image is opened in memory and copied into the live file with SQLite's backup API
 * (`memDb.backup(livePath)`), as one write transaction of the destination. Other connections see
 * the old content or the new, never a mix, and their WAL and shared memory stay valid: SQLite
 * takes the same locks a writer would. Offline: `settleDatabase` folds a WAL or hot journal into
 * the main file and proves nobody else holds the WAL database open, so the file can be renamed over.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { readImageHeader } from './image-check.js';

/** Bytes 18 / 19 of the header: file format write / read version (1 = rollback, 2 = WAL). */
const WRITE_VERSION_OFFSET = 18;
const READ_VERSION_OFFSET = 19;
/** better-sqlite3 clamps the pages per step to this; it means "every page in one step". */
const ALL_PAGES = 0x7fffffff;
/** Between attempts to lock a busy destination: short, so a gap between readers is not missed. */
const RETRY_MIN_MS = 2;
const RETRY_MAX_MS = 25;

export interface WriteImageOptions {
  /** How long to keep trying while other connections hold the destination locked, in ms. */
  busyTimeoutMs: number;
  /** A folder on the same file system for a scratch copy when page sizes must be converted. */
  scratchDir: string;
}

export interface WriteImageResult {
  /** The destination's journal mode as SQLite reports it (`wal`, `delete`, `truncate`…); kept as it was. */
  journalMode: string;
  /** True when the image was rebuilt with the destination's page size (a WAL file cannot change it). */
  pageSizeConverted: boolean;
  /** Attempts it took to find the destination unlocked. */
  attempts: number;
}

/** An Error with SQLite's code, as better-sqlite3 throws them. */
function sqliteError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

interface LiveFacts {
  journalMode: string;
  pageSize: number;
}

/** Reads the destination's journal mode and page size; fails (SQLITE_NOTADB…) when it is not a database. */
function readLiveFacts(livePath: string, busyTimeoutMs: number): LiveFacts {
  const db = new Database(livePath, { fileMustExist: true, timeout: busyTimeoutMs });
  try {
    // A read makes SQLite check the header (and roll back a hot journal) before we trust the pragmas.
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    return {
      journalMode: String(db.pragma('journal_mode', { simple: true })),
      pageSize: Number(db.pragma('page_size', { simple: true })),
    };
  } finally {
    db.close();
  }
}

/**
 * Opens the image in memory. SQLite's memory VFS cannot open an image whose header says WAL, so
 * bytes 18/19 are set to 1 while better-sqlite3 copies the image, then put back. The copy keeps 1,
 * which is right: the backup API then keeps the destination's own journal mode.
 */
function openImage(image: Buffer): Database.Database {
  const saved = [image[WRITE_VERSION_OFFSET] ?? 0, image[READ_VERSION_OFFSET] ?? 0] as const;
  try {
    image[WRITE_VERSION_OFFSET] = 1;
    image[READ_VERSION_OFFSET] = 1;
    return new Database(image);
  } finally {
    image[WRITE_VERSION_OFFSET] = saved[0];
    image[READ_VERSION_OFFSET] = saved[1];
  }
}

/**
 * The backup API refuses a WAL destination whose page size differs (SQLITE_READONLY), and VACUUM
 * cannot change the page size of an in-memory database. So the image is written to a scratch file,
 * rebuilt there with the destination's page size (same rows, different page layout), and used as source.
 */
async function convertedSource(image: Buffer, pageSize: number, scratchDir: string): Promise<{ db: Database.Database; scratch: string }> {
  const scratch = path.join(scratchDir, `convert-${randomBytes(8).toString('hex')}.db`);
  const copy = Buffer.from(image);
  copy[WRITE_VERSION_OFFSET] = 1;
  copy[READ_VERSION_OFFSET] = 1;
  await fs.writeFile(scratch, copy, { flag: 'wx', mode: 0o600 });
  let db: Database.Database | undefined;
  try {
    db = new Database(scratch, { fileMustExist: true });
    db.pragma(`page_size = ${pageSize}`);
    db.exec('VACUUM');
    const now = Number(db.pragma('page_size', { simple: true }));
    if (now !== pageSize) throw new Error(`could not rebuild the image with page size ${pageSize} (still ${now})`);
    return { db, scratch };
  } catch (error) {
    db?.close();
    await fs.rm(scratch, { force: true });
    throw error;
  }
}

/** fsync a file if it exists; the WAL commit of the backup's own connection is not synced (synchronous=NORMAL). */
async function syncIfPresent(file: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    await handle.sync();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  } finally {
    await handle?.close();
  }
}

/**
 * Copies `image` into the existing database at `livePath` in one step of SQLite's backup API.
 * better-sqlite3's `backup()` steps once with 0 pages (which locks the destination and counts the
 * pages), then calls `progress`; returning ALL_PAGES makes the next step copy every page and
 * commit. A second `progress` call would mean more than one copying step, so it aborts instead.
 * When the first step finds the destination locked, better-sqlite3 resolves with `totalPages: 0`
 * having copied nothing (its internal connection has no busy handler), so that case is retried
 * here until `busyTimeoutMs` runs out.
 */
export async function writeImageIntoLive(livePath: string, image: Buffer, options: WriteImageOptions): Promise<WriteImageResult> {
  const header = readImageHeader(image);
  const live = readLiveFacts(livePath, options.busyTimeoutMs);
  const wal = live.journalMode === 'wal';
  let source: { db: Database.Database; scratch: string | null } | undefined;
  try {
    source = wal && header.pageSize !== live.pageSize ? await convertedSource(image, live.pageSize, options.scratchDir) : { db: openImage(image), scratch: null };
    const deadline = Date.now() + options.busyTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      // backup() would create a missing file, page by page and not atomically: never let it.
      await fs.access(livePath).catch((error: unknown) => {
        throw sqliteError('SQLITE_CANTOPEN', `${livePath} disappeared during the restore: ${(error as Error).message}`);
      });
      let steps = 0;
      const result = await source.db.backup(livePath, {
        progress: () => {
          steps += 1;
          if (steps > 1) throw new Error('the backup API needed more than one step; aborted so the copy stays one transaction');
          return ALL_PAGES;
        },
      });
      if (result.totalPages > 0 && result.remainingPages === 0 && steps === 1) {
        if (wal) {
          await syncIfPresent(`${livePath}-wal`);
          await syncIfPresent(path.dirname(livePath));
        }
        return { journalMode: live.journalMode, pageSizeConverted: source.scratch !== null, attempts: attempt };
      }
      if (Date.now() >= deadline) {
        throw sqliteError('SQLITE_BUSY', `${livePath} stayed locked by other connections for ${options.busyTimeoutMs} ms (option busyTimeoutMs)`);
      }
      await sleep(RETRY_MIN_MS + Math.floor(Math.random() * Math.min(RETRY_MAX_MS, attempt * RETRY_MIN_MS)));
    }
  } finally {
    source?.db.close();
    if (source?.scratch) await fs.rm(source.scratch, { force: true });
  }
}

export interface SettleResult {
  journalMode: string;
}

/**
 * Offline mode, before a database file is renamed over or removed: makes the main file hold every
 * committed transaction (rolls back a hot journal, checkpoints and truncates a WAL), and proves no
 * other connection has a WAL database open (then SQLite cannot delete the WAL on close). Throws an
 * Error with code `DBZIP_IN_USE` when another process still uses it. A rollback-journal database
 * held open by an idle connection cannot be detected; offline mode requires the application stopped.
 */
export function settleDatabase(dbPath: string, busyTimeoutMs: number): SettleResult {
  const db = new Database(dbPath, { fileMustExist: true, timeout: busyTimeoutMs });
  let journalMode: string;
  try {
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    journalMode = String(db.pragma('journal_mode', { simple: true }));
    if (journalMode === 'wal') {
      const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      if (row !== undefined && row.busy !== 0) throw sqliteError('DBZIP_IN_USE', `${dbPath} is in use: another connection kept the WAL checkpoint from finishing`);
    } else {
      // Waits out (up to the timeout) and proves the absence of any other reader or writer right now.
      db.exec('BEGIN EXCLUSIVE');
      db.exec('COMMIT');
    }
  } finally {
    db.close();
  }
  return { journalMode };
}

/** The last connection to close a WAL database deletes its `-wal`; one left behind means another holder. */
export async function assertSettled(dbPath: string, journalMode: string): Promise<void> {
  if (journalMode !== 'wal') return;
  const stat = await fs.stat(`${dbPath}-wal`).catch(() => null);
  if (stat !== null) throw sqliteError('DBZIP_IN_USE', `${dbPath} is open in another process (its -wal file is still there after closing)`);
}

/** Online removal: fold the WAL into the main file as far as other connections allow, before unlinking. */
export function checkpointQuietly(dbPath: string, busyTimeoutMs: number): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { fileMustExist: true, timeout: busyTimeoutMs });
    if (db.pragma('journal_mode', { simple: true }) === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    // The file is about to be removed; a database SQLite cannot open has nothing to fold in.
  } finally {
    db?.close();
  }
}
