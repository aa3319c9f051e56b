/**
 * Helpers for the restore tests: generation-marked databases (every row of one state carries the
 * same generation number, so a mixed state is visible), whole-tree fingerprints, archives read back
 * for editing into hostile ones (written with helpers/zip.ts' writeRawZip), and a child process that reads or restores while the test watches or kills it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { MANIFEST_NAME, type Manifest } from '../../src/archive/manifest.js';
import { createBackup } from '../../src/backup.js';
import type { BackupOptions } from '../../src/options.js';
import { readZip, type RawEntry } from './zip.js';

export type Journal = 'wal' | 'delete';

/** Rows in generation `g`: differs per generation so a half-applied state cannot pass as either. */
export const rowsFor = (gen: number, base = 400): number => base + gen * 37;

/**
 * Creates or rewrites `file` so that table `items` holds exactly `rowsFor(gen)` rows, all with
 * `gen`, and `meta.gen = gen`, in one transaction. `blobBytes` pads rows to grow the file.
 */
export function writeGeneration(file: string, gen: number, options: { journal?: Journal; blobBytes?: number; pageSize?: number; base?: number } = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`);
    db.pragma(`journal_mode = ${options.journal ?? 'wal'}`);
    db.exec('CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, gen INTEGER NOT NULL, pad BLOB); CREATE INDEX IF NOT EXISTS items_gen ON items (gen);');
    db.exec('CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    const pad = Buffer.alloc(options.blobBytes ?? 16, gen);
    const insert = db.prepare('INSERT INTO items (gen, pad) VALUES (?, ?)');
    db.transaction(() => {
      db.exec('DELETE FROM items');
      for (let i = 0; i < rowsFor(gen, options.base); i++) insert.run(gen, pad);
      db.prepare("INSERT INTO meta (k, v) VALUES ('gen', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v").run(gen);
    })();
  } finally {
    db.close();
  }
}

export interface GenerationState {
  integrity: string;
  /** The generation when the database is consistent, else null. */
  gen: number | null;
  rows: number;
}

/** Reads a database's generation inside one read transaction; `gen` is null for any mixed or broken state. */
export function readGeneration(file: string, base?: number): GenerationState {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    return db.transaction((): GenerationState => {
      const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
      const row = db.prepare('SELECT count(*) AS n, min(gen) AS lo, max(gen) AS hi FROM items').get() as { n: number; lo: number; hi: number };
      const meta = Number(db.prepare("SELECT v FROM meta WHERE k = 'gen'").pluck().get());
      const consistent = integrity === 'ok' && row.lo === row.hi && row.lo === meta && row.n === rowsFor(meta, base);
      return { integrity, gen: consistent ? meta : null, rows: row.n };
    })();
  } finally {
    db.close();
  }
}

/** SHA-256 of a database's logical content: schema and every row of every table, in rowid order. */
export function logicalHash(db: Database.Database): string {
  const hash = createHash('sha256');
  const tables = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type IN ('table', 'index', 'view', 'trigger') ORDER BY type, name").all() as { name: string; sql: string | null }[];
  for (const { name, sql } of tables) {
    hash.update(`${name}\0${sql ?? ''}\0`);
    if (sql === null || !sql.startsWith('CREATE TABLE')) continue;
    // Sorted as text: works for WITHOUT ROWID tables too, and row order is not content.
    const rows = (db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).raw().all() as unknown[][]).map((row) =>
      JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('base64') : typeof v === 'bigint' ? String(v) : v)),
    );
    for (const row of rows.sort()) hash.update(`${row}\n`);
  }
  hash.update(`user_version=${String(db.pragma('user_version', { simple: true }))}`);
  return hash.digest('hex');
}

export function logicalHashOfFile(file: string): string {
  const db = new Database(file, { fileMustExist: true, readonly: true });
  try {
    return logicalHash(db);
  } finally {
    db.close();
  }
}

/** Opens an image (bytes of a database) in memory, coping with a WAL header, and hashes its content. */
export function logicalHashOfImage(image: Buffer): string {
  const copy = Buffer.from(image);
  copy[18] = 1;
  copy[19] = 1;
  const db = new Database(copy);
  try {
    return logicalHash(db);
  } finally {
    db.close();
  }
}

/**
 * Every file and folder under `dir` with its type, mode, size, mtime and content hash (links by
 * target), as one sorted text: equal strings mean an unchanged tree, byte for byte.
 * `ignoreReaderSidecars` leaves out what any SQLite reader of a WAL database adds or touches
 * (the `-shm` index, an empty `-wal`): the backup that plans a restore reads every database.
 */
export function fingerprintTree(dir: string, { ignoreReaderSidecars = false } = {}): string {
  const lines: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(dir, childRel);
      const stat = fs.lstatSync(abs);
      if (ignoreReaderSidecars && (name.endsWith('-shm') || (name.endsWith('-wal') && stat.size === 0))) continue;
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isSymbolicLink()) lines.push(`L ${childRel} -> ${fs.readlinkSync(abs)}`);
      else if (stat.isDirectory()) {
        lines.push(`D ${childRel} ${mode}`);
        walk(childRel);
      } else lines.push(`F ${childRel} ${mode} ${stat.size} ${stat.mtimeMs} ${createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`);
    }
  };
  walk('');
  return lines.join('\n');
}

/** Writes a backup of `options.dataDir` to `zipPath` and returns its manifest. */
export async function backupToFile(zipPath: string, options: BackupOptions): Promise<Manifest> {
  const backup = await createBackup(options);
  await pipeline(backup.stream, fs.createWriteStream(zipPath));
  return await backup.manifest;
}

/** Reads a real archive's entries (in order) and its manifest, to be edited into a hostile one. */
export async function readArchive(zipPath: string): Promise<{ entries: RawEntry[]; manifest: Manifest }> {
  const zip = await readZip(zipPath);
  const entries = zip.names.map((name) => ({ name, data: zip.files.get(name) as Buffer }));
  const manifest = JSON.parse((zip.files.get(MANIFEST_NAME) as Buffer).toString('utf8')) as Manifest;
  return { entries, manifest };
}

/** Replaces the manifest entry (kept last) with `manifest`. */
export function withManifest(entries: readonly RawEntry[], manifest: Manifest): RawEntry[] {
  return [...entries.filter((e) => e.name !== MANIFEST_NAME), { name: MANIFEST_NAME, data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) }];
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

// ---- child processes ----------------------------------------------------------------------------

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(HERE, 'restore-child.ts');

export type ChildRequest =
  | { role: 'reader'; dbPath: string; base?: number }
  | { role: 'restore'; archive: string; dataDir: string; mode: 'online' | 'offline' };

/** Reader stats: every state it saw, by generation; `mixed` must stay 0. */
export interface ReaderStats {
  reads: number;
  byGen: Record<string, number>;
  mixed: number;
  errors: string[];
}

export function startChild(request: ChildRequest): { child: ChildProcess; lines: string[]; waitFor(prefix: string, timeoutMs: number): Promise<string>; closed: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(request)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    for (let at = buffer.indexOf('\n'); at !== -1; at = buffer.indexOf('\n')) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
      lines.push(line);
      for (const waiter of waiters.filter((w) => line.startsWith(w.prefix))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const waitFor = (prefix: string, timeoutMs: number) => {
    const seen = lines.find((l) => l.startsWith(prefix));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child ${request.role} printed no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      waiters.push({ prefix, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      void closed.then((code) => {
        clearTimeout(timer);
        reject(new Error(`child ${request.role} exited (${String(code)}) before printing "${prefix}"; stderr: ${stderr}`));
      });
    });
  };
  return { child, lines, waitFor, closed };
}
