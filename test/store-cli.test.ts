import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { EXIT_CODES } from '../src/cli/exit-codes.js';
import { makeDatabase } from './helpers/backup.js';
import { startS3, type S3Server } from './helpers/s3.js';
import { test } from './helpers/tmp.js';

const BIN = path.resolve('dist/cli/bin.js');
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket('cli');
});
afterAll(async () => {
  await s3?.stop();
});

async function dbzip(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('dbzip backup --to / verify <store> / prune', () => {
  test('backs up into a bucket, verifies it in place by URL, prunes to the newest', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'app.db'), { rows: 50 });
    const url = s3.url('cli', 'one');
    const names: string[] = [];
    for (let i = 0; i < 2; i++) {
      const run = await dbzip(['backup', path.join(tmpDir, 'data'), '--to', url, '--json'], s3.env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      names.push((JSON.parse(run.stdout) as { name: string }).name);
      // Names have whole seconds: wait for the next one.
      await new Promise((r) => setTimeout(r, 1100));
    }
    const [older, newer] = names as [string, string];
    const named = await dbzip(['verify', s3.url('cli', `one/${older}`)], s3.env);
    expect(named.code).toBe(0);
    expect(named.stdout).toContain(`${older}: ok`);
    expect(named.stdout).toContain('app.db');
    const newest = await dbzip(['verify', url, '--json'], s3.env);
    expect(newest.code).toBe(0);
    expect(JSON.parse(newest.stdout)).toMatchObject({ ok: true, archive: expect.stringContaining(newer) });

    const dry = await dbzip(['prune', url, '--keep', '1', '--dry-run'], s3.env);
    expect(dry.stdout).toContain(`would delete ${older}`);
    const prune = await dbzip(['prune', url, '--keep', '1', '--json'], s3.env);
    expect(prune.code).toBe(0);
    expect(JSON.parse(prune.stdout)).toMatchObject({ removed: [older], kept: [newer] });
    const gone = await dbzip(['verify', s3.url('cli', `one/${older}`)], s3.env);
    expect(gone.code).toBe(EXIT_CODES.BACKUP_NOT_FOUND);
    expect(gone.stderr).toContain(`${older} is not in s3://cli/one`);
  });

  test('a folder store works the same, and verify of the folder checks its newest backup', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'app.db'));
    const run = await dbzip(['backup', 'data', '--to', 'store', '--prefix', 'nightly', '-q'], {}, tmpDir);
    expect(run.code).toBe(0);
    const [name] = fs.readdirSync(path.join(tmpDir, 'store'));
    expect(name).toMatch(/^nightly-backup-\d{8}-\d{6}\.zip$/);
    const verify = await dbzip(['verify', 'store'], {}, tmpDir);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain(`${name}: ok`);
  });

  test('store errors are one clear line with their own exit code, and never show a secret', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'app.db'));
    const none = await dbzip(['backup', path.join(tmpDir, 'data'), '--to', 's3://cli/x?endpoint=http://127.0.0.1:1']);
    expect(none.code).toBe(EXIT_CODES.STORE_DENIED);
    expect(none.stderr).toMatch(/^dbzip: no S3 credentials/);
    const inUrl = await dbzip(['prune', 's3://KEY:hunter2hunter2@cli/x', '--keep', '1']);
    expect(inUrl.code).toBe(EXIT_CODES.INVALID_STORE_URL);
    expect(inUrl.stderr).not.toContain('hunter2');
    const both = await dbzip(['backup', path.join(tmpDir, 'data'), '--to', 'x', '-o', 'y.zip']);
    expect(both.code).toBe(EXIT_CODES.INVALID_OPTION);
    const noBucket = await dbzip(['backup', path.join(tmpDir, 'data'), '--to', s3.url('missing-bucket')], s3.env);
    expect(noBucket.code).toBe(EXIT_CODES.STORE_FAILED);
    expect(noBucket.stderr).toMatch(/^dbzip: .*missing-bucket/);
    expect(noBucket.stderr).not.toContain(s3.env['AWS_SECRET_ACCESS_KEY']);
    const noKeep = await dbzip(['prune', 'store']);
    expect(noKeep.code).toBe(EXIT_CODES.INVALID_OPTION);
  });

  test('serve refuses a bad schedule, and a bucket without credentials, before it listens', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'app.db'));
    const base = ['serve', '--data-dir', path.join(tmpDir, 'data'), '--no-auth', '--port', '0'];
    const badCron = await dbzip([...base, '--schedule', 'nightly']);
    expect(badCron.code).toBe(EXIT_CODES.INVALID_OPTION);
    expect(badCron.stderr).toMatch(/schedule\.cron/);
    const badZone = await dbzip([...base, '--schedule', '0 3 * * *'], { DBZIP_SCHEDULE_TIMEZONE: 'Nowhere/Else' });
    expect(badZone.code).toBe(EXIT_CODES.INVALID_OPTION);
    const noCredentials = await dbzip([...base, '--store', 's3://my-bucket/app', '--schedule', '0 3 * * *', '--keep', '7']);
    expect(noCredentials.code).toBe(EXIT_CODES.STORE_DENIED);
    expect(noCredentials.stderr).toMatch(/no S3 credentials/);
  });
});
