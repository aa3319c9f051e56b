import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import { createBackup, type BackupInternals } from '../src/backup.js';
import { likelyNeedsWorker } from '../src/cli/backup-flags.js';
import type { BackupOptions } from '../src/options.js';
import { closeIdleWorkers, startedWorkers } from '../src/snapshot/worker-pool.js';
import { collect, makeBigDatabase, makeDatabase } from './helpers/backup.js';
import { test } from './helpers/tmp.js';

const MIB = 1024 * 1024;

async function zipOf(options: BackupOptions, internals?: BackupInternals): Promise<Buffer> {
  return collect((await createBackup(options, internals)).stream);
}

/** No idle worker: an earlier backup's worker may still be on its way back to the pool (its reset). */
async function noIdleWorker(): Promise<void> {
  await sleep(200);
  await closeIdleWorkers();
}

function smallDataDir(dir: string): void {
  makeDatabase(path.join(dir, 'app.db'), { rows: 300 });
  makeDatabase(path.join(dir, 'ledger.db'), { journal: 'delete', rows: 200 });
}

describe('a small data dir read on the calling thread (how the CLI reads one)', () => {
  test('gives the same archive as a worker does, and starts no worker', async ({ tmpDir }) => {
    smallDataDir(tmpDir);
    const options = { dataDir: tmpDir, date: new Date(0) };
    await noIdleWorker();
    const before = startedWorkers();
    const inProcess = await zipOf(options, { inProcessUpTo: MIB });
    expect(startedWorkers()).toBe(before);
    const viaWorker = await zipOf(options);
    expect(startedWorkers()).toBe(before + 1);
    expect(inProcess.equals(viaWorker)).toBe(true);
  });

  test('databases over the limit are read by a worker', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'big.db'), 2);
    await noIdleWorker();
    const before = startedWorkers();
    await zipOf({ dataDir: tmpDir }, { inProcessUpTo: MIB });
    expect(startedWorkers()).toBe(before + 1);
  });

  test('two at once: one on the calling thread, the other in a worker; an aborted one lets the next in', async ({ tmpDir }) => {
    smallDataDir(tmpDir);
    const options = { dataDir: tmpDir, date: new Date(0) };
    await noIdleWorker();
    const before = startedWorkers();
    // The first holds the calling thread until its stream ends, so the second is read by a worker.
    const first = await createBackup(options, { inProcessUpTo: MIB });
    const second = await createBackup(options, { inProcessUpTo: MIB });
    const [a, b] = await Promise.all([collect(first.stream), collect(second.stream)]);
    expect(a.equals(b)).toBe(true);
    expect(startedWorkers()).toBe(before + 1);
    const aborted = await createBackup(options, { inProcessUpTo: MIB });
    aborted.abort();
    await expect(aborted.manifest).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await zipOf(options, { inProcessUpTo: MIB })).equals(a)).toBe(true);
    expect(startedWorkers()).toBe(before + 1);
  });

  test('the CLI guesses from the top-level database files whether to start a worker while it loads', ({ tmpDir }) => {
    smallDataDir(tmpDir);
    expect(likelyNeedsWorker(tmpDir, {})).toBe(false);
    makeBigDatabase(path.join(tmpDir, 'big.sqlite'), 9);
    expect(likelyNeedsWorker(tmpDir, {})).toBe(false);
    expect(likelyNeedsWorker(tmpDir, { ext: ['.sqlite'] })).toBe(true);
    expect(likelyNeedsWorker(path.join(tmpDir, 'missing'), {})).toBe(false);
  });
});

describe('memory between images', () => {
  test('collectGarbage (the CLI passes one) runs before a large image is read once another was streamed, and every 32 MiB of a serialized one', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'big.db'), 17, 'delete');
    let calls = 0;
    const collectGarbage = () => void calls++;
    await zipOf({ dataDir: tmpDir }, { collectGarbage });
    expect(calls).toBe(0);
    // The pinned WAL database is archived first: its chunks may still be held when big.db is read.
    makeDatabase(path.join(tmpDir, 'wal.db'), { rows: 100 });
    await zipOf({ dataDir: tmpDir }, { collectGarbage });
    expect(calls).toBe(1);
    // A WAL database is serialize()d: its image stays whole in the worker while its chunks are sent.
    const walOnly = path.join(tmpDir, 'wal-only');
    makeBigDatabase(path.join(walOnly, 'big.db'), 40, 'wal');
    calls = 0;
    await zipOf({ dataDir: walOnly }, { collectGarbage });
    expect(calls).toBe(1);
  });
});
