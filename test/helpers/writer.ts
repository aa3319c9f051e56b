/**
 * A real, separate writer process for concurrency tests: it commits ledger transactions
 * that keep an invariant as fast as it can, so any torn or mixed snapshot shows up as
 * a broken invariant. See writer-child.ts for the loop itself.
 *
 *   ledger(id INTEGER PRIMARY KEY, account INTEGER, amount INTEGER)  -- each tx adds +x and -x
 *   meta(k TEXT PRIMARY KEY, v INTEGER)                              -- k='commits': committed tx count
 *   payload(id INTEGER PRIMARY KEY, data BLOB)                       -- one row per tx when blobBytes > 0
 *
 * Always: SUM(amount) = 0, COUNT(ledger) = 2 × meta.v, COUNT(payload) ∈ {0, meta.v}.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

export type WriterJournal = 'wal' | 'delete';
export type WriterSynchronous = 'off' | 'normal' | 'full';

export interface StartWriterOptions {
  dbPath: string;
  journal: WriterJournal;
  /** Bytes of random data added per transaction (payload table), to grow the database. Default 0. */
  blobBytes?: number;
  /** PRAGMA synchronous of the writer. Default 'off': fastest; consistency never depends on fsync. */
  synchronous?: WriterSynchronous;
  /** How long to wait for the first commit. Default 20 000 ms. */
  readyTimeoutMs?: number;
}

export interface WriterStats {
  /** Transactions this process committed. */
  commits: number;
  /** From the first commit's start to the stop request. */
  durationMs: number;
  commitsPerSecond: number;
  /** Worst single transaction, busy waits included. */
  maxLatencyMs: number;
  meanLatencyMs: number;
  /** Failed transactions or other errors; must be 0. */
  errors: number;
  /** Every distinct error message with how often it was seen. */
  errorMessages: { message: string; count: number }[];
  /** meta.v after the last commit (includes commits of earlier writers on the same file). */
  counter: number;
}

export interface Writer {
  pid: number;
  /** Asks the child to stop (IPC 'stop' by default, or SIGTERM) and resolves with its stats. Idempotent. */
  stop(how?: 'ipc' | 'sigterm'): Promise<WriterStats>;
}

/** Options the parent passes to the child as one JSON argument. */
export interface WriterChildOptions {
  dbPath: string;
  journal: WriterJournal;
  blobBytes: number;
  synchronous: WriterSynchronous;
}

/** Messages the child sends over IPC. The stats are also printed on stdout after STATS_PREFIX. */
export type WriterMessage =
  | { type: 'ready'; pid: number; journalMode: string }
  | { type: 'error'; message: string }
  | { type: 'stats'; stats: WriterStats };

export const STATS_PREFIX = 'DBZIP_WRITER_STATS ';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Run the .ts child through tsx; if this file was compiled to .js, run the compiled child directly. */
const IS_TS = import.meta.url.endsWith('.ts');
const CHILD = path.join(HERE, IS_TS ? 'writer-child.ts' : 'writer-child.js');
const REPO_ROOT = path.resolve(HERE, '..', '..');

export const LEDGER_SCHEMA = `
  CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, amount INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS payload (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
  INSERT OR IGNORE INTO meta (k, v) VALUES ('commits', 0);
`;

/**
 * Creates the ledger database with the given journal mode when it is missing (or 0 bytes);
 * an existing one keeps its data but must already be in that journal mode.
 */
export function createLedgerDatabase(dbPath: string, journal: WriterJournal): void {
  const fresh = !fs.existsSync(dbPath) || fs.statSync(dbPath).size === 0;
  const db = new Database(dbPath);
  try {
    db.pragma('busy_timeout = 10000');
    if (fresh) db.pragma(`journal_mode = ${journal === 'wal' ? 'WAL' : 'DELETE'}`);
    const mode = String(db.pragma('journal_mode', { simple: true }));
    if (mode !== journal) throw new Error(`${dbPath} is in journal_mode=${mode}, the writer was asked for ${journal}`);
    db.exec(LEDGER_SCHEMA);
  } finally {
    db.close();
  }
}

/** Creates the database if needed, spawns the writer and resolves after its first commit. */
export async function startWriter(options: StartWriterOptions): Promise<Writer> {
  const dbPath = path.resolve(options.dbPath);
  const blobBytes = options.blobBytes ?? 0;
  if (!Number.isInteger(blobBytes) || blobBytes < 0) throw new Error(`blobBytes must be an integer ≥ 0, got ${blobBytes}`);
  createLedgerDatabase(dbPath, options.journal);

  const childOptions: WriterChildOptions = {
    dbPath,
    journal: options.journal,
    blobBytes,
    synchronous: options.synchronous ?? 'off',
  };
  const args = [...(IS_TS ? ['--import', 'tsx'] : []), CHILD, JSON.stringify(childOptions)];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn the writer (${process.execPath} ${args.join(' ')})`);

  let stdout = '';
  let stderr = '';
  if (child.stdout === null || child.stderr === null) throw new Error('the writer was spawned without piped stdio');
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 64_000) stderr += chunk;
  });

  let stats: WriterStats | undefined;
  const errors: string[] = [];
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const describeExit = ({ code, signal }: { code: number | null; signal: NodeJS.Signals | null }): string =>
    `writer ${pid} exited (${signal ?? `code ${code}`})${stderr.trim() ? `; stderr:\n${stderr.trim()}` : ''}`;

  const ready = new Promise<void>((resolve, reject) => {
    const timeoutMs = options.readyTimeoutMs ?? 20_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer ${pid} did not commit within ${timeoutMs} ms${stderr.trim() ? `; stderr:\n${stderr.trim()}` : ''}`));
    }, timeoutMs);
    child.on('message', (raw) => {
      const message = raw as WriterMessage;
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve();
      } else if (message.type === 'error') {
        if (errors.length < 20) errors.push(message.message);
        clearTimeout(timer);
        reject(new Error(`writer ${pid} failed before its first commit: ${message.message}`));
      } else if (message.type === 'stats') {
        stats = message.stats;
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void closed.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`${describeExit(exit)} before its first commit`));
    });
  });

  try {
    await ready;
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await closed;
    throw error;
  }

  let stopping: Promise<WriterStats> | undefined;
  const stop = (how: 'ipc' | 'sigterm' = 'ipc'): Promise<WriterStats> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        if (how === 'ipc' && child.connected) child.send('stop');
        else child.kill('SIGTERM');
      }
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([
        closed,
        new Promise<never>((_, reject) => {
          // A commit may legitimately wait up to busy_timeout (10 s) before the child sees the request.
          timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`writer ${pid} did not stop within 20000 ms`));
          }, 20_000);
        }),
      ]).finally(() => clearTimeout(timer));
      if (stats === undefined) {
        const line = stdout.split('\n').find((l) => l.startsWith(STATS_PREFIX));
        if (line !== undefined) stats = JSON.parse(line.slice(STATS_PREFIX.length)) as WriterStats;
      }
      if (stats === undefined) {
        const seen = errors.length > 0 ? `; errors it reported: ${errors.join(' | ')}` : '';
        throw new Error(`${describeExit(exit)} without reporting its stats${seen}`);
      }
      return stats;
    })();
    return stopping;
  };

  return { pid, stop };
}

export interface LedgerCheck {
  /** SUM(amount) over the ledger: 0 when consistent. */
  sum: number;
  /** COUNT(*) of the ledger: 2 × counter when consistent. */
  rows: number;
  /** meta.v for k = 'commits'. */
  counter: number;
  /** COUNT(*) of payload: 0 or counter when consistent. */
  payloadRows: number;
  /** PRAGMA integrity_check rows joined by newlines: "ok" when healthy. */
  integrity: string;
  /** True when the invariant holds and integrity is "ok". */
  ok: boolean;
}

/** Checks the writer's invariant and the database's integrity, all inside one read transaction. */
export function checkLedgerInvariant(db: Database.Database): LedgerCheck {
  return db.transaction((): LedgerCheck => {
    const sum = Number(db.prepare('SELECT COALESCE(SUM(amount), 0) FROM ledger').pluck().get());
    const rows = Number(db.prepare('SELECT COUNT(*) FROM ledger').pluck().get());
    const counterValue = db.prepare("SELECT v FROM meta WHERE k = 'commits'").pluck().get();
    if (counterValue === undefined) throw new Error("meta has no 'commits' row: not a writer database");
    const counter = Number(counterValue);
    const payloadRows = Number(db.prepare('SELECT COUNT(*) FROM payload').pluck().get());
    const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('\n');
    const ok = integrity === 'ok' && sum === 0 && rows === 2 * counter && (payloadRows === 0 || payloadRows === counter);
    return { sum, rows, counter, payloadRows, integrity, ok };
  })();
}

/**
 * Opens a database image held in memory. SQLite refuses to open an in-memory image whose
 * header says WAL (bytes 18–19 = 2: "unable to open database file"), so a copy with those
 * bytes set to 1 (rollback) is opened instead; the input buffer is not changed.
 */
export function openSnapshotBuffer(image: Buffer): Database.Database {
  const copy = Buffer.from(image);
  if (copy.length >= 20 && copy[18] === 2 && copy[19] === 2) {
    copy[18] = 1;
    copy[19] = 1;
  }
  return new Database(copy);
}

/** Opens a snapshot image and checks the ledger invariant in it (see checkLedgerInvariant). */
export function ledgerOfImage(image: Buffer): LedgerCheck {
  const db = openSnapshotBuffer(image);
  try {
    return checkLedgerInvariant(db);
  } finally {
    db.close();
  }
}

/** A ledger database with `megabytes` of blobs beside it, so reading it takes long enough for a commit to land in the middle. */
export function createBigLedgerDatabase(file: string, journal: 'wal' | 'delete', megabytes: number): void {
  createLedgerDatabase(file, journal);
  const db = new Database(file);
  try {
    db.exec('CREATE TABLE filler (data BLOB)');
    const insert = db.prepare('INSERT INTO filler VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < megabytes * 4; i++) insert.run(Buffer.alloc(256 * 1024, i + 1));
    })();
  } finally {
    db.close();
  }
}
