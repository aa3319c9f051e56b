/** Shared by the test/http*.test.ts files: keys, a captured logger, data dirs, and reading a downloaded zip. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import yauzl from 'yauzl';
import type { Logger } from '../src/options.js';
import { createLogger } from '../src/http/logging.js';

/** A strong random key, different in every test. */
export const newKey = (): string => randomBytes(24).toString('hex');

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger (the real one the server uses) whose JSON lines land in `lines` and `text`. */
export function captureLogger(): { logger: Logger; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const logger = createLogger({
    write(line: string) {
      raw.push(line);
      lines.push(JSON.parse(line) as LogLine);
    },
  });
  return { logger, lines, text: () => raw.join('') };
}

/** A small database with table t holding `rows` rows. */
export function makeSmallDatabase(file: string, rows = 3, journal: 'wal' | 'delete' = 'delete'): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma(`journal_mode = ${journal}`);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    for (let i = 0; i < rows; i++) insert.run(`row ${i}`);
  } finally {
    db.close();
  }
}

/** Every entry of a zip held in memory; yauzl checks sizes, and CRC-32 through its read stream. */
export async function unzip(bytes: Buffer): Promise<Map<string, Buffer>> {
  const zip = await yauzl.fromBufferPromise(bytes, { lazyEntries: true, validateEntrySizes: true, strictFileNames: true });
  const files = new Map<string, Buffer>();
  try {
    for await (const entry of zip.eachEntry()) {
      const chunks: Buffer[] = [];
      for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
      files.set(entry.fileName, Buffer.concat(chunks));
    }
  } finally {
    zip.close();
  }
  return files;
}

/**
 * Opens an image from memory. A WAL database says so in header bytes 18-19, and SQLite cannot open
 * such an image in memory (no WAL file beside it): read it as a rollback database, as restore does.
 */
function openImage(image: Buffer): Database.Database {
  const copy = Buffer.from(image);
  if (copy[18] === 2 && copy[19] === 2) copy[18] = copy[19] = 1;
  return new Database(copy);
}

/** Opens a database image from memory and runs PRAGMA integrity_check on it. */
export function integrityCheck(image: Buffer): string {
  const db = openImage(image);
  try {
    return (db.pragma('integrity_check', { simple: true }) as string) ?? '';
  } finally {
    db.close();
  }
}

export function rowCount(image: Buffer, table = 't'): number {
  const db = openImage(image);
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Descriptors and threads of this process (Linux): a leak of either shows up here. */
export const openFdCount = (): number => fs.readdirSync('/proc/self/fd').length;
export const threadCount = (): number => fs.readdirSync('/proc/self/task').length;

/** Polls `check` (sync or async) every 25 ms until it is true; rejects with `what` after `ms`. */
/** True once nothing accepts connections at `url` any more. */
export const refusesConnections = (url: string): Promise<boolean> => fetch(url).then(() => false, () => true);

export async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  res: http.IncomingMessage;
  req: http.ClientRequest;
}

/** A GET with node:http, resolved at the response head: the body is left to the caller (pause, read, destroy). */
export function rawGet(url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, res, req }));
    req.on('error', reject);
  });
}

/** Reads a body to the end; rejects if the connection breaks before the end (aborted transfer). */
export function readAll(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => (res.complete ? resolve(Buffer.concat(chunks)) : reject(new Error('incomplete body'))));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('aborted')));
    res.on('close', () => {
      if (!res.complete) reject(new Error('connection closed before the body ended'));
    });
  });
}
