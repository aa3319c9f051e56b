import type { JournalMode, SkippedEntry } from './archive/manifest.js';
import { SnapshotError, UnknownDatabaseError } from './errors.js';
import { resolveBackupOptions, type BackupOptions, type ResolvedBackupOptions } from './options.js';
import { byPath, scanDataDir, type AssetFile, type ScanResult } from './scan/index.js';
import { SnapshotSession } from './snapshot/session.js';

export interface InspectedDatabase {
  /** Entry name in the zip. */
  path: string;
  absPath: string;
  /** Size of the snapshot image now: page count × page size (WAL content included). */
  bytes: number;
  /** Size of the main file on disk. */
  fileBytes: number;
  journalMode: JournalMode;
  pageSize: number;
  pageCount: number;
  userVersion: number;
  mtime: Date;
}

/**
 * What the CLI asks beyond the public options (not part of the documented API): `inProcessUpTo`, read on
 * the calling thread, with no worker, when the databases' files total at most this many bytes (each
 * request then blocks the event loop; see src/snapshot/in-process-link.ts).
 */
export interface InspectInternals {
  inProcessUpTo?: number;
}

/** What a backup would contain now, and what it would skip and why. */
export interface Inspection {
  dataDir: string;
  version: string;
  versionSource: ScanResult['versionSource'];
  databases: InspectedDatabase[];
  assetFolders: string[];
  assets: AssetFile[];
  skipped: SkippedEntry[];
}

/**
 * Scan, then let SQLite confirm each candidate in the given session.
 * Names in `opts.databases` that match no candidate throw UnknownDatabaseError;
 * candidates left out by it are listed as skipped with code EXCLUDED.
 */
export async function inspectWith(session: SnapshotSession, opts: ResolvedBackupOptions, internals: InspectInternals = {}): Promise<Inspection> {
  const scan = await scanDataDir(opts);
  const skipped = [...scan.skipped];
  let candidates = scan.candidates;
  if (opts.databases !== undefined) {
    const wanted = new Set(opts.databases);
    const known = new Set([...candidates.map((c) => c.path), ...scan.skipped.map((s) => s.path)]);
    const unknown = [...wanted].filter((name) => !known.has(name));
    if (unknown.length > 0) throw new UnknownDatabaseError(unknown);
    for (const c of candidates) if (!wanted.has(c.path)) skipped.push({ path: c.path, code: 'EXCLUDED', reason: 'not selected by the databases option' });
    candidates = candidates.filter((c) => wanted.has(c.path));
  }
  if (internals.inProcessUpTo !== undefined && candidates.reduce((sum, c) => sum + c.bytes, 0) <= internals.inProcessUpTo) session.runInProcess();
  const probes = await session.probe(candidates.map((c) => c.absPath), opts.busyTimeoutMs);
  const databases: InspectedDatabase[] = [];
  candidates.forEach((candidate, i) => {
    const probe = probes[i];
    if (probe === undefined) return;
    if (probe.ok) {
      const { ok: _ok, ...facts } = probe;
      databases.push({ path: candidate.path, absPath: candidate.absPath, bytes: facts.pageSize * facts.pageCount, fileBytes: candidate.bytes, mtime: candidate.mtime, ...facts });
    } else if (probe.code === 'OUT_OF_DESCRIPTORS') {
      // Our own resource limit, not the database's fault: never list it as a skip.
      throw new SnapshotError('SNAPSHOT_FAILED', candidate.path, `${candidate.path}: ${probe.reason}`);
    } else {
      skipped.push({ path: candidate.path, code: probe.code, reason: probe.reason });
    }
  });
  return {
    dataDir: scan.dataDir,
    version: scan.version,
    versionSource: scan.versionSource,
    databases,
    assetFolders: scan.assetFolders,
    assets: scan.assets,
    skipped: skipped.sort(byPath),
  };
}

/** Lists what a backup with these options would contain, without writing anything. */
export async function inspect(options: BackupOptions, internals: InspectInternals = {}): Promise<Inspection> {
  const opts = resolveBackupOptions(options);
  const session = new SnapshotSession(opts.signal);
  try {
    return await inspectWith(session, opts, internals);
  } finally {
    await session.close();
  }
}
