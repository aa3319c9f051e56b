/**
 * Soak test for cancelled backups: `npm run soak -- [--aborts 1000]`. Not part of `npm test` (it takes
 * minutes); the figures it prints are quoted in docs/soak.md.
 *
 * 1. HTTP: `dbzip serve` (the built CLI, in a child process) on a data dir of the fixtures plus a 24 MiB
 *    WAL database; N downloads aborted in turn at each phase: while the request is being prepared (after
 *    10-80 ms, in bursts of three so extra workers start and are ended), during the first snapshot, right
 *    after the headers, and mid-body. The server's descriptors (/proc/PID/fd) and RSS are printed after a
 *    first complete download and at the end.
 * 2. Library, in this process: N times `createBackup()` then `abort()` at once, half of them through an
 *    AbortSignal fired while createBackup() is still starting. Descriptors and RSS after a first complete
 *    backup and at the end.
 * Exits 1 if the descriptors grew or a module file or database is left open.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

const { values } = parseArgs({ options: { aborts: { type: 'string', default: '1000' } } });
const ABORTS = Number(values.aborts);
if (!Number.isInteger(ABORTS) || ABORTS < 4) throw new Error(`--aborts must be a whole number ≥ 4, got "${values.aborts}"`);

interface Sample {
  fds: number;
  rssMiB: number;
  /** Descriptors on regular files: module sources or databases left open are the leak's signature. */
  files: string[];
}

function sample(pid: number | 'self'): Sample {
  const dir = `/proc/${pid}/fd`;
  const links = fs.readdirSync(dir).map((fd) => {
    try {
      return fs.readlinkSync(`${dir}/${fd}`);
    } catch {
      return '';
    }
  });
  const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0';
  return { fds: links.length, rssMiB: Math.round(Number(rss) / 1024), files: links.filter((l) => l.startsWith('/') && !l.startsWith('/dev/')).sort() };
}

/** Samples until the descriptors are back to `fds` or 5 s have passed (sockets and threads close asynchronously). */
async function settled(pid: number | 'self', fds: number): Promise<Sample> {
  let last = sample(pid);
  for (let waited = 0; last.fds > fds && waited < 5_000; waited += 100) {
    await sleep(100);
    last = sample(pid);
  }
  return last;
}

const show = (label: string, s: Sample) => console.log(`  ${label.padEnd(28)} fds ${String(s.fds).padStart(3)}   RSS ${String(s.rssMiB).padStart(4)} MiB`);

function makeDataDir(dir: string): void {
  fs.cpSync(path.join(ROOT, 'fixtures/data'), dir, { recursive: true });
  const db = new Database(path.join(dir, 'big.db'));
  db.pragma('journal_mode = wal');
  db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)');
  const insert = db.prepare('INSERT INTO blobs (data) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 24 * 4; i++) insert.run(randomBytes(256 * 1024));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Phase = 'preparing' | 'first-snapshot' | 'headers' | 'mid-body';

/** One download, cut off by the client at `phase`. Resolves when the client has let go. */
function abortedDownload(url: string, key: string, phase: Phase, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: { 'X-API-Key': key }, agent: false });
    req.on('error', () => resolve());
    if (phase === 'preparing' || phase === 'first-snapshot') {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, delayMs);
    }
    req.on('response', (res) => {
      if (phase === 'headers') {
        req.destroy();
        return resolve();
      }
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (phase === 'mid-body' && received >= delayMs * 64 * 1024) {
          req.destroy();
          resolve();
        }
      });
      res.on('close', () => resolve());
    });
  });
}

function completeDownload(url: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { 'X-API-Key': key }, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

async function soakHttp(dataDir: string): Promise<boolean> {
  const key = randomBytes(24).toString('hex');
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/bin.js'), 'serve', '--data-dir', dataDir, '--port', '0', '--max-concurrent', '4'], {
    env: { ...process.env, DBZIP_API_KEY: key },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const started = Date.now();
    let base: string | undefined;
    while ((base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]) === undefined) {
      if (Date.now() - started > 15_000 || child.exitCode !== null) throw new Error(`serve did not start: ${out}`);
      await sleep(20);
    }
    const url = `${base}/api/backup`;
    const pid = child.pid!;
    console.log(`HTTP: dbzip serve (pid ${pid}), ${ABORTS} aborted downloads`);
    const atStart = sample(pid);
    show('server started', atStart);
    const bytes = await completeDownload(url, key);
    await sleep(300);
    const warm = sample(pid);
    show(`one download (${(bytes / MIB).toFixed(1)} MiB)`, warm);
    const phases: Phase[] = ['preparing', 'first-snapshot', 'headers', 'mid-body'];
    const t0 = Date.now();
    for (let i = 0; i < ABORTS; ) {
      const phase = phases[Math.floor(i / 3) % phases.length]!;
      if (phase === 'preparing') {
        // Three at once: the idle worker serves one, two more start and are aborted while loading.
        const burst = [0, 1, 2].map((k) => abortedDownload(url, key, phase, 10 + (((i + k) * 7) % 70)));
        await Promise.all(burst);
        i += 3;
      } else {
        await abortedDownload(url, key, phase, phase === 'first-snapshot' ? 80 + ((i * 13) % 120) : 1 + (i % 200));
        i += 1;
      }
      if (i % 250 < (phase === 'preparing' ? 3 : 1)) process.stdout.write(`  ${i} aborts, ${((Date.now() - t0) / 1000).toFixed(0)} s\r`);
    }
    // Let the server notice the last disconnects and reset its workers.
    await sleep(1_500);
    await completeDownload(url, key);
    const end = await settled(pid, warm.fds);
    show(`after ${ABORTS} aborts + 1 download`, end);
    const leaked = end.files.filter((f) => !warm.files.includes(f));
    if (leaked.length > 0) console.log(`  files left open: ${[...new Set(leaked)].join(', ')}`);
    return end.fds <= warm.fds && leaked.length === 0;
  } finally {
    child.kill();
  }
}

async function soakLibrary(dataDir: string): Promise<boolean> {
  const { createBackup } = (await import(path.join(ROOT, 'dist/index.js'))) as typeof import('../src/index.js');
  console.log(`Library: createBackup() then abort(), ${ABORTS} times in this process`);
  show('start', sample('self'));
  const first = await createBackup({ dataDir });
  for await (const _ of first.stream);
  await sleep(300);
  const atStart = sample('self');
  show('one backup', atStart);
  const t0 = Date.now();
  for (let i = 0; i < ABORTS; i++) {
    if (i % 2 === 0) {
      const backup = await createBackup({ dataDir });
      backup.abort();
      await backup.manifest.catch(() => {});
    } else {
      // Aborted while createBackup() is still scanning, probing or taking the first snapshot.
      const controller = new AbortController();
      const pending = createBackup({ dataDir, signal: controller.signal });
      setTimeout(() => controller.abort(), i % 40);
      await pending.then((b) => b.manifest).catch(() => {});
    }
    if (i % 250 === 0) process.stdout.write(`  ${i} aborts, ${((Date.now() - t0) / 1000).toFixed(0)} s\r`);
  }
  const end = await settled('self', atStart.fds);
  show(`after ${ABORTS} aborts`, end);
  const leaked = end.files.filter((f) => !atStart.files.includes(f));
  if (leaked.length > 0) console.log(`  files left open: ${[...new Set(leaked)].join(', ')}`);
  return end.fds <= atStart.fds && leaked.length === 0;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbzip-soak-'));
try {
  makeDataDir(path.join(dir, 'data'));
  const httpOk = await soakHttp(path.join(dir, 'data'));
  const libraryOk = await soakLibrary(path.join(dir, 'data'));
  console.log(`${new Date().toISOString()}, Node ${process.version}, ${os.cpus().length} cores`);
  console.log(httpOk && libraryOk ? 'no growth' : 'GROWTH: see above');
  process.exitCode = httpOk && libraryOk ? 0 : 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
