/**
 * Messages between SnapshotSession (main thread) and what answers them: a snapshot worker thread, or
 * requests.ts on the calling thread (in-process-link.ts).
 * Snapshots are taken in a worker so that reading, checking and hashing a large
 * database never blocks the event loop. The image stays in the worker: the main thread
 * reads it in chunks, each transferred (not cloned), so only one copy of it ever exists.
 */
import type { JournalMode, SkipCode } from '../archive/manifest.js';
import type { CheckMode } from '../options.js';

/** Bytes per `read`: 1 MiB keeps each step on the main thread (a write, a CRC) near a millisecond. */
export const CHUNK_BYTES = 1024 * 1024;

export interface DatabaseFacts {
  journalMode: JournalMode;
  pageSize: number;
  pageCount: number;
  userVersion: number;
}

/** A skip code, or: the process ran out of file descriptors (never a reason to skip a database). */
export type FailureCode = SkipCode | 'OUT_OF_DESCRIPTORS';

export type ProbeResult = ({ ok: true } & DatabaseFacts) | { ok: false; code: FailureCode; reason: string };

export interface PinnedDatabase extends DatabaseFacts {
  path: string;
}

export interface PinResult {
  pinned: PinnedDatabase[];
  failed: { path: string; code: SkipCode; reason: string }[];
  /** Paths left unpinned (read later, each at its own moment) to stay within the descriptor budget, and why. */
  unpinned: { paths: string[]; reason: string } | null;
  /** From the first pin's read transaction start to the last's, in ms. */
  windowMs: number;
}

/**
 * Where `quick_check` ran: on the connection that read the image, inside its read transaction (no copy);
 * `alongside`: on a second connection in another worker whose read lock overlapped the reader's
 * (rollback journal, see handshake.ts), at the same time as serialize(); on a copy of the image (a small
 * rollback-journal database, or an image with an all-zero page that is not free: the connection's check
 * does not vouch for it); `none` with `check: 'none'`.
 */
export type CheckedOn = 'connection' | 'alongside' | 'copy' | 'none';

/** How the image was read: the database file itself under the read lock (rollback journal, see file-image.ts), or serialize(). */
export type ReadFrom = 'file' | 'serialize';

export interface SnapshotMeta extends DatabaseFacts {
  /** The image's length: page_count × page_size. */
  bytes: number;
  pinned: boolean;
  checkedOn: CheckedOn;
  readFrom: ReadFrom;
}

/** Why a snapshot failed: skippable (`SNAPSHOT_FAILED`, `SNAPSHOT_CORRUPT`, …) or over the memory budget. */
export interface SnapshotFailure {
  code: FailureCode | 'SNAPSHOT_CORRUPT' | 'DATABASE_TOO_LARGE';
  reason: string;
  bytes?: number;
}

/** A check alongside: it joined the reader's moment (and what quick_check said), or it could not. */
export type CheckOutcome = { joined: false } | { joined: true; pageCount: number; ok: boolean; messages: string[] };

export type Request =
  | { id: number; type: 'probe'; paths: string[]; busyTimeoutMs: number }
  | { id: number; type: 'pin'; paths: string[]; busyTimeoutMs: number }
  /** `handshake`: a checker worker was asked to check this database alongside (see handshake.ts). */
  | { id: number; type: 'snapshot'; path: string; maxBytes: number; busyTimeoutMs: number; check: CheckMode; handshake?: SharedArrayBuffer | undefined }
  /** quick_check of `path` in a read transaction that overlaps the reader's, if it can join in time. */
  | { id: number; type: 'check'; path: string; busyTimeoutMs: number; handshake: SharedArrayBuffer }
  /** The next `bytes` of the last snapshot's image. */
  | { id: number; type: 'read'; bytes: number }
  /** Ends the session's job: close its SQLite handles, free its image. The worker then serves the next session. */
  | { id: number; type: 'reset' };

export type Response =
  | { id: number; type: 'probe'; results: ProbeResult[] }
  | { id: number; type: 'pin'; result: PinResult }
  | { id: number; type: 'snapshot'; ok: true; meta: SnapshotMeta }
  | { id: number; type: 'snapshot'; ok: false; failure: SnapshotFailure }
  | ({ id: number; type: 'check' } & CheckOutcome)
  /** `sha256` (hex, of the whole image) comes with the last chunk, when the worker lets go of the image. */
  | { id: number; type: 'read'; chunk: Uint8Array; sha256?: string }
  | { id: number; type: 'reset' }
  | { id: number; type: 'crash'; message: string };

/** A request as the session writes it: the link numbers it. (An Omit that keeps a union a union.) */
export type RequestBody<T extends Request['type']> = Omit<Extract<Request, { type: T }>, 'id'>;

/** Where a session's requests go: answered in order; `close()` rejects what is pending and frees what the session held. */
export interface SnapshotLink {
  request<T extends Request['type']>(request: RequestBody<T>): Promise<Extract<Response, { type: T }>>;
  close(reason: Error): Promise<void>;
}
