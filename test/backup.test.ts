import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import { createBackup } from '../src/backup.js';
import { DatabaseTooLargeError, DataDirError, OptionsError, StrictModeError, UnknownDatabaseError } from '../src/errors.js';
import { suspiciousZeroPage } from '../src/snapshot/image-check.js';
import { DBZIP_VERSION } from '../src/version.js';
import { generateFixtures } from '../fixtures/generate.js';
import { backupToZip, breakLeafPage, collect, countRows, makeBigDatabase, makeDatabase } from './helpers/backup.js';
import { test, withTimeout } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('createBackup on the fixture data dir', () => {
  test('archives every SQLite database, VERSION first and manifest.json last, in sorted order', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir, extensions: ['.db', '.sqlite'] });
    expect(zip.names[0]).toBe('VERSION');
    expect(zip.names.at(-1)).toBe('manifest.json');
    expect(zip.names.slice(1, 4)).toEqual(['app.db', 'events.sqlite', 'settings.db']);
    const assets = zip.names.slice(4, -1);
    expect(assets).toEqual([...assets].sort());
    expect(assets.every((n) => n.startsWith('assets/'))).toBe(true);
    expect(zip.files.get('VERSION')?.toString()).toBe('1.4.2\n');
    expect(manifest.appVersion).toBe('1.4.2');
    expect(manifest.databases.map((d) => [d.path, d.journalMode, d.quickCheck])).toEqual([
      ['app.db', 'wal', 'ok'],
      ['events.sqlite', 'wal', 'ok'],
      ['settings.db', 'rollback', 'ok'],
    ]);
    expect(manifest.databases.find((d) => d.path === 'settings.db')?.userVersion).toBe(7);
  });

  test('skips a .db file that is not SQLite, and an empty one, and lists both in the manifest', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
    expect(zip.files.has('junk.db')).toBe(false);
    expect(zip.files.has('empty.db')).toBe(false);
    expect(manifest.skipped).toEqual([
      { path: 'empty.db', code: 'NOT_SQLITE', reason: expect.stringContaining('empty') },
      { path: 'junk.db', code: 'NOT_SQLITE', reason: expect.stringContaining('not a database') },
    ]);
    // .sqlite is only a database ending when asked for
    expect(zip.files.has('events.sqlite')).toBe(false);
  });

  test('manifest hashes and sizes match the bytes of every entry', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
    for (const entry of [...manifest.databases, ...manifest.assets]) {
      const bytes = zip.files.get(entry.path);
      expect(bytes, entry.path).toBeDefined();
      expect(bytes?.length).toBe(entry.bytes);
      expect(sha256(bytes!)).toBe(entry.sha256);
    }
    for (const db of manifest.databases) expect(db.bytes).toBe(db.pageSize * db.pageCount);
    expect(manifest.assets.map((a) => a.path)).toContain('assets/docs/ünïcødé ✓.txt');
  });

  test('strict mode turns a skipped file into a failure before any output', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    await expect(createBackup({ dataDir: tmpDir, strict: true })).rejects.toBeInstanceOf(StrictModeError);
  });

  test('the same data and date give a byte-identical zip', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const date = new Date('2025-06-01T12:00:00Z');
    const a = await backupToZip({ dataDir: tmpDir, date });
    const b = await backupToZip({ dataDir: tmpDir, date });
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.manifest.createdAt).toBe('2025-06-01T12:00:00.000Z');
    expect(a.manifest.pin.windowMs).toBeNull();
    for (const meta of a.zip.meta.values()) expect(meta.lastModDate.toISOString()).toBe('2025-06-01T12:00:00.000Z');
  });

  test('deflate levels produce a valid, smaller zip with the same content', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const stored = await backupToZip({ dataDir: tmpDir, level: 0 });
    const deflated = await backupToZip({ dataDir: tmpDir, level: 6 });
    expect(deflated.bytes.length).toBeLessThan(stored.bytes.length);
    expect(deflated.size).toBeNull();
    expect(deflated.zip.meta.get('app.db')?.compressionMethod).toBe(8);
    expect(deflated.zip.files.get('app.db')?.equals(stored.zip.files.get('app.db')!)).toBe(true);
  });
});

describe('what is found and what is never archived', () => {
  test('an empty data dir still gives a valid zip with VERSION and manifest', async ({ tmpDir }) => {
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
    expect(zip.names).toEqual(['VERSION', 'manifest.json']);
    expect(zip.files.get('VERSION')?.toString()).toBe(`${DBZIP_VERSION}\n`);
    expect(manifest).toMatchObject({ databases: [], assets: [], skipped: [] });
  });

  test('VERSION comes from the version option before the data dir file', async ({ tmpDir }) => {
    fs.writeFileSync(path.join(tmpDir, 'VERSION'), '2.0.0\n');
    expect((await backupToZip({ dataDir: tmpDir })).zip.files.get('VERSION')?.toString()).toBe('2.0.0\n');
    expect((await backupToZip({ dataDir: tmpDir, version: '3.1' })).zip.files.get('VERSION')?.toString()).toBe('3.1\n');
  });

  test('-wal, -shm and -journal files are never archived, yet committed WAL content is in the snapshot', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'live.db');
    makeDatabase(file, { journal: 'wal', rows: 5 });
    // Keep a connection open with checkpointing off so rows live only in the -wal file.
    const Database = (await import('better-sqlite3')).default;
    const owner = new Database(file);
    try {
      owner.pragma('wal_autocheckpoint = 0');
      owner.prepare('INSERT INTO t (v) VALUES (?)').run('only in the wal');
      fs.writeFileSync(path.join(tmpDir, 'old.db-journal'), 'stale');
      expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(0);
      const { zip } = await backupToZip({ dataDir: tmpDir });
      expect(zip.names.filter((n) => /-(wal|shm|journal)$/.test(n))).toEqual([]);
      expect(countRows(zip.files.get('live.db')!)).toBe(6);
    } finally {
      owner.close();
    }
  });

  test('recursive mode keeps relative paths, and never enters asset folders or .dbzip', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'top.db'));
    makeDatabase(path.join(tmpDir, 'nested/deeper/inner.sqlite3'));
    makeDatabase(path.join(tmpDir, 'assets/not-a-db-entry.db'));
    makeDatabase(path.join(tmpDir, '.dbzip/pre-restore.db'));
    const { manifest, zip } = await backupToZip({ dataDir: tmpDir, recursive: true, extensions: ['.db', '.sqlite3'] });
    expect(manifest.databases.map((d) => d.path)).toEqual(['nested/deeper/inner.sqlite3', 'top.db']);
    expect(zip.names).toContain('assets/not-a-db-entry.db');
    expect(manifest.assets.map((a) => a.path)).toEqual(['assets/not-a-db-entry.db']);
  });

  test('symbolic links are never followed, and are listed as skipped', async ({ tmpDir }) => {
    const outside = path.join(tmpDir, 'outside');
    const data = path.join(tmpDir, 'data');
    makeDatabase(path.join(outside, 'secret.db'));
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret');
    fs.mkdirSync(path.join(data, 'assets'), { recursive: true });
    fs.symlinkSync(path.join(outside, 'secret.db'), path.join(data, 'escape.db'));
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(data, 'assets', 'escape.txt'));
    fs.symlinkSync(outside, path.join(data, 'assets', 'dir-link'));
    const { zip, manifest } = await backupToZip({ dataDir: data, recursive: true });
    expect(zip.names).toEqual(['VERSION', 'manifest.json']);
    expect(manifest.skipped.map((s) => [s.path, s.code])).toEqual([
      ['assets/dir-link', 'SYMLINK'],
      ['assets/escape.txt', 'SYMLINK'],
      ['escape.db', 'SYMLINK'],
    ]);
  });

  test('unicode and odd file names are archived under their exact names', async ({ tmpDir }) => {
    const names = ['данные.db', 'with space.db', "quote'n\"dq.db", 'emoji 🗄️.db', 'tab\there.db'];
    for (const name of names) makeDatabase(path.join(tmpDir, name), { rows: 3 });
    fs.mkdirSync(path.join(tmpDir, 'assets', 'ünï'), { recursive: true });
    fs.writeFileSync(path.join(tmpDir, 'assets', 'ünï', '日本.txt'), 'こんにちは');
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
    expect(manifest.databases.map((d) => d.path)).toEqual([...names].sort());
    for (const name of names) expect(countRows(zip.files.get(name)!)).toBe(3);
    expect(zip.files.get('assets/ünï/日本.txt')?.toString()).toBe('こんにちは');
  });

  test('a file name with a backslash is skipped as unsafe inside a zip', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'back\\slash.db'));
    const { manifest } = await backupToZip({ dataDir: tmpDir });
    expect(manifest.skipped).toEqual([{ path: 'back\\slash.db', code: 'BAD_NAME', reason: expect.stringContaining('backslash') }]);
  });

  test('the databases option selects by name, lists the rest as excluded, and rejects unknown names', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'));
    makeDatabase(path.join(tmpDir, 'b.db'));
    const { manifest } = await backupToZip({ dataDir: tmpDir, databases: ['b.db'] });
    expect(manifest.databases.map((d) => d.path)).toEqual(['b.db']);
    expect(manifest.skipped).toEqual([{ path: 'a.db', code: 'EXCLUDED', reason: expect.any(String) }]);
    await expect(createBackup({ dataDir: tmpDir, databases: ['nope.db'] })).rejects.toBeInstanceOf(UnknownDatabaseError);
  });
});

describe('errors before the first byte', () => {
  test('a missing data dir is a DataDirError naming the folder', async ({ tmpDir }) => {
    const missing = path.join(tmpDir, 'nope');
    const error = await createBackup({ dataDir: missing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as DataDirError).code).toBe('DATA_DIR_NOT_FOUND');
    expect((error as Error).message).toContain(missing);
  });

  test('a file given as data dir is refused', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'file');
    fs.writeFileSync(file, 'x');
    await expect(createBackup({ dataDir: file })).rejects.toMatchObject({ code: 'DATA_DIR_NOT_FOUND' });
  });

  test.skipIf(process.getuid?.() === 0)('an unreadable data dir is DATA_DIR_UNREADABLE', async ({ tmpDir }) => {
    const dir = path.join(tmpDir, 'locked');
    fs.mkdirSync(dir, { mode: 0o000 });
    await expect(createBackup({ dataDir: dir })).rejects.toMatchObject({ code: 'DATA_DIR_UNREADABLE' });
  });

  test('a database over the memory budget is refused before any byte, naming the file and its size', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'big.db'), { rows: 5000 });
    const error = await createBackup({ dataDir: tmpDir, maxDatabaseBytes: 64 * 1024 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseTooLargeError);
    expect((error as Error).message).toMatch(/big\.db is \d+ bytes, over the memory budget of 65536 bytes/);
  });

  test('options are validated with messages that name the option', async ({ tmpDir }) => {
    await expect(createBackup({ dataDir: tmpDir, level: 12 })).rejects.toThrow(/option "level"/);
    await expect(createBackup({ dataDir: tmpDir, assets: ['../etc'] })).rejects.toThrow(/option "assets"/);
    await expect(createBackup({ dataDir: tmpDir, assets: ['missing'] })).rejects.toBeInstanceOf(OptionsError);
    // @ts-expect-error a misspelling is caught, as better-sqlite3 does with readOnly
    await expect(createBackup({ dataDir: tmpDir, compression: 'store' })).rejects.toThrow(/did you mean "level"/);
  });
});

describe('failures and locks', () => {
  test('a database locked by another process past the busy timeout is skipped with the reason', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'locked.db');
    makeDatabase(file, { journal: 'delete' });
    makeDatabase(path.join(tmpDir, 'free.db'));
    const script = `const D=require('better-sqlite3');const db=new D(${JSON.stringify(file)});db.exec('BEGIN EXCLUSIVE');db.exec("INSERT INTO t(v) VALUES('x')");process.stdout.write('locked\\n');setTimeout(()=>{},60000);`;
    const child = spawn(process.execPath, ['-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await withTimeout(new Promise((resolve) => child.stdout.once('data', resolve)), 10_000, 'lock holder');
      const { manifest } = await backupToZip({ dataDir: tmpDir, busyTimeoutMs: 200 });
      expect(manifest.databases.map((d) => d.path)).toEqual(['free.db']);
      expect(manifest.skipped).toEqual([{ path: 'locked.db', code: 'SNAPSHOT_FAILED', reason: expect.stringContaining('locked') }]);
      await expect(createBackup({ dataDir: tmpDir, busyTimeoutMs: 200, strict: true })).rejects.toBeInstanceOf(StrictModeError);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a database of many 1 MiB chunks is streamed whole and in order, in WAL and rollback mode: entry = file, hashes match', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'big-wal.db'), 24, 'wal');
    makeBigDatabase(path.join(tmpDir, 'big-rollback.db'), 12, 'delete');
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
    for (const name of ['big-rollback.db', 'big-wal.db']) {
      const file = fs.readFileSync(path.join(tmpDir, name));
      const entry = zip.files.get(name)!;
      expect(entry.equals(file)).toBe(true);
      const listed = manifest.databases.find((d) => d.path === name)!;
      expect([listed.bytes, listed.sha256, listed.crc32]).toEqual([file.length, sha256(file), crc32(file).toString(16).padStart(8, '0')]);
    }
  });

  test('a database that fails quick_check is skipped with SQLite\'s message, in WAL and in rollback-journal mode', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'bad-wal.db'), { rows: 3000 });
    makeDatabase(path.join(tmpDir, 'bad-rollback.db'), { journal: 'delete', rows: 3000 });
    makeDatabase(path.join(tmpDir, 'good.db'));
    breakLeafPage(path.join(tmpDir, 'bad-wal.db'));
    breakLeafPage(path.join(tmpDir, 'bad-rollback.db'));
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
    expect(manifest.databases.map((d) => d.path)).toEqual(['good.db']);
    expect([...zip.files.keys()].filter((n) => n.endsWith('.db'))).toEqual(['good.db']);
    const reason = expect.stringMatching(/^quick_check of the snapshot failed: [\s\S]*out of range/);
    expect(manifest.skipped).toEqual([
      { path: 'bad-rollback.db', code: 'SNAPSHOT_FAILED', reason },
      { path: 'bad-wal.db', code: 'SNAPSHOT_FAILED', reason },
    ]);
    await expect(createBackup({ dataDir: tmpDir, strict: true })).rejects.toBeInstanceOf(StrictModeError);
  });

  test('a database with all-zero free pages (secure_delete) is archived whole: its zero pages are free, so not suspicious', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'zeroed.db');
    makeDatabase(file, { rows: 3000 });
    const db = new Database(file);
    db.pragma('secure_delete = on');
    db.exec('DELETE FROM t WHERE id > 100');
    db.close();
    const image = fs.readFileSync(file);
    expect(image.includes(Buffer.alloc(image.readUInt16BE(16)))).toBe(true);
    expect(suspiciousZeroPage(image, image.readUInt16BE(16))).toBeUndefined();
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir });
    expect(manifest.databases.map((d) => [d.path, d.quickCheck])).toEqual([['zeroed.db', 'ok']]);
    expect(countRows(zip.files.get('zeroed.db')!)).toBe(100);
  });

  // Small assets are read whole and ahead; larger ones are streamed: both check the size the scan saw.
  for (const [size, kind] of [[100, 'a small asset (read ahead)'], [3 * 1024 * 1024, 'a large asset (streamed)']] as const) {
    test(`${kind} that grows or shrinks after the scan ends the stream with ASSET_CHANGED, never a normal end`, async ({ tmpDir }) => {
      makeDatabase(path.join(tmpDir, 'a.db'));
      fs.mkdirSync(path.join(tmpDir, 'assets'));
      const asset = path.join(tmpDir, 'assets', 'file.bin');
      for (const change of [() => fs.appendFileSync(asset, 'x'), () => fs.truncateSync(asset, size - 1)]) {
        fs.writeFileSync(asset, Buffer.alloc(size, 1));
        const backup = await createBackup({ dataDir: tmpDir });
        change();
        await expect(collect(backup.stream)).rejects.toMatchObject({ code: 'ASSET_CHANGED' });
        await expect(backup.manifest).rejects.toMatchObject({ code: 'ASSET_CHANGED' });
      }
    });
  }
});

describe('readers', () => {
  test('the zip passes unzip -t and the sqlite3 shell accepts each database', async ({ tmpDir }) => {
    await generateFixtures(path.join(tmpDir, 'data'));
    const { bytes } = await backupToZip({ dataDir: path.join(tmpDir, 'data'), extensions: ['.db', '.sqlite'] });
    const zipFile = path.join(tmpDir, 'x.zip');
    fs.writeFileSync(zipFile, bytes);
    const { execFileSync } = await import('node:child_process');
    expect(execFileSync('unzip', ['-t', zipFile]).toString()).toContain('No errors detected');
    execFileSync('unzip', ['-q', zipFile, '-d', path.join(tmpDir, 'out')]);
    for (const name of ['app.db', 'events.sqlite', 'settings.db']) {
      expect(execFileSync('sqlite3', [path.join(tmpDir, 'out', name), 'PRAGMA integrity_check;']).toString().trim()).toBe('ok');
    }
    expect((await readZip(zipFile)).names.length).toBeGreaterThan(4);
  });
});
