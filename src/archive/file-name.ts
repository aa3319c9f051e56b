const pad = (n: number): string => String(n).padStart(2, '0');

/** `<prefix>-backup-<UTC yyyymmdd-hhmmss>.zip`: sorts by time, safe in any file system and header. */
export function backupFileName(prefix: string, date: Date): string {
  const stamp = `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
  return `${prefix}-backup-${stamp}.zip`;
}

/** A prefix must be a plain, header-safe file name part. */
export const FILE_PREFIX_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
