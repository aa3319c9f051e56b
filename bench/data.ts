/**
 * The bench's own data: an appliance-like data directory, generated deterministically from a seed.
 *
 *   app.db        rollback  ~70 %  events (timestamps, text, JSON, two indexes), readings, photo blobs
 *   inventory.db  WAL       ~10 %  items with JSON props, price history
 *   metrics.db    WAL        ~9 %  time series samples with JSON tags
 *   audit.db      rollback   ~5 %  audit log
 *   settings.db   rollback  tiny   key/value JSON
 *   legacy.db     not SQLite        a CSV export someone named .db (must be skipped, not fail)
 *   assets/                  ~5 %  incompressible "images" and compressible docs
 *
 * With `largest: 'wal'` app.db is WAL and inventory.db rollback instead.
 *
 * Text is drawn from a word list with ids and numbers mixed in, and blobs are random, so
 * deflate ratios are in the range real appliance databases show (not 100× on repeated text).
 * As Debian's SQLite (and so Python, the sqlite3 shell and most apps there) writes them, every
 * database is written with `secure_delete` on and keeps its data under a retention policy: old
 * rows are deleted as new ones arrive and once more at the end, so each file carries a freelist
 * of all-zero pages (about 10 % of its pages), as real long-running appliances' files do.
 * app.db and inventory.db also hold the (empty) ledger tables the bench's writer commits to.
 *
 * Generating 1 GiB takes a while, so a finished data set is kept under bench-data/<key>/ with a
 * stamp file and reused when the same parameters (and generator version) ask for it again.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { prng } from '../fixtures/generate.js';
import { LEDGER_SCHEMA } from './writer.js';

/** Bump when the generated content changes, so old stamps are not reused. */
export const GENERATOR_VERSION = 6;

const MIB = 1024 * 1024;

export type JournalKind = 'wal' | 'rollback';

export interface DataSpec {
  totalMb: number;
  seed: number;
  /** The journal mode of the largest database (app.db); the second largest gets the other one. */
  largest: JournalKind;
}

export interface DataFile {
  /** Relative to the data dir, `/`-separated. */
  path: string;
  bytes: number;
  kind: 'sqlite-wal' | 'sqlite-rollback' | 'not-sqlite' | 'asset' | 'other';
}

export interface DataSet {
  spec: DataSpec;
  /** bench-data/<key>: holds stamp.json and data/. */
  root: string;
  /** What the backups read. */
  dataDir: string;
  files: DataFile[];
  /** Every SQLite database, largest first. */
  databases: DataFile[];
  largestDb: DataFile;
  /** The writer's targets: the largest database of each journal mode. */
  writerDb: { wal: string; rollback: string };
  /** All-zero pages on each database's freelist, counted when it was generated. */
  zeroFreePages: Record<string, number>;
  generatedInMs: number;
  reused: boolean;
}

interface Stamp {
  generatorVersion: number;
  spec: DataSpec;
  files: DataFile[];
  zeroFreePages: Record<string, number>;
  generatedInMs: number;
  sqliteVersion: string;
}

const WORDS = (
  'sensor gateway door camera motion battery firmware update schedule zone alarm armed disarmed ' +
  'temperature humidity pressure valve pump relay offline online timeout retry config user admin ' +
  'login logout session token export import report daily weekly threshold exceeded normal warning ' +
  'critical restored backup restore network wifi ethernet signal strength low high kitchen garage ' +
  'office hall basement attic front back north south east west level floor room device controller'
).split(' ');

const KINDS = ['motion', 'door', 'alarm', 'status', 'heartbeat', 'config', 'login', 'error', 'update'];
const LEVELS = ['debug', 'info', 'info', 'info', 'warn', 'error'];
const UNITS = ['C', '%', 'hPa', 'V', 'lux', 'dB'];

class Rng {
  readonly #next: () => number;
  #state: number;

  constructor(seed: number) {
    this.#next = prng(seed);
    this.#state = (seed ^ 0x9e3779b9) >>> 0 || 1;
  }

  float(): number {
    return this.#next();
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.#next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#next() * items.length)] as T;
  }

  words(n: number): string {
    let s = this.pick(WORDS);
    for (let i = 1; i < n; i++) s += ` ${this.pick(WORDS)}`;
    return s;
  }

  hex(chars: number): string {
    let s = '';
    while (s.length < chars) s += Math.floor(this.#next() * 0x100000000).toString(16).padStart(8, '0');
    return s.slice(0, chars);
  }

  /** Incompressible bytes, fast: xorshift32 over 32-bit words (a JPEG-like payload). */
  bytes(n: number): Buffer {
    const words = new Uint32Array(Math.ceil(n / 4));
    let x = this.#state;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    this.#state = x >>> 0 || 1;
    return Buffer.from(words.buffer, 0, n);
  }
}

/** 2024-01-01T00:00:00Z; timestamps advance from here so indexes on time see ordered inserts. */
const EPOCH_MS = Date.UTC(2024, 0, 1);

function open(file: string): Database.Database {
  const db = new Database(file);
  // Generation speed only: nothing here needs durability until the final close.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -131072');
  // What Debian's libsqlite3 is built with (SQLITE_SECURE_DELETE): every freed page is zeroed.
  db.pragma('secure_delete = ON');
  return db;
}

function dbBytes(db: Database.Database): number {
  return (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
}

/**
 * Inserts batches from `batch` in transactions until the database reaches `target` bytes. Every
 * tenth batch `retain` deletes the oldest rows (a retention policy: about half a batch's worth, a
 * share that shrinks as the data grows so the file still reaches its size), so freed pages are
 * reused and the layout is what years of inserts and deletes leave; at the end it deletes the
 * oldest ~10 % once more, which leaves that much of the file on the freelist (zeroed: secure_delete).
 */
function fillTo(db: Database.Database, target: number, batch: (n: number) => void, retain: (fraction: number) => void): void {
  const tx = db.transaction(batch);
  const prune = db.transaction(retain);
  let i = 0;
  while (dbBytes(db) < target) {
    tx(i++);
    if (i % 10 === 0) prune(0.5 / i);
  }
  prune(0.1);
}

/** Deletes the oldest `fraction` of `table`'s rows by its integer key `key`. */
function deleteOldest(db: Database.Database, table: string, key: string, fraction: number): void {
  const range = db.prepare(`SELECT MIN(${key}) AS lo, MAX(${key}) AS hi FROM ${table}`).get() as { lo: number | null; hi: number | null };
  if (range.lo === null || range.hi === null) return;
  db.prepare(`DELETE FROM ${table} WHERE ${key} < ?`).run(range.lo + Math.ceil((range.hi - range.lo) * fraction));
}

/** Free pages that are all zeros: what secure_delete leaves, read straight from the file. */
export function countZeroFreePages(file: string): number {
  const image = fs.readFileSync(file);
  const pageSize = image.readUInt16BE(16) === 1 ? 65_536 : image.readUInt16BE(16);
  let zero = 0;
  for (let trunk = image.readUInt32BE(32); trunk !== 0; ) {
    const at = (trunk - 1) * pageSize;
    const leaves = image.readUInt32BE(at + 4);
    for (let i = 0; i < leaves; i++) {
      const leaf = image.readUInt32BE(at + 8 + 4 * i);
      const start = (leaf - 1) * pageSize;
      if (image.subarray(start, start + pageSize).every((b) => b === 0)) zero += 1;
    }
    trunk = image.readUInt32BE(at);
  }
  return zero;
}

function finish(db: Database.Database, journal: JournalKind): void {
  db.pragma(`journal_mode = ${journal === 'wal' ? 'WAL' : 'DELETE'}`);
  db.pragma('optimize');
  // Closing the last connection checkpoints and removes -wal/-shm; the header keeps saying WAL.
  db.close();
}

function makeApp(file: string, target: number, rng: Rng, journal: JournalKind): void {
  const db = open(file);
  db.exec(`
    CREATE TABLE events (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, device_id INTEGER NOT NULL, kind TEXT NOT NULL,
                         level TEXT NOT NULL, message TEXT NOT NULL, attrs TEXT NOT NULL);
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_device_ts ON events (device_id, ts);
    CREATE TABLE readings (id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL);
    CREATE INDEX readings_device_ts ON readings (device_id, ts);
    CREATE TABLE photos (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, mime TEXT NOT NULL, taken_at TEXT NOT NULL, data BLOB NOT NULL);
    ${LEDGER_SCHEMA}
  `);
  const ev = db.prepare('INSERT INTO events (ts, device_id, kind, level, message, attrs) VALUES (?, ?, ?, ?, ?, ?)');
  const rd = db.prepare('INSERT INTO readings (device_id, ts, value, unit) VALUES (?, ?, ?, ?)');
  const ph = db.prepare('INSERT INTO photos (event_id, mime, taken_at, data) VALUES (?, ?, ?, ?)');
  let t = EPOCH_MS;
  let eventId = 0;
  let photoBytes = 0;
  fillTo(db, target, () => {
    for (let i = 0; i < 2000; i++) {
      t += rng.int(1, 4000);
      const ts = new Date(t).toISOString();
      const device = rng.int(1, 400);
      const kind = rng.pick(KINDS);
      const attrs = JSON.stringify({
        fw: `2.${rng.int(0, 9)}.${rng.int(0, 30)}`,
        rssi: -rng.int(30, 95),
        battery: rng.int(0, 100),
        zone: rng.pick(WORDS),
        corr: rng.hex(16),
        ...(kind === 'error' ? { code: `E${rng.int(100, 999)}`, detail: rng.words(rng.int(4, 14)) } : {}),
      });
      ev.run(ts, device, kind, rng.pick(LEVELS), `${kind} ${rng.words(rng.int(3, 12))} #${rng.int(1, 99999)}`, attrs);
      eventId += 1;
      if (i % 2 === 0) rd.run(device, Math.floor(t / 1000), Math.round(rng.float() * 100_000) / 100, rng.pick(UNITS));
    }
    // Photos keep about 12 % of the file as incompressible bytes, as camera snapshots would.
    while (photoBytes < dbBytes(db) * 0.12) {
      const n = rng.int(8 * 1024, 96 * 1024);
      ph.run(eventId, 'image/jpeg', new Date(t).toISOString(), rng.bytes(n));
      photoBytes += n;
    }
  }, (fraction) => {
    const cutoff = db.prepare('SELECT MIN(id) + CAST((MAX(id) - MIN(id)) * ? AS INTEGER) FROM events').pluck().get(fraction) as number | null;
    if (cutoff === null) return;
    db.prepare('DELETE FROM photos WHERE event_id < ?').run(cutoff);
    db.prepare('DELETE FROM events WHERE id < ?').run(cutoff);
    deleteOldest(db, 'readings', 'id', fraction);
    photoBytes = (db.prepare('SELECT COALESCE(SUM(length(data)), 0) FROM photos').pluck().get() as number);
  });
  finish(db, journal);
}

function makeInventory(file: string, target: number, rng: Rng, journal: JournalKind): void {
  const db = open(file);
  db.exec(`
    CREATE TABLE items (sku TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, price_cents INTEGER NOT NULL,
                        updated_at TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX items_name ON items (name);
    CREATE TABLE price_history (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, at TEXT NOT NULL, price_cents INTEGER NOT NULL);
    CREATE INDEX price_history_sku ON price_history (sku, at);
    ${LEDGER_SCHEMA}
  `);
  const item = db.prepare('INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)');
  const price = db.prepare('INSERT INTO price_history (sku, at, price_cents) VALUES (?, ?, ?)');
  let n = 0;
  fillTo(db, target, () => {
    for (let i = 0; i < 1000; i++) {
      const sku = `SKU-${String(n++).padStart(8, '0')}-${rng.hex(4)}`;
      const at = new Date(EPOCH_MS + n * 60_000).toISOString();
      const props = JSON.stringify({ color: rng.pick(WORDS), weight_g: rng.int(5, 50_000), tags: [rng.pick(WORDS), rng.pick(WORDS)], ean: rng.hex(13) });
      item.run(sku, rng.words(rng.int(2, 5)), rng.words(rng.int(10, 40)), rng.int(100, 999_999), at, props);
      for (let k = rng.int(1, 4); k > 0; k--) price.run(sku, at, rng.int(100, 999_999));
    }
  }, (fraction) => {
    // Discontinued items go, with their price history.
    const cutoff = `SKU-${String(Math.floor(n * fraction)).padStart(8, '0')}`;
    db.prepare('DELETE FROM items WHERE sku < ?').run(cutoff);
    deleteOldest(db, 'price_history', 'id', fraction);
  });
  finish(db, journal);
}

function makeMetrics(file: string, target: number, rng: Rng): void {
  const db = open(file);
  db.exec(`
    CREATE TABLE samples (ts INTEGER NOT NULL, series TEXT NOT NULL, value REAL NOT NULL, tags TEXT NOT NULL);
    CREATE INDEX samples_series_ts ON samples (series, ts);
  `);
  const ins = db.prepare('INSERT INTO samples VALUES (?, ?, ?, ?)');
  const series = Array.from({ length: 200 }, (_, i) => `${rng.pick(WORDS)}.${rng.pick(WORDS)}.${i}`);
  let t = Math.floor(EPOCH_MS / 1000);
  fillTo(db, target, () => {
    for (let i = 0; i < 5000; i++) {
      t += rng.int(0, 2);
      ins.run(t, rng.pick(series), Math.round(rng.float() * 1e6) / 1e3, JSON.stringify({ host: `node-${rng.int(1, 12)}`, q: rng.int(0, 3) }));
    }
  }, (fraction) => deleteOldest(db, 'samples', 'rowid', fraction));
  finish(db, 'wal');
}

function makeAudit(file: string, target: number, rng: Rng): void {
  const db = open(file);
  db.exec(`
    CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, details TEXT NOT NULL);
    CREATE INDEX audit_at ON audit (at);
  `);
  const ins = db.prepare('INSERT INTO audit (at, actor, action, details) VALUES (?, ?, ?, ?)');
  let t = EPOCH_MS;
  fillTo(db, target, () => {
    for (let i = 0; i < 2000; i++) {
      t += rng.int(100, 60_000);
      const details = JSON.stringify({ ip: `10.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`, ua: rng.words(3), note: rng.words(rng.int(2, 20)) });
      ins.run(new Date(t).toISOString(), `user${rng.int(1, 50)}@example.com`, rng.pick(['login', 'logout', 'arm', 'disarm', 'export', 'config.set']), details);
    }
  }, (fraction) => deleteOldest(db, 'audit', 'id', fraction));
  finish(db, 'rollback');
}

function makeSettings(file: string, rng: Rng): void {
  const db = open(file);
  db.exec('CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  const ins = db.prepare('INSERT INTO settings VALUES (?, ?)');
  for (let i = 0; i < 150; i++) ins.run(`setting.${rng.pick(WORDS)}.${i}`, JSON.stringify({ v: rng.words(3), n: rng.int(0, 1000) }));
  finish(db, 'rollback');
}

function makeAssets(dir: string, target: number, rng: Rng): void {
  fs.mkdirSync(path.join(dir, 'img'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'docs'), { recursive: true });
  let bytes = 0;
  let i = 0;
  // Mostly images (incompressible), some text: about what a device's asset folder holds.
  while (bytes < target) {
    if (i % 5 === 4) {
      const text = Array.from({ length: rng.int(50, 400) }, () => rng.words(rng.int(5, 15))).join('\n');
      fs.writeFileSync(path.join(dir, 'docs', `manual-${i}.txt`), text);
      bytes += Buffer.byteLength(text);
    } else {
      const n = Math.min(rng.int(20 * 1024, 600 * 1024), Math.max(1024, target - bytes));
      fs.writeFileSync(path.join(dir, 'img', `photo-${String(i).padStart(5, '0')}.jpg`), rng.bytes(n));
      bytes += n;
    }
    i += 1;
  }
}

function makeLegacy(file: string, rng: Rng): void {
  const lines = ['id,name,created'];
  for (let i = 0; i < 1500; i++) lines.push(`${i},${rng.words(2)},${new Date(EPOCH_MS + i * 1000).toISOString()}`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Every file under `dir`, relative, sorted, with its size and kind. */
export function listFiles(dir: string): DataFile[] {
  const out: DataFile[] = [];
  const walk = (rel: string): void => {
    for (const dirent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? dirent.name : `${rel}/${dirent.name}`;
      if (dirent.isDirectory()) walk(child);
      else out.push({ path: child, bytes: fs.statSync(path.join(dir, child)).size, kind: kindOf(dir, child) });
    }
  };
  walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function kindOf(dir: string, rel: string): DataFile['kind'] {
  if (rel.startsWith('assets/')) return 'asset';
  if (!rel.endsWith('.db')) return 'other';
  const fd = fs.openSync(path.join(dir, rel), 'r');
  try {
    const header = Buffer.alloc(20);
    fs.readSync(fd, header, 0, 20, 0);
    if (!header.subarray(0, 16).equals(Buffer.from('SQLite format 3\0', 'latin1'))) return 'not-sqlite';
    return header[18] === 2 ? 'sqlite-wal' : 'sqlite-rollback';
  } finally {
    fs.closeSync(fd);
  }
}

function generate(dataDir: string, spec: DataSpec, log: (line: string) => void): void {
  const total = spec.totalMb * MIB;
  const rng = (salt: number) => new Rng((spec.seed * 1_000_003 + salt) >>> 0);
  fs.mkdirSync(dataDir, { recursive: true });
  const steps: [string, () => void][] = [
    ['app.db', () => makeApp(path.join(dataDir, 'app.db'), total * 0.7, rng(1), spec.largest)],
    ['inventory.db', () => makeInventory(path.join(dataDir, 'inventory.db'), total * 0.1, rng(2), spec.largest === 'wal' ? 'rollback' : 'wal')],
    ['metrics.db', () => makeMetrics(path.join(dataDir, 'metrics.db'), total * 0.09, rng(3))],
    ['audit.db', () => makeAudit(path.join(dataDir, 'audit.db'), total * 0.05, rng(4))],
    ['settings.db', () => makeSettings(path.join(dataDir, 'settings.db'), rng(5))],
    ['legacy.db', () => makeLegacy(path.join(dataDir, 'legacy.db'), rng(6))],
    ['assets/', () => makeAssets(path.join(dataDir, 'assets'), total * 0.05, rng(7))],
  ];
  for (const [name, step] of steps) {
    const start = performance.now();
    step();
    log(`  generated ${name} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  }
  fs.writeFileSync(path.join(dataDir, 'VERSION'), `bench-${dataKey(spec)}\n`);
}

export function dataKey(spec: DataSpec): string {
  return `${spec.totalMb}mb-seed${spec.seed}-${spec.largest}`;
}

function toDataSet(root: string, stamp: Stamp, reused: boolean): DataSet {
  const dataDir = path.join(root, 'data');
  const databases = stamp.files.filter((f) => f.kind === 'sqlite-wal' || f.kind === 'sqlite-rollback').sort((a, b) => b.bytes - a.bytes);
  const largestDb = databases[0];
  const wal = databases.find((f) => f.kind === 'sqlite-wal');
  const rollback = databases.find((f) => f.kind === 'sqlite-rollback');
  if (largestDb === undefined || wal === undefined || rollback === undefined) throw new Error(`${dataDir}: expected WAL and rollback databases`);
  return {
    spec: stamp.spec,
    root,
    dataDir,
    files: stamp.files,
    databases,
    largestDb,
    writerDb: { wal: wal.path, rollback: rollback.path },
    zeroFreePages: stamp.zeroFreePages,
    generatedInMs: stamp.generatedInMs,
    reused,
  };
}

/** Reuses bench-data/<key> when its stamp matches; otherwise builds it beside and renames it in. */
export function ensureData(benchDataDir: string, spec: DataSpec, sqliteVersion: string, log: (line: string) => void): DataSet {
  const root = path.join(benchDataDir, dataKey(spec));
  const stampFile = path.join(root, 'stamp.json');
  try {
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8')) as Stamp;
    const present = stamp.files.every((f) => fs.existsSync(path.join(root, 'data', f.path)));
    if (stamp.generatorVersion === GENERATOR_VERSION && stamp.spec.totalMb === spec.totalMb && stamp.spec.seed === spec.seed && stamp.spec.largest === spec.largest && present) {
      log(`data: reusing ${path.relative(process.cwd(), root)} (generated in ${(stamp.generatedInMs / 1000).toFixed(1)} s)`);
      return toDataSet(root, stamp, true);
    }
  } catch {
    // no stamp (or an unreadable one): generate
  }
  log(`data: generating ${spec.totalMb} MiB (seed ${spec.seed}) into ${path.relative(process.cwd(), root)}`);
  const partial = `${root}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
  const start = performance.now();
  generate(path.join(partial, 'data'), spec, log);
  const files = listFiles(path.join(partial, 'data'));
  const zeroFreePages: Record<string, number> = {};
  for (const f of files) if (f.kind === 'sqlite-wal' || f.kind === 'sqlite-rollback') zeroFreePages[f.path] = countZeroFreePages(path.join(partial, 'data', f.path));
  const stamp: Stamp = {
    generatorVersion: GENERATOR_VERSION,
    spec,
    files,
    zeroFreePages,
    generatedInMs: Math.round(performance.now() - start),
    sqliteVersion,
  };
  fs.writeFileSync(path.join(partial, 'stamp.json'), `${JSON.stringify(stamp, null, 2)}\n`);
  // Renamed only when complete: an interrupted run never leaves a data set that looks reusable.
  fs.renameSync(partial, root);
  return toDataSet(root, stamp, false);
}
