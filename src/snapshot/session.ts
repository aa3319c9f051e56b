import type { Worker } from 'node:worker_threads';
import { AbortedError, DbzipError } from '../errors.js';
import type { JournalMode } from '../archive/manifest.js';
import type { CheckMode } from '../options.js';
import { closeHandshake, createHandshake } from './handshake.js';
import { InProcessLink } from './in-process-link.js';
import { leaseWorker, returnWorker, workerGone, workerReturning } from './worker-pool.js';
import { CHUNK_BYTES, type PinResult, type ProbeResult, type Request, type RequestBody, type Response, type SnapshotFailure, type SnapshotLink, type SnapshotMeta } from './protocol.js';

/** One database image, checked, held by the worker until it is read. */
export interface Snapshot extends SnapshotMeta {
  /** The image in chunks, in order; read it once. Ends with an error if it cannot be read whole. */
  chunks(): AsyncGenerator<Buffer>;
  /** The image's SHA-256 (hex), known once the last chunk is read. */
  readonly sha256: Promise<string>;
}

export type SnapshotOutcome = { ok: true; snapshot: Snapshot } | { ok: false; failure: SnapshotFailure };

type Pending = { resolve: (response: Response) => void; reject: (error: Error) => void };

/** Chunks requested ahead (8 MiB), so the worker copies and hashes the next ones while the main thread writes. */
const READ_AHEAD = 8;

/**
 * One leased worker: requests answered in order, and the reset that gives it back. `close()` rejects
 * what is pending and resets the worker, which closes every SQLite handle and frees the image it holds
 * for this session, then returns it to the pool for the next backup.
 */
class WorkerLink implements SnapshotLink {
  /** Resolves with the worker once the pool hands one out, listeners attached. */
  readonly #worker: Promise<Worker>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Error | undefined;
  /** Set by the first close(): resolves once the worker is reset and given back (or gone). */
  #released: Promise<void> | undefined;
  #onReset: (() => void) | undefined;
  #exited = false;
  readonly #onMessage = (response: Response) => {
    if (response.type === 'reset') {
      this.#onReset?.();
      return;
    }
    const pending = this.#pending.get(response.id);
    this.#pending.delete(response.id);
    if (response.type === 'crash') pending?.reject(new DbzipError('SNAPSHOT_FAILED', `snapshot worker failed: ${response.message}`));
    else pending?.resolve(response);
  };
  readonly #onError = (error: Error) => this.#fail(new DbzipError('SNAPSHOT_FAILED', `snapshot worker failed: ${error.message}`, { cause: error }));
  readonly #onExit = () => {
    this.#exited = true;
    this.#fail(this.#closed ?? new DbzipError('SNAPSHOT_FAILED', 'snapshot worker exited unexpectedly'));
    this.#onReset?.();
  };

  constructor() {
    this.#worker = leaseWorker().then((worker) => {
      worker.on('message', this.#onMessage);
      worker.on('error', this.#onError);
      worker.on('exit', this.#onExit);
      return worker;
    });
  }

  #fail(error: Error): void {
    this.#closed ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  request<T extends Request['type']>(request: RequestBody<T>): Promise<Extract<Response, { type: T }>> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (r: Response) => void, reject });
      // In order: callbacks on one promise run in the order they were added. Not if closed meanwhile.
      void this.#worker.then((worker) => this.#pending.has(id) && worker.postMessage({ ...request, id }));
    });
  }

  close(reason: Error): Promise<void> {
    this.#fail(reason);
    this.#released ??= this.#release();
    return this.#released;
  }

  async #release(): Promise<void> {
    // Synchronously, so a backup that starts right after this one waits for this worker instead of starting another.
    workerReturning();
    const worker = await this.#worker;
    if (!this.#exited) {
      await new Promise<void>((resolve) => {
        this.#onReset = resolve;
        worker.postMessage({ id: this.#nextId++, type: 'reset' } satisfies Request);
      });
    }
    worker.off('message', this.#onMessage);
    worker.off('error', this.#onError);
    worker.off('exit', this.#onExit);
    if (this.#exited) workerGone();
    else returnWorker(worker);
  }
}

/**
 * Rollback-journal databases from this size are checked alongside their serialize() by a second worker
 * (handshake.ts): below it the read is over before a check could join, and a second thread is not worth starting.
 */
const CHECK_ALONGSIDE_FROM_BYTES = 16 * 1024 * 1024;

/** Whether a database's quick_check is worth a second worker (the reader still decides, by its own facts). */
export function checksAlongside(db: { journalMode: JournalMode; bytes: number }, check: CheckMode): boolean {
  return check === 'quick' && db.journalMode === 'rollback' && db.bytes >= CHECK_ALONGSIDE_FROM_BYTES;
}

/**
 * The main thread's handle on one backup's work in snapshot workers (leased from the pool in
 * worker-pool.ts): a reader that probes, pins, serializes and streams (or, for a small data dir in the
 * CLI, the calling thread: `runInProcess()`), and, for large rollback-journal databases, a checker that
 * runs quick_check at the same time. `close()` (or an aborted signal) rejects what is pending and resets
 * both.
 */
export class SnapshotSession {
  /** Chosen at the first request (see `runInProcess()`). */
  #reader: SnapshotLink | undefined;
  #checker: WorkerLink | undefined;
  /** The handshake of the snapshot in progress, ended by close() so a waiting checker never waits for a read that will not come. */
  #handshake: SharedArrayBuffer | undefined;
  #closed: Promise<void> | undefined;
  #closeReason: Error | undefined;
  #removeAbortListener: (() => void) | undefined;

  constructor(signal?: AbortSignal) {
    if (signal !== undefined) {
      const onAbort = () => void this.close(new AbortedError(undefined, { cause: signal.reason }));
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.#removeAbortListener = () => signal.removeEventListener('abort', onAbort);
      }
    }
  }

  /**
   * Before the first request: read on the calling thread instead of a worker (in-process-link.ts), if no
   * other session does. Each request then blocks the event loop: for small data in a CLI only.
   */
  runInProcess(): void {
    if (this.#reader === undefined && this.#closeReason === undefined) this.#reader = InProcessLink.claim();
  }

  /** The reader's link; once closed, never a new one (its worker would be nobody's to give back). */
  #link(): SnapshotLink {
    if (this.#closeReason !== undefined) throw this.#closeReason;
    this.#reader ??= new WorkerLink();
    return this.#reader;
  }

  /** Confirms each path is SQLite (by SQLite's own header check) and reads its size and journal mode. */
  async probe(paths: string[], busyTimeoutMs: number): Promise<ProbeResult[]> {
    return (await this.#link().request<'probe'>({ type: 'probe', paths, busyTimeoutMs })).results;
  }

  /** Opens a read transaction on each path, back to back; each stays open until its snapshot. */
  async pin(paths: string[], busyTimeoutMs: number): Promise<PinResult> {
    return (await this.#link().request<'pin'>({ type: 'pin', paths, busyTimeoutMs })).result;
  }

  /** Starts the checker worker now, so it is ready by the first database `checksAlongside()` picks; resolves once it listens. */
  async prepareChecker(): Promise<void> {
    if (this.#closed !== undefined) return;
    this.#checker ??= new WorkerLink();
    await this.#checker.request<'probe'>({ type: 'probe', paths: [], busyTimeoutMs: 0 });
  }

  /**
   * `check: 'none'` skips `quick_check` (the caller records that the image was not checked).
   * `alongside`: a second worker checks the database while this one serializes it (see handshake.ts).
   */
  async snapshot(path: string, maxBytes: number, busyTimeoutMs: number, check: CheckMode, alongside = false): Promise<SnapshotOutcome> {
    let checked: Promise<Extract<Response, { type: 'check' }>> | undefined;
    let handshake: SharedArrayBuffer | undefined;
    if (alongside && check === 'quick') {
      void this.prepareChecker().catch(() => {});
      handshake = createHandshake();
      this.#handshake = handshake;
      checked = this.#checker?.request<'check'>({ type: 'check', path, busyTimeoutMs, handshake });
      // Not awaited when the reader checks for itself: its end is nobody's to report.
      checked?.catch(() => {});
    }
    const response = await this.#link().request<'snapshot'>({ type: 'snapshot', path, maxBytes, busyTimeoutMs, check, handshake });
    if (!response.ok) return { ok: false, failure: response.failure };
    const { meta } = response;
    if (meta.checkedOn === 'alongside') {
      const failure = checkFailure(meta, await checked);
      if (failure !== undefined) return { ok: false, failure };
    }
    let settle!: (sha256: string) => void;
    const sha256 = new Promise<string>((resolve) => (settle = resolve));
    return { ok: true, snapshot: { ...meta, sha256, chunks: () => this.#chunks(meta.bytes, settle) } };
  }

  async *#chunks(bytes: number, settle: (sha256: string) => void): AsyncGenerator<Buffer> {
    const ahead: Promise<Extract<Response, { type: 'read' }>>[] = [];
    let requested = 0;
    let received = 0;
    while (received < bytes) {
      while (ahead.length < READ_AHEAD && requested < bytes) {
        const length = Math.min(CHUNK_BYTES, bytes - requested);
        const pending = this.#link().request<'read'>({ type: 'read', bytes: length });
        // Left behind when the reader stops early: its failure (the session closing) is nobody's to report.
        pending.catch(() => {});
        ahead.push(pending);
        requested += length;
      }
      const { chunk, sha256 } = await ahead.shift()!;
      received += chunk.byteLength;
      if (sha256 !== undefined) settle(sha256);
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  }

  /**
   * Rejects pending requests with `reason`, has the workers close this session's SQLite handles and
   * free its image, and gives them back. Resolves once that is done; safe to call more than once.
   * A request a worker is in (a `serialize()` of a large database) finishes first: SQLite cannot be
   * interrupted from another thread, and neither could `terminate()` do it.
   */
  close(reason: Error = new AbortedError('the snapshot session was closed')): Promise<void> {
    this.#closeReason ??= reason;
    this.#closed ??= (async () => {
      this.#removeAbortListener?.();
      if (this.#handshake !== undefined) closeHandshake(this.#handshake);
      await Promise.all([this.#reader?.close(reason), this.#checker?.close(reason)]);
    })();
    return this.#closed;
  }
}

/** The checker's verdict on an image the reader left to it: it must have joined, and seen the same size. */
function checkFailure(meta: SnapshotMeta, checked: Extract<Response, { type: 'check' }> | undefined): SnapshotFailure | undefined {
  if (checked === undefined || !checked.joined) return { code: 'SNAPSHOT_FAILED', reason: 'the check alongside the read did not report' };
  if (checked.pageCount !== meta.pageCount) return { code: 'SNAPSHOT_FAILED', reason: `the check alongside saw ${checked.pageCount} pages, the read ${meta.pageCount}` };
  if (!checked.ok) return { code: 'SNAPSHOT_CORRUPT', reason: `quick_check of the snapshot failed: ${checked.messages.slice(0, 5).join('; ')}` };
  return undefined;
}
