import type { Readable } from 'node:stream';
import type { BackupName } from './names.js';

/** One finished backup in a store. */
export interface StoredBackup extends BackupName {
  /** Bytes, as the store reports them. */
  size: number;
}

export interface PutOptions {
  /** The exact length when it is known in advance (a stored zip): one PUT with that Content-Length, and a check at the end. */
  size?: number | null;
  /** Cancels the upload; nothing is left behind (no `.partial`, no open multipart upload). */
  signal?: AbortSignal;
}

/**
 * Where finished backups are kept: a local folder or an S3-compatible bucket. Every method takes
 * a backup name (see names.ts) and refuses anything else before touching the store, so no name can
 * reach outside the folder or the key prefix. A backup becomes visible (to `list`, `get`) only once
 * it is complete: a failed or cancelled `put` leaves nothing that is listed.
 */
export interface BackupStore {
  readonly kind: 'folder' | 's3';
  /** Where it is, for messages and the page: a folder path or `s3://bucket/prefix (endpoint)`. Never holds a credential. */
  readonly display: string;
  /** Streams `body` into the store under `name`; refuses a name that is already there. Resolves with the bytes written. */
  put(name: string, body: Readable, options?: PutOptions): Promise<{ bytes: number }>;
  /** Every backup in the store, newest first; other files or keys are not listed. */
  list(): Promise<StoredBackup[]>;
  /** One backup's size and time; BACKUP_NOT_FOUND when absent. */
  stat(name: string): Promise<StoredBackup>;
  /** The whole backup as a stream, with its size. */
  get(name: string, signal?: AbortSignal): Promise<{ stream: Readable; size: number }>;
  /** Bytes `start` to `end` (exclusive) of a backup, as a stream that fails if the store does. */
  getRange(name: string, start: number, end: number): Readable;
  /** Removes one backup; BACKUP_NOT_FOUND when absent. */
  delete(name: string): Promise<void>;
  /** Frees sockets and timers; the store is not used afterwards. */
  close(): void;
}
