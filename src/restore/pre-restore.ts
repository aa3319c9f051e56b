/**
 * The pre-restore backup: a normal dbzip archive of the data directory as it is just before a
 * restore changes it, kept in `<dataDir>/.dbzip/pre-restore-<UTC yyyymmdd-hhmmss>.zip`, so any
 * restore can be undone by restoring that file. Its manifest is also the restore's view of the
 * current state: which databases and assets exist now, with their SHA-256.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Manifest } from '../archive/manifest.js';
import { createBackup, type Backup } from '../backup.js';
import { DataDirError, DbzipError, OptionsError, OutputError } from '../errors.js';
import { DEFAULTS, type BackupOptions } from '../options.js';
import { fsyncDir } from '../durable.js';
import type { ResolvedRestoreOptions } from './options.js';
import { PRIVATE_FOLDER } from './spool.js';

/** `pre-restore-<UTC yyyymmdd-hhmmss>[-n].zip`: the only names restore() writes, and the only ones listed or served. */
export const PRE_RESTORE_NAME_PATTERN = /^pre-restore-(\d{8}-\d{6})(?:-(\d+))?\.zip$/;
const NAME_PATTERN = PRE_RESTORE_NAME_PATTERN;
const PARTIAL_PATTERN = /^pre-restore-\d{8}-\d{6}(?:-\d+)?\.zip\.partial$/;

const pad = (n: number): string => String(n).padStart(2, '0');

function stamp(date: Date): string {
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
}

/** The file name ending of a database path, as the scan matches it (`.db`, `.sqlite`…). */
function endingOf(dbPath: string): string | null {
  const name = dbPath.slice(dbPath.lastIndexOf('/') + 1).toLowerCase();
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot) : null;
}

async function isRealDir(dir: string): Promise<boolean> {
  const stat = await fs.lstat(dir).catch(() => null);
  return stat !== null && stat.isDirectory() && !stat.isSymbolicLink();
}

/**
 * Backup options that see at least everything this archive would write: the archive's database
 * endings and subfolders, and its asset folders (when they exist as real folders now).
 */
export async function currentStateOptions(opts: ResolvedRestoreOptions, archive: Manifest): Promise<BackupOptions> {
  const extensions = new Set(opts.extensions ?? DEFAULTS.extensions);
  if (opts.extensions === undefined) {
    for (const db of archive.databases) {
      const ending = endingOf(db.path);
      if (ending !== null) extensions.add(ending);
    }
  }
  const wanted = opts.assets ?? [DEFAULTS.assetFolder, ...archive.assets.map((a) => a.path.split('/')[0] ?? '')];
  const existing: string[] = [];
  for (const folder of [...new Set(wanted)].filter((f) => f !== '' && f !== PRIVATE_FOLDER).sort()) {
    // A folder inside another is already covered by it (and createBackup refuses the pair).
    if (existing.some((outer) => folder.startsWith(`${outer}/`))) continue;
    if (await isRealDir(path.join(opts.dataDir, ...folder.split('/')))) existing.push(folder);
  }
  return {
    dataDir: opts.dataDir,
    extensions: [...extensions],
    recursive: opts.recursive ?? archive.databases.some((d) => d.path.includes('/')),
    assets: existing,
    level: 0,
    strict: false,
    pin: 'all',
    maxDatabaseBytes: opts.maxDatabaseBytes,
    busyTimeoutMs: opts.busyTimeoutMs,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    logger: opts.logger,
  };
}

/**
 * What the data directory holds now: the manifest of a backup, and each database's content digest
 * (src/archive/content-digest.ts) by path, which the plan compares when the SHA-256 differs.
 */
export interface CurrentState {
  manifest: Manifest;
  contentDigests: Map<string, string>;
}

/** Runs a backup and throws its bytes away: the dry run's view of the current state, nothing written. */
export async function scanCurrentState(options: BackupOptions): Promise<CurrentState> {
  const contentDigests = new Map<string, string>();
  const backup = await createBackup(options, { contentDigests });
  try {
    for await (const _chunk of backup.stream) {
      // discarded: only the manifest (hashes of what is there now) is wanted
    }
  } catch (error) {
    backup.abort(error);
    throw error;
  }
  return { manifest: await backup.manifest, contentDigests };
}

export interface PreRestoreBackup extends CurrentState {
  /** Where it is written first. */
  partial: string;
  /** Where it is once published. */
  path: string;
}

async function writeBackup(backup: Backup, partial: string): Promise<void> {
  try {
    // flush: fsync before close, so the rename never publishes bytes still in the page cache.
    await pipeline(backup.stream, createWriteStream(partial, { flags: 'wx', mode: 0o600, flush: true }));
  } catch (error) {
    backup.abort(error);
    await fs.rm(partial, { force: true });
    if (error instanceof DbzipError) throw error;
    throw new OutputError(`cannot write the pre-restore backup ${partial}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Writes the pre-restore backup to `<name>.zip.partial`; `publishPreRestore` renames it into place.
 * A second backup in the same second gets `-2`, then `-3`…, always above any that exist, so the
 * name order stays the age order that pruning relies on.
 */
export async function writePreRestore(privateDir: string, options: BackupOptions, date = new Date()): Promise<PreRestoreBackup> {
  const base = `pre-restore-${stamp(date)}`;
  let highest = 0;
  for (const name of await fs.readdir(privateDir)) {
    const match = NAME_PATTERN.exec(name.replace(/\.partial$/, ''));
    if (match !== null && `pre-restore-${match[1]}` === base) highest = Math.max(highest, Number(match[2] ?? 1));
  }
  const target = path.join(privateDir, highest === 0 ? `${base}.zip` : `${base}-${highest + 1}.zip`);
  const partial = `${target}.partial`;
  const contentDigests = new Map<string, string>();
  const backup = await createBackup(options, { contentDigests });
  await writeBackup(backup, partial);
  return { partial, path: target, manifest: await backup.manifest, contentDigests };
}

export async function publishPreRestore(backup: PreRestoreBackup): Promise<void> {
  await fs.rename(backup.partial, backup.path);
  await fsyncDir(path.dirname(backup.path));
}

/** Order key: newest first; `-2`, `-3` were written later in the same second. */
function sortKey(name: string): [string, number] {
  const match = NAME_PATTERN.exec(name);
  return [match?.[1] ?? '', Number(match?.[2] ?? 1)];
}

/** Keeps the `keep` newest pre-restore backups and removes the rest; returns the removed paths. */
export async function prunePreRestore(privateDir: string, keep: number): Promise<string[]> {
  const names = (await fs.readdir(privateDir)).filter((n) => NAME_PATTERN.test(n));
  names.sort((a, b) => {
    const [sa, na] = sortKey(a);
    const [sb, nb] = sortKey(b);
    return sa === sb ? nb - na : sa < sb ? 1 : -1;
  });
  const removed: string[] = [];
  for (const name of names.slice(keep)) {
    await fs.rm(path.join(privateDir, name), { force: true });
    removed.push(path.join(privateDir, name));
  }
  return removed;
}

export interface PreRestoreListing {
  name: string;
  /** Absolute path. */
  path: string;
  bytes: number;
  /** The start of the restore that wrote it (UTC, from the name). */
  createdAt: Date;
}

/** `<dataDir>/.dbzip/<name>` for a valid pre-restore name; anything else throws (no path tricks). */
export function preRestorePath(dataDir: string, name: string): string {
  if (!NAME_PATTERN.test(name)) throw new OptionsError(`not a pre-restore backup name: ${JSON.stringify(name)}`);
  return path.join(dataDir, PRIVATE_FOLDER, name);
}

/** The pre-restore backups in `<dataDir>/.dbzip/`, newest first (regular files only); none when the folder is missing. */
export async function listPreRestoreBackups(dataDir: string): Promise<PreRestoreListing[]> {
  const privateDir = path.join(dataDir, PRIVATE_FOLDER);
  const names = await fs.readdir(privateDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw new DataDirError('DATA_DIR_UNREADABLE', dataDir, `cannot list ${privateDir}: ${error.code ?? error.message}`, { cause: error });
  });
  const listed: PreRestoreListing[] = [];
  for (const name of names.filter((n) => NAME_PATTERN.test(n))) {
    const stat = await fs.lstat(path.join(privateDir, name)).catch(() => null);
    if (stat === null || !stat.isFile()) continue;
    const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/.exec(sortKey(name)[0]);
    const createdAt = m === null ? stat.mtime : new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
    listed.push({ name, path: path.join(privateDir, name), bytes: stat.size, createdAt });
  }
  return listed.sort((a, b) => {
    const [sa, na] = sortKey(a.name);
    const [sb, nb] = sortKey(b.name);
    return sa === sb ? nb - na : sa < sb ? 1 : -1;
  });
}

/** `.partial` files are never complete backups: those left by a killed restore are removed. */
export async function removeStalePartials(privateDir: string): Promise<void> {
  for (const name of await fs.readdir(privateDir)) {
    if (PARTIAL_PATTERN.test(name)) await fs.rm(path.join(privateDir, name), { force: true });
  }
}
