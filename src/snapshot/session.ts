import type { Worker } from 'node:worker_threads';
import { AbortedError, DbzipError } from '../errors.js';
import type { CheckMode } from '../options.js';
import { leaseWorker, returnWorker, workerGone, workerReturning } from './worker-pool.js';
import type { PinResult, ProbeResult, Request, Response, SnapshotFailure, SnapshotMeta } from './protocol.js';

/** One database image, checked, held by the worker until it is read. */
export interface Snapshot extends SnapshotMeta {
  /** The image in chunks, in order; read it once. Ends with an error if it cannot be read whole. */
  chunks(): AsyncGenerator<Buffer>;
  /** The image's SHA-256 (hex), known once the last chunk is read. */
  readonly sha256: Promise<string>;
}

export type SnapshotOutcome = { ok: true; snapshot: Snapshot } | { ok: false; failure: SnapshotFailure };

/** Omit that keeps a union a union. */
type RequestBody<T extends Request['type']> = Omit<Extract<Request, { type: T }>, 'id'>;

type Pending = { resolve: (response: Response) => void; reject: (error: Error) => void };

/** 1 MiB per message keeps each step on the main thread (a copy, a CRC) near a millisecond. */
const CHUNK_BYTES = 1024 * 1024;
/** Chunks requested ahead (8 MiB), so the worker copies and hashes the next ones while the main thread writes. */
const READ_AHEAD = 8;

/**
 * The main thread's handle on one backup's work in a snapshot worker (leased from the pool in
 * worker-pool.ts). Requests run one at a time, in order. `close()` (or an aborted signal) rejects
 * what is pending and resets the worker, which closes every SQLite handle and frees the image it
 * holds for this session, then gives the worker back for the next backup.
 */
export class SnapshotSession {
  /** Resolves with the worker once the pool hands one out, listeners attached. */
  readonly #worker: Promise<Worker>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Error | undefined;
  /** Set by the first close(): resolves once the worker is reset and given back (or gone). */
  #released: Promise<void> | undefined;
  #onReset: (() => void) | undefined;
  #removeAbortListener: (() => void) | undefined;
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

  constructor(signal?: AbortSignal) {
    this.#worker = leaseWorker().then((worker) => {
      worker.on('message', this.#onMessage);
      worker.on('error', this.#onError);
      worker.on('exit', this.#onExit);
      return worker;
    });
    if (signal !== undefined) {
      const onAbort = () => void this.close(new AbortedError(undefined, { cause: signal.reason }));
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.#removeAbortListener = () => signal.removeEventListener('abort', onAbort);
      }
    }
  }

  #fail(error: Error): void {
    this.#closed ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  #request<T extends Request['type']>(request: RequestBody<T>): Promise<Extract<Response, { type: T }>> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (r: Response) => void, reject });
      // In order: callbacks on one promise run in the order they were added. Not if closed meanwhile.
      void this.#worker.then((worker) => this.#pending.has(id) && worker.postMessage({ ...request, id }));
    });
  }

  /** Confirms each path is SQLite (by SQLite's own header check) and reads its size and journal mode. */
  async probe(paths: string[], busyTimeoutMs: number): Promise<ProbeResult[]> {
    return (await this.#request<'probe'>({ type: 'probe', paths, busyTimeoutMs })).results;
  }

  /** Opens a read transaction on each path, back to back; each stays open until its snapshot. */
  async pin(paths: string[], busyTimeoutMs: number): Promise<PinResult> {
    return (await this.#request<'pin'>({ type: 'pin', paths, busyTimeoutMs })).result;
  }

  /** `check: 'none'` skips `quick_check` (the caller records that the image was not checked). */
  async snapshot(path: string, maxBytes: number, busyTimeoutMs: number, check: CheckMode): Promise<SnapshotOutcome> {
    const response = await this.#request<'snapshot'>({ type: 'snapshot', path, maxBytes, busyTimeoutMs, check });
    if (!response.ok) return { ok: false, failure: response.failure };
    const { meta } = response;
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
        const pending = this.#request<'read'>({ type: 'read', bytes: length });
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
   * Rejects pending requests with `reason`, has the worker close this session's SQLite handles and
   * free its image, and gives the worker back. Resolves once that is done; safe to call more than once.
   * A request the worker is in (a `serialize()` of a large database) finishes first: SQLite cannot be
   * interrupted from another thread, and neither could `terminate()` do it.
   */
  close(reason: Error = new AbortedError('the snapshot session was closed')): Promise<void> {
    this.#fail(reason);
    this.#released ??= this.#release();
    return this.#released;
  }

  async #release(): Promise<void> {
    this.#removeAbortListener?.();
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
