/**
 * Names of stored backups: `<prefix>-backup-<UTC yyyymmdd-hhmmss>.zip`, or `.zip.age` once encrypted.
 * A name is the only thing a client says about a stored backup, and it becomes a file name or an
 * object key, so it is checked strictly: one path segment, nothing but this shape, a real UTC time.
 */
import { backupFileName, FILE_PREFIX_PATTERN } from '../archive/file-name.js';
import { StoreError } from '../errors.js';

const NAME_PATTERN = /^([A-Za-z0-9._-]{1,64})-backup-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})\.zip(\.age)?$/;

export interface BackupName {
  name: string;
  /** The part before `-backup-`. */
  prefix: string;
  /** The UTC time in the name (whole seconds). */
  time: Date;
  /** `.zip.age`: an age-encrypted zip. */
  encrypted: boolean;
}

/** The parts of a stored backup's name, or null for anything else (a `.partial`, a stranger's file, `../x`). */
export function parseBackupName(name: string): BackupName | null {
  if (typeof name !== 'string') return null;
  const m = NAME_PATTERN.exec(name);
  if (m === null) return null;
  const [, prefix = '', y, mo, d, h, mi, s, age] = m;
  if (!FILE_PREFIX_PATTERN.test(prefix) || prefix.startsWith('.')) return null;
  const time = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  // 20260231 would roll over into March: only a time that prints back to the same name is real.
  if (Number.isNaN(time.getTime()) || backupFileName(prefix, time) !== name.replace(/\.age$/, '')) return null;
  return { name, prefix, time, encrypted: age !== undefined };
}

/** Parses a name a client gave, or throws INVALID_BACKUP_NAME (400 / exit 2) before any store is asked. */
export function checkBackupName(name: string): BackupName {
  const parsed = parseBackupName(name);
  if (parsed === null) {
    throw new StoreError('INVALID_BACKUP_NAME', `${JSON.stringify(String(name).slice(0, 200))} is not a backup name: expected <prefix>-backup-<UTC yyyymmdd-hhmmss>.zip`);
  }
  return parsed;
}

/** Newest first by the time in the name, then by name, so the order never depends on the store. */
export function newestFirst<T extends { name: string; time: Date }>(a: T, b: T): number {
  return b.time.getTime() - a.time.getTime() || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}
