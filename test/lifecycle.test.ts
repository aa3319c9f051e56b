import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { createBackup } from '../src/backup.js';
import { AbortedError } from '../src/errors.js';
import { generateFixtures } from '../fixtures/generate.js';
import { collect, listTree, makeBigDatabase, makeDatabase, openFiles } from './helpers/backup.js';
import { test, withTimeout } from './helpers/tmp.js';
import { startWriter } from './helpers/writer.js';

const threads = () => fs.readdirSync('/proc/self/task').length;
const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Polls until `check` passes or `ms` runs out, so the test fails fast with the last value seen. */
async function eventually<T>(read: () => T, check: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = read();
  while (!check(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    value = read();
  }
  return value;
}


describe('no temp files', () => {
  // The built package, as users run it: under vitest the worker would load TypeScript through tsx, which caches in TMPDIR.
  test('a backup writes no file in TMPDIR, the working directory or the data dir, and opens only the files it archives', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    const tmp = path.join(tmpDir, 'tmp');
    const cwd = path.join(tmpDir, 'cwd');
    await generateFixtures(data);
    fs.mkdirSync(tmp);
    fs.mkdirSync(cwd);
    makeBigDatabase(path.join(data, 'big.db'), 8);
    // A running owner keeps -wal/-shm in place, as in production.
    const writer = await startWriter({ dbPath: path.join(data, 'ledger.db'), journal: 'wal' });
    const savedTmp = process.env.TMPDIR;
    const savedCwd = process.cwd();
    const baseline = new Set(openFiles());
    const seen = new Set<string>();
    try {
      process.env.TMPDIR = tmp;
      process.chdir(cwd);
      const before = listTree(data).filter((p) => !p.startsWith('ledger.db'));
      const { createBackup: createBuiltBackup } = await import('../dist/index.js');
      const backup = await createBuiltBackup({ dataDir: data, extensions: ['.db', '.sqlite'] });
      const sample = setInterval(() => openFiles().forEach((f) => baseline.has(f) || seen.add(f)), 5);
      try {
        await collect(backup.stream);
        await backup.manifest;
      } finally {
        clearInterval(sample);
      }
      expect(fs.readdirSync(tmp)).toEqual([]);
      expect(fs.readdirSync(cwd)).toEqual([]);
      // SQLite itself may add -wal/-shm beside a WAL database whose owner is not running (see docs/guarantees.md "No temp files").
      const after = listTree(data).filter((p) => !p.startsWith('ledger.db') && !/-(wal|shm)$/.test(p));
      expect(after).toEqual(before);
      const unexpected = [...seen].filter((f) => !f.startsWith(`${data}/`) && !f.startsWith('/dev/') && !f.includes('node_modules'));
      expect(unexpected).toEqual([]);
      // The sampling did see the backup at work.
      expect([...seen].some((f) => f.startsWith(`${data}/`))).toBe(true);
    } finally {
      process.chdir(savedCwd);
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
      expect((await writer.stop()).errors).toBe(0);
    }
  });

  test('reading a WAL database whose owner is not running: SQLite adds an empty -wal and a -shm, and the database file is untouched', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'idle.db');
    makeDatabase(file, { journal: 'wal' });
    const rollback = path.join(tmpDir, 'rollback.db');
    makeDatabase(rollback, { journal: 'delete' });
    expect(listTree(tmpDir)).toEqual(['idle.db', 'rollback.db']);
    const [hash, rollbackHash] = [sha(file), sha(rollback)];
    const backup = await createBackup({ dataDir: tmpDir });
    await collect(backup.stream);
    expect(listTree(tmpDir)).toEqual(['idle.db', 'idle.db-shm', 'idle.db-wal', 'rollback.db']);
    expect(fs.statSync(`${file}-wal`).size).toBe(0);
    expect(sha(file)).toBe(hash);
    expect(sha(rollback)).toBe(rollbackHash);
  });
});

describe('cancellation', () => {
  test('destroying the stream stops the work promptly and closes every database handle; only the idle worker stays', async ({ tmpDir }) => {
    for (const name of ['a.db', 'b.db', 'c.db']) makeBigDatabase(path.join(tmpDir, name), 6);
    // One idle snapshot worker is kept for the next backup (src/snapshot/worker-pool.ts): at most one more thread.
    const baseThreads = threads() + 1;
    const baseFiles = openFiles().filter((f) => f.startsWith(tmpDir));
    expect(baseFiles).toEqual([]);
    const backup = await createBackup({ dataDir: tmpDir, level: 6 });
    const first = await withTimeout(new Promise<Buffer>((resolve) => backup.stream.once('data', resolve)), 10_000, 'first chunk');
    expect(first.length).toBeGreaterThan(0);
    const started = Date.now();
    backup.stream.destroy();
    await expect(backup.manifest).rejects.toBeInstanceOf(AbortedError);
    const left = await eventually(() => openFiles().filter((f) => f.startsWith(tmpDir)), (files) => files.length === 0, 2_000);
    expect(left).toEqual([]);
    expect(await eventually(threads, (n) => n <= baseThreads, 2_000)).toBeLessThanOrEqual(baseThreads);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('an aborted signal ends the stream with an AbortedError', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'a.db'), 4);
    makeBigDatabase(path.join(tmpDir, 'b.db'), 4);
    const controller = new AbortController();
    const backup = await createBackup({ dataDir: tmpDir, signal: controller.signal });
    await withTimeout(new Promise((resolve) => backup.stream.once('data', resolve)), 10_000, 'first chunk');
    controller.abort();
    await expect(collect(backup.stream)).rejects.toBeInstanceOf(AbortedError);
    await expect(backup.manifest).rejects.toBeInstanceOf(AbortedError);
  });

  test('a backup that is never read can be aborted and leaves nothing open', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'));
    const baseThreads = threads() + 1;
    const backup = await createBackup({ dataDir: tmpDir });
    backup.abort();
    await expect(backup.manifest).rejects.toBeInstanceOf(AbortedError);
    expect(await eventually(threads, (n) => n <= baseThreads, 2_000)).toBeLessThanOrEqual(baseThreads);
    expect(openFiles().filter((f) => f.startsWith(tmpDir))).toEqual([]);
  });
});

describe('backpressure', () => {
  test('a slow consumer does not make the producer run ahead by more than a few chunks', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'a.db'), 16);
    const backup = await createBackup({ dataDir: tmpDir });
    await withTimeout(new Promise((resolve) => backup.stream.once('readable', resolve)), 10_000, 'readable');
    await new Promise((r) => setTimeout(r, 300));
    // Nothing is read for 300 ms: the stream buffers at most its high-water mark plus one chunk.
    expect(backup.stream.readableLength).toBeLessThanOrEqual(2 * 1024 * 1024);
    backup.abort();
    await expect(backup.manifest).rejects.toBeInstanceOf(AbortedError);
  });
});
