/**
 * Snapshot worker threads, reused from one backup to the next.
 *
 * Lifecycle:
 * - `leaseWorker()` hands out an idle worker, or one about to be given back, or starts one. A leased
 *   worker is ref'd: it keeps the process alive while a backup uses it, as any open handle would.
 * - The session ends its job with a `reset` request (the worker closes that job's SQLite handles and
 *   frees its image) and, once the worker has answered it, gives the worker back with `returnWorker()`.
 *   Requests are answered in order, so nothing of the old job can reach the next one.
 * - Up to `MAX_IDLE` idle workers are kept, unref'd, so an idle worker never keeps a CLI process or a
 *   test runner alive. A worker over that number is terminated: it has answered a request, so its
 *   modules are loaded.
 * - A worker that fails or exits is dropped and never handed out again.
 *
 * Why not one worker per backup, terminated at its end: Node 20 leaks the descriptor of every module
 * file a worker is still reading when `terminate()` lands while it loads its ES modules (50 aborted
 * downloads left ~45 descriptors of snapshot-worker.js, image-check.js and better-sqlite3's index.js
 * open). A worker here is only ever terminated after it has answered a request. Reuse also saves each
 * backup the worker's start-up (a thread, better-sqlite3's modules and native addon).
 */
import { Worker } from 'node:worker_threads';

/**
 * One, so the next backup skips a worker's start-up (a thread, better-sqlite3's modules and addon): 12
 * pinned backups of two small databases take 0.45 s instead of 2.0–2.8 s. (It was 0 for a while: the pin
 * test's writer in another process committed fewer rows with a worker kept, which looked like lock
 * contention. Its rate was the same, 23,000–26,000 rows/s either way; the backups were just 5× faster.)
 */
const MAX_IDLE = 1;

const idle: Worker[] = [];
let started = 0;

/** How many workers this process has started so far (tests count them). */
export function startedWorkers(): number {
  return started;
}

/** Run from TypeScript sources (tests), the worker first registers tsx's loader in its own thread. */
function startWorker(): Worker {
  started++;
  let worker: Worker;
  if (import.meta.url.endsWith('.ts')) {
    const url = new URL('./snapshot-worker.ts', import.meta.url).href;
    // Resolved here, not in the worker: eval code resolves packages from the current directory.
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); });`;
    worker = new Worker(boot, { eval: true });
  } else {
    worker = new Worker(new URL('./snapshot-worker.js', import.meta.url));
  }
  // An idle worker has no session listening; an unhandled 'error' event would throw in the main thread.
  worker.on('error', () => drop(worker));
  worker.once('exit', () => drop(worker));
  return worker;
}

function drop(worker: Worker): void {
  const i = idle.indexOf(worker);
  if (i !== -1) idle.splice(i, 1);
}

/** Workers whose session is closing: each is about to be given back (or to be gone). */
let returning = 0;
/** Leases waiting for one of those. */
const waiting: ((worker: Worker) => void)[] = [];

/**
 * An idle worker; else one that is being given back (it answers its reset after at most the request it
 * is in: waiting for it beats a second thread reading a second image beside it); else a new one, still
 * starting (requests queue until it listens).
 */
export function leaseWorker(): Promise<Worker> {
  const worker = idle.pop();
  if (worker !== undefined) {
    worker.ref();
    return Promise.resolve(worker);
  }
  if (returning > waiting.length) return new Promise((resolve) => waiting.push(resolve));
  return Promise.resolve(startWorker());
}

/** Called as a session starts closing, before its worker's reset is answered. */
export function workerReturning(): void {
  returning++;
}

/** Gives back a worker that has answered its `reset`, so it holds no handle and no image. */
export function returnWorker(worker: Worker): void {
  returning--;
  const next = waiting.shift();
  if (next !== undefined) {
    worker.ref();
    next(worker);
  } else if (idle.length < MAX_IDLE) {
    worker.unref();
    idle.push(worker);
  } else {
    void worker.terminate();
  }
}

/** The closing session's worker died instead: a lease waiting for it gets a new one. */
export function workerGone(): void {
  returning--;
  if (waiting.length > returning) waiting.shift()?.(startWorker());
}

/**
 * Starts a worker before the first backup asks for one (the CLI, while it loads the rest of its modules),
 * kept idle and unref'd until leased. At most one: a second call while it waits does nothing.
 */
export function prestartWorker(): void {
  if (idle.length > 0) return;
  const worker = startWorker();
  worker.unref();
  idle.push(worker);
}

/** Ends every idle worker (for a test that starts from none, or a host that wants its threads back). */
export async function closeIdleWorkers(): Promise<void> {
  const workers = idle.splice(0, idle.length);
  await Promise.all(workers.map((worker) => worker.terminate()));
}
