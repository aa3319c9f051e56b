/**
 * The concurrent writer: a separate process committing ledger transactions back to back.
 * Each transaction adds +x and -x, so SUM(amount) = 0 in every consistent snapshot.
 *
 * Run as plain JavaScript (transpiled by compile.ts) so no TypeScript loader competes for CPU.
 * It buckets commits by their start time on the monotonic clock (`process.hrtime`, shared by
 * every process on the machine), so the parent can cut "writer alone" and "during the backup"
 * windows afterwards with its own timestamps, without IPC latency blurring the edges.
 */
import Database from 'better-sqlite3';
import type { WriterChildMessage, WriterChildOptions } from './writer.js';

const BUCKET_MS = 10;
const BURST_MS = 10;

const options = JSON.parse(process.argv[2] ?? '{}') as WriterChildOptions;
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function send(message: WriterChildMessage, then?: () => void): void {
  if (process.send !== undefined && process.connected) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

const db = new Database(options.dbPath, { fileMustExist: true, timeout: 10_000 });
db.pragma(`synchronous = ${options.synchronous.toUpperCase()}`);
const insert = db.prepare('INSERT INTO ledger (account, amount) VALUES (?, ?)');
const bump = db.prepare("UPDATE meta SET v = v + 1 WHERE k = ?");
// Pairs get consecutive ids (one writer), so the two lowest ids are always one whole pair.
const trimOldest = db.prepare('DELETE FROM ledger WHERE id IN (SELECT id FROM ledger ORDER BY id LIMIT 2)');
// The parent empties the ledger before starting this process.
let livePairs = 0;
const transfer = db.transaction((account: number, amount: number) => {
  insert.run(account, amount);
  insert.run(account + 1, -amount);
  bump.run('commits');
  if (livePairs >= options.maxPairs) {
    trimOldest.run();
    bump.run('trimmed');
    return false;
  }
  return true;
});

let origin: number | undefined;
const counts: number[] = [];
const maxLatency: number[] = [];
/** This process's CPU time per bucket, ms: commits per CPU-second tell CPU starvation from other slowdowns. */
const cpuMs: number[] = [];
/** For each bucket's worst commit: its own CPU time and context switches, to tell a lock wait from preemption. */
const worstDetail: { cpuMs: number; voluntary: number; involuntary: number }[] = [];
let lastCpu = process.cpuUsage();
const errors = new Map<string, number>();
let stopping = false;
let seed = 12345;
const random = (): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
};

process.on('message', (message) => {
  if (message === 'stop') stopping = true;
});
process.on('disconnect', () => {
  stopping = true;
});

function finish(): void {
  db.close();
  send({ type: 'stats', stats: { originMs: origin ?? 0, bucketMs: BUCKET_MS, counts, maxLatencyMs: maxLatency, cpuMs, worstDetail, errors: [...errors].map(([message, count]) => ({ message, count })) } }, () => process.exit(0));
}

function burst(): void {
  if (stopping) return finish();
  const until = nowMs() + BURST_MS;
  let failed = false;
  do {
    const start = nowMs();
    // ~2 µs a commit: the price of knowing, for the slowest ones, whether they waited or were preempted.
    const usage = process.resourceUsage();
    origin ??= start;
    try {
      // IMMEDIATE: take the write lock up front, as an application writer should.
      if (transfer.immediate(1 + Math.floor(random() * 100), 1 + Math.floor(random() * 1000))) livePairs += 1;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      errors.set(message, (errors.get(message) ?? 0) + 1);
      failed = true;
    }
    const latency = nowMs() - start;
    const bucket = Math.floor((start - origin) / BUCKET_MS);
    while (counts.length <= bucket) {
      counts.push(0);
      maxLatency.push(0);
      cpuMs.push(0);
      worstDetail.push({ cpuMs: 0, voluntary: 0, involuntary: 0 });
    }
    if (!failed) counts[bucket] = (counts[bucket] ?? 0) + 1;
    if (latency > (maxLatency[bucket] ?? 0)) {
      maxLatency[bucket] = latency;
      const after = process.resourceUsage();
      worstDetail[bucket] = {
        cpuMs: (after.userCPUTime + after.systemCPUTime - usage.userCPUTime - usage.systemCPUTime) / 1000,
        voluntary: after.voluntaryContextSwitches - usage.voluntaryContextSwitches,
        involuntary: after.involuntaryContextSwitches - usage.involuntaryContextSwitches,
      };
    }
    if (counts.length === 1 && counts[0] === 1) send({ type: 'ready' });
  } while (!failed && nowMs() < until);
  // The burst's CPU time goes to the bucket it ended in (a burst is one bucket long).
  const cpu = process.cpuUsage(lastCpu);
  lastCpu = process.cpuUsage();
  if (origin !== undefined) {
    const bucket = Math.min(cpuMs.length - 1, Math.floor((nowMs() - origin) / BUCKET_MS));
    cpuMs[bucket] = (cpuMs[bucket] ?? 0) + (cpu.user + cpu.system) / 1000;
  }
  // setImmediate lets the 'stop' message through between bursts.
  if (failed) setTimeout(burst, 5);
  else setImmediate(burst);
}

burst();
