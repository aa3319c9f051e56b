/** `dbzip serve` reads every backup setting from the environment too: switches and lists as docs/http.md says. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { makeDatabase } from './helpers/backup.js';
import { test, withTimeout } from './helpers/tmp.js';
import { newKey } from './http-helpers.js';

interface Listing {
  version: string;
  databases: { path: string }[];
  assetFolders: string[];
}

/** Starts the built binary with `env` and `args`, asks GET /api/databases once, stops it with SIGTERM. */
async function listWith(dataDir: string, env: Record<string, string>, args: string[] = []): Promise<Listing> {
  const key = newKey();
  const child = spawn(process.execPath, [path.resolve('dist/cli/bin.js'), 'serve', '--data-dir', dataDir, '--port', '0', ...args], {
    env: { ...process.env, DBZIP_API_KEY: key, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const url = await withTimeout(
      new Promise<string>((resolve, reject) => {
        let stdout = '';
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
          if (match?.[1] !== undefined) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`serve exited ${code} before listening`)));
      }),
      15_000,
      'server address',
    );
    const response = await fetch(`${url}/api/databases`, { headers: { 'X-API-Key': key } });
    expect(response.status).toBe(200);
    return (await response.json()) as Listing;
  } finally {
    child.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'serve exit');
  }
}

function dataDir(root: string): string {
  makeDatabase(path.join(root, 'app.db'));
  makeDatabase(path.join(root, 'sub', 'deep.db'));
  makeDatabase(path.join(root, 'legacy.sqlite'));
  for (const folder of ['assets', 'media', 'files']) {
    fs.mkdirSync(path.join(root, folder));
    fs.writeFileSync(path.join(root, folder, 'x.txt'), folder);
  }
  return root;
}

describe('dbzip serve settings from the environment', () => {
  test('lists are comma-separated with blanks ignored; a switch reads "Yes" as on and "off" as off', async ({ tmpDir }) => {
    const dir = dataDir(tmpDir);
    const on = await listWith(dir, { DBZIP_EXT: '.sqlite, ,.db', DBZIP_RECURSIVE: 'Yes', DBZIP_ASSETS: 'media, files', DBZIP_APP_VERSION: '4.2.0' });
    expect(on.databases.map((d) => d.path)).toEqual(['app.db', 'legacy.sqlite', 'sub/deep.db']);
    expect(on.assetFolders).toEqual(['files', 'media']);
    expect(on.version).toBe('4.2.0');
    const off = await listWith(dir, { DBZIP_RECURSIVE: 'off' });
    expect(off.databases.map((d) => d.path)).toEqual(['app.db']);
    expect(off.assetFolders).toEqual(['assets']);
  });

  test('a flag wins over its variable', async ({ tmpDir }) => {
    const listing = await listWith(dataDir(tmpDir), { DBZIP_APP_VERSION: 'from-env' }, ['--app-version', 'from-flag']);
    expect(listing.version).toBe('from-flag');
  });
});
