/**
 * What a snapshot worker does for each request: in a worker thread (snapshot-worker.ts), one backup at a
 * time (worker-pool.ts reuses it for the next), or on the calling thread for a small data dir
 * (in-process-link.ts). Holds every SQLite handle of that backup and closes each as soon as its database
 * is read. Six requests:
 * - probe: is it SQLite, which journal mode, how big (no lock held after it returns);
 * - pin: open a read transaction on several databases back to back (one shared moment);
 * - snapshot: one consistent image, read under one read transaction (`serialize()`, or for a
 *   rollback-journal database not checked on a copy, the file itself: file-image.ts), passed by
 *   `PRAGMA quick_check`; the worker keeps it;
 * - check: in a second worker, quick_check a rollback-journal database while the first serializes it
 *   (handshake.ts proves both saw the same database);
 * - read: the next chunk of that image, hashed on the way out (unless hashed while a checker ran) and sent by transfer;
 * - reset: the backup is over (done or aborted): close its handles, free its image.
 */
import { createHash, type Hash } from 'node:crypto';
import Database from 'better-sqlite3';
import { COLLECT_FROM_BYTES, takeGarbageCollector } from '../collect-garbage.js';
import { classify } from './classify.js';
import { fileIdentity, readFileImage, sameFile, type FileIdentity } from './file-image.js';
import { DESCRIPTORS_PER_PIN, pinBudget } from './descriptors.js';
import { announceHeld, checkOver, checkRunning, closeHandshake, join, waitForReader } from './handshake.js';
import { checkConnection, checkDatabaseImage, readImageHeader, suspiciousZeroPage, type ImageCheckResult } from './image-check.js';
import type { CheckMode } from '../options.js';
import { CHUNK_BYTES, type CheckedOn, type CheckOutcome, type DatabaseFacts, type PinResult, type ProbeResult, type Request, type Response, type SnapshotFailure, type SnapshotMeta } from './protocol.js';

type Handle = Database.Database;

/** A connection and the file it opened (when the path named the same file before and after), so that file can be read under its lock. */
interface Opened {
  db: Handle;
  identity: FileIdentity | undefined;
}

/** Read transactions opened by `pin`, released by `snapshot` (or when the worker ends). */
const pinned = new Map<string, Opened>();

/**
 * The last snapshot, until its last chunk is read: the only copy of it anywhere. Either SQLite's memory
 * (serialize(), copied out a chunk at a time) or pieces of our own (readFileImage(), transferred as they are).
 */
let current: { image: Buffer | Uint8Array[]; bytes: number; offset: number; hash: Hash; hashedBytes: number } | undefined;

/**
 * serialize()'s image is SQLite memory, freed only when V8 collects its Buffer. V8 would do that
 * lazily, after the next image is read, so two images would share RAM: collect as soon as one is
 * let go. Taken at the first large image (the flag it flips is process-wide: not on import).
 */
let collectGarbage: (() => void) | undefined;

let collectionDue = false;

function release(): void {
  if (current === undefined) return;
  if (current.bytes >= COLLECT_FROM_BYTES) collectionDue = true;
  current = undefined;
  // Not now: the caller's own variables may still point into the image until it returns.
  setImmediate(collectReleased);
}

function collectReleased(): void {
  if (!collectionDue) return;
  collectionDue = false;
  collectGarbage ??= takeGarbageCollector();
  collectGarbage();
}

function openReadOnly(path: string, busyTimeoutMs: number): Handle {
  // readonly: never checkpoints, never changes the journal mode, never deletes a -wal on close.
  return new Database(path, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs });
}

/** Opens and begins a read transaction, which starts (takes its lock) at the first read. */
function openForRead(path: string, busyTimeoutMs: number): Opened {
  const before = fileIdentity(path);
  const db = openReadOnly(path, busyTimeoutMs);
  const after = fileIdentity(path);
  try {
    db.exec('BEGIN');
  } catch (error) {
    db.close();
    throw error;
  }
  return { db, identity: sameFile(before, after) ? after : undefined };
}

/** Reads the facts inside the caller's read transaction, so they describe the same moment. */
function facts(db: Handle): DatabaseFacts {
  return {
    pageSize: db.pragma('page_size', { simple: true }) as number,
    pageCount: db.pragma('page_count', { simple: true }) as number,
    journalMode: db.pragma('journal_mode', { simple: true }) === 'wal' ? 'wal' : 'rollback',
    userVersion: db.pragma('user_version', { simple: true }) as number,
  };
}

function probe(paths: string[], busyTimeoutMs: number): ProbeResult[] {
  return paths.map((path) => {
    let db: Handle | undefined;
    try {
      db = openReadOnly(path, busyTimeoutMs);
      db.exec('BEGIN');
      const result = facts(db);
      db.exec('COMMIT');
      return { ok: true, ...result };
    } catch (error) {
      return { ok: false, ...classify(error, path) };
    } finally {
      db?.close();
    }
  });
}

/**
 * Pins back to back, within the descriptor budget (see descriptors.ts): databases past it, or past the
 * point where the process runs out of descriptors anyway, are left unpinned, not skipped.
 */
function pin(paths: string[], busyTimeoutMs: number): PinResult {
  const result: PinResult = { pinned: [], failed: [], unpinned: null, windowMs: 0 };
  const budget = pinBudget();
  const start = performance.now();
  for (const [i, path] of paths.entries()) {
    if (result.pinned.length >= budget.pins) {
      const limit = budget.limit === null ? 'an unknown limit (no /proc)' : `a limit of ${budget.limit} (ulimit -n) with ${budget.open} open`;
      result.unpinned = {
        paths: paths.slice(i),
        reason: `pinning all ${paths.length} databases would hold up to ${paths.length * DESCRIPTORS_PER_PIN} file descriptors; with ${limit} and ${budget.reserve} kept free, ${budget.pins} were pinned and the others read each at its own moment (raise ulimit -n to pin them all)`,
      };
      break;
    }
    let db: Handle | undefined;
    try {
      const opened = openForRead(path, busyTimeoutMs);
      db = opened.db;
      // The first read starts the read transaction: from here on this handle sees one moment.
      const read = facts(db);
      pinned.set(path, opened);
      result.pinned.push({ path, ...read });
    } catch (error) {
      // Before closing: running out of descriptors is recognised by having none left.
      const failure = classify(error, path);
      db?.close();
      if (failure.code === 'OUT_OF_DESCRIPTORS') {
        result.unpinned = { paths: paths.slice(i), reason: `the process ran out of file descriptors (EMFILE) after pinning ${result.pinned.length} databases; the others were read each at its own moment (raise ulimit -n to pin them all)` };
        break;
      }
      result.failed.push({ path, code: failure.code, reason: failure.reason });
    }
  }
  result.windowMs = performance.now() - start;
  return result;
}

/**
 * Rollback-journal images up to this size, when no checker joins, are checked on a copy after the read
 * lock is released (the writer waits only for the read); larger ones inside the read transaction, so a
 * backup never holds two copies of a large database (peak memory near 1.3 × the largest database + 100 MB).
 */
const COPY_CHECK_MAX_BYTES = 64 * 1024 * 1024;

/**
 * How long a reader holding its lock waits, after its read, for a checker that has not joined yet. A
 * file read of a 16 MiB database can be over before the checker's thread gets the CPU under load; the
 * fallback, quick_check on the reader's own connection, would hold the lock longer than this.
 */
const JOIN_GRACE_MS = 20;

type SnapshotOutcome = { ok: true; meta: SnapshotMeta } | { ok: false; failure: SnapshotFailure };

function snapshot(path: string, maxBytes: number, busyTimeoutMs: number, checkMode: CheckMode, handshake: SharedArrayBuffer | undefined): SnapshotOutcome {
  // An image nobody finished reading is dropped, and any released image freed, before the next is read.
  release();
  collectReleased();
  const pinnedHandle = pinned.get(path);
  pinned.delete(path);
  let image: Buffer | Uint8Array[];
  let read: DatabaseFacts;
  let check: ImageCheckResult | undefined;
  let checkedAlongside = false;
  let db: Handle | undefined = pinnedHandle?.db;
  try {
    const opened = pinnedHandle ?? openForRead(path, busyTimeoutMs);
    db = opened.db;
    read = facts(db);
    const bytes = read.pageSize * read.pageCount;
    if (bytes > maxBytes) {
      return { ok: false, failure: { code: 'DATABASE_TOO_LARGE', reason: `${bytes} bytes`, bytes } };
    }
    // Our shared lock is held from the first read above: a checker that takes its own now sees this image.
    if (handshake !== undefined && read.journalMode === 'rollback') announceHeld(handshake);
    // The file itself, unless the image is to be checked on a copy (that needs one buffer): serialize()'s
    // image plus the copies it is sent in peaked at 376-380 MiB on the 300 MiB set, the file read's at 305.
    const fromFile = read.journalMode === 'rollback' && (checkMode === 'none' || handshake !== undefined) ? readFileImage(opened.identity, bytes, read.pageSize) : undefined;
    image = fromFile ?? db.serialize();
    if (handshake !== undefined) checkedAlongside = closeHandshake(handshake, JOIN_GRACE_MS);
    // A WAL reader blocks no writer: check the snapshot in its own read transaction, with no copy.
    // In rollback-journal mode this read lock blocks every commit: a small image is checked on a copy
    // once the lock is released; a large one (or one read from the file) here, as a copy would double the
    // memory a backup needs.
    if (checkMode === 'quick' && !checkedAlongside && (read.journalMode === 'wal' || fromFile !== undefined || bytes > COPY_CHECK_MAX_BYTES)) check = checkConnection(db, 'quick');
    db.exec('COMMIT');
  } catch (error) {
    return { ok: false, failure: classify(error, path) };
  } finally {
    // On every path out, so a checker waiting for this read never waits for nothing.
    if (handshake !== undefined) closeHandshake(handshake);
    db?.close();
  }
  const bytes = Array.isArray(image) ? image.reduce((sum, piece) => sum + piece.length, 0) : image.length;
  if (bytes !== read.pageSize * read.pageCount) {
    return { ok: false, failure: { code: 'SNAPSHOT_FAILED', reason: `image is ${bytes} bytes, expected page_count × page_size = ${read.pageSize * read.pageCount}` } };
  }
  // serialize() zero-fills a page it cannot read and still succeeds. The check above (or alongside) read
  // every page itself, so it vouches for the image unless a page that is not free came out all zeros:
  // then check the image itself. (A file read fills nothing in: its pages are the ones the check read.)
  // check: 'none' ships the image as read; the manifest says it was not checked.
  let checkedOn: CheckedOn = checkMode === 'none' ? 'none' : checkedAlongside ? 'alongside' : 'connection';
  if (checkMode === 'quick' && !Array.isArray(image) && ((check === undefined && !checkedAlongside) || ((check?.ok ?? true) && suspiciousZeroPage(image, read.pageSize) !== undefined))) {
    check = checkDatabaseImage(image, 'quick');
    checkedOn = 'copy';
  }
  if (check !== undefined && !check.ok) {
    return { ok: false, failure: { code: 'SNAPSHOT_CORRUPT', reason: `quick_check of the snapshot failed: ${check.messages.slice(0, 5).join('; ')}` } };
  }
  const first = Array.isArray(image) ? image[0]! : image;
  const header = readImageHeader(Buffer.from(first.buffer, first.byteOffset, first.byteLength));
  current = { image, bytes, offset: 0, hash: createHash('sha256'), hashedBytes: 0 };
  // The image waits for the checker's verdict anyway: hash it meanwhile, with no lock of ours held.
  if (checkedAlongside && handshake !== undefined && Array.isArray(image)) {
    for (const piece of image) {
      if (!checkRunning(handshake)) break;
      current.hash.update(piece);
      current.hashedBytes += piece.length;
    }
  }
  return { ok: true, meta: { ...read, journalMode: header.journalMode, userVersion: header.userVersion, bytes, pinned: pinnedHandle !== undefined, checkedOn, readFrom: Array.isArray(image) ? 'file' : 'serialize' } };
}

/**
 * The checker's side of handshake.ts. Its lock is taken without waiting (busy_timeout 0). SQLite's unix
 * VFS counts shared locks per process, so while the reader (this process) holds one the checker gets in
 * even if another process's writer is queued for the exclusive lock; if it cannot, the reader checks
 * its own image instead.
 */
function checkAlongside(path: string, busyTimeoutMs: number, handshake: SharedArrayBuffer): CheckOutcome {
  let db: Handle | undefined;
  try {
    db = openReadOnly(path, 0);
    if (!waitForReader(handshake, busyTimeoutMs + 1000)) return { joined: false };
    db.exec('BEGIN');
    const pageCount = db.pragma('page_count', { simple: true }) as number;
    if (!join(handshake)) return { joined: false };
    return { joined: true, pageCount, ...checkConnection(db, 'quick') };
  } catch {
    // Busy or unreadable: the reader finds out for itself, with its own error if there is one.
    return { joined: false };
  } finally {
    db?.close();
    checkOver(handshake);
  }
}

function readChunk(bytes: number): { chunk: Uint8Array; sha256?: string } {
  const reading = current;
  if (reading === undefined) throw new Error('read: no snapshot is being read');
  const end = Math.min(reading.offset + bytes, reading.bytes);
  let chunk: Uint8Array;
  if (Array.isArray(reading.image)) {
    // Our own memory: the piece itself is transferred (reads come in CHUNK_BYTES steps, as it was cut).
    const index = reading.offset / CHUNK_BYTES;
    chunk = reading.image[index]!;
    if (!Number.isInteger(index) || chunk.length !== end - reading.offset) throw new Error(`read: ${bytes} bytes at ${reading.offset} do not match a piece of the image`);
    if (reading.offset >= reading.hashedBytes) reading.hash.update(chunk);
  } else {
    const slice = reading.image.subarray(reading.offset, end);
    reading.hash.update(slice);
    // serialize()'s memory belongs to SQLite and cannot be transferred (Node 20 would clone the whole
    // image, later versions refuse): copy one chunk into memory of our own and transfer that.
    chunk = new Uint8Array(slice);
  }
  reading.offset = end;
  if (end < reading.bytes) return { chunk };
  release();
  return { chunk, sha256: reading.hash.digest('hex') };
}

export function handle(request: Request): { response: Response; transfer: ArrayBuffer[] } {
  switch (request.type) {
    case 'probe':
      return { response: { id: request.id, type: 'probe', results: probe(request.paths, request.busyTimeoutMs) }, transfer: [] };
    case 'pin':
      return { response: { id: request.id, type: 'pin', result: pin(request.paths, request.busyTimeoutMs) }, transfer: [] };
    case 'snapshot': {
      const outcome = snapshot(request.path, request.maxBytes, request.busyTimeoutMs, request.check, request.handshake);
      const response: Response = outcome.ok ? { id: request.id, type: 'snapshot', ok: true, meta: outcome.meta } : { id: request.id, type: 'snapshot', ok: false, failure: outcome.failure };
      return { response, transfer: [] };
    }
    case 'check':
      return { response: { id: request.id, type: 'check', ...checkAlongside(request.path, request.busyTimeoutMs, request.handshake) }, transfer: [] };
    case 'reset':
      reset();
      return { response: { id: request.id, type: 'reset' }, transfer: [] };
    case 'read': {
      const result = readChunk(request.bytes);
      return { response: { id: request.id, type: 'read', ...result }, transfer: [result.chunk.buffer as ArrayBuffer] };
    }
  }
}

/** Leaves nothing of the last backup behind: no read transaction, no image. */
export function reset(): void {
  for (const { db } of pinned.values()) db.close();
  pinned.clear();
  release();
  collectReleased();
}

