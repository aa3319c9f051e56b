import path from 'node:path';
import { resolveZipReaderOptions, type ResolvedZipReaderOptions, type ZipReaderOptions } from '../archive/zip-reader.js';
import { OptionsError } from '../errors.js';
import { assetFolderList, bool, checkKeys, DEFAULTS, extensionList, integer, MAX_BUFFER_BYTES, resolveDecrypt, silentLogger, type DecryptOptions, type Logger } from '../options.js';
import type { RestorePlan } from './plan.js';

/**
 * online: databases are written into the live files through SQLite (the application may keep running).
 * offline: every file is written beside its target and renamed over it (the application must be stopped).
 */
export type RestoreMode = 'online' | 'offline';

/** What `restore()` does; every default is in `RESTORE_DEFAULTS`. */
export interface RestoreOptions extends ZipReaderOptions {
  /** The dbzip zip to restore. Required. */
  archive: string;
  /** The data directory to restore into. Required; it must exist (it may be empty). */
  dataDir: string;
  /** Default `RESTORE_DEFAULTS.mode`. */
  mode?: RestoreMode;
  /** Verify and plan only; change nothing, write no pre-restore backup. Default `false`. */
  dryRun?: boolean;
  /** Also remove databases and assets that the archive does not hold (only files a backup would archive). Default `false`. */
  exact?: boolean;
  /** Restore an archive from a newer (or incomparable) application version, and replace files the pre-restore backup could not capture. Default `false`. */
  force?: boolean;
  /** Pre-restore backups kept in `<dataDir>/.dbzip/`, newest first (this one included). Default `RESTORE_DEFAULTS.keepPreRestore`. */
  keepPreRestore?: number;
  /** The running application's version, for the version policy. Default: `<dataDir>/VERSION`, else none. */
  appVersion?: string;
  /** Delete `archive` when the restore ends, whatever the outcome; only for archives inside `<dataDir>/.dbzip/` (see `createSpool`). Default `false`. */
  removeArchive?: boolean;
  /** Called with the plan once everything is verified and the pre-restore backup is taken; resolve false to cancel (nothing is changed). */
  confirm?: (plan: RestorePlan) => boolean | Promise<boolean>;
  /** Database file endings to consider in the data dir. Default: `DEFAULTS.extensions` plus every ending in the archive. */
  extensions?: readonly string[];
  /** Look for databases in subfolders. Default: true when the archive holds a database in a subfolder. */
  recursive?: boolean;
  /** Asset folders in the data dir. Default: `assets` plus the first folder of every archived asset. */
  assets?: readonly string[];
  /** Largest database image held in memory. Default `DEFAULTS.maxDatabaseBytes`. */
  maxDatabaseBytes?: number;
  /** How long to wait for other connections' locks, in ms. Default `DEFAULTS.busyTimeoutMs`. */
  busyTimeoutMs?: number;
  /** Cancels the restore until it starts changing live files; after that it runs to the end. */
  signal?: AbortSignal;
  /** Progress lines. Default: silent. */
  logger?: Logger;
  /** Keys for an age-encrypted archive (`.zip.age`): decrypted on the fly, authenticated whole before anything changes. */
  decrypt?: DecryptOptions;
}

export interface ResolvedRestoreOptions {
  archive: string;
  dataDir: string;
  mode: RestoreMode;
  dryRun: boolean;
  exact: boolean;
  force: boolean;
  keepPreRestore: number;
  appVersion: string | undefined;
  removeArchive: boolean;
  confirm: ((plan: RestorePlan) => boolean | Promise<boolean>) | undefined;
  extensions: readonly string[] | undefined;
  recursive: boolean | undefined;
  assets: readonly string[] | undefined;
  maxDatabaseBytes: number;
  busyTimeoutMs: number;
  limits: ResolvedZipReaderOptions;
  signal: AbortSignal | undefined;
  logger: Logger;
  decrypt: DecryptOptions | undefined;
}

/** Every restore default in one place. */
export const RESTORE_DEFAULTS = {
  mode: 'online' as RestoreMode,
  dryRun: false,
  exact: false,
  force: false,
  keepPreRestore: 5,
} as const;

const MODES: readonly RestoreMode[] = ['online', 'offline'];
const KEYS = {
  archive: true, dataDir: true, mode: true, dryRun: true, exact: true, force: true, keepPreRestore: true, appVersion: true,
  removeArchive: true, confirm: true, extensions: true, recursive: true, assets: true, maxDatabaseBytes: true, busyTimeoutMs: true,
  signal: true, logger: true, maxEntries: true, maxTotalBytes: true, maxRatio: true, decrypt: true,
} as const satisfies Record<keyof RestoreOptions, true>;
const MISSPELLINGS: Record<string, string> = {
  datadir: 'dataDir', data_dir: 'dataDir', file: 'archive', zip: 'archive', zipPath: 'archive', dry_run: 'dryRun', dryrun: 'dryRun',
  yes: 'confirm', version: 'appVersion', keep: 'keepPreRestore', keepPreRestoreBackups: 'keepPreRestore',
};

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new OptionsError(`option "${name}" is required and must be a non-empty string`);
  return value;
}

/** Resolves and validates once; every message names the option. */
export function resolveRestoreOptions(options: RestoreOptions): ResolvedRestoreOptions {
  if (options === null || typeof options !== 'object') throw new OptionsError('options must be an object');
  checkKeys(options, KEYS, MISSPELLINGS);
  const archive = path.resolve(nonEmpty('archive', options.archive));
  const dataDir = path.resolve(nonEmpty('dataDir', options.dataDir));
  if (options.mode !== undefined && !MODES.includes(options.mode)) {
    throw new OptionsError(`option "mode" must be one of ${MODES.join(', ')}, got ${String(options.mode)}`);
  }
  if (options.appVersion !== undefined && (typeof options.appVersion !== 'string' || options.appVersion.trim() === '')) {
    throw new OptionsError('option "appVersion" must be a non-empty string');
  }
  if (options.confirm !== undefined && typeof options.confirm !== 'function') throw new OptionsError('option "confirm" must be a function');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new OptionsError('option "signal" must be an AbortSignal');
  return {
    archive,
    dataDir,
    mode: options.mode ?? RESTORE_DEFAULTS.mode,
    dryRun: bool('dryRun', options.dryRun, RESTORE_DEFAULTS.dryRun),
    exact: bool('exact', options.exact, RESTORE_DEFAULTS.exact),
    force: bool('force', options.force, RESTORE_DEFAULTS.force),
    keepPreRestore: integer('keepPreRestore', options.keepPreRestore, RESTORE_DEFAULTS.keepPreRestore, 1, 1000),
    appVersion: options.appVersion?.trim(),
    removeArchive: bool('removeArchive', options.removeArchive, false),
    confirm: options.confirm,
    extensions: extensionList('extensions', options.extensions),
    recursive: options.recursive === undefined ? undefined : bool('recursive', options.recursive, false),
    assets: assetFolderList('assets', options.assets),
    maxDatabaseBytes: integer('maxDatabaseBytes', options.maxDatabaseBytes, DEFAULTS.maxDatabaseBytes, 1, MAX_BUFFER_BYTES),
    busyTimeoutMs: integer('busyTimeoutMs', options.busyTimeoutMs, DEFAULTS.busyTimeoutMs, 0, 600_000),
    limits: resolveZipReaderOptions({
      ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
      ...(options.maxTotalBytes === undefined ? {} : { maxTotalBytes: options.maxTotalBytes }),
      ...(options.maxRatio === undefined ? {} : { maxRatio: options.maxRatio }),
    }),
    signal: options.signal,
    logger: options.logger ?? silentLogger,
    decrypt: resolveDecrypt('decrypt', options.decrypt),
  };
}
