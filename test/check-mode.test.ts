import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect } from 'vitest';
import { createBackup } from '../src/backup.js';
import { ArchiveError, OptionsError } from '../src/errors.js';
import { restore } from '../src/restore/index.js';
import { verifyArchive } from '../src/verify/index.js';
import { backupToZip, breakLeafPage, countRows, makeDatabase } from './helpers/backup.js';
import { test } from './helpers/tmp.js';

const BIN = path.resolve('dist/cli/bin.js');

describe('check: "none" (unchecked snapshots, never the default)', () => {
  test('the default checks every snapshot and records quickCheck "ok"', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'));
    const { manifest } = await backupToZip({ dataDir: tmpDir });
    expect(manifest.databases.map((d) => d.quickCheck)).toEqual(['ok']);
  });

  test('records quickCheck "skipped" for every database, in WAL and rollback-journal mode, and the size announced in advance stays exact', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'wal.db'), { rows: 500 });
    makeDatabase(path.join(tmpDir, 'rollback.db'), { journal: 'delete', rows: 700 });
    const { manifest, zip, bytes, size } = await backupToZip({ dataDir: tmpDir, check: 'none', pin: 'all-blocking' });
    expect(manifest.databases.map((d) => [d.path, d.journalMode, d.quickCheck])).toEqual([
      ['rollback.db', 'rollback', 'skipped'],
      ['wal.db', 'wal', 'skipped'],
    ]);
    expect(size).toBe(bytes.length);
    expect(countRows(zip.files.get('wal.db')!)).toBe(500);
    expect(countRows(zip.files.get('rollback.db')!)).toBe(700);
  });

  test('ships a database that quick_check would refuse, and verify then reports it from its own integrity_check', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    makeDatabase(path.join(data, 'good.db'));
    makeDatabase(path.join(data, 'bad.db'), { rows: 3000 });
    breakLeafPage(path.join(data, 'bad.db'));
    const checked = await backupToZip({ dataDir: data });
    expect(checked.manifest.skipped.map((s) => [s.path, s.code])).toEqual([['bad.db', 'SNAPSHOT_FAILED']]);

    const { bytes, manifest } = await backupToZip({ dataDir: data, check: 'none' });
    expect(manifest.databases.map((d) => [d.path, d.quickCheck])).toEqual([
      ['bad.db', 'skipped'],
      ['good.db', 'skipped'],
    ]);
    const zip = path.join(tmpDir, 'unchecked.zip');
    fs.writeFileSync(zip, bytes);
    const report = await verifyArchive(zip);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.stringContaining('bad.db')]);

    // Restore verifies first: it refuses the archive and changes nothing.
    const target = path.join(tmpDir, 'target');
    fs.mkdirSync(target);
    await expect(restore({ archive: zip, dataDir: target, mode: 'offline' })).rejects.toBeInstanceOf(ArchiveError);
    expect(fs.readdirSync(target).filter((f) => f.endsWith('.db'))).toEqual([]);
  });

  test('an unchecked archive of healthy databases verifies and restores', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    makeDatabase(path.join(data, 'a.db'), { rows: 42 });
    const zip = path.join(tmpDir, 'a.zip');
    fs.writeFileSync(zip, (await backupToZip({ dataDir: data, check: 'none' })).bytes);
    expect((await verifyArchive(zip)).ok).toBe(true);
    const target = path.join(tmpDir, 'target');
    fs.mkdirSync(target);
    const report = await restore({ archive: zip, dataDir: target, mode: 'offline' });
    expect(report.applied).toBe(true);
    expect(countRows(fs.readFileSync(path.join(target, 'a.db')))).toBe(42);
  });

  test('an unknown check mode is refused, naming the option', async ({ tmpDir }) => {
    await expect(createBackup({ dataDir: tmpDir, check: 'fast' as 'none' })).rejects.toThrow(new OptionsError('option "check" must be one of quick, none, got fast'));
  });

  test('the CLI takes --check none, records it in the manifest, and refuses another mode with exit code 2', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'a.db'));
    const out = path.join(tmpDir, 'x.zip');
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'backup', path.join(tmpDir, 'data'), '-o', out, '--check', 'none', '--json']);
    expect((JSON.parse(stdout) as { manifest: { databases: { quickCheck: string }[] } }).manifest.databases.map((d) => d.quickCheck)).toEqual(['skipped']);
    const refused = await promisify(execFile)(process.execPath, [BIN, 'backup', path.join(tmpDir, 'data'), '-o', out, '--force', '--check', 'fast']).then(
      () => 0,
      (error: { code: number }) => error.code,
    );
    expect(refused).toBe(2);
  });
});
