import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect } from 'vitest';
import { runCli } from '../src/cli/run-cli.js';
import type { CliIo } from '../src/cli/io.js';
import { EXIT_CODES } from '../src/cli/exit-codes.js';
import { backupToFile, fingerprintTree, readGeneration, writeGeneration } from './helpers/restore.js';
import { test } from './helpers/tmp.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with a fake terminal: `answer` is typed on stdin when given. */
async function cli(args: string[], options: { cwd: string; tty?: boolean; answer?: string }): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const stdin = Object.assign(new PassThrough(), { isTTY: options.tty ?? false });
  const io: CliIo = {
    stdout: { write: (c) => ((stdout += String(c)), true), once: () => undefined, on: () => undefined, off: () => undefined },
    stderr: {
      write: (c) => {
        stderr += String(c);
        // Answer once the question is on screen, as a person would.
        if (options.answer !== undefined && String(c).includes('[y/N]')) stdin.write(`${options.answer}\n`);
        return true;
      },
      once: () => undefined,
      on: () => undefined,
      off: () => undefined,
    },
    stdin,
    env: {},
    cwd: options.cwd,
    signal: new AbortController().signal,
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** The real thing: `node --import tsx src/cli/bin.ts`, stdin a pipe (not a terminal). */
async function dbzipProcess(args: string[], cwd: string): Promise<Run> {
  const bin = path.resolve('src/cli/bin.ts');
  try {
    // tsx resolved here: --import would otherwise look for it from `cwd`.
    const tsx = import.meta.resolve('tsx');
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', tsx, bin, ...args], { cwd, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** data/ at generation 2 with an extra database, and g1.zip holding generation 1. */
async function setup(tmpDir: string): Promise<{ data: string; db: string }> {
  const data = path.join(tmpDir, 'data');
  const db = path.join(data, 'gen.db');
  writeGeneration(db, 1);
  fs.writeFileSync(path.join(data, 'VERSION'), '3.1.0\n');
  await backupToFile(path.join(tmpDir, 'g1.zip'), { dataDir: data });
  writeGeneration(db, 2);
  writeGeneration(path.join(data, 'extra.db'), 1);
  return { data, db };
}

const unchangedData = (data: string) => fingerprintTree(data, { ignoreReaderSidecars: true }).split('\n').filter((l) => !l.includes('.dbzip')).join('\n');

describe('dbzip restore', () => {
  test('--dry-run prints the plan, exits 0 and changes nothing', async ({ tmpDir }) => {
    const { data, db } = await setup(tmpDir);
    const before = unchangedData(data);
    const run = await cli(['restore', 'g1.zip', '--data-dir', 'data', '--dry-run'], { cwd: tmpDir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/replaced\s+database\s+gen\.db/);
    expect(run.stdout).toMatch(/kept\s+database\s+extra\.db.*--exact would remove it/);
    expect(run.stdout).toContain('unchanged  version');
    expect(run.stdout).toContain('dry run: the archive verified and nothing was changed');
    expect(unchangedData(data)).toBe(before);
    expect(fs.existsSync(path.join(data, '.dbzip'))).toBe(false);
    expect(readGeneration(db).gen).toBe(2);
  });

  test('without a terminal and without --yes it refuses with RESTORE_REFUSED before doing anything (real process)', async ({ tmpDir }) => {
    const { data } = await setup(tmpDir);
    const before = fingerprintTree(data);
    const run = await dbzipProcess(['restore', 'g1.zip', '--data-dir', 'data'], tmpDir);
    expect(run.code).toBe(EXIT_CODES.RESTORE_REFUSED);
    expect(run.stderr).toContain('stdin is not a terminal; pass --yes');
    expect(fingerprintTree(data)).toBe(before);
  });

  test('--yes restores and names the pre-restore backup to undo it with (real process)', async ({ tmpDir }) => {
    const { data, db } = await setup(tmpDir);
    const run = await dbzipProcess(['restore', 'g1.zip', '--data-dir', 'data', '--yes', '--mode', 'offline', '--exact'], tmpDir);
    expect(run.code, run.stderr).toBe(0);
    expect(readGeneration(db).gen).toBe(1);
    expect(fs.existsSync(path.join(data, 'extra.db'))).toBe(false);
    const undo = /undo with: dbzip restore (\S+) --data-dir/.exec(run.stdout);
    expect(undo, run.stdout).not.toBeNull();
    expect(fs.existsSync(undo?.[1] as string)).toBe(true);
  });

  test('asks on a terminal: "n" cancels with RESTORE_REFUSED, "y" restores', async ({ tmpDir }) => {
    const { data, db } = await setup(tmpDir);
    const before = unchangedData(data);

    const no = await cli(['restore', 'g1.zip', '--data-dir', 'data'], { cwd: tmpDir, tty: true, answer: 'n' });
    expect(no.code).toBe(EXIT_CODES.RESTORE_REFUSED);
    expect(no.stdout).toMatch(/replaced\s+database\s+gen\.db/);
    expect(no.stderr).toContain('not confirmed');
    expect(unchangedData(data)).toBe(before);
    expect(fs.readdirSync(path.join(data, '.dbzip'))).toEqual([]);

    const yes = await cli(['restore', 'g1.zip', '--data-dir', 'data'], { cwd: tmpDir, tty: true, answer: 'y' });
    expect(yes.code, yes.stderr).toBe(0);
    expect(readGeneration(db).gen).toBe(1);
  });

  test('a newer archive needs --force; a broken one exits ARCHIVE_INVALID listing the problems; --json reports', async ({ tmpDir }) => {
    const { data, db } = await setup(tmpDir);
    fs.writeFileSync(path.join(data, 'VERSION'), '3.0.9\n');
    const newer = await cli(['restore', 'g1.zip', '--data-dir', 'data', '--yes'], { cwd: tmpDir });
    expect(newer.code).toBe(EXIT_CODES.RESTORE_REFUSED);
    expect(newer.stderr).toContain('archive version 3.1.0 is newer than the data directory\'s 3.0.9; pass force (--force)');

    fs.writeFileSync(path.join(tmpDir, 'broken.zip'), fs.readFileSync(path.join(tmpDir, 'g1.zip')).subarray(0, 4000));
    const broken = await cli(['restore', 'broken.zip', '--data-dir', 'data', '--yes'], { cwd: tmpDir });
    expect(broken.code).toBe(EXIT_CODES.ARCHIVE_INVALID);
    expect(broken.stderr).toContain('invalid archive');

    const forced = await cli(['restore', 'g1.zip', '--data-dir', 'data', '--yes', '--force', '--json'], { cwd: tmpDir });
    expect(forced.code, forced.stderr).toBe(0);
    const report = JSON.parse(forced.stdout) as { applied: boolean; version: { forced: boolean }; preRestore: string };
    expect(report).toMatchObject({ applied: true, version: { forced: true } });
    expect(readGeneration(db).gen).toBe(1);
  });

  test('bad flags exit INVALID_OPTION', async ({ tmpDir }) => {
    const { data } = await setup(tmpDir);
    expect((await cli(['restore', 'g1.zip', '--data-dir', data, '--keep-pre-restore', 'many'], { cwd: tmpDir })).code).toBe(EXIT_CODES.INVALID_OPTION);
    expect((await cli(['restore', 'g1.zip', '--data-dir', data, '--mode', 'live'], { cwd: tmpDir })).code).toBe(EXIT_CODES.INVALID_OPTION);
    expect((await cli(['restore', 'g1.zip'], { cwd: tmpDir })).code).toBe(EXIT_CODES.INVALID_OPTION);
  });
});
