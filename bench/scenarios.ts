/**
 * One repetition of one scenario, end to end: an empty TMPDIR, the data dir listed before and
 * after, the writer (if any) started and given a "writer alone" window just before the backup,
 * the backup run in its own process (bench child, CLI or HTTP server), the -wal of the largest
 * WAL database sampled while it runs, and the output zip opened to read its manifest and check
 * the writer's invariant inside it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import yauzl from 'yauzl';
import type { Manifest } from '../src/index.js';
import type { ChildMessage, ChildResult, ChildTask } from './child.js';
import type { CompiledScripts } from './compile.js';
import type { DataSet } from './data.js';
import type { ProcessMeasures } from './measure.js';
import { watchTemp } from './tempfiles.js';
import { checkLedger, clearWalHeader, monotonicMs, resetLedger, startWriter, windowStats, type LedgerCheck, type RunningWriter, type WindowStats, type WriterSync } from './writer.js';

/** 'peer': bench/peer.py, the naive Python backup every dbzip row is compared with. */
export type Via = 'library' | 'cli' | 'http' | 'peer';
export type WriterMode = 'none' | 'wal' | 'rollback';

export interface Scenario {
  id: string;
  via: Via;
  level: number;
  writer: WriterMode;
  /** dbzip's `check` option; the default ('quick') when left out. */
  check?: 'quick' | 'none';
}

export interface ScenarioRun {
  id: string;
  rep: number;
  /** Set when the scenario could not run at all (e.g. no HTTP server in this build). */
  unavailable?: string;
  error?: string;
  durationMs: number;
  ttfbMs: number | null;
  dbBytes: number;
  inputBytes: number;
  outputBytes: number;
  /** Store mode announces the zip's length up front; true when it was exact. */
  announcedSizeExact: boolean | null;
  measures: ProcessMeasures | null;
  /** CPU time of the HTTP client (the bench parent) during the download, ms. */
  clientCpuMs: number;
  /** Bytes left in TMPDIR afterwards, plus the largest size seen of each temp file while running. */
  tempBytes: number;
  /** Every file that appeared in TMPDIR, however briefly. */
  tempFiles: string[];
  dataDirChanges: string[];
  pinWindowMs: number | null;
  databases: number;
  skipped: { path: string; code: string }[];
  writer: {
    alone: WindowStats;
    during: WindowStats;
    /** Share of the machine's CPU time left idle (idle + iowait, /proc/stat) in each window; null without /proc. */
    idleAlone: number | null;
    idleDuring: number | null;
    errors: { message: string; count: number }[];
    ledger: LedgerCheck | null;
  } | null;
  /** -wal of the largest WAL database: size when the backup started, and the most seen while it ran. */
  wal: { beforeBytes: number; maxBytes: number };
}

export interface Context {
  data: DataSet;
  scripts: CompiledScripts;
  distUrl: string;
  cliBin: string;
  /** bench/peer.py, run with python3. */
  peerScript: string;
  scratch: string;
  writerSync: WriterSync;
  /** How long the writer runs alone, just before each backup, for the comparison. */
  baselineMs: number;
  httpPath: string;
  /** Extra node flags for bench children (e.g. --cpu-prof). */
  childExecArgv: string[];
  log: (line: string) => void;
}

const SQLITE_SIDECARS = /-(wal|shm|journal)$/;

/** Name, size and mtime of everything in the data dir except SQLite's own sidecar files. */
function listing(dir: string, ignore: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const dirent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? dirent.name : `${rel}/${dirent.name}`;
      if (dirent.isDirectory()) walk(child);
      else if (!SQLITE_SIDECARS.test(child)) {
        const stat = fs.statSync(path.join(dir, child));
        // The writer's own database legitimately changes; only its presence is compared.
        out.set(child, child === ignore ? 'writer' : `${stat.size}@${stat.mtimeMs}`);
      }
    }
  };
  walk('');
  return out;
}

function diffListing(before: Map<string, string>, after: Map<string, string>): string[] {
  const changes: string[] = [];
  for (const [name, value] of after) {
    if (!before.has(name)) changes.push(`added ${name}`);
    else if (before.get(name) !== value) changes.push(`changed ${name}`);
  }
  for (const name of before.keys()) if (!after.has(name)) changes.push(`removed ${name}`);
  return changes;
}

function bytesUnder(dir: string): number {
  let total = 0;
  for (const dirent of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (dirent.isFile()) total += fs.statSync(path.join(dirent.parentPath, dirent.name)).size;
  }
  return total;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

const sleepUntil = (atMs: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, atMs - monotonicMs())));

interface CpuTimes {
  idle: number;
  total: number;
}

/** The machine's CPU time so far (all cores), from the first line of /proc/stat. */
function readCpuTimes(): CpuTimes | undefined {
  try {
    const fields = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

function idleFraction(from: CpuTimes | undefined, to: CpuTimes | undefined): number | null {
  if (from === undefined || to === undefined || to.total <= from.total) return null;
  return Math.round(((to.idle - from.idle) / (to.total - from.total)) * 100) / 100;
}

/** Samples the size of `file` every 10 ms from the parent (which is idle while a backup runs). */
function sampleSize(file: string): { stop(): number } {
  let max = fileSize(file);
  const timer = setInterval(() => {
    max = Math.max(max, fileSize(file));
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, fileSize(file));
    },
  };
}

interface ZipFacts {
  manifest: Manifest;
  ledger: LedgerCheck | null;
}

/** Reads manifest.json from the zip and, when asked, extracts one database to check the ledger in it. */
async function inspectZip(zipPath: string, ledgerEntry: string | undefined, scratch: string, peerManifest: Manifest | undefined): Promise<ZipFacts> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false, validateEntrySizes: true });
  let manifest: Manifest | undefined = peerManifest;
  let ledger: LedgerCheck | null = null;
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName === 'manifest.json') {
        const chunks: Buffer[] = [];
        for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
        manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Manifest;
      } else if (entry.fileName === ledgerEntry) {
        const file = path.join(scratch, 'ledger-check.db');
        await pipeline(await zip.openReadStreamPromise(entry), fs.createWriteStream(file));
        clearWalHeader(file);
        try {
          ledger = checkLedger(file);
        } finally {
          fs.rmSync(file, { force: true });
        }
      }
    }
  } finally {
    zip.close();
  }
  if (manifest === undefined) throw new Error(`${zipPath} has no manifest.json`);
  if (ledgerEntry !== undefined && ledger === null) throw new Error(`${zipPath} does not hold ${ledgerEntry}`);
  return { manifest, ledger };
}

interface ChildHandle {
  process: ChildProcess;
  /** Resolves when the process is gone (a --cpu-prof profile is written by then). */
  exited: Promise<void>;
  ready: Promise<{ url?: string }>;
  started: Promise<number>;
  result: Promise<ChildResult>;
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function startChild(ctx: Context, task: ChildTask, env: NodeJS.ProcessEnv, track?: (pid: number | undefined) => void): ChildHandle {
  const child = spawn(process.execPath, [...ctx.childExecArgv, ctx.scripts.child, JSON.stringify(task)], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track?.(child.pid);
  const ready = deferred<{ url?: string }>();
  const started = deferred<number>();
  const result = deferred<ChildResult>();
  let fail!: (error: Error) => void;
  const failure = new Promise<never>((_, reject) => {
    fail = reject;
  });
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'ready') ready.resolve(message.url === undefined ? {} : { url: message.url });
    else if (message.type === 'started') started.resolve(message.atMs);
    else if (message.type === 'result') result.resolve(message.result);
    else fail(new Error(message.message));
  });
  // After a result this rejects nothing anyone still waits on.
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      fail(new Error(`bench child exited (${signal ?? code}) before reporting`));
      resolve();
    });
  });
  const race = <T>(p: Promise<T>): Promise<T> => {
    const raced = Promise.race([p, failure]);
    raced.catch(() => {});
    return raced;
  };
  return { process: child, exited, ready: race(ready.promise), started: race(started.promise), result: race(result.promise) };
}

/** Downloads url to a file; time to first byte and total time, from the request. */
async function download(url: string, file: string): Promise<{ ttfbMs: number; durationMs: number }> {
  const start = performance.now();
  let ttfbMs = -1;
  await new Promise<void>((resolve, reject) => {
    http
      .get(url, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`GET ${url} answered ${res.statusCode}`));
          return;
        }
        res.once('data', () => {
          ttfbMs = performance.now() - start;
        });
        pipeline(res, fs.createWriteStream(file)).then(resolve, reject);
      })
      .on('error', reject);
  });
  return { ttfbMs, durationMs: performance.now() - start };
}

/** What bench/peer.py prints on its last line. */
interface PeerReport {
  databases: { path: string; bytes: number }[];
  peakRssBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

/** The peer has no manifest: one is made from its report and the files it read, for the same tables. */
function peerManifest(ctx: Context, report: PeerReport): Manifest {
  const written = new Set(report.databases.map((d) => d.path));
  return {
    databases: report.databases.map((d) => ({ path: d.path, bytes: d.bytes })),
    assets: ctx.data.files.filter((f) => f.kind === 'asset').map((f) => ({ path: f.path, bytes: f.bytes })),
    skipped: ctx.data.files.filter((f) => f.path.endsWith('.db') && !f.path.includes('/') && !written.has(f.path)).map((f) => ({ path: f.path, code: 'NOT_SQLITE' })),
    pin: { windowMs: null },
  } as unknown as Manifest;
}

interface Executed {
  durationMs: number;
  ttfbMs: number | null;
  announcedSize: number | null;
  measures: ProcessMeasures;
  clientCpuMs: number;
  /** Monotonic time the backup began, for the writer's window. */
  startedAtMs: number;
  /** The peer's stand-in for manifest.json. */
  manifest?: Manifest;
}

/** Runs a command to its exit; rejects with its stderr when it fails. */
async function runToExit(label: string, command: string, args: string[], env: NodeJS.ProcessEnv, track: (pid: number | undefined) => void): Promise<{ stdout: string; durationMs: number }> {
  const start = performance.now();
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const durationMs = performance.now() - start;
  if (code !== 0) throw new Error(`${label} exited with ${code}: ${stderr.trim()}`);
  return { stdout, durationMs };
}

async function withGo<T>(handle: ChildHandle, beforeGo: () => Promise<void>, run: (startedAt: number) => Promise<T>): Promise<T> {
  await handle.ready;
  await beforeGo();
  handle.process.send('go');
  return run(await handle.started);
}

async function execute(ctx: Context, scenario: Scenario, outPath: string, tmpDir: string, track: (pid: number | undefined) => void, beforeGo: () => Promise<void>): Promise<Executed> {
  const env = { ...process.env, TMPDIR: tmpDir, SQLITE_TMPDIR: tmpDir };
  if (scenario.via === 'library') {
    const handle = startChild(ctx, { kind: 'library', distUrl: ctx.distUrl, dataDir: ctx.data.dataDir, level: scenario.level, ...(scenario.check === undefined ? {} : { check: scenario.check }), outPath, tmpDir }, env, track);
    return withGo(handle, beforeGo, async (startedAtMs) => {
      const result = await handle.result;
      await handle.exited;
      if (result.kind !== 'library') throw new Error('unexpected child result');
      return { ...result.outcome, measures: result.measures, clientCpuMs: 0, startedAtMs };
    });
  }
  if (scenario.via === 'http') {
    const handle = startChild(ctx, { kind: 'http', distUrl: ctx.distUrl, dataDir: ctx.data.dataDir, level: scenario.level, tmpDir }, env, track);
    const { url } = await handle.ready;
    return withGo(handle, beforeGo, async (startedAtMs) => {
      const cpu = process.cpuUsage();
      const got = await download(`${url ?? ''}${ctx.httpPath}`, outPath);
      const used = process.cpuUsage(cpu);
      handle.process.send('done');
      const result = await handle.result;
      await handle.exited;
      return { durationMs: got.durationMs, ttfbMs: got.ttfbMs, announcedSize: null, measures: result.measures, clientCpuMs: (used.user + used.system) / 1000, startedAtMs };
    });
  }
  if (scenario.via === 'peer') {
    await beforeGo();
    const startedAtMs = monotonicMs();
    const { stdout, durationMs } = await runToExit('peer.py', 'python3', [ctx.peerScript, ctx.data.dataDir, outPath], env, track);
    const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null') as PeerReport;
    const measures: ProcessMeasures = {
      startMs: startedAtMs,
      endMs: startedAtMs + durationMs,
      loopDelayMaxMs: NaN,
      loopDelayP99Ms: NaN,
      peakRssBytes: report.peakRssBytes,
      rssAtStartBytes: NaN,
      wcharBytes: null,
      storageWriteBytes: null,
      cpuUserMs: report.cpuUserMs,
      cpuSystemMs: report.cpuSystemMs,
    };
    return { durationMs, ttfbMs: null, announcedSize: null, measures, clientCpuMs: 0, startedAtMs, manifest: peerManifest(ctx, report) };
  }
  // The CLI as users run it; probe.js only measures from inside it.
  await beforeGo();
  const probeOut = path.join(ctx.scratch, 'probe.json');
  fs.rmSync(probeOut, { force: true });
  const startedAtMs = monotonicMs();
  const args = ['--import', pathToFileURL(ctx.scripts.probe).href, ctx.cliBin, 'backup', ctx.data.dataDir, '-o', outPath, '--force', '--quiet', '--level', String(scenario.level)];
  if (scenario.check !== undefined) args.push('--check', scenario.check);
  const { durationMs } = await runToExit('dbzip backup', process.execPath, args, { ...env, BENCH_PROBE_OUT: probeOut }, track);
  const probe = JSON.parse(fs.readFileSync(probeOut, 'utf8')) as { measures: ProcessMeasures };
  return { durationMs, ttfbMs: null, announcedSize: null, measures: probe.measures, clientCpuMs: 0, startedAtMs };
}

export async function runScenario(ctx: Context, scenario: Scenario, rep: number): Promise<ScenarioRun> {
  const { data } = ctx;
  const tmpDir = path.join(ctx.scratch, 'tmp');
  const outPath = path.join(ctx.scratch, `out-${scenario.id}.zip`);
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir, { recursive: true });
  fs.rmSync(outPath, { force: true });
  const writerDb = scenario.writer === 'none' ? undefined : data.writerDb[scenario.writer];
  const largestWal = path.join(data.dataDir, `${data.writerDb.wal}-wal`);
  const before = listing(data.dataDir, writerDb);
  const temp = watchTemp(tmpDir);
  const run: ScenarioRun = {
    id: scenario.id,
    rep,
    durationMs: NaN,
    ttfbMs: null,
    dbBytes: 0,
    inputBytes: 0,
    outputBytes: 0,
    announcedSizeExact: null,
    measures: null,
    clientCpuMs: 0,
    tempBytes: 0,
    tempFiles: [],
    dataDirChanges: [],
    pinWindowMs: null,
    databases: 0,
    skipped: [],
    writer: null,
    wal: { beforeBytes: 0, maxBytes: 0 },
  };

  let writer: RunningWriter | undefined;
  let walSampler: { stop(): number } | undefined;
  let goAtMs = NaN;
  try {
    if (writerDb !== undefined) {
      writer = await startWriter(ctx.scripts.writer, { dbPath: path.join(data.dataDir, writerDb), synchronous: ctx.writerSync });
    }
    let aloneStartMs = NaN;
    let cpuAtAlone: CpuTimes | undefined;
    let cpuAtGo: CpuTimes | undefined;
    const beforeGo = async () => {
      // Warm-up, then the "writer alone" window, which ends where the backup starts.
      if (writer !== undefined) {
        await sleepUntil(writer.readyAtMs + 200);
        aloneStartMs = monotonicMs();
        cpuAtAlone = readCpuTimes();
        await sleepUntil(aloneStartMs + ctx.baselineMs);
      }
      run.wal.beforeBytes = fileSize(largestWal);
      walSampler = sampleSize(largestWal);
      cpuAtGo = readCpuTimes();
      goAtMs = monotonicMs();
    };
    const executed = await execute(ctx, scenario, outPath, tmpDir, (pid) => temp.track(pid), beforeGo);
    const cpuAtEnd = readCpuTimes();
    run.wal.maxBytes = walSampler?.stop() ?? 0;
    run.durationMs = executed.durationMs;
    run.ttfbMs = executed.ttfbMs;
    run.measures = executed.measures;
    run.clientCpuMs = executed.clientCpuMs;
    run.outputBytes = fileSize(outPath);
    run.announcedSizeExact = executed.announcedSize === null ? null : executed.announcedSize === run.outputBytes;
    if (writer !== undefined) {
      const log = await writer.stop();
      writer = undefined;
      const start = Number.isNaN(executed.startedAtMs) ? goAtMs : executed.startedAtMs;
      run.writer = {
        alone: windowStats(log, aloneStartMs, goAtMs),
        during: windowStats(log, start, start + executed.durationMs),
        idleAlone: idleFraction(cpuAtAlone, cpuAtGo),
        idleDuring: idleFraction(cpuAtGo, cpuAtEnd),
        errors: log.errors,
        ledger: null,
      };
    }
    const facts = await inspectZip(outPath, writerDb, ctx.scratch, executed.manifest);
    if (run.writer !== null) run.writer.ledger = facts.ledger;
    run.dbBytes = facts.manifest.databases.reduce((n, d) => n + d.bytes, 0);
    run.inputBytes = run.dbBytes + facts.manifest.assets.reduce((n, a) => n + a.bytes, 0);
    run.pinWindowMs = facts.manifest.pin.windowMs;
    run.databases = facts.manifest.databases.length;
    run.skipped = facts.manifest.skipped.map((s) => ({ path: s.path, code: s.code }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.includes('HTTP_NOT_AVAILABLE')) run.unavailable = 'this build has no HTTP server (dist/http/index.js exports no startServer)';
    else run.error = message;
  } finally {
    walSampler?.stop();
    if (writer !== undefined) await writer.stop().catch(() => undefined);
    if (writerDb !== undefined) resetLedger(path.join(data.dataDir, writerDb));
    const seen = temp.stop();
    run.tempBytes = bytesUnder(tmpDir) + seen.bytes;
    run.tempFiles = seen.files;
    run.dataDirChanges = diffListing(before, listing(data.dataDir, writerDb));
    fs.rmSync(outPath, { force: true });
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  return run;
}

type MeasureTask = Extract<ChildTask, { kind: 'ceiling' | 'stages' }>;

/** The ceiling and the stage costs run in a bench child too, so their RSS is comparable. */
export async function runMeasureChild<T extends MeasureTask>(ctx: Context, task: T): Promise<Extract<ChildResult, { kind: T['kind'] }>> {
  fs.mkdirSync(task.tmpDir, { recursive: true });
  const handle = startChild(ctx, task, { ...process.env, TMPDIR: task.tmpDir, SQLITE_TMPDIR: task.tmpDir });
  await handle.ready;
  handle.process.send('go');
  const result = await handle.result;
  await handle.exited;
  if (result.kind !== task.kind) throw new Error(`expected a ${task.kind} result`);
  return result as Extract<ChildResult, { kind: T['kind'] }>;
}

export interface StartupRuns {
  /** The data dir backed up (fixtures/data), its database bytes, and the wall time of each run, ms. */
  dataDir: string;
  dbzipMs: number[];
  peerMs: number[];
}

/**
 * A small data dir, where start-up is most of the work: `dbzip backup` (no probe preloaded) and
 * the peer, alternated `runs` times, spawn to exit.
 */
export async function runStartup(ctx: Context, dataDir: string, runs: number): Promise<StartupRuns> {
  const out = path.join(ctx.scratch, 'startup.zip');
  const result: StartupRuns = { dataDir, dbzipMs: [], peerMs: [] };
  const env = { ...process.env };
  const none = () => {};
  const dbzip = async () => result.dbzipMs.push((await runToExit('dbzip backup', process.execPath, [ctx.cliBin, 'backup', dataDir, '-o', out, '--force', '--quiet'], env, none)).durationMs);
  const peer = async () => result.peerMs.push((await runToExit('peer.py', 'python3', [ctx.peerScript, dataDir, out], env, none)).durationMs);
  // Each goes first in every other pair, so neither always follows the other's cache effects.
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) await dbzip().then(peer);
    else await peer().then(dbzip);
  }
  fs.rmSync(out, { force: true });
  return result;
}
