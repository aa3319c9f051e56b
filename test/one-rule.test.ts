/**
 * One rule, one owner: the library's entry points agree on options, the data directory and VERSION.
 * Each test here failed while backup, restore and the server each had a copy of the rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { createBackup } from '../src/backup.js';
import { DataDirError, DbzipError, OptionsError } from '../src/errors.js';
import { createApp } from '../src/http/app.js';
import { startServer } from '../src/http/server.js';
import { inspect } from '../src/inspect.js';
import { restore } from '../src/restore/index.js';
import { makeDatabase } from './helpers/backup.js';
import { backupToFile } from './helpers/restore.js';
import { test } from './helpers/tmp.js';
import { newKey } from './http-helpers.js';

async function rejection(promise: Promise<unknown> | (() => unknown)): Promise<DbzipError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    if (error instanceof DbzipError) return error;
    throw error;
  }
  throw new Error('expected a DbzipError, but it resolved');
}

describe('options', () => {
  test('refuses dbzip\'s private folder as an asset folder in backup, inspect and restore alike', async ({ tmpDir }) => {
    fs.mkdirSync(path.join(tmpDir, '.dbzip'));
    fs.writeFileSync(path.join(tmpDir, '.dbzip', 'spool'), 'private');
    const errors = [
      await rejection(createBackup({ dataDir: tmpDir, assets: ['.dbzip'] })),
      await rejection(inspect({ dataDir: tmpDir, assets: ['.dbzip/'] })),
      await rejection(restore({ archive: path.join(tmpDir, 'x.zip'), dataDir: tmpDir, assets: ['.dbzip'] })),
    ];
    for (const error of errors) {
      expect(error).toBeInstanceOf(OptionsError);
      expect(error.message).toMatch(/option "assets": "\.dbzip\/?" is inside dbzip's private folder \.dbzip\//);
    }
  });

  test('refuses an unknown option key in createBackup, inspect, restore and createApp alike', async ({ tmpDir }) => {
    const errors = [
      await rejection(createBackup({ dataDir: tmpDir, levle: 6 } as never)),
      await rejection(inspect({ dataDir: tmpDir, levle: 6 } as never)),
      await rejection(restore({ archive: 'x.zip', dataDir: tmpDir, levle: 6 } as never)),
      await rejection(() => createApp({ dataDir: tmpDir, auth: { none: true }, levle: 6 } as never)),
    ];
    for (const error of errors) {
      expect(error).toBeInstanceOf(OptionsError);
      expect(error.message).toBe('unknown option "levle"');
    }
  });
});

describe('VERSION', () => {
  test('backup and restore read the same version from a padded VERSION file', async ({ tmpDir }) => {
    const dataDir = path.join(tmpDir, 'data');
    makeDatabase(path.join(dataDir, 'app.db'));
    // 1,106 bytes: over the old 1 KiB cap of the backup's reader, under the restore's 64 KiB one.
    fs.writeFileSync(path.join(dataDir, 'VERSION'), `9.9.9${' '.repeat(1100)}\n`);
    const zip = path.join(tmpDir, 'b.zip');
    const manifest = await backupToFile(zip, { dataDir });
    expect(manifest.appVersion).toBe('9.9.9');
    const report = await restore({ archive: zip, dataDir, dryRun: true });
    expect(report.plan.version).toMatchObject({ archive: '9.9.9', current: '9.9.9', currentSource: 'data-dir', comparison: 'same' });
  });
});

describe('data directory', () => {
  test('a missing data directory gives one code and one message from backup, inspect, restore, the server and POST /api/restore', async ({ tmpDir }) => {
    const missing = path.join(tmpDir, 'gone');
    const key = newKey();
    const app = createApp({ dataDir: missing, auth: { apiKey: key } });
    const response = await app.request('/api/restore', {
      method: 'POST',
      headers: { 'X-API-Key': key, 'Content-Type': 'application/zip' },
      body: new Uint8Array([0x50, 0x4b]),
    });
    const body = (await response.json()) as { error: { code: string; message: string } };
    const errors = [
      await rejection(createBackup({ dataDir: missing })),
      await rejection(inspect({ dataDir: missing })),
      await rejection(restore({ archive: path.join(tmpDir, 'x.zip'), dataDir: missing })),
      await rejection(startServer({ dataDir: missing, auth: { apiKey: key }, port: 0 })),
    ];
    const expected = `data directory ${missing} does not exist`;
    for (const error of errors) {
      expect(error).toBeInstanceOf(DataDirError);
      expect({ code: error.code, message: error.message }).toEqual({ code: 'DATA_DIR_NOT_FOUND', message: expected });
    }
    expect(response.status).toBe(503);
    expect(body.error).toMatchObject({ code: 'DATA_DIR_NOT_FOUND', message: expected });
  });

  test('a file where the data directory should be is "not a directory" everywhere', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'file');
    fs.writeFileSync(file, 'x');
    const errors = [
      await rejection(createBackup({ dataDir: file })),
      await rejection(restore({ archive: path.join(tmpDir, 'x.zip'), dataDir: file })),
      await rejection(startServer({ dataDir: file, auth: { apiKey: newKey() }, port: 0 })),
    ];
    for (const error of errors) expect({ code: error.code, message: error.message }).toEqual({ code: 'DATA_DIR_NOT_FOUND', message: `data directory ${file} is not a directory` });
  });
});
