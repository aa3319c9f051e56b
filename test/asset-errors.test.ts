/** What happens to a backup when an asset cannot be read as the scan saw it (docs/archive-format.md). */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { describe, expect } from 'vitest';
import { createBackup } from '../src/backup.js';
import { AssetError } from '../src/errors.js';
import { makeBigDatabase, makeDatabase } from './helpers/backup.js';
import { BIN, partialsOf } from './helpers/cli.js';
import { test } from './helpers/tmp.js';

function dataDirWithAsset(dir: string): string {
  makeDatabase(path.join(dir, 'app.db'));
  fs.mkdirSync(path.join(dir, 'assets'));
  const asset = path.join(dir, 'assets', 'logo.svg');
  fs.writeFileSync(asset, '<svg/>');
  return asset;
}

describe('an asset that cannot be read', () => {
  test('an asset replaced by a symbolic link after the scan fails the backup with ASSET_UNREADABLE and is never followed', async ({ tmpDir }) => {
    const dataDir = path.join(tmpDir, 'data');
    const asset = dataDirWithAsset(dataDir);
    const secret = path.join(tmpDir, 'secret.txt');
    fs.writeFileSync(secret, 'outside the data dir');
    const backup = await createBackup({ dataDir });
    fs.rmSync(asset);
    fs.symlinkSync(secret, asset);
    const chunks: Buffer[] = [];
    const consumed = pipeline(backup.stream, async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) chunks.push(chunk);
    });
    const error = await consumed.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(AssetError);
    expect(error).toMatchObject({ code: 'ASSET_UNREADABLE', path: 'assets/logo.svg' });
    await expect(backup.manifest).rejects.toBeInstanceOf(AssetError);
    expect(Buffer.concat(chunks).includes('outside the data dir')).toBe(false);
  });

  test('the CLI reports it in one line and exits 5, leaving no file behind', async ({ tmpDir }) => {
    const dataDir = path.join(tmpDir, 'data');
    const asset = dataDirWithAsset(dataDir);
    // 32 MB of database first, so the asset is swapped while the CLI is still writing the database.
    makeBigDatabase(path.join(dataDir, 'big.db'), 32);
    const out = path.join(tmpDir, 'b.zip');
    const child = execFile(process.execPath, [BIN, 'backup', dataDir, '-o', out, '-q']);
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // Swapping before the process even starts is the same case: the scan sees the link and skips it.
    // So wait for the partial file, which exists only after the scan and the first snapshot.
    while (partialsOf(out).length === 0 && child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
    fs.rmSync(asset);
    fs.symlinkSync('/etc/hostname', asset);
    expect(await exit).toBe(5);
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^dbzip: asset assets\/logo\.svg cannot be read: .*ELOOP/)]);
    expect(fs.existsSync(out)).toBe(false);
    expect(partialsOf(out)).toEqual([]);
  });
});

describe('backup --json', () => {
  test('prints the written file and its manifest as one JSON document on stdout', async ({ tmpDir }) => {
    const dataDir = path.join(tmpDir, 'data');
    dataDirWithAsset(dataDir);
    const out = path.join(tmpDir, 'b.zip');
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, 'backup', dataDir, '-o', out, '--json']);
    const result = JSON.parse(stdout) as { file: string; manifest: { databases: { path: string; bytes: number }[]; assets: { path: string }[] } };
    expect(result.file).toBe(out);
    expect(result.manifest.databases.map((d) => d.path)).toEqual(['app.db']);
    expect(result.manifest.assets.map((a) => a.path)).toEqual(['assets/logo.svg']);
    expect(result.manifest.databases[0]?.bytes).toBeGreaterThan(0);
    expect(stderr).not.toContain('wrote');
  });
});
