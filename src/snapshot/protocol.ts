/**
 * Messages between SnapshotSession (main thread) and snapshot-worker (worker thread).
 * Snapshots are taken in a worker so that reading, checking and hashing a large
 * database never blocks the event loop; the image crosses back by transfer, not copy.
 */
import type { JournalMode, SkipCode } from '../archive/manifest.js';

export interface DatabaseFacts {
  journalMode: JournalMode;
  pageSize: number;
  pageCount: number;
  userVersion: number;
}

export type ProbeResult = ({ ok: true } & DatabaseFacts) | { ok: false; code: SkipCode; reason: string };

export interface PinnedDatabase extends DatabaseFacts {
  path: string;
}

export interface PinResult {
  pinned: PinnedDatabase[];
  failed: { path: string; code: SkipCode; reason: string }[];
  /** From the first pin's read transaction start to the last's, in ms. */
  windowMs: number;
}

export interface SnapshotMeta extends DatabaseFacts {
  sha256: string;
  crc32: number;
  pinned: boolean;
}

/** Why a snapshot failed: skippable (`SNAPSHOT_FAILED`, `SNAPSHOT_CORRUPT`, …) or over the memory budget. */
export interface SnapshotFailure {
  code: SkipCode | 'SNAPSHOT_CORRUPT' | 'DATABASE_TOO_LARGE';
  reason: string;
  bytes?: number;
}

export type Request =
  | { id: number; type: 'probe'; paths: string[]; busyTimeoutMs: number }
  | { id: number; type: 'pin'; paths: string[]; busyTimeoutMs: number }
  | { id: number; type: 'snapshot'; path: string; maxBytes: number; busyTimeoutMs: number };

export type Response =
  | { id: number; type: 'probe'; results: ProbeResult[] }
  | { id: number; type: 'pin'; result: PinResult }
  | { id: number; type: 'snapshot'; ok: true; image: Uint8Array; meta: SnapshotMeta }
  | { id: number; type: 'snapshot'; ok: false; failure: SnapshotFailure }
  | { id: number; type: 'crash'; message: string };
