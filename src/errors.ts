/**
 * Every error dbzip throws on purpose is a DbzipError with a stable `code`.
 * The HTTP layer (src/http/error-status.ts) and the CLI (src/cli/exit-codes.ts)
 * each map codes to statuses / exit codes in exactly one table.
 * This module imports nothing so every layer may use it.
 */

export type ErrorCode =
  | 'INVALID_OPTION'
  | 'DATA_DIR_NOT_FOUND'
  | 'DATA_DIR_UNREADABLE'
  | 'DATABASE_TOO_LARGE'
  | 'UNKNOWN_DATABASE'
  | 'SKIPPED_IN_STRICT_MODE'
  | 'SNAPSHOT_FAILED'
  | 'SNAPSHOT_CORRUPT'
  | 'ASSET_CHANGED'
  | 'ASSET_UNREADABLE'
  | 'BUSY'
  | 'ABORTED'
  | 'ARCHIVE_INVALID'
  | 'RESTORE_FAILED'
  | 'RESTORE_REFUSED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'OUTPUT_FAILED'
  | 'INVALID_STORE_URL'
  | 'INVALID_BACKUP_NAME'
  | 'STORE_NOT_CONFIGURED'
  | 'BACKUP_NOT_FOUND'
  | 'STORE_DENIED'
  | 'STORE_FAILED'
  | 'DECRYPTION_FAILED';

export interface DbzipErrorOptions {
  cause?: unknown;
}

export class DbzipError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: DbzipErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DbzipError';
    this.code = code;
  }
}

/** An option has a wrong type or value; the message names the option. */
export class OptionsError extends DbzipError {
  constructor(message: string, options?: DbzipErrorOptions) {
    super('INVALID_OPTION', message, options);
    this.name = 'OptionsError';
  }
}

/** The data directory is missing, not a directory, or cannot be listed. */
export class DataDirError extends DbzipError {
  readonly path: string;

  constructor(code: 'DATA_DIR_NOT_FOUND' | 'DATA_DIR_UNREADABLE', path: string, message: string, options?: DbzipErrorOptions) {
    super(code, message, options);
    this.name = 'DataDirError';
    this.path = path;
  }
}

/** A database is larger than the memory budget; raised before any byte of a zip is produced. */
export class DatabaseTooLargeError extends DbzipError {
  readonly path: string;
  readonly bytes: number;
  readonly limit: number;

  constructor(path: string, bytes: number, limit: number) {
    super(
      'DATABASE_TOO_LARGE',
      `database ${path} is ${bytes} bytes, over the memory budget of ${limit} bytes (option maxDatabaseBytes)`,
    );
    this.name = 'DatabaseTooLargeError';
    this.path = path;
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** A database name was asked for that the data directory does not hold. */
export class UnknownDatabaseError extends DbzipError {
  readonly names: readonly string[];

  constructor(names: readonly string[]) {
    super('UNKNOWN_DATABASE', `unknown database${names.length === 1 ? '' : 's'}: ${names.join(', ')}`);
    this.name = 'UnknownDatabaseError';
    this.names = names;
  }
}

/** Strict mode turns a skipped file into a failure. */
export class StrictModeError extends DbzipError {
  constructor(path: string, reason: string) {
    super('SKIPPED_IN_STRICT_MODE', `strict mode: ${path} would be skipped: ${reason}`);
    this.name = 'StrictModeError';
  }
}

/** Taking or checking one database's snapshot failed. */
export class SnapshotError extends DbzipError {
  readonly path: string;

  constructor(code: 'SNAPSHOT_FAILED' | 'SNAPSHOT_CORRUPT', path: string, message: string, options?: DbzipErrorOptions) {
    super(code, message, options);
    this.name = 'SnapshotError';
    this.path = path;
  }
}

/** An asset could not be read, or changed while it was archived. */
export class AssetError extends DbzipError {
  readonly path: string;

  constructor(code: 'ASSET_CHANGED' | 'ASSET_UNREADABLE', path: string, message: string, options?: DbzipErrorOptions) {
    super(code, message, options);
    this.name = 'AssetError';
    this.path = path;
  }
}

/** Too many backups or restores are running at once. */
export class BusyError extends DbzipError {
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds: number) {
    super('BUSY', message);
    this.name = 'BusyError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The consumer cancelled the work (stream destroyed, signal aborted, client gone). */
export class AbortedError extends DbzipError {
  constructor(message = 'the backup was cancelled', options?: DbzipErrorOptions) {
    super('ABORTED', message, options);
    this.name = 'AbortedError';
  }
}

/** An archive failed verification; `problems` lists every problem found, not just the first. */
export class ArchiveError extends DbzipError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: DbzipErrorOptions) {
    super(
      'ARCHIVE_INVALID',
      problems.length === 1 ? `invalid archive: ${problems[0]}` : `invalid archive (${problems.length} problems):\n- ${problems.join('\n- ')}`,
      options,
    );
    this.name = 'ArchiveError';
    this.problems = problems;
  }
}

/** A restore was refused before anything changed, or failed while applying. */
export class RestoreError extends DbzipError {
  constructor(code: 'RESTORE_FAILED' | 'RESTORE_REFUSED', message: string, options?: DbzipErrorOptions) {
    super(code, message, options);
    this.name = 'RestoreError';
  }
}

/** A request body or archive exceeded a configured size limit. */
export class PayloadTooLargeError extends DbzipError {
  constructor(message: string) {
    super('PAYLOAD_TOO_LARGE', message);
    this.name = 'PayloadTooLargeError';
  }
}

/** Writing the output (file or stream) failed. */
export class OutputError extends DbzipError {
  constructor(message: string, options?: DbzipErrorOptions) {
    super('OUTPUT_FAILED', message, options);
    this.name = 'OutputError';
  }
}

/** The message of anything thrown, for a line that names its context. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A backup store URL (`s3://bucket/prefix?…`, a folder) that cannot be used; the message says why. */
export class StoreUrlError extends DbzipError {
  constructor(message: string, options?: DbzipErrorOptions) {
    super('INVALID_STORE_URL', message, options);
    this.name = 'StoreUrlError';
  }
}

/**
 * A backup store could not do what was asked. `INVALID_BACKUP_NAME`: the name is not
 * `<prefix>-backup-<UTC yyyymmdd-hhmmss>.zip` (nothing was looked up); `BACKUP_NOT_FOUND`: the store
 * does not hold it; `STORE_NOT_CONFIGURED`: no store was given; `STORE_DENIED`: the store refused the
 * credentials (or there are none); `STORE_FAILED`: anything else (network, disk, an upload cut off).
 * Messages name the store by its display URL, never with a credential.
 */
export class StoreError extends DbzipError {
  constructor(
    code: 'INVALID_BACKUP_NAME' | 'BACKUP_NOT_FOUND' | 'STORE_NOT_CONFIGURED' | 'STORE_DENIED' | 'STORE_FAILED',
    message: string,
    options?: DbzipErrorOptions,
  ) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

/**
 * Why an encrypted archive could not be read; see docs/encryption.md. `DAMAGED` covers tampering and
 * truncation alike (a file cut inside its last chunk cannot be told from one whose last chunk was
 * altered); the message says which when the length alone shows it.
 */
export type DecryptionFailure = 'NO_KEY' | 'NOT_AGE' | 'WRONG_KEY' | 'DAMAGED';

/**
 * An age-encrypted archive cannot be decrypted: no key given, a key that does not match, or a file
 * that does not authenticate. Raised before any byte of it is used. Never holds a key or passphrase.
 */
export class DecryptionError extends DbzipError {
  readonly reason: DecryptionFailure;
  readonly path: string;

  constructor(reason: DecryptionFailure, path: string, message: string, options?: DbzipErrorOptions) {
    super('DECRYPTION_FAILED', message, options);
    this.name = 'DecryptionError';
    this.reason = reason;
    this.path = path;
  }
}

/** Wraps anything thrown into a DbzipError without losing the original as `cause`. */
export function toDbzipError(error: unknown, fallback: ErrorCode, context: string): DbzipError {
  if (error instanceof DbzipError) return error;
  return new DbzipError(fallback, `${context}: ${errorMessage(error)}`, { cause: error });
}
