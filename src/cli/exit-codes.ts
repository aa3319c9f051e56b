import type { ErrorCode } from '../errors.js';

/** The one table from error codes to process exit codes. 0 is success; 1 is anything unexpected. */
export const EXIT_CODES: Record<ErrorCode, number> = {
  INVALID_OPTION: 2,
  UNKNOWN_DATABASE: 2,
  UNAUTHORIZED: 2,
  FORBIDDEN: 2,
  INVALID_STORE_URL: 2,
  INVALID_BACKUP_NAME: 2,
  STORE_NOT_CONFIGURED: 2,
  DATA_DIR_NOT_FOUND: 3,
  DATA_DIR_UNREADABLE: 3,
  DATABASE_TOO_LARGE: 4,
  PAYLOAD_TOO_LARGE: 4,
  SKIPPED_IN_STRICT_MODE: 5,
  SNAPSHOT_FAILED: 5,
  SNAPSHOT_CORRUPT: 5,
  ASSET_CHANGED: 5,
  ASSET_UNREADABLE: 5,
  ARCHIVE_INVALID: 6,
  RESTORE_REFUSED: 7,
  RESTORE_FAILED: 7,
  OUTPUT_FAILED: 8,
  BACKUP_NOT_FOUND: 9,
  STORE_DENIED: 9,
  STORE_FAILED: 9,
  DECRYPTION_FAILED: 10,
  BUSY: 75, // EX_TEMPFAIL: try again later
  ABORTED: 130, // as for SIGINT
};

export const EXIT_OK = 0;
export const EXIT_UNEXPECTED = 1;
