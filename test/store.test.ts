import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { StoreError } from '../src/errors.js';
import { backupToStore } from '../src/store/backup-to-store.js';
import { openStore, storedArchive } from '../src/store/open.js';
import { checkBackupName, parseBackupName } from '../src/store/names.js';
import { applyRetention, planRetention } from '../src/store/retention.js';
import type { BackupStore, StoredBackup } from '../src/store/store.js';
import { parseStoreUrl } from '../src/store/url.js';
import { verifyArchive } from '../src/verify/index.js';
import { collect, makeBigDatabase, makeDatabase } from './helpers/backup.js';
import { leaveUploadOpen, startS3, startS3rver, TEST_CREDENTIALS, type S3Server } from './helpers/s3.js';
import { test, withTimeout } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';

const MiB = 1024 ** 2;
let s3: S3Server;
let bucketNo = 0;

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

/** A fresh bucket per test, and a store on it with 5 MiB parts (S3's minimum) so a few MiB make several parts. */
async function bucketStore(prefix = 'app/nightly'): Promise<{ bucket: string; store: BackupStore }> {
  const bucket = `test-${process.pid}-${++bucketNo}`;
  await s3.createBucket(bucket);
  const store = await openStore({ url: s3.url(bucket, prefix), credentials: TEST_CREDENTIALS, partSizeBytes: 5 * MiB, env: {} });
  return { bucket, store };
}

/** A source that yields `chunks` of `size` bytes, then fails (or ends), pausing between chunks. */
function slowSource(chunks: number, size: number, fail?: Error): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent === chunks) {
        if (fail === undefined) this.push(null);
        else this.destroy(fail);
        return;
      }
      sent += 1;
      setTimeout(() => this.push(Buffer.alloc(size, sent)), 20);
    },
  });
}

const stored = (name: string, size = 1): StoredBackup => {
  const parsed = parseBackupName(name);
  if (parsed === null) throw new Error(`bad name ${name}`);
  return { ...parsed, size };
};

describe('backup names', () => {
  test('only <prefix>-backup-<real UTC time>.zip (or .zip.age) is a backup name', () => {
    expect(parseBackupName('dbzip-backup-20260101-030000.zip')).toMatchObject({ prefix: 'dbzip', encrypted: false, time: new Date('2026-01-01T03:00:00Z') });
    expect(parseBackupName('my.app-backup-20261231-235959.zip.age')).toMatchObject({ prefix: 'my.app', encrypted: true });
    for (const bad of ['../dbzip-backup-20260101-030000.zip', 'a/dbzip-backup-20260101-030000.zip', 'dbzip-backup-20260231-030000.zip', 'dbzip-backup-20260101-030000.zip.partial',
      '.hidden-backup-20260101-030000.zip', 'dbzip-backup-20260101-250000.zip', 'dbzip-backup-2026010-030000.zip', 'notes.txt', '', 'dbzip-backup-20260101-030000.ZIP']) {
      expect(parseBackupName(bad), bad).toBeNull();
    }
    expect(() => checkBackupName('../../etc/passwd')).toThrow(/not a backup name/);
  });
});

describe('store URLs', () => {
  test('s3 URLs carry bucket, prefix, endpoint, region and path style; folders resolve against the working directory', () => {
    expect(parseStoreUrl('s3://my-bucket/app/nightly?endpoint=http://127.0.0.1:9000&region=eu-central-1&path-style=false')).toEqual({
      kind: 's3', bucket: 'my-bucket', prefix: 'app/nightly', endpoint: 'http://127.0.0.1:9000', region: 'eu-central-1', pathStyle: false,
    });
    expect(parseStoreUrl('s3://my-bucket')).toMatchObject({ bucket: 'my-bucket', prefix: '' });
    expect(parseStoreUrl('backups', '/srv')).toEqual({ kind: 'folder', folder: '/srv/backups' });
    expect(parseStoreUrl('file:///var/backups')).toEqual({ kind: 'folder', folder: '/var/backups' });
  });

  test('credentials in a URL are refused without echoing them; so are path tricks and unknown parameters', () => {
    let message = '';
    try {
      parseStoreUrl('s3://AKIAXXXX:supersecret@my-bucket/app');
    } catch (error) {
      message = (error as Error).message;
      expect(error).toMatchObject({ code: 'INVALID_STORE_URL' });
    }
    expect(message).toMatch(/must not hold credentials/);
    expect(message).not.toContain('supersecret');
    expect(() => parseStoreUrl('s3://my-bucket/app?endpoint=http://u:pw@host:9000')).toThrow(/credentials/);
    expect(() => parseStoreUrl('s3://my-bucket/../other')).toThrow(/key prefix/);
    expect(() => parseStoreUrl('s3://my-bucket/a//b')).toThrow(/key prefix/);
    expect(() => parseStoreUrl('s3://my-bucket/app?secret=1')).toThrow(/unknown store URL parameter "secret"/);
    expect(() => parseStoreUrl('s3://My_Bucket/app')).toThrow(/bucket/);
    expect(() => parseStoreUrl('ftp://host/x')).toThrow(/unsupported store URL scheme/);
  });
});

describe('S3 store (fauxqs on loopback, through the AWS SDK)', () => {
  test('a stored backup goes up as one PUT of its exact size, is listed, downloads whole and verifies by ranged reads', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'), { rows: 200 });
    makeDatabase(path.join(tmpDir, 'b.db'), { journal: 'delete' });
    const { bucket, store } = await bucketStore();
    // The length the upload is told before the first byte. A small body of unknown length would also
    // go up in one PUT (lib-storage sends a single part as a PUT), so the ETag alone proves nothing.
    const announced: (number | null | undefined)[] = [];
    const watched = new Proxy(store, {
      get(target, key) {
        if (key === 'put') return (...args: Parameters<BackupStore['put']>) => (announced.push(args[2]?.size), target.put(...args));
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    // all-blocking pins the rollback-journal b.db too, so the length is known in advance.
    const result = await backupToStore({ backup: { dataDir: tmpDir, pin: 'all-blocking' }, store: watched, prefix: 'dbzip' });
    expect(result.name).toMatch(/^dbzip-backup-\d{8}-\d{6}\.zip$/);
    expect(result.databases).toBe(2);
    expect(announced).toEqual([result.bytes]);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `app/nightly/${result.name}` }));
    expect(head.ContentLength).toBe(result.bytes);
    // A single PUT has a plain MD5 ETag; a multipart upload's ends in -<parts>.
    expect(head.ETag).not.toContain('-');
    const list = await store.list();
    expect(list.map((b) => [b.name, b.size])).toEqual([[result.name, result.bytes]]);
    const { stream, size } = await store.get(result.name);
    const bytes = await collect(stream);
    expect(bytes.length).toBe(size);
    const zip = await readZip(bytes);
    expect(zip.names).toEqual(expect.arrayContaining(['VERSION', 'a.db', 'b.db', 'manifest.json']));
    const report = await verifyArchive(await storedArchive(store, result.name));
    expect(report.problems).toEqual([]);
    expect(report.databases.map((d) => d.integrity)).toEqual(['ok', 'ok']);
    store.close();
  });

  test('a deflated backup of unknown length goes up in several parts and verifies in place', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'big.db'), 14);
    const { bucket, store } = await bucketStore();
    const result = await backupToStore({ backup: { dataDir: tmpDir, level: 1 }, store, prefix: 'dbzip' });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `app/nightly/${result.name}` }));
    const parts = Number(/-(\d+)"?$/.exec(head.ETag ?? '')?.[1] ?? '1');
    expect(parts).toBeGreaterThanOrEqual(3);
    expect(head.ContentLength).toBe(result.bytes);
    const report = await verifyArchive(await storedArchive(store, result.name));
    expect(report.problems).toEqual([]);
    expect(report.databases).toHaveLength(1);
    store.close();
  });

  test('ranged verify finds a corrupted byte in a stored backup', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'), { rows: 500 });
    const { bucket, store } = await bucketStore();
    const good = await backupToStore({ backup: { dataDir: tmpDir }, store, prefix: 'dbzip', now: () => new Date('2026-01-01T00:00:00Z') });
    const bytes = await collect((await store.get(good.name)).stream);
    // Stored (level 0): the database's bytes are in the zip as they are.
    const offset = bytes.indexOf('SQLite format 3\0') + 5000;
    expect(offset).toBeGreaterThan(5000);
    bytes[offset] = (bytes[offset] ?? 0) ^ 0xff;
    const badName = 'dbzip-backup-20260101-000001.zip';
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: `app/nightly/${badName}`, Body: bytes }));
    const report = await verifyArchive(await storedArchive(store, badName));
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toMatch(/a\.db.*CRC-32 mismatch/);
    store.close();
  });

  test('retention deletes the oldest of its own prefix only, never the newest, never other keys', async () => {
    const { bucket, store } = await bucketStore('r');
    const names = ['dbzip-backup-20260101-030000.zip', 'dbzip-backup-20260102-030000.zip', 'dbzip-backup-20260103-030000.zip', 'dbzip-backup-20260104-030000.zip'];
    for (const name of names) await store.put(name, Readable.from([Buffer.from(name)]));
    const strangers = ['r/other-backup-20250101-000000.zip', 'r/notes.txt', 'r/dbzip-backup-20250101-000000.zip.partial', 'r/sub/dbzip-backup-20250101-000000.zip'];
    for (const key of strangers) await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
    const result = await applyRetention(store, { keep: 2, prefix: 'dbzip', now: new Date('2026-01-05T00:00:00Z') });
    // Oldest first.
    expect(result.remove.map((b) => b.name)).toEqual([names[1], names[0]]);
    expect(result.failed).toEqual([]);
    expect((await store.list()).map((b) => b.name)).toEqual([names[3], names[2], 'other-backup-20250101-000000.zip']);
    for (const key of strangers) await expect(s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).resolves.toBeDefined();
    store.close();
  });

  test('delete removes one backup; a second delete and a download of it are BACKUP_NOT_FOUND', async () => {
    const { store } = await bucketStore();
    const name = 'dbzip-backup-20260101-030000.zip';
    await store.put(name, Readable.from([Buffer.from('zip')]), { size: 3 });
    await store.delete(name);
    expect(await store.list()).toEqual([]);
    await expect(store.delete(name)).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    await expect(store.get(name)).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    await expect(store.put(name, Readable.from([Buffer.from('zip')]))).resolves.toEqual({ bytes: 3 });
    await expect(store.put(name, Readable.from([Buffer.from('zip')]))).rejects.toThrow(/already exists/);
    store.close();
  });

  test('names outside the prefix are refused before any request', async () => {
    const { store } = await bucketStore();
    for (const bad of ['../x-backup-20260101-030000.zip', 'nightly/../../dbzip-backup-20260101-030000.zip', '%2e%2e%2fdbzip-backup-20260101-030000.zip']) {
      await expect(store.get(bad)).rejects.toMatchObject({ code: 'INVALID_BACKUP_NAME' });
      await expect(store.delete(bad)).rejects.toMatchObject({ code: 'INVALID_BACKUP_NAME' });
      await expect(store.put(bad, Readable.from([]))).rejects.toMatchObject({ code: 'INVALID_BACKUP_NAME' });
    }
    store.close();
  });

  test('the open-upload probe sees an upload left open (control for the tests below)', async () => {
    const { bucket } = await bucketStore();
    await leaveUploadOpen(s3.client, bucket, 'app/nightly/dbzip-backup-20260101-030000.zip');
    expect(await s3.hasOpenUpload(bucket)).toBe(true);
  });

  test('a multipart upload cancelled mid-way is aborted: nothing listed, no open upload', async () => {
    const { bucket, store } = await bucketStore();
    const controller = new AbortController();
    // 4 MiB chunks: the first part (5 MiB) is sent after the second chunk; cancel during the fourth.
    const source = slowSource(10, 4 * MiB);
    let seen = 0;
    source.on('data', () => {
      seen += 1;
      if (seen === 4) controller.abort(new Error('stop'));
    });
    await expect(withTimeout(store.put('dbzip-backup-20260101-030000.zip', source, { signal: controller.signal }), 30_000, 'cancelled upload')).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await store.list()).toEqual([]);
    expect(await s3.hasOpenUpload(bucket)).toBe(false);
  });

  test('a source that fails mid-way aborts the upload, single PUT or multipart', async () => {
    // fauxqs takes at most 11 MiB in one request, so the single PUT claims 10 MiB.
    for (const size of [10 * MiB, null]) {
      const { bucket, store } = await bucketStore();
      const failure = new Error('snapshot broke');
      const put = store.put('dbzip-backup-20260101-030000.zip', slowSource(3, 3 * MiB, failure), { size });
      await expect(withTimeout(put, 30_000, 'failed upload')).rejects.toBe(failure);
      expect(await store.list()).toEqual([]);
      expect(await s3.hasOpenUpload(bucket)).toBe(false);
      store.close();
    }
  });

  test('a backup that fails before the upload ends leaves no backup in the bucket', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'big.db'), 12);
    const { bucket, store } = await bucketStore();
    const controller = new AbortController();
    const run = backupToStore({ backup: { dataDir: tmpDir, level: 1 }, store, prefix: 'dbzip', signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutting down')), 300);
    await expect(withTimeout(run, 30_000, 'cancelled backup')).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await store.list()).toEqual([]);
    expect(await s3.hasOpenUpload(bucket)).toBe(false);
  });

  test('wrong credentials give a clear STORE_DENIED naming where they came from, never the secret (s3rver)', async ({ tmpDir }) => {
    const server = await startS3rver(path.join(tmpDir, 's3rver'));
    try {
      const url = `s3://guarded/app?endpoint=${encodeURIComponent(server.endpoint)}`;
      const store = await openStore({ url, env: { AWS_ACCESS_KEY_ID: 'WRONGKEY', AWS_SECRET_ACCESS_KEY: 'wrong-secret-value' } });
      const error = (await store.list().catch((e: unknown) => e)) as StoreError;
      expect(error).toBeInstanceOf(StoreError);
      expect(error.code).toBe('STORE_DENIED');
      expect(error.message).toContain('refused the credentials from AWS_ACCESS_KEY_ID');
      expect(error.message).toContain('InvalidAccessKeyId');
      expect(error.message).not.toContain('wrong-secret-value');
      store.close();
      // The right key works against the same server: the refusal was about the key.
      const good = await openStore({ url, env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } });
      await good.put('dbzip-backup-20260101-030000.zip', Readable.from([Buffer.from('abc')]), { size: 3 });
      expect((await good.list()).map((b) => b.size)).toEqual([3]);
      good.close();
    } finally {
      await server.stop();
    }
  });

  test('no credentials at all is STORE_DENIED before any request', async () => {
    await expect(openStore({ url: 's3://my-bucket/app', env: {} })).rejects.toMatchObject({ code: 'STORE_DENIED', message: expect.stringMatching(/AWS_ACCESS_KEY_ID/) });
  });

  test('credentials come from a shared-credentials file and its profile', async ({ tmpDir }) => {
    const file = path.join(tmpDir, 'credentials');
    fs.writeFileSync(file, `[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n[backup]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n`);
    const server = await startS3rver(path.join(tmpDir, 's3rver'));
    try {
      const store = await openStore({ url: `s3://guarded?endpoint=${server.endpoint}`, env: { AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'backup' } });
      await expect(store.list()).resolves.toEqual([]);
      store.close();
      const wrong = await openStore({ url: `s3://guarded?endpoint=${server.endpoint}`, credentialsFile: file, env: {} });
      await expect(wrong.list()).rejects.toMatchObject({ code: 'STORE_DENIED', message: expect.stringContaining('profile default') });
      wrong.close();
    } finally {
      await server.stop();
    }
  });
});

describe('folder store', () => {
  test('writes through .partial, lists only backup names newest first, never replaces one', async ({ tmpDir }) => {
    const folder = path.join(tmpDir, 'store');
    const store = await openStore(folder);
    await store.put('dbzip-backup-20260101-030000.zip', Readable.from([Buffer.from('one')]));
    await store.put('dbzip-backup-20260102-030000.zip', Readable.from([Buffer.from('two!')]), { size: 4 });
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'x');
    fs.writeFileSync(path.join(folder, 'dbzip-backup-20260103-030000.zip.partial'), 'x');
    fs.symlinkSync('/etc/hostname', path.join(folder, 'dbzip-backup-20260104-030000.zip'));
    expect((await store.list()).map((b) => [b.name, b.size])).toEqual([['dbzip-backup-20260102-030000.zip', 4], ['dbzip-backup-20260101-030000.zip', 3]]);
    await expect(store.put('dbzip-backup-20260101-030000.zip', Readable.from([Buffer.from('other')]))).rejects.toThrow(/already exists/);
    expect(fs.readFileSync(path.join(folder, 'dbzip-backup-20260101-030000.zip'), 'utf8')).toBe('one');
    expect(await collect(store.getRange('dbzip-backup-20260102-030000.zip', 1, 3))).toEqual(Buffer.from('wo'));
    expect((fs.statSync(folder).mode & 0o777).toString(8)).toBe('700');
  });

  test('a failed write leaves neither the backup nor its .partial', async ({ tmpDir }) => {
    const store = await openStore(path.join(tmpDir, 'store'));
    const failure = new Error('broke');
    await expect(store.put('dbzip-backup-20260101-030000.zip', slowSource(2, 1024, failure))).rejects.toMatchObject({ code: 'STORE_FAILED' });
    expect(fs.readdirSync(path.join(tmpDir, 'store'))).toEqual([]);
    const controller = new AbortController();
    const put = store.put('dbzip-backup-20260101-030000.zip', slowSource(50, 1024), { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expect(put).rejects.toMatchObject({ code: 'ABORTED' });
    expect(fs.readdirSync(path.join(tmpDir, 'store'))).toEqual([]);
  });
});

describe('retention plan', () => {
  const names = ['dbzip-backup-20260101-030000.zip', 'dbzip-backup-20260110-030000.zip', 'dbzip-backup-20260120-030000.zip', 'dbzip-backup-20260130-030000.zip'];
  const now = new Date('2026-01-31T00:00:00Z');

  test('keeps the N newest, plus with keepDays everything younger; each rule only keeps more', () => {
    const list = names.map((n) => stored(n));
    expect(planRetention(list, { keep: 1, prefix: 'dbzip', now }).remove.map((b) => b.name)).toEqual([names[2], names[1], names[0]]);
    expect(planRetention(list, { keep: 1, keepDays: 15, now, prefix: 'dbzip' }).remove.map((b) => b.name)).toEqual([names[1], names[0]]);
    expect(planRetention(list, { keep: 3, keepDays: 1, now, prefix: 'dbzip' }).remove.map((b) => b.name)).toEqual([names[0]]);
  });

  test('never the newest, even when every backup is old; never another prefix', () => {
    const list = [...names.map((n) => stored(n)), stored('other-backup-20200101-000000.zip')];
    const plan = planRetention(list, { keep: 1, keepDays: 1, prefix: 'dbzip', now: new Date('2030-01-01T00:00:00Z') });
    expect(plan.keep.map((b) => b.name)).toEqual([names[3]]);
    expect(plan.remove.map((b) => b.name)).not.toContain('other-backup-20200101-000000.zip');
    expect(() => planRetention(list, { keep: 0, prefix: 'dbzip' })).toThrow(/keep/);
  });
});
