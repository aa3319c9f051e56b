/**
 * One backup into a store: snapshot and zip as usual, streamed straight into the store (no temp
 * file), then retention, only after the upload succeeded. Used by `dbzip backup --to`, the
 * schedule and `POST /api/backups`.
 */
import { AGE_SUFFIX } from '../archive/age.js';
import { backupFileName } from '../archive/file-name.js';
import { createBackup } from '../backup.js';
import { DbzipError, toDbzipError } from '../errors.js';
import type { BackupOptions, Logger } from '../options.js';
import { applyRetention, type RetentionResult } from './retention.js';
import type { BackupStore } from './store.js';

export interface StoreRunOptions {
  /** What to back up; `signal` and `logger` come from below. */
  backup: Omit<BackupOptions, 'signal' | 'logger'>;
  store: BackupStore;
  /** The name is `<prefix>-backup-<UTC time of the start>.zip`, `.zip.age` when `backup.encrypt` is set. */
  prefix: string;
  /** Retention after a successful upload; undefined: none. */
  retention?: { keep: number; keepDays?: number | undefined } | undefined;
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
  /** Default: the clock. */
  now?: () => Date;
}

export interface StoreRunResult {
  name: string;
  /** True when it was age-encrypted (`.zip.age`); `bytes` is then the encrypted length. */
  encrypted: boolean;
  /** Where it went (the store's display form). */
  store: string;
  bytes: number;
  databases: number;
  startedAt: string;
  durationMs: number;
  /** What retention removed and kept; null when no retention is configured. */
  retention: { removed: string[]; kept: number; failed: RetentionResult['failed'] } | null;
}

export async function backupToStore(options: StoreRunOptions): Promise<StoreRunResult> {
  const started = (options.now ?? (() => new Date()))();
  const backup = await createBackup({
    ...options.backup,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  // An encrypted backup says so in its name, so listings, retention and downloads can tell without reading it.
  const name = backupFileName(options.prefix, started) + (backup.encrypted ? AGE_SUFFIX : '');
  let bytes: number;
  try {
    ({ bytes } = await options.store.put(name, backup.stream, { size: backup.size, ...(options.signal === undefined ? {} : { signal: options.signal }) }));
  } catch (error) {
    // The upload failed first (network, credentials): stop the snapshots too.
    backup.abort(error);
    // If the backup itself failed (a snapshot, an asset), that is the reason to report, not the upload
    // it broke off; a backup that only ended because the upload stopped reading says nothing new.
    const own = await backup.manifest.then(() => undefined, (reason: unknown) => reason);
    const reason = own instanceof DbzipError && own.code !== 'ABORTED' ? own : error;
    throw toDbzipError(reason, 'STORE_FAILED', `backup to ${options.store.display} failed`);
  }
  const manifest = await backup.manifest;
  let retention: StoreRunResult['retention'] = null;
  if (options.retention !== undefined) {
    const result = await applyRetention(options.store, { ...options.retention, prefix: options.prefix, now: started });
    retention = { removed: result.remove.map((b) => b.name).filter((n) => !result.failed.some((f) => f.name === n)), kept: result.keep.length, failed: result.failed };
  }
  return {
    name,
    encrypted: backup.encrypted,
    store: options.store.display,
    bytes,
    databases: manifest.databases.length,
    startedAt: started.toISOString(),
    durationMs: Date.now() - started.getTime(),
    retention,
  };
}
