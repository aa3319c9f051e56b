/**
 * Messages between SnapshotSession (main thread) and snapshot-worker (worker thread).
 * Snapshots are taken in a worker so that reading, checking and hashing a large
 * database never blocks the event loop. The image stays in the worker: the main thread
 * reads it in chunks, each transferred (not cloned), so only one copy of it ever exists.
 */
import type { JournalMode, SkipCode } from '../archive/manifest.js';
import type { CheckMode } from '../options.js';

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
 * Where `quick_check` ran: on the connection that read the image, inside its read transaction (no copy),
 * or on a copy of the image (a small rollback-journal database, or an image with an all-zero page that
 * is not free: the connection's check does not vouch for it); `none` with `check: 'none'`.
 */
export type CheckedOn = 'connection' | 'copy' | 'none';

export interface SnapshotMeta extends DatabaseFacts {
  /** The image's length: page_count × page_size. */
  bytes: number;
  pinned: boolean;
  checkedOn: CheckedOn;
}

/** Why a snapshot failed: skippable (`SNAPSHOT_FAILED`, `SNAPSHOT_CORRUPT`, …) or over the memory budget. */
export interface SnapshotFailure {
  code: FailureCode | 'SNAPSHOT_CORRUPT' | 'DATABASE_TOO_LARGE';
  reason: string;
  bytes?: number;
}

export type Request =
  | { id: number; type: 'probe'; paths: string[]; busyTimeoutMs: number }
  | { id: number; type: 'pin'; paths: string[]; busyTimeoutMs: number }
  | { id: number; type: 'snapshot'; path: string; maxBytes: number; busyTimeoutMs: number; check: CheckMode }
  /** The next `bytes` of the last snapshot's image. */
  | { id: number; type: 'read'; bytes: number }
  /** Ends the session's job: close its SQLite handles, free its image. The worker then serves the next session. */
  | { id: number; type: 'reset' };

export type Response =
  | { id: number; type: 'probe'; results: ProbeResult[] }
  | { id: number; type: 'pin'; result: PinResult }
  | { id: number; type: 'snapshot'; ok: true; meta: SnapshotMeta }
  | { id: number; type: 'snapshot'; ok: false; failure: SnapshotFailure }
  /** `sha256` (hex, of the whole image) comes with the last chunk, when the worker lets go of the image. */
  | { id: number; type: 'read'; chunk: Uint8Array; sha256?: string }
  | { id: number; type: 'reset' }
  | { id: number; type: 'crash'; message: string };
