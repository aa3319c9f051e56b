import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { makeDatabase } from './helpers/backup.js';
import { test, withTimeout } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';

/** The built CLI, run as users run it: a separate process (`npm test` builds first). */
const BIN = path.resolve('dist/cli/bin.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function dbzip(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('dbzip backup / verify', () => {
  test('backup -o then verify succeeds, and unzip -t and sqlite3 accept the result', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const out = path.join(tmpDir, 'x.zip');
    const backup = await dbzip(['backup', data, '-o', out]);
    expect(backup).toMatchObject({ code: 0 });
    expect(backup.stderr).toContain('skipped');
    expect(fs.existsSync(`${out}.partial`)).toBe(false);
    const verify = await dbzip(['verify', out]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/: ok/);
    expect(verify.stdout).toContain('app.db');
    expect(execFileSync('unzip', ['-t', out]).toString()).toContain('No errors detected');
    execFileSync('unzip', ['-q', out, 'settings.db', '-d', path.join(tmpDir, 'x')]);
    expect(execFileSync('sqlite3', [path.join(tmpDir, 'x', 'settings.db'), 'PRAGMA integrity_check;']).toString().trim()).toBe('ok');
  });

  test('without -o it writes a timestamped file in the current directory', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'a.db'));
    const run = await dbzip(['backup', 'data'], { cwd: tmpDir });
    expect(run.code).toBe(0);
    const written = fs.readdirSync(tmpDir).filter((f) => f.endsWith('.zip'));
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/^dbzip-backup-\d{8}-\d{6}\.zip$/);
  });

  test('-o - streams the zip to stdout', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'), { rows: 4 });
    const chunks: Buffer[] = [];
    const child = spawn(process.execPath, [BIN, 'backup', tmpDir, '-o', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const code = await withTimeout(new Promise((resolve) => child.on('close', resolve)), 30_000, 'dbzip backup -o -');
    expect(code).toBe(0);
    const zip = await readZip(Buffer.concat(chunks));
    expect(zip.names).toEqual(['VERSION', 'a.db', 'manifest.json']);
  });

  test('SOURCE_DATE_EPOCH makes two backups byte-identical', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    expect((await dbzip(['backup', data, '-o', path.join(tmpDir, '1.zip'), '-q'], { env })).code).toBe(0);
    expect((await dbzip(['backup', data, '-o', path.join(tmpDir, '2.zip'), '-q'], { env })).code).toBe(0);
    expect(fs.readFileSync(path.join(tmpDir, '1.zip')).equals(fs.readFileSync(path.join(tmpDir, '2.zip')))).toBe(true);
  });

  test('a missing data dir exits 3 with a one-line reason and leaves no file behind', async ({ tmpDir }) => {
    const out = path.join(tmpDir, 'x.zip');
    const run = await dbzip(['backup', path.join(tmpDir, 'nope'), '-o', out]);
    expect(run.code).toBe(3);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('does not exist');
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  test('an existing output file is not replaced without --force', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'a.db'));
    const out = path.join(tmpDir, 'x.zip');
    fs.writeFileSync(out, 'precious');
    const refused = await dbzip(['backup', path.join(tmpDir, 'data'), '-o', out]);
    expect(refused.code).toBe(8);
    expect(refused.stderr).toContain('--force');
    expect(fs.readFileSync(out, 'utf8')).toBe('precious');
    expect((await dbzip(['backup', path.join(tmpDir, 'data'), '-o', out, '--force'])).code).toBe(0);
    expect(fs.readFileSync(out).subarray(0, 2).toString()).toBe('PK');
  });

  test('strict mode exits 5 naming the skipped file', async ({ tmpDir }) => {
    fs.writeFileSync(path.join(tmpDir, 'junk.db'), 'not sqlite');
    const run = await dbzip(['backup', tmpDir, '-o', path.join(tmpDir, 'x.zip'), '--strict']);
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('junk.db');
    expect(fs.existsSync(path.join(tmpDir, 'x.zip'))).toBe(false);
    expect(fs.existsSync(path.join(tmpDir, 'x.zip.partial'))).toBe(false);
  });

  test('verify exits 6 and lists the problem for a damaged archive', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'a.db'), { rows: 200 });
    const out = path.join(tmpDir, 'x.zip');
    expect((await dbzip(['backup', path.join(tmpDir, 'data'), '-o', out])).code).toBe(0);
    const bytes = fs.readFileSync(out);
    // Flip a byte inside the stored database (well past the local header).
    const at = bytes.indexOf(Buffer.from('SQLite format 3')) + 5000;
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    fs.writeFileSync(out, bytes);
    const run = await dbzip(['verify', out]);
    expect(run.code).toBe(6);
    expect(run.stderr).toMatch(/a\.db/);
  });

  test('invalid flags exit 2', async ({ tmpDir }) => {
    expect((await dbzip(['backup', tmpDir, '--level', 'fast'])).code).toBe(2);
    expect((await dbzip(['backup', tmpDir, '--pin', 'sometimes'])).code).toBe(2);
    expect((await dbzip(['nonsense'])).code).toBe(2);
  });
});

describe('dbzip list and help', () => {
  test('list shows databases, assets and skipped files with reasons; --json is machine-readable', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const text = await dbzip(['list', tmpDir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/app\.db .* wal/);
    expect(text.stdout).toMatch(/junk\.db +NOT_SQLITE/);
    const json = JSON.parse((await dbzip(['list', tmpDir, '--json', '--ext', '.sqlite'])).stdout) as { databases: { path: string }[]; skipped: { path: string }[] };
    expect(json.databases.map((d) => d.path)).toEqual(['app.db', 'events.sqlite', 'settings.db']);
    expect(json.skipped.map((s) => s.path)).toEqual(['empty.db', 'junk.db']);
  });

  test('--help of every command ends with examples', async () => {
    for (const args of [['--help'], ['backup', '--help'], ['verify', '--help'], ['list', '--help']]) {
      const run = await dbzip(args);
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.stdout).toMatch(/Examples?:/);
    }
  });
});

/** A 100 MB database in `dir`, and an output path in an empty folder beside it. */
async function bigDatabaseAndOutput(dir: string): Promise<string> {
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(path.join(dir, 'big.db'));
  db.exec('CREATE TABLE b (x BLOB)');
  const insert = db.prepare('INSERT INTO b VALUES (randomblob(65536))');
  db.transaction(() => {
    for (let i = 0; i < 1600; i++) insert.run();
  })();
  db.close();
  const out = path.join(dir, 'out', 'x.zip');
  fs.mkdirSync(path.dirname(out));
  return out;
}

function partialAppears(out: string): Promise<void> {
  return withTimeout(
    (async () => {
      while (!fs.existsSync(`${out}.partial`)) await new Promise((r) => setTimeout(r, 2));
    })(),
    30_000,
    'the .partial file to appear',
  );
}

describe('interrupted runs', () => {
  test('a run killed mid-write leaves only <file>.partial, never a file under the final name', async ({ tmpDir }) => {
    const out = await bigDatabaseAndOutput(tmpDir);
    const child = spawn(process.execPath, [BIN, 'backup', tmpDir, '-o', out, '-q', '--level', '1'], { stdio: 'ignore' });
    const closed = new Promise((resolve) => child.on('close', resolve));
    await partialAppears(out);
    child.kill('SIGKILL');
    await closed;
    expect(fs.existsSync(out)).toBe(false);
  });

  test('Ctrl-C (SIGINT) stops the backup, removes the .partial file and exits 130', async ({ tmpDir }) => {
    const out = await bigDatabaseAndOutput(tmpDir);
    const child = spawn(process.execPath, [BIN, 'backup', tmpDir, '-o', out, '-q', '--level', '9'], { stdio: 'ignore' });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await partialAppears(out);
    child.kill('SIGINT');
    expect(await withTimeout(closed, 10_000, 'exit after SIGINT')).toBe(130);
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });
});
