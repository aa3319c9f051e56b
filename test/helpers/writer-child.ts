/**
 * The writer process started by writer.ts (`node --import tsx writer-child.ts '<json options>'`).
 * Commits ledger transactions back to back, yielding to the event loop every few
 * milliseconds so a 'stop' message or SIGTERM is handled between transactions.
 * Errors are counted, sent to the parent and printed on stderr; never swallowed.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { STATS_PREFIX, type WriterChildOptions, type WriterMessage, type WriterStats } from './writer.js';


function send(message: WriterMessage, callback?: () => void): void {
  if (process.send !== undefined && process.connected) {
    process.send(message, undefined, {}, () => callback?.());
  } else {
    callback?.();
  }
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/** Startup failures: stderr (which the parent shows in its error) and exit code 2. */
function fatal(message: string): never {
  process.stderr.write(`[writer ${process.pid}] fatal: ${message}\n`);
  process.exit(2);
}

function parseOptions(): WriterChildOptions {
  try {
    const parsed = JSON.parse(process.argv[2] ?? 'null') as WriterChildOptions | null;
    if (parsed !== null && typeof parsed.dbPath === 'string') return parsed;
  } catch {
    // reported just below
  }
  return fatal(`usage: writer-child.ts '{"dbPath":…,"journal":"wal"|"delete","blobBytes":0,"synchronous":"off"}', got ${process.argv[2]}`);
}

const options = parseOptions();

let db: Database.Database;
try {
  db = new Database(options.dbPath, { fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  db.pragma(`synchronous = ${options.synchronous.toUpperCase()}`);
  const mode = String(db.pragma('journal_mode', { simple: true }));
  if (mode !== options.journal) fatal(`${options.dbPath} is in journal_mode=${mode}, expected ${options.journal}`);
} catch (error) {
  fatal(`cannot open ${options.dbPath}: ${messageOf(error)}`);
}

const insertLedger = db.prepare('INSERT INTO ledger (account, amount) VALUES (?, ?)');
const insertPayload = db.prepare('INSERT INTO payload (data) VALUES (?)');
const bump = db.prepare("UPDATE meta SET v = v + 1 WHERE k = 'commits'");
const readCounter = db.prepare("SELECT v FROM meta WHERE k = 'commits'").pluck();

// Random bytes drawn once; each payload is a slice at a moving offset (incompressible, cheap).
const POOL = options.blobBytes > 0 ? randomBytes(Math.max(options.blobBytes * 2, 1 << 20)) : Buffer.alloc(0);

const transfer = db.transaction((account: number, amount: number, seq: number) => {
  insertLedger.run(account, amount);
  insertLedger.run(account + 1, -amount);
  if (options.blobBytes > 0) {
    const start = (seq * 7919) % (POOL.length - options.blobBytes + 1);
    insertPayload.run(POOL.subarray(start, start + options.blobBytes));
  }
  if (bump.run().changes !== 1) throw new Error("meta has no 'commits' row");
});

let commits = 0;
let errors = 0;
const errorCounts = new Map<string, number>();
let maxLatencyMs = 0;
let totalLatencyMs = 0;
let firstStart: number | undefined;
let stopRequestedAt: number | undefined;
let ready = false;

function recordError(error: unknown): void {
  errors += 1;
  const message = messageOf(error);
  const seen = errorCounts.get(message) ?? 0;
  errorCounts.set(message, seen + 1);
  if (seen < 3) {
    process.stderr.write(`[writer ${process.pid}] error: ${message}\n`);
    send({ type: 'error', message });
  }
}

function requestStop(): void {
  stopRequestedAt ??= performance.now();
}

process.on('message', (message) => {
  if (message === 'stop' || (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'stop')) {
    requestStop();
  }
});
process.on('SIGTERM', requestStop);
process.on('SIGINT', requestStop);
// The parent went away (test runner crashed): stop rather than write forever.
process.on('disconnect', requestStop);

function finish(): void {
  let counter = -1;
  try {
    counter = Number(readCounter.get());
  } catch (error) {
    recordError(error);
  }
  try {
    db.close();
  } catch (error) {
    recordError(error);
  }
  const end = stopRequestedAt ?? performance.now();
  const durationMs = firstStart === undefined ? 0 : end - firstStart;
  const stats: WriterStats = {
    commits,
    durationMs: Math.round(durationMs),
    commitsPerSecond: durationMs > 0 ? Math.round((commits / durationMs) * 1000) : 0,
    maxLatencyMs: Math.round(maxLatencyMs * 100) / 100,
    meanLatencyMs: commits > 0 ? Math.round((totalLatencyMs / commits) * 1000) / 1000 : 0,
    errors,
    errorMessages: [...errorCounts].map(([message, count]) => ({ message, count })),
    counter,
  };
  process.stdout.write(`${STATS_PREFIX}${JSON.stringify(stats)}\n`);
  send({ type: 'stats', stats }, () => process.exit(0));
}

const BURST_MS = 10;

function burst(): void {
  if (stopRequestedAt !== undefined) {
    finish();
    return;
  }
  const until = performance.now() + BURST_MS;
  let failed = false;
  do {
    const start = performance.now();
    firstStart ??= start;
    try {
      const amount = 1 + Math.floor(Math.random() * 1000);
      transfer.immediate(1 + Math.floor(Math.random() * 100), amount, commits);
      commits += 1;
    } catch (error) {
      recordError(error);
      failed = true;
    }
    const latency = performance.now() - start;
    totalLatencyMs += latency;
    if (latency > maxLatencyMs) maxLatencyMs = latency;
    if (!ready && commits > 0) {
      ready = true;
      send({ type: 'ready', pid: process.pid, journalMode: options.journal });
    }
  } while (!failed && performance.now() < until);
  // setImmediate lets IPC and signals through between bursts; back off a little after an error.
  if (failed) setTimeout(burst, 5);
  else setImmediate(burst);
}

burst();
