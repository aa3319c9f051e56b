import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import { restore } from '../src/restore/index.js';
import { verifyArchive } from '../src/verify/index.js';
import { backupToFile, readGeneration, startChild, writeGeneration } from './helpers/restore.js';
import { test, withTimeout } from './helpers/tmp.js';

/** Kill strategies, one run each: a random moment, after the pre-restore backup, inside the renames. */
const STRATEGIES = [0, 1, 2, 3, 0, 2] as const;
const DATABASES = ['a.db', 'b.db', 'sub/c.db'];
/** Many small files make the rename phase long enough for a kill to land inside it. */
const MANY = Array.from({ length: 40 }, (_, i) => `assets/many/f${String(i).padStart(2, '0')}.txt`);
const ASSETS = ['assets/big.bin', 'assets/img/small.txt', ...MANY];

/** A data directory at generation `gen`: three databases (WAL and rollback, one in a subfolder), assets, VERSION. */
function makeState(dir: string, gen: number): void {
  writeGeneration(path.join(dir, 'a.db'), gen, { journal: 'wal', blobBytes: 2000 });
  writeGeneration(path.join(dir, 'b.db'), gen, { journal: 'delete', blobBytes: 2000 });
  writeGeneration(path.join(dir, 'sub', 'c.db'), gen, { journal: 'wal' });
  fs.mkdirSync(path.join(dir, 'assets', 'img'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'assets', 'big.bin'), Buffer.alloc(512 * 1024, gen));
  fs.writeFileSync(path.join(dir, 'assets', 'img', 'small.txt'), `generation ${gen}\n`);
  fs.mkdirSync(path.join(dir, 'assets', 'many'), { recursive: true });
  for (const file of MANY) fs.writeFileSync(path.join(dir, file), `generation ${gen}\n`);
  fs.writeFileSync(path.join(dir, 'VERSION'), `1.${gen}.0\n`);
}

/** The generation of every database and file, or a failure naming the one that is neither old nor new. */
function generations(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const db of DATABASES) {
    const state = readGeneration(path.join(dir, db));
    expect(state.gen, `${db}: ${JSON.stringify(state)}`).not.toBeNull();
    out[db] = state.gen as number;
  }
  for (const asset of ASSETS) {
    const bytes = fs.readFileSync(path.join(dir, asset));
    const gen = [1, 2].find((g) => (asset.endsWith('.bin') ? bytes.equals(Buffer.alloc(512 * 1024, g)) : bytes.toString() === `generation ${g}\n`));
    expect(gen, `${asset} is neither generation`).toBeDefined();
    out[asset] = gen as number;
  }
  const version = fs.readFileSync(path.join(dir, 'VERSION'), 'utf8');
  expect(['1.1.0\n', '1.2.0\n']).toContain(version);
  out['VERSION'] = version === '1.1.0\n' ? 1 : 2;
  return out;
}

/** Resolves once `lines` holds `n` lines starting with `prefix` (polled: the child writes fast), or the child is gone. */
async function waitForNth(child: ReturnType<typeof startChild>, prefix: string, n: number): Promise<string> {
  let exited = false;
  void child.closed.then(() => {
    exited = true;
  });
  while (!exited) {
    const hits = child.lines.filter((l) => l.startsWith(prefix));
    if (hits.length >= n) return hits[n - 1] as string;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return 'exited';
}

function leftovers(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => /dbzip-new-|\.partial$|restore\.lock$|convert-/.test(p));
}

describe('a restore killed at random moments', () => {
  test('offline: every database and file is fully old or fully new, the pre-restore backup is intact and undoes it', async ({ tmpDir }) => {
    const gen1 = path.join(tmpDir, 'gen1');
    const gen2 = path.join(tmpDir, 'gen2');
    makeState(gen1, 1);
    makeState(gen2, 2);
    const zip = path.join(tmpDir, 'gen1.zip');
    await backupToFile(zip, { dataDir: gen1, recursive: true });
    const data = path.join(tmpDir, 'data');
    const reset = () => {
      fs.rmSync(data, { recursive: true, force: true });
      fs.cpSync(gen2, data, { recursive: true });
    };

    // One full run to learn how long a restore takes in a child process.
    reset();
    const full = startChild({ role: 'restore', archive: zip, dataDir: data, mode: 'offline' });
    await full.waitFor('start', 20_000);
    const done = await full.waitFor('done', 30_000);
    await full.closed;
    const duration = Number(done.split(' ')[1]);
    expect(Object.values(generations(data)).every((g) => g === 1)).toBe(true);

    const outcomes: string[] = [];
    for (const strategy of STRATEGIES) {
      reset();
      const child = startChild({ role: 'restore', archive: zip, dataDir: data, mode: 'offline' });
      await child.waitFor('start', 20_000);
      const started = performance.now();
      // At a random moment of the whole run, or at a step: after the pre-restore backup, or inside
      // the renames (once the first, or the tenth, file is in place).
      if (strategy === 0) await sleep(Math.random() * duration);
      else {
        const line = await Promise.race([
          strategy === 1 ? child.waitFor('log pre-restore backup written', 30_000).catch(() => 'exited') : waitForNth(child, 'log restored', strategy === 2 ? 1 : 10),
          child.closed.then(() => 'exited'),
        ]);
        if (strategy === 1 && line !== 'exited') await sleep(Math.random() * 30);
      }
      const delay = performance.now() - started;
      child.child.kill('SIGKILL');
      await withTimeout(child.closed, 10_000, 'killed restore');

      const state = generations(data);
      const published = (fs.existsSync(path.join(data, '.dbzip')) ? fs.readdirSync(path.join(data, '.dbzip'), { withFileTypes: true }) : []).filter((d) => d.name.endsWith('.zip')).map((d) => path.join(data, '.dbzip', d.name));
      const changed = Object.values(state).some((g) => g === 1);
      outcomes.push(`${['random', 'after pre-restore', '1st rename', '10th rename'][strategy]} ${Math.round(delay)}ms: ${changed ? (Object.values(state).every((g) => g === 1) ? 'all new' : 'some new') : 'all old'}, ${published.length} pre-restore`);
      // Nothing changes before the pre-restore backup is published, and it always verifies.
      if (changed) expect(published).toHaveLength(1);
      for (const pre of published) expect((await verifyArchive(pre)).problems).toEqual([]);

      if (published.length === 1) {
        // Undo: the state from before the killed restore (an older VERSION is now current: force).
        await restore({ archive: published[0] as string, dataDir: data, mode: 'offline', force: true });
        expect(Object.values(generations(data)).every((g) => g === 2)).toBe(true);
      }
      // And a new restore finishes the job, clearing what the killed one left behind.
      await restore({ archive: zip, dataDir: data, mode: 'offline' });
      expect(Object.values(generations(data)).every((g) => g === 1)).toBe(true);
      expect(leftovers(data)).toEqual([]);
    }
    console.info(`[restore kill] full run ${duration} ms; ${outcomes.join('; ')}`);
  });
});
