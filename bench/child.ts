/**
 * Runs one measurement in a fresh process, so its peak RSS (maxRSS) belongs to that one backup.
 * Transpiled to plain JavaScript by compile.ts and started with plain `node`: no TypeScript
 * loader (tsx alone adds ~35 MB of RSS and a loader thread) in the process being measured.
 *
 * Protocol over the IPC channel: child -> {ready}; parent -> 'go'; child -> {started};
 * (HTTP only: the parent downloads, then sends 'done'); child -> {result} and exits.
 * The built package is imported from the URL in the task, as users import it.
 */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type * as Dbzip from '../src/index.js';
import { measureCeiling, measureStages, type CeilingResult, type StageResult } from './ceiling.js';
import { monotonicMs, startMeasuring, type ProcessMeasures } from './measure.js';

export type ChildTask =
  | { kind: 'library'; distUrl: string; dataDir: string; level: number; check?: 'quick' | 'none'; outPath: string; tmpDir: string; recipients?: string[]; pin?: 'all-blocking' }
  | { kind: 'http'; distUrl: string; dataDir: string; level: number; tmpDir: string }
  | { kind: 'ceiling'; files: string[]; outPath: string; tmpDir: string }
  | { kind: 'stages'; files: string[]; levels: number[]; tmpDir: string };

export interface LibraryOutcome {
  /** createBackup() called -> last byte written to the file. */
  durationMs: number;
  /** createBackup() called -> first byte of the zip (scan, probe, pin and the first snapshot). */
  ttfbMs: number;
  outputBytes: number;
  /** Backup.size: the length announced before the first byte, or null. */
  announcedSize: number | null;
}

export type ChildResult =
  | { kind: 'library'; measures: ProcessMeasures; outcome: LibraryOutcome }
  | { kind: 'http'; measures: ProcessMeasures }
  | { kind: 'ceiling'; measures: ProcessMeasures; ceiling: CeilingResult }
  | { kind: 'stages'; measures: ProcessMeasures; stages: StageResult };

export type ChildMessage =
  | { type: 'ready'; url?: string }
  | { type: 'started'; atMs: number }
  | { type: 'result'; result: ChildResult }
  | { type: 'error'; message: string };

const silent = { info() {}, warn() {}, error() {} };

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) throw new Error('bench child must be started with an IPC channel');
    process.send(message, undefined, {}, () => resolve());
  });
}

function nextMessage(expected: string): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (message !== expected) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}

async function libraryBackup(createBackup: typeof Dbzip.createBackup, task: Extract<ChildTask, { kind: 'library' }>): Promise<LibraryOutcome> {
  const start = performance.now();
  // `check` is passed only when asked for, so the bench still runs builds that predate the option.
  // recipients and pin: only bench/encrypt.ts sets them (age-encrypted vs plain, with an announced size to check).
  const backup = await createBackup({
    dataDir: task.dataDir,
    level: task.level,
    logger: silent,
    ...(task.check === undefined ? {} : ({ check: task.check } as object)),
    ...(task.pin === undefined ? {} : { pin: task.pin }),
    ...(task.recipients === undefined ? {} : { encrypt: { recipients: task.recipients } }),
  });
  let ttfbMs = -1;
  backup.stream.once('data', () => {
    ttfbMs = performance.now() - start;
  });
  await pipeline(backup.stream, fs.createWriteStream(task.outPath));
  await backup.manifest;
  return { durationMs: performance.now() - start, ttfbMs, outputBytes: fs.statSync(task.outPath).size, announcedSize: backup.size };
}

/** The HTTP server's entry point, if this build has one (it is being written alongside the bench). */
interface ServerHandle {
  url: string;
  close(): Promise<unknown>;
}

type StartServer = (options: Record<string, unknown>) => Promise<unknown>;

async function findStartServer(distUrl: string): Promise<StartServer | undefined> {
  for (const candidate of [new URL('./http/index.js', distUrl).href, distUrl]) {
    const module = (await import(candidate).catch(() => ({}))) as Record<string, unknown>;
    if (typeof module.startServer === 'function') return module.startServer as StartServer;
  }
  return undefined;
}

/** Accepts the shapes a server handle is likely to take: { url, close } or a node Server. */
function asHandle(started: unknown): ServerHandle {
  const s = started as { url?: unknown; port?: unknown; address?: () => unknown; close?: (cb?: () => void) => unknown; stop?: () => unknown };
  let url = typeof s.url === 'string' ? s.url : undefined;
  if (url === undefined && typeof s.port === 'number') url = `http://127.0.0.1:${s.port}`;
  if (url === undefined && typeof s.address === 'function') {
    const address = s.address() as { port?: number } | null;
    if (typeof address?.port === 'number') url = `http://127.0.0.1:${address.port}`;
  }
  if (url === undefined) throw new Error('startServer() returned no url, port or address()');
  const close = async () => {
    if (typeof s.close === 'function') {
      const closing = s.close.length > 0 ? new Promise<void>((resolve) => s.close?.(() => resolve())) : s.close();
      await closing;
    } else if (typeof s.stop === 'function') await s.stop();
  };
  return { url: url.replace(/\/$/, ''), close };
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? 'null') as ChildTask;
  let server: ServerHandle | undefined;
  // Loaded before measuring: module loading is start-up, not backup work.
  const dbzip = task.kind === 'library' ? ((await import(task.distUrl)) as typeof Dbzip) : undefined;
  if (task.kind === 'http') {
    const startServer = await findStartServer(task.distUrl);
    if (startServer === undefined) throw new Error('HTTP_NOT_AVAILABLE: this build exports no startServer');
    server = asHandle(await startServer({ dataDir: task.dataDir, level: task.level, auth: { none: true }, host: '127.0.0.1', port: 0, logger: silent }));
  }
  const go = nextMessage('go');
  await send(server === undefined ? { type: 'ready' } : { type: 'ready', url: server.url });
  await go;
  const measuring = startMeasuring();
  // Listen before saying 'started': the parent may answer 'done' at once.
  const done = task.kind === 'http' ? nextMessage('done') : undefined;
  await send({ type: 'started', atMs: monotonicMs() });
  let result: ChildResult;
  switch (task.kind) {
    case 'library': {
      if (dbzip === undefined) throw new Error('dbzip was not loaded');
      const outcome = await libraryBackup(dbzip.createBackup, task);
      result = { kind: 'library', outcome, measures: measuring.stop() };
      break;
    }
    case 'http': {
      await done;
      const measures = measuring.stop();
      await server?.close();
      result = { kind: 'http', measures };
      break;
    }
    case 'ceiling': {
      const ceiling = measureCeiling(task.files, task.outPath);
      result = { kind: 'ceiling', ceiling, measures: measuring.stop() };
      break;
    }
    case 'stages': {
      const stages = await measureStages(task.files, task.levels);
      result = { kind: 'stages', stages, measures: measuring.stop() };
      break;
    }
  }
  await send({ type: 'result', result });
  // Whatever a build leaves running (a server socket, a worker) must not hold the next run back.
  process.exit(0);
}

main().catch(async (error: unknown) => {
  await send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }).catch(() => {});
  process.exit(1);
});
