/**
 * A snapshot session answered on the calling thread by requests.ts, with no worker: for a data dir so
 * small that a worker's start-up (a thread, Node's bootstrap, better-sqlite3: about 100 ms on two cores)
 * would be most of the backup. Each request blocks the event loop while it runs, so only the CLI asks
 * for it, and only below a size (see `IN_PROCESS_UP_TO_BYTES` in the CLI). requests.ts keeps one backup's
 * handles and image per thread, so one such session runs at a time: `claim()` says no to a second.
 */
import { DbzipError } from '../errors.js';
import { handle, reset } from './requests.js';
import type { Request, RequestBody, Response, SnapshotLink } from './protocol.js';

let claimed = false;

export class InProcessLink implements SnapshotLink {
  #nextId = 1;
  #closed: Error | undefined;

  private constructor() {}

  /** The calling thread's link, unless another session holds it. */
  static claim(): InProcessLink | undefined {
    if (claimed) return undefined;
    claimed = true;
    return new InProcessLink();
  }

  request<T extends Request['type']>(request: RequestBody<T>): Promise<Extract<Response, { type: T }>> {
    // Answered after the caller's current step, as a worker's answer would be, and in order.
    return Promise.resolve().then(() => {
      if (this.#closed !== undefined) throw this.#closed;
      try {
        return handle({ ...request, id: this.#nextId++ } as Request).response as Extract<Response, { type: T }>;
      } catch (error) {
        throw new DbzipError('SNAPSHOT_FAILED', `snapshot failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    });
  }

  close(reason: Error): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = reason;
      reset();
      claimed = false;
    }
    return Promise.resolve();
  }
}
