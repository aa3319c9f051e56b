import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import { restore } from '../src/restore/index.js';
import { verifyArchive } from '../src/verify/index.js';
import { backupToFile, readGeneration, startChild, writeGeneration } from './helpers/restore.js';
import { test, withTimeout } from './helpers/tmp.js';

const RUNS = 8;
const DATABASES = ['a.db', 'b.db', 'sub/c.db'];
const ASSETS = ['assets/big.bin', 'assets/img/small.txt'];

/** A data directory at generation `gen`: three databases (WAL and rollback, one in a subfolder), assets, VERSION. */
function makeState(dir: string, gen: number): void {
  writeGeneration(path.join(dir, 'a.db'), gen, { journal: 'wal', blobBytes: 2000 });
  writeGeneration(path.join(dir, 'b.db'), gen, { journal: 'delete', blobBytes: 2000 });
  writeGeneration(path.join(dir, 'sub', 'c.db'), gen, { journal: 'wal' });
  fs.mkdirSync(path.join(dir, 'assets', 'img'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'assets', 'big.bin'), Buffer.alloc(512 * 1024, gen));
  fs.writeFileSync(path.join(dir, 'assets', 'img', 'small.txt'), `generation ${gen}\n`);
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
    for (let run = 0; run < RUNS; run++) {
      reset();
      const child = startChild({ role: 'restore', archive: zip, dataDir: data, mode: 'offline' });
      await child.waitFor('start', 20_000);
      // Half spread over the whole run, half late, where the renames happen.
      const delay = run % 2 === 0 ? Math.random() * duration * 1.1 : duration * (0.7 + Math.random() * 0.35);
      await sleep(delay);
      child.child.kill('SIGKILL');
      await withTimeout(child.closed, 10_000, 'killed restore');

      const state = generations(data);
      const published = fs.readdirSync(path.join(data, '.dbzip'), { withFileTypes: true }).filter((d) => d.name.endsWith('.zip')).map((d) => path.join(data, '.dbzip', d.name));
      const changed = Object.values(state).some((g) => g === 1);
      outcomes.push(`${Math.round(delay)}ms: ${changed ? (Object.values(state).every((g) => g === 1) ? 'all new' : 'some new') : 'all old'}, ${published.length} pre-restore`);
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
