import { execFileSync, spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { EXIT_CODES } from '../src/cli/exit-codes.js';
import { partialName } from '../src/cli/partial-files.js';
import { makeBigDatabase, makeDatabase } from './helpers/backup.js';
import { BIN, dbzip, partialAppears, partialsOf, type Run } from './helpers/cli.js';
import { test, withTimeout } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';

describe('dbzip backup / verify', () => {
  test('backup -o then verify succeeds, and unzip -t and sqlite3 accept the result', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const out = path.join(tmpDir, 'x.zip');
    const backup = await dbzip(['backup', data, '-o', out]);
    expect(backup).toMatchObject({ code: 0 });
    expect(backup.stderr).toContain('skipped');
    expect(partialsOf(out)).toEqual([]);
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
    expect(partialsOf(path.join(tmpDir, 'x.zip'))).toEqual([]);
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

  test('list prints one line per asset folder with files and size; --files lists every file; --json always holds every file', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const summary = await dbzip(['list', tmpDir]);
    expect(summary.code).toBe(0);
    expect(summary.stdout).toMatch(/^assets: 4 file\(s\), [\d.]+ (bytes|KiB)$/m);
    expect(summary.stdout).toMatch(/^ {2}assets\/ {2}4 file\(s\), [\d.]+ (bytes|KiB)$/m);
    expect(summary.stdout).not.toContain('assets/logo.svg');
    expect(summary.stdout).toContain('--files');
    const every = await dbzip(['list', tmpDir, '--files']);
    for (const asset of ['assets/logo.svg', 'assets/img/pixel.bin', 'assets/docs/readme.txt']) expect(every.stdout).toContain(`  ${asset}  `);
    const json = JSON.parse((await dbzip(['list', tmpDir, '--json'])).stdout) as { assets: { path: string }[] };
    expect(json.assets).toHaveLength(4);
  });

  test('sizes are binary units everywhere in the CLI: list, backup, verify and restore agree with the page (KiB, MiB)', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const out = path.join(tmpDir, 'x.zip');
    const runs = [
      await dbzip(['list', data]),
      await dbzip(['backup', data, '-o', out]),
      await dbzip(['verify', out]),
      await dbzip(['restore', out, '--data-dir', data, '--dry-run']),
    ];
    const { formatBytes } = await import('../src/format.js');
    const appDb = fs.statSync(path.join(data, 'app.db')).size;
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(0);
      const text = run.stdout + run.stderr;
      expect(text).not.toMatch(/\d (kB|MB|GB)\b/);
      expect(text).toMatch(/\d (KiB|MiB)\b/);
    }
    expect(runs[0]!.stdout).toMatch(new RegExp(`app\\.db {2}${formatBytes(appDb).replace('.', '\\.')} `));
    expect(runs[1]!.stderr).toMatch(new RegExp(`wrote .*x\\.zip \\(${formatBytes(fs.statSync(out).size).replace('.', '\\.')}\\)`));
    expect(runs[2]!.stdout).toMatch(new RegExp(`app\\.db {2}${formatBytes(appDb).replace('.', '\\.')} {2}integrity ok`));
  });

  test('on a terminal the bar shows an estimated percentage with a rollback-journal database, and the exact one when every database is WAL', async ({ tmpDir }) => {
    // script(1) (util-linux, in every Debian) gives the child a pseudo-terminal, so stderr is a TTY as for a person.
    const onTerminal = async (dataDir: string): Promise<string> => {
      const out = path.join(tmpDir, `${path.basename(dataDir)}.zip`);
      const command = [process.execPath, BIN, 'backup', dataDir, '-o', out].map((a) => `'${a}'`).join(' ');
      const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COLUMNS: '160' } });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      expect(await withTimeout(new Promise((resolve) => child.on('close', resolve)), 60_000, 'backup under script')).toBe(0);
      return text;
    };
    makeBigDatabase(path.join(tmpDir, 'rollback', 'legacy.db'), 8, 'delete');
    makeDatabase(path.join(tmpDir, 'rollback', 'app.db'));
    const estimated = await onTerminal(path.join(tmpDir, 'rollback'));
    expect(estimated).toMatch(/~100% \| [\d.]+ MiB read of ~[\d.]+ MiB \(estimate\)/);
    expect(estimated).not.toMatch(/MB written/);
    makeDatabase(path.join(tmpDir, 'wal', 'app.db'), { rows: 2000 });
    const exact = await onTerminal(path.join(tmpDir, 'wal'));
    expect(exact).toMatch(/ 100% \| [\d.]+ KiB of [\d.]+ KiB \| ETA/);
    expect(exact).not.toContain('estimate');
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

describe('interrupted runs', () => {
  test('a run killed mid-write leaves only its partial file, never a file under the final name', async ({ tmpDir }) => {
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

describe('stale partial files', () => {
  test('a backup removes the partial file of a killed run, and keeps those of live runs and of other hosts', async ({ tmpDir }) => {
    const out = await bigDatabaseAndOutput(tmpDir);
    const outDir = path.dirname(out);
    // A run that is still writing (stopped, so it stays mid-write while the others look).
    const liveOut = path.join(outDir, 'live.zip');
    const live = spawn(process.execPath, [BIN, 'backup', tmpDir, '-o', liveOut, '-q', '--level', '9'], { stdio: 'ignore' });
    const liveClosed = new Promise<number | null>((resolve) => live.on('close', resolve));
    const livePartial = await partialAppears(liveOut);
    live.kill('SIGSTOP');
    const killed = spawn(process.execPath, [BIN, 'backup', tmpDir, '-o', out, '-q', '--level', '1'], { stdio: 'ignore' });
    const killedClosed = new Promise((resolve) => killed.on('close', resolve));
    const stale = await partialAppears(out);
    killed.kill('SIGKILL');
    await killedClosed;
    expect(fs.existsSync(stale)).toBe(true);
    // This test process is alive: its name stays; the same pid with another start time is a reused pid.
    const [, host, pid, ticks] = /\.dbzip-(\w+)-(\d+)-(\d+)\.partial$/.exec(partialName(path.join(outDir, 'mine.zip')))!;
    const kept = [partialName(path.join(outDir, 'mine.zip')), path.join(outDir, `other.zip.dbzip-${host}x-1-1.partial`)];
    const reused = path.join(outDir, `reused.zip.dbzip-${host}-${pid}-${Number(ticks) + 1}.partial`);
    for (const file of [...kept, reused]) fs.writeFileSync(file, 'PK');
    try {
      const small = path.join(tmpDir, 'small');
      makeDatabase(path.join(small, 'a.db'));
      const run = await dbzip(['backup', small, '-o', path.join(outDir, 'next.zip')]);
      expect(run.code).toBe(0);
      expect(run.stderr).toContain(`removed ${stale}, left by an interrupted dbzip run (process ${killed.pid} is gone)`);
      expect(fs.existsSync(stale)).toBe(false);
      expect(fs.existsSync(reused)).toBe(false);
      expect(fs.existsSync(livePartial)).toBe(true);
      for (const file of kept) expect(fs.existsSync(file)).toBe(true);
    } finally {
      live.kill('SIGCONT');
    }
    expect(await withTimeout(liveClosed, 60_000, 'the stopped run to finish')).toBe(0);
    expect(fs.existsSync(liveOut)).toBe(true);
  });
});

describe('-o - (stdout)', () => {
  /** A 20 MB database and a 6-byte asset: the asset is read well after the first byte is out. */
  function dataWithAsset(dir: string): string {
    makeBigDatabase(path.join(dir, 'big.db'), 20);
    fs.mkdirSync(path.join(dir, 'assets'));
    const asset = path.join(dir, 'assets', 'note.txt');
    fs.writeFileSync(asset, 'hello\n');
    return asset;
  }

  const changes: Record<string, (asset: string) => void> = {
    grows: (asset) => fs.appendFileSync(asset, 'more'),
    shrinks: (asset) => fs.truncateSync(asset, 2),
    'is deleted': (asset) => fs.rmSync(asset),
  };

  /** Runs a backup and applies `change` once its first bytes are out (to stdout or to the partial file). */
  async function backupWhile(dir: string, out: string, change: () => void): Promise<Run> {
    const child = spawn(process.execPath, [BIN, 'backup', dir, '-o', out, '-q', '--level', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    if (out === '-') {
      // Stop reading: the child blocks on a full pipe until the change is made.
      await withTimeout(new Promise((resolve) => child.stdout.once('data', resolve)), 30_000, 'the first bytes on stdout');
      child.stdout.pause();
      change();
      child.stdout.resume();
    } else {
      await partialAppears(out);
      change();
    }
    child.stdout.resume();
    const code = await withTimeout(closed, 60_000, `dbzip backup -o ${out}`);
    return { code: code ?? -1, stdout: '', stderr };
  }

  for (const [what, change] of Object.entries(changes)) {
    test(`an asset that ${what} during the backup fails -o - exactly like -o file: the same line, exit 5`, async ({ tmpDir }) => {
      const data = path.join(tmpDir, 'data');
      const asset = dataWithAsset(data);
      const toFile = await backupWhile(data, path.join(tmpDir, 'x.zip'), () => change(asset));
      fs.writeFileSync(asset, 'hello\n');
      const toStdout = await backupWhile(data, '-', () => change(asset));
      expect(toFile.code).toBe(EXIT_CODES.ASSET_CHANGED);
      expect(toFile.stderr).toMatch(/^dbzip: asset assets\/note\.txt .*\n$/);
      expect(toStdout).toEqual(toFile);
    });
  }

  test('a full disk behind stdout exits 8 with one line, no stack trace', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'), { rows: 4 });
    const full = fs.openSync('/dev/full', 'w');
    try {
      const child = spawn(process.execPath, [BIN, 'backup', tmpDir, '-o', '-'], { stdio: ['ignore', full, 'pipe'] }) as ChildProcessByStdio<null, null, Readable>;
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await withTimeout(new Promise((resolve) => child.on('close', resolve)), 30_000, 'dbzip backup -o - > /dev/full');
      expect(code).toBe(EXIT_CODES.OUTPUT_FAILED);
      expect(stderr).toBe('dbzip: cannot write stdout: ENOSPC: no space left on device, write\n');
    } finally {
      fs.closeSync(full);
    }
  });

  test('onto a terminal it writes nothing and exits 8 with a one-line hint', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'), { rows: 4 });
    // script(1) gives the child a pseudo-terminal as stdout and copies what it prints to ours.
    const command = [process.execPath, BIN, 'backup', tmpDir, '-o', '-'].map((a) => `'${a}'`).join(' ');
    const run = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'latin1', timeout: 30_000 });
    expect(run.status).toBe(EXIT_CODES.OUTPUT_FAILED);
    expect(run.stdout.trim()).toBe('dbzip: refusing to write a zip to a terminal: redirect stdout (-o - > backup.zip) or pass -o <file>');
  });
});
