/**
 * Parent side of the concurrent writer (writer-child.ts): start it on one database of the
 * data set, cut its commit log into windows afterwards, reset its rows so the data set stays
 * the same size run after run, and check the invariant inside a backup's copy of the database.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import Database from 'better-sqlite3';

/**
 * The writer's tables; the generator creates them (empty) in the databases it targets.
 * Each transaction inserts a pair (+x, -x) and, past LEDGER_MAX_PAIRS, deletes the oldest pair,
 * so the database does not grow run after run while SUM(amount) = 0 and
 * COUNT(ledger) = 2 × (commits − trimmed) hold in every consistent snapshot.
 */
export const LEDGER_SCHEMA = `
  CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, amount INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
  INSERT OR IGNORE INTO meta (k, v) VALUES ('commits', 0), ('trimmed', 0);
`;

export const LEDGER_MAX_PAIRS = 20_000;

export type WriterSync = 'off' | 'normal' | 'full';

export interface WriterChildOptions {
  dbPath: string;
  synchronous: WriterSync;
  /** Past this many live pairs, each transaction also deletes the oldest pair. */
  maxPairs: number;
}

/** Commits bucketed by start time; index i covers [originMs + i·bucketMs, +bucketMs). */
export interface WriterLog {
  originMs: number;
  bucketMs: number;
  counts: number[];
  maxLatencyMs: number[];
  /** The writer's own CPU time per bucket, ms. */
  cpuMs: number[];
  /** Per bucket, its worst commit's CPU time and voluntary (sleeps, e.g. a busy wait) / involuntary (preempted) switches. */
  worstDetail: WorstCommit[];
  errors: { message: string; count: number }[];
}

export type WriterChildMessage = { type: 'ready' } | { type: 'stats'; stats: WriterLog };

export interface WorstCommit {
  cpuMs: number;
  voluntary: number;
  involuntary: number;
}

export interface WindowStats {
  commitsPerSecond: number;
  maxLatencyMs: number;
  /** Share of one core the writer got. */
  cpuShare: number;
  /** Commits per second of the writer's own CPU time: falls only if commits got dearer or waited. */
  commitsPerCpuSecond: number;
  /** The slowest commit's own CPU time and context switches. */
  worst: WorstCommit;
}

export interface RunningWriter {
  /** When it had committed its first transaction (monotonic ms). */
  readyAtMs: number;
  stop(): Promise<WriterLog>;
}

export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Starts writer-child.js (the transpiled script) on an emptied ledger; resolves after its first commit. */
export async function startWriter(script: string, options: Omit<WriterChildOptions, 'maxPairs'>): Promise<RunningWriter> {
  resetLedger(options.dbPath);
  const childOptions: WriterChildOptions = { ...options, maxPairs: LEDGER_MAX_PAIRS };
  const child = spawn(process.execPath, [script, JSON.stringify(childOptions)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let log: WriterLog | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('writer did not commit within 20 s')), 20_000);
    child.on('message', (message: WriterChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve();
      } else log = message.stats;
    });
    void exited.then((code) => reject(new Error(`writer exited with ${code} before its first commit`)));
  });
  return {
    readyAtMs: monotonicMs(),
    async stop() {
      child.send('stop');
      const code = await exited;
      if (log === undefined) throw new Error(`writer exited with ${code} without its stats`);
      return log;
    },
  };
}

/** Commit rate and worst latency of the commits that started within [fromMs, toMs). */
export function windowStats(log: WriterLog, fromMs: number, toMs: number): WindowStats {
  let commits = 0;
  let worst = 0;
  let cpu = 0;
  let detail: WorstCommit = { cpuMs: 0, voluntary: 0, involuntary: 0 };
  const first = Math.max(0, Math.floor((fromMs - log.originMs) / log.bucketMs));
  const last = Math.min(log.counts.length - 1, Math.floor((toMs - log.originMs) / log.bucketMs));
  for (let i = first; i <= last; i++) {
    commits += log.counts[i] ?? 0;
    if ((log.maxLatencyMs[i] ?? 0) > worst) {
      worst = log.maxLatencyMs[i] ?? 0;
      detail = log.worstDetail[i] ?? detail;
    }
    cpu += log.cpuMs[i] ?? 0;
  }
  // Whole buckets were counted: use their span, not the window's, for the rate.
  const spanMs = Math.max(1, (last - first + 1) * log.bucketMs);
  return {
    commitsPerSecond: Math.round((commits / spanMs) * 1000),
    maxLatencyMs: Math.round(worst * 10) / 10,
    cpuShare: Math.round((cpu / spanMs) * 100) / 100,
    commitsPerCpuSecond: cpu > 0 ? Math.round((commits / cpu) * 1000) : 0,
    worst: { cpuMs: Math.round(detail.cpuMs * 10) / 10, voluntary: detail.voluntary, involuntary: detail.involuntary },
  };
}

/**
 * Empties the ledger and checkpoints the WAL away, so every run starts from the same database.
 * Deleted rows leave free pages that the next run reuses: the file stops growing after the first run.
 */
export function resetLedger(dbPath: string): void {
  const db = new Database(dbPath, { fileMustExist: true, timeout: 10_000 });
  try {
    db.exec(`DELETE FROM ledger; ${LEDGER_SCHEMA}; UPDATE meta SET v = 0 WHERE k IN ('commits', 'trimmed');`);
    if (db.pragma('journal_mode', { simple: true }) === 'wal') db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

export interface LedgerCheck {
  ok: boolean;
  sum: number;
  rows: number;
  commits: number;
  trimmed: number;
}

/** The invariant inside a database file extracted from a backup (its WAL header bytes already cleared). */
export function checkLedger(file: string): LedgerCheck {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const sum = Number(db.prepare('SELECT COALESCE(SUM(amount), 0) FROM ledger').pluck().get());
    const rows = Number(db.prepare('SELECT COUNT(*) FROM ledger').pluck().get());
    const meta = db.prepare("SELECT v FROM meta WHERE k = ?").pluck();
    const commits = Number(meta.get('commits'));
    const trimmed = Number(meta.get('trimmed'));
    return { ok: sum === 0 && rows === 2 * (commits - trimmed), sum, rows, commits, trimmed };
  } finally {
    db.close();
  }
}

/** A backup's copy of a WAL database says WAL in bytes 18–19; a lone file opens only as rollback. */
export function clearWalHeader(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.from([1, 1]), 0, 2, 18);
  } finally {
    fs.closeSync(fd);
  }
}
