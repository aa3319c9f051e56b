/**
 * scan -> snapshot (one database at a time, in a worker) -> archive, as one byte stream.
 * Work that can fail early (scan, probe, budget, strict mode, pinning, the first snapshot)
 * is done before `createBackup` resolves, so callers can still answer with a clean error.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  MANIFEST_NAME,
  serializeManifest,
  VERSION_NAME,
  type AssetEntry,
  type DatabaseEntry,
  type Manifest,
  type PinInfo,
  type SkippedEntry,
} from './archive/manifest.js';
import { createSealer } from './archive/age.js';
import { ContentDigest } from './archive/content-digest.js';
import { storedArchiveSize, ZipWriter } from './archive/zip-writer.js';
import { COLLECT_FROM_BYTES } from './collect-garbage.js';
import { AbortedError, AssetError, DatabaseTooLargeError, DbzipError, SnapshotError, StrictModeError, toDbzipError, UnknownDatabaseError } from './errors.js';
import { inspectWith, type InspectedDatabase, type Inspection, type InspectInternals } from './inspect.js';
import { resolveBackupOptions, type BackupOptions, type ResolvedBackupOptions } from './options.js';
import { byPath } from './scan/index.js';
import type { AssetFile } from './scan/index.js';
import { checksAlongside, SnapshotSession, type Snapshot, type SnapshotOutcome } from './snapshot/session.js';
import { DBZIP_VERSION } from './version.js';
import { sqliteVersion } from './snapshot/sqlite-version.js';

export interface Backup {
  /** The zip (age-encrypted with `encrypt`). Ends with an error (never a normal end) if anything fails after the first byte. */
  stream: Readable;
  /** True when `stream` is age-encrypted (option `encrypt`): save it as `.zip.age`. */
  encrypted: boolean;
  /** Resolves with the manifest once the last byte is produced; rejects if the backup fails. */
  manifest: Promise<Manifest>;
  /** The exact length of `stream` (encrypted when it is), known before the first byte; null when it cannot be (deflate, an unpinned database). */
  size: number | null;
  /** What will be archived, decided before the first byte. */
  plan: BackupPlan;
  /**
   * How far the backup has got, for a progress display when `size` is null: `inputBytes` counts the
   * database and asset bytes read into the zip so far, against `plan.inputBytes`. An estimate only: a
   * database that is not pinned may grow or shrink before its turn, and deflate changes the output size.
   */
  progress: BackupProgress;
  /** Stops the work; the stream ends with an AbortedError. */
  abort(reason?: unknown): void;
}

export interface BackupPlan {
  dataDir: string;
  version: string;
  databases: InspectedDatabase[];
  assets: AssetFile[];
  skipped: SkippedEntry[];
  pin: PinInfo;
  /** Sum of database image sizes and asset sizes as planned. */
  inputBytes: number;
}

export interface BackupProgress {
  /** Database and asset bytes read into the zip so far. */
  readonly inputBytes: number;
}

const CHUNK = 1024 * 1024;

/**
 * What restore() and the CLI ask of a backup beyond the public options (not part of the documented API):
 * `contentDigests` receives each database's content digest (src/archive/content-digest.ts) by path,
 * so a plan can tell a database SQLite only stamped from one whose content differs; `inProcessUpTo`,
 * see InspectInternals; `collectGarbage` (the CLI's, see src/collect-garbage.ts) frees chunks already
 * written, which V8 frees lazily: before a large image is read once others were streamed, and every
 * 32 MiB of a serialize()d image (which stays whole in the worker until its last chunk is sent).
 */
export interface BackupInternals extends InspectInternals {
  contentDigests?: Map<string, string>;
  collectGarbage?: () => void;
}

const COLLECT_EVERY_BYTES = 32 * 1024 * 1024;

/** Passes chunks through, collecting garbage every COLLECT_EVERY_BYTES. */
async function* collecting(source: AsyncIterable<Buffer>, collectGarbage: () => void): AsyncGenerator<Buffer> {
  let since = 0;
  for await (const chunk of source) {
    since += chunk.length;
    if (since >= COLLECT_EVERY_BYTES) {
      since = 0;
      collectGarbage();
    }
    yield chunk;
  }
}

/** Counts what passes through, for `Backup.progress`, and feeds `digest` when given. */
async function* counted(source: AsyncIterable<Buffer>, progress: { inputBytes: number }, digest?: { update(chunk: Buffer): unknown }): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    progress.inputBytes += chunk.length;
    digest?.update(chunk);
    yield chunk;
  }
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

function skipFromFailure(db: InspectedDatabase, outcome: Extract<SnapshotOutcome, { ok: false }>, maxBytes: number): SkippedEntry {
  const { failure } = outcome;
  if (failure.code === 'DATABASE_TOO_LARGE') throw new DatabaseTooLargeError(db.path, failure.bytes ?? 0, maxBytes);
  // Our own resource limit, not the database's fault: fail rather than ship a backup without it.
  if (failure.code === 'OUT_OF_DESCRIPTORS') throw new SnapshotError('SNAPSHOT_FAILED', db.path, `${db.path}: ${failure.reason}`);
  return { path: db.path, code: failure.code === 'SNAPSHOT_CORRUPT' ? 'SNAPSHOT_FAILED' : failure.code, reason: failure.reason };
}

/** Every skip is logged; in strict mode the first one fails the backup. */
function recordSkip(opts: ResolvedBackupOptions, skipped: SkippedEntry[], skip: SkippedEntry): void {
  if (opts.strict && skip.code !== 'EXCLUDED') throw new StrictModeError(skip.path, skip.reason);
  opts.logger.warn({ path: skip.path, code: skip.code, reason: skip.reason }, 'skipped');
  skipped.push(skip);
}

function checkBudget(opts: ResolvedBackupOptions, databases: readonly InspectedDatabase[]): void {
  for (const db of databases) {
    if (db.bytes > opts.maxDatabaseBytes) throw new DatabaseTooLargeError(db.path, db.bytes, opts.maxDatabaseBytes);
  }
}

/**
 * Pins the eligible databases (one shared moment). Returns what the manifest records and the
 * databases left to archive, with their pinned sizes; a database that could not be pinned is a skip.
 */
async function pinDatabases(
  session: SnapshotSession,
  opts: ResolvedBackupOptions,
  databases: readonly InspectedDatabase[],
  skipped: SkippedEntry[],
): Promise<{ pin: PinInfo; databases: InspectedDatabase[] }> {
  const unknown = opts.pinOrder.filter((name) => !databases.some((db) => db.path === name));
  if (unknown.length > 0) throw new UnknownDatabaseError(unknown);
  const rank = (db: InspectedDatabase) => {
    const i = opts.pinOrder.indexOf(db.path);
    return i === -1 ? opts.pinOrder.length : i;
  };
  const eligible = (opts.pin === 'none' ? [] : databases.filter((db) => opts.pin === 'all-blocking' || db.journalMode === 'wal')).sort((a, b) => rank(a) - rank(b) || byPath(a, b));
  if (eligible.length === 0) return { pin: { mode: opts.pin, databases: [], windowMs: opts.date === undefined ? 0 : null }, databases: [...databases] };
  const result = await session.pin(eligible.map((db) => db.absPath), opts.busyTimeoutMs);
  const byAbs = new Map(databases.map((db) => [db.absPath, db]));
  // The pinned size is the size the snapshot will have: the plan takes it.
  const refreshed = new Map(
    result.pinned.flatMap((pinned) => {
      const db = byAbs.get(pinned.path);
      if (db === undefined) return [];
      const sizes = { pageSize: pinned.pageSize, pageCount: pinned.pageCount, bytes: pinned.pageSize * pinned.pageCount, journalMode: pinned.journalMode, userVersion: pinned.userVersion };
      return [[pinned.path, { ...db, ...sizes }] as const];
    }),
  );
  for (const failed of result.failed) {
    const db = byAbs.get(failed.path);
    if (db !== undefined) recordSkip(opts, skipped, { path: db.path, code: failed.code, reason: failed.reason });
  }
  const failedPaths = new Set(result.failed.map((f) => f.path));
  // Archived in the order they were pinned, before the others (by path): each pin is a read transaction
  // held until its snapshot, and while a WAL database is pinned its writers' -wal cannot start over.
  const pinOrderOf = new Map(result.pinned.map((p, i) => [p.path, i]));
  const turn = (db: InspectedDatabase) => pinOrderOf.get(db.absPath) ?? pinOrderOf.size;
  const kept = databases
    .filter((db) => !failedPaths.has(db.absPath))
    .map((db) => refreshed.get(db.absPath) ?? db)
    .sort((a, b) => turn(a) - turn(b) || byPath(a, b));
  const info: PinInfo = {
    mode: opts.pin,
    // In the order they were pinned.
    databases: result.pinned.map((p) => byAbs.get(p.path)?.path ?? p.path),
    // A measured window differs run to run; reproducible archives leave it out.
    windowMs: opts.date === undefined ? Math.round(result.windowMs * 1000) / 1000 : null,
  };
  if (result.unpinned !== null) {
    // Still archived, each at its own moment: recorded, so nobody takes them for part of the shared one.
    info.notPinned = { databases: result.unpinned.paths.map((p) => byAbs.get(p)?.path ?? p), reason: result.unpinned.reason };
    opts.logger.warn({ reason: `${result.unpinned.paths.length} database(s): ${result.unpinned.reason}` }, 'not pinned');
  }
  return { pin: info, databases: kept };
}

/** The manifest has a predictable length: hashes are fixed-width, everything else is known up front. */
function manifestFor(opts: ResolvedBackupOptions, plan: BackupPlan, createdAt: Date, databases: DatabaseEntry[], assets: AssetEntry[], skipped: SkippedEntry[]): Manifest {
  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_FORMAT_VERSION,
    createdAt: createdAt.toISOString(),
    dbzipVersion: DBZIP_VERSION,
    sqliteVersion: sqliteVersion(),
    appVersion: plan.version,
    level: opts.level,
    pin: plan.pin,
    // By path, whatever order they were archived in.
    databases: [...databases].sort(byPath),
    assets,
    skipped: [...skipped].sort(byPath),
  };
}

function databaseEntry(opts: ResolvedBackupOptions, db: InspectedDatabase, snap: Snapshot, sha256: string, crc32: number): DatabaseEntry {
  return {
    path: db.path,
    bytes: snap.bytes,
    sha256,
    crc32: hex8(crc32),
    pageSize: snap.pageSize,
    pageCount: snap.pageCount,
    journalMode: snap.journalMode,
    userVersion: snap.userVersion,
    quickCheck: quickCheckResult(opts),
    pinned: snap.pinned,
  };
}

/** What the manifest says of every shipped image: checked and passed (a failing one is skipped), or not checked. */
const quickCheckResult = (opts: ResolvedBackupOptions): DatabaseEntry['quickCheck'] => (opts.check === 'none' ? 'skipped' : 'ok');

/** Exact length when every size is fixed before the first byte; else null. */
function predictSize(opts: ResolvedBackupOptions, plan: BackupPlan, createdAt: Date, versionBytes: Buffer): number | null {
  if (opts.level !== 0) return null;
  const pinned = new Set(plan.pin.databases);
  if (plan.databases.some((db) => !pinned.has(db.path))) return null;
  const placeholder = manifestFor(
    opts,
    plan,
    createdAt,
    plan.databases.map((db) => ({ path: db.path, bytes: db.bytes, sha256: '0'.repeat(64), crc32: hex8(0), pageSize: db.pageSize, pageCount: db.pageCount, journalMode: db.journalMode, userVersion: db.userVersion, quickCheck: quickCheckResult(opts), pinned: true })),
    plan.assets.map((a) => ({ path: a.path, bytes: a.bytes, sha256: '0'.repeat(64) })),
    plan.skipped,
  );
  return storedArchiveSize([
    { name: VERSION_NAME, size: versionBytes.length, kind: 'buffer' },
    ...plan.databases.map((db) => ({ name: db.path, size: db.bytes, kind: 'stream' as const })),
    ...plan.assets.map((a) => ({ name: a.path, size: a.bytes, kind: 'stream' as const })),
    { name: MANIFEST_NAME, size: serializeManifest(placeholder).length, kind: 'buffer' },
  ]);
}

/** Assets up to this size are read whole, up to ASSETS_AHEAD ahead of the one being written (their opens and reads overlap its writes). */
const SMALL_ASSET_BYTES = CHUNK;
const ASSETS_AHEAD = 16;

/** Opens an asset without following a link planted after the scan. */
async function openAsset(asset: AssetFile): Promise<fs.FileHandle> {
  const handle = await fs.open(asset.absPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  if ((await handle.stat()).isFile()) return handle;
  await handle.close();
  throw new AssetError('ASSET_CHANGED', asset.path, `asset ${asset.path} is no longer a regular file`);
}

const grew = (asset: AssetFile) => new AssetError('ASSET_CHANGED', asset.path, `asset ${asset.path} grew while it was archived (expected ${asset.bytes} bytes)`);
const shrank = (asset: AssetFile, read: number) => new AssetError('ASSET_CHANGED', asset.path, `asset ${asset.path} shrank while it was archived (${read} of ${asset.bytes} bytes)`);

function assetFailure(asset: AssetFile, error: unknown, signal: AbortSignal): Error {
  if (error instanceof DbzipError) return error;
  if (signal.aborted) return new AbortedError(undefined, { cause: error });
  return new AssetError('ASSET_UNREADABLE', asset.path, `asset ${asset.path} cannot be read: ${(error as Error).message}`, { cause: error });
}

/** A small asset, whole, with the checks readAsset() makes as it streams. */
async function readWholeAsset(asset: AssetFile, signal: AbortSignal): Promise<Buffer> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await openAsset(asset);
    // One byte more than expected, so a file that grew since the scan is caught.
    const data = Buffer.allocUnsafe(asset.bytes + 1);
    let read = 0;
    for (let bytesRead = -1; bytesRead !== 0; read += bytesRead) {
      ({ bytesRead } = await handle.read(data, read, data.length - read, read));
      if (read + bytesRead > asset.bytes) throw grew(asset);
    }
    if (read !== asset.bytes) throw shrank(asset, read);
    return data.subarray(0, read);
  } catch (error) {
    throw assetFailure(asset, error, signal);
  } finally {
    await handle?.close();
  }
}

/** Streams an asset (or yields the one read ahead), checking its size as it goes. */
async function* readAsset(asset: AssetFile, signal: AbortSignal, whole: Promise<Buffer> | undefined): AsyncGenerator<Buffer> {
  if (whole !== undefined) {
    const data = await whole;
    signal.throwIfAborted();
    yield data;
    return;
  }
  let read = 0;
  let handle: fs.FileHandle | undefined;
  try {
    handle = await openAsset(asset);
    // No `signal` option: Node 20 can emit its AbortError twice, the second with no listener (a crash).
    // Cancelling returns this generator, which ends the loop and destroys the read stream.
    for await (const chunk of handle.createReadStream({ highWaterMark: CHUNK, autoClose: false }) as AsyncIterable<Buffer>) {
      signal.throwIfAborted();
      read += chunk.length;
      if (read > asset.bytes) throw grew(asset);
      yield chunk;
    }
  } catch (error) {
    throw assetFailure(asset, error, signal);
  } finally {
    await handle?.close();
  }
  if (read !== asset.bytes) throw shrank(asset, read);
}

interface Run {
  opts: ResolvedBackupOptions;
  session: SnapshotSession;
  plan: BackupPlan;
  createdAt: Date;
  versionBytes: Buffer;
  /** The snapshot taken before the first byte; cleared once taken over, so it is not held for the whole backup. */
  head: { snapshot: Snapshot | undefined };
  /** The length announced in advance, if any: then nothing may be skipped after the first byte. */
  size: number | null;
  signal: AbortSignal;
  progress: { inputBytes: number };
  contentDigests: Map<string, string> | undefined;
  collectGarbage: (() => void) | undefined;
  onManifest: (manifest: Manifest) => void;
}

function takeSnapshot(session: SnapshotSession, opts: ResolvedBackupOptions, db: InspectedDatabase): Promise<SnapshotOutcome> {
  return session.snapshot(db.absPath, opts.maxDatabaseBytes, opts.busyTimeoutMs, opts.check, checksAlongside(db, opts.check));
}

async function* produce(run: Run): AsyncGenerator<Buffer> {
  const { opts, session, plan, signal } = run;
  const zip = new ZipWriter({ level: opts.level, date: run.createdAt });
  const skipped = [...plan.skipped];
  const databases: DatabaseEntry[] = [];
  const assets: AssetEntry[] = [];
  yield* zip.addBuffer(VERSION_NAME, run.versionBytes, crc32(run.versionBytes));
  let first = run.head.snapshot;
  run.head.snapshot = undefined;
  for (const db of plan.databases) {
    // The worker holds one image at a time and lets go of it with its last chunk.
    let snapshot = first;
    first = undefined;
    if (snapshot === undefined) {
      if (db.bytes >= COLLECT_FROM_BYTES && databases.length > 0) run.collectGarbage?.();
      const outcome = await takeSnapshot(session, opts, db);
      if (!outcome.ok) {
        const skip = skipFromFailure(db, outcome, opts.maxDatabaseBytes);
        // The announced length counted this database: a body that disagrees with it must not end normally.
        if (run.size !== null) throw new SnapshotError('SNAPSHOT_FAILED', db.path, `${db.path}: ${skip.reason}`);
        recordSkip(opts, skipped, skip);
        continue;
      }
      snapshot = outcome.snapshot;
    }
    if (run.size !== null && snapshot.bytes !== db.bytes) {
      throw new SnapshotError('SNAPSHOT_FAILED', db.path, `${db.path}: image is ${snapshot.bytes} bytes, ${db.bytes} were announced`);
    }
    // Streamed from the worker chunk by chunk: the CRC-32 goes in a data descriptor after the data.
    const digest = run.contentDigests === undefined ? undefined : new ContentDigest();
    const chunks = run.collectGarbage !== undefined && snapshot.readFrom === 'serialize' ? collecting(snapshot.chunks(), run.collectGarbage) : snapshot.chunks();
    yield* zip.addStream(db.path, counted(chunks, run.progress, digest), snapshot.bytes);
    if (digest !== undefined) run.contentDigests?.set(db.path, digest.digest());
    databases.push(databaseEntry(opts, db, snapshot, await snapshot.sha256, zip.entries.at(-1)!.crc32));
  }
  const ahead = new Map<AssetFile, Promise<Buffer>>();
  for (const [i, asset] of plan.assets.entries()) {
    for (const next of plan.assets.slice(i, i + 1 + ASSETS_AHEAD)) {
      if (next.bytes > SMALL_ASSET_BYTES || ahead.has(next)) continue;
      const whole = readWholeAsset(next, signal);
      // Its failure is reported in its turn; left behind if the backup stops first.
      whole.catch(() => {});
      ahead.set(next, whole);
    }
    const hash = createHash('sha256');
    yield* zip.addStream(asset.path, counted(readAsset(asset, signal, ahead.get(asset)), run.progress, hash), asset.bytes);
    ahead.delete(asset);
    assets.push({ path: asset.path, bytes: asset.bytes, sha256: hash.digest('hex') });
  }
  const manifest = manifestFor(opts, plan, run.createdAt, databases, assets, skipped);
  const manifestBytes = serializeManifest(manifest);
  yield* zip.addBuffer(MANIFEST_NAME, manifestBytes, crc32(manifestBytes));
  yield* zip.finish();
  run.onManifest(manifest);
}

/** Pulls from the generator only as fast as the consumer reads (backpressure). */
function toReadable(source: AsyncGenerator<Buffer>, controller: AbortController, onEnd: (error: Error | undefined) => void): Readable {
  let pulling = false;
  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (pulling) return;
      pulling = true;
      void (async () => {
        try {
          for (;;) {
            const { value, done } = await source.next();
            if (done) {
              stream.push(null);
              onEnd(undefined);
              return;
            }
            if (!stream.push(value)) return;
          }
        } catch (error) {
          const wrapped = controller.signal.aborted ? new AbortedError(undefined, { cause: error }) : toDbzipError(error, 'SNAPSHOT_FAILED', 'backup failed');
          onEnd(wrapped);
          stream.destroy(wrapped);
        } finally {
          pulling = false;
        }
      })();
    },
    destroy(error, callback) {
      const reason = error ?? new AbortedError('the backup stream was destroyed');
      controller.abort(reason);
      onEnd(reason instanceof Error ? reason : new AbortedError());
      // Run the generator's finally blocks (closing the worker) without waiting on a pending step.
      source.return(undefined).catch(() => {});
      callback(error);
    },
  });
  return stream;
}

/** Everything that can fail before the first byte: inspect, budget, pin, and the first snapshot. */
async function planBackup(session: SnapshotSession, opts: ResolvedBackupOptions, internals: InspectInternals): Promise<{ plan: BackupPlan; head: Run['head'] }> {
  const inspection: Inspection = await inspectWith(session, opts, internals);
  const skipped: SkippedEntry[] = [];
  for (const skip of inspection.skipped) recordSkip(opts, skipped, skip);
  checkBudget(opts, inspection.databases);
  const pinned = await pinDatabases(session, opts, inspection.databases, skipped);
  const databases = pinned.databases;
  checkBudget(opts, databases);
  if (databases.some((db) => checksAlongside(db, opts.check))) void session.prepareChecker().catch(() => {});
  // Fail before the first byte where we can: snapshot now until one database succeeds.
  const head: Run['head'] = { snapshot: undefined };
  while (head.snapshot === undefined && databases[0] !== undefined) {
    const outcome = await takeSnapshot(session, opts, databases[0]);
    if (outcome.ok) head.snapshot = outcome.snapshot;
    else recordSkip(opts, skipped, skipFromFailure(databases.shift()!, outcome, opts.maxDatabaseBytes));
  }
  const plan: BackupPlan = {
    dataDir: inspection.dataDir,
    version: inspection.version,
    databases,
    assets: inspection.assets,
    skipped,
    pin: pinned.pin,
    inputBytes: databases.reduce((n, db) => n + db.bytes, 0) + inspection.assets.reduce((n, a) => n + a.bytes, 0),
  };
  return { plan, head };
}

/** What the stream's lifecycle needs once the backup is planned. */
interface Planned extends Omit<Run, 'signal' | 'progress' | 'onManifest'> {
  controller: AbortController;
  sealer: Awaited<ReturnType<typeof createSealer>> | undefined;
  /** Closes the session and forgets the caller's signal: once, when the stream ends or fails. */
  cleanup: () => void;
}

/**
 * The byte stream's lifecycle: the zip produced as it is read (sealed when encrypting), the manifest
 * promise settled by its end, and abort() / the caller's signal / a session failure stopping it.
 */
function streamBackup(p: Planned): Backup {
  const { opts, controller, sealer, cleanup } = p;
  let resolveManifest!: (m: Manifest) => void;
  let rejectManifest!: (e: Error) => void;
  const manifest = new Promise<Manifest>((resolve, reject) => {
    resolveManifest = resolve;
    rejectManifest = reject;
  });
  manifest.catch(() => {}); // callers that only read the stream must not see an unhandled rejection
  const progress = { inputBytes: 0 };
  let ended = false;
  let completed = false;
  const source = (async function* () {
    try {
      yield* produce({ ...p, signal: controller.signal, progress, onManifest: resolveManifest });
    } finally {
      cleanup();
    }
  })();
  const zipStream = toReadable(source, controller, (error) => {
    if (ended) return;
    ended = true;
    completed = error === undefined;
    if (error !== undefined) {
      const code = error instanceof DbzipError ? error.code : undefined;
      // A consumer that goes away is not a failure of the backup.
      if (code === 'ABORTED') opts.logger.info({ code, err: error.message }, 'backup cancelled');
      else opts.logger.error({ code, err: error.message }, 'backup failed');
      rejectManifest(error);
      cleanup();
    }
  });
  // Encrypted, the consumer reads the sealed stream; destroying it destroys the zip stream too.
  const stream = sealer === undefined ? zipStream : sealer.seal(zipStream);
  const abort = (reason?: unknown) => {
    const error = reason instanceof Error ? reason : new AbortedError(undefined, { cause: reason });
    // The error also rejects `manifest`: a caller that aborts need not listen for it, and later reads still fail with it.
    if (stream.listenerCount('error') === 0) stream.once('error', () => {});
    stream.destroy(error);
  };
  // The caller's signal (or a session failure) stops the bytes too, not only the snapshots.
  // The zip stream's own destroy after a normal end aborts the controller too; the sealed stream may
  // still be writing its last chunk then, so that is not a reason to stop it.
  controller.signal.addEventListener('abort', () => completed || abort(controller.signal.reason), { once: true });
  const outSize = p.size === null || sealer === undefined ? p.size : sealer.encryptedSize(p.size);
  return { stream, encrypted: sealer !== undefined, manifest, size: outSize, plan: p.plan, progress, abort };
}

/**
 * Starts a backup of `options.dataDir`. Resolves once everything that can fail early has
 * been checked and the first database is snapshotted; the zip is then produced as it is read.
 */
export async function createBackup(options: BackupOptions, internals: BackupInternals = {}): Promise<Backup> {
  const opts = resolveBackupOptions(options);
  const controller = new AbortController();
  const onUserAbort = () => controller.abort(new AbortedError(undefined, { cause: opts.signal?.reason }));
  if (opts.signal?.aborted) throw new AbortedError();
  opts.signal?.addEventListener('abort', onUserAbort, { once: true });
  const session = new SnapshotSession(controller.signal);
  // While the worker starts: the version goes in the manifest, and loading it later would be in the way.
  sqliteVersion();
  const cleanup = () => {
    opts.signal?.removeEventListener('abort', onUserAbort);
    void session.close();
  };
  try {
    const createdAt = opts.date ?? new Date();
    const { plan, head } = await planBackup(session, opts, internals);
    const versionBytes = Buffer.from(`${plan.version}\n`, 'utf8');
    const size = predictSize(opts, plan, createdAt, versionBytes);
    // Before the first byte: a recipient age cannot use fails here, as a clean OptionsError.
    const sealer = opts.encrypt === undefined ? undefined : await createSealer(opts.encrypt);
    return streamBackup({ opts, session, plan, createdAt, versionBytes, head, size, contentDigests: internals.contentDigests, collectGarbage: internals.collectGarbage, controller, sealer, cleanup });
  } catch (error) {
    cleanup();
    if (error instanceof DbzipError) throw error;
    if (controller.signal.aborted) throw new AbortedError(undefined, { cause: error });
    throw new SnapshotError('SNAPSHOT_FAILED', opts.dataDir, `backup failed: ${(error as Error).message}`, { cause: error });
  }
}
