/**
 * Age-encrypted backups in stores: `.zip.age` objects streamed into a folder and into a real
 * S3-protocol server on loopback (fauxqs, through the AWS SDK), the schedule, retention, and
 * verify/restore of stored encrypted backups by the library, over HTTP and from the CLI.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Decrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { payloadSize } from '../src/archive/age.js';
import { EXIT_CODES } from '../src/cli/exit-codes.js';
import { DecryptionError } from '../src/errors.js';
import { startServer, type RunningServer, type ServerOptions } from '../src/http/index.js';
import { backupToStore } from '../src/store/backup-to-store.js';
import { openStore, storedArchive } from '../src/store/open.js';
import { applyRetention } from '../src/store/retention.js';
import type { BackupStore, PutOptions } from '../src/store/store.js';
import { verifyArchive } from '../src/verify/index.js';
import { collect, makeBigDatabase, makeDatabase } from './helpers/backup.js';
import { BIN, dbzip } from './helpers/cli.js';
import { fingerprintTree, logicalHashOfFile } from './helpers/restore.js';
import { startS3, TEST_CREDENTIALS, type S3Server } from './helpers/s3.js';
import { test, withTimeout } from './helpers/tmp.js';
import { captureLogger, makeSmallDatabase, newKey, rowCount, unzip, waitFor } from './http-helpers.js';

/** Debian's reference implementation; CI installs it. Without it, age-encryption decrypts instead. */
const AGE = '/usr/bin/age';
const hasAge = fs.existsSync(AGE);

let s3: S3Server;
let bucketNo = 0;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

interface KeyFile {
  file: string;
  identity: string;
  recipient: string;
}

/** An identity file as age-keygen writes it. */
async function keyFile(dir: string, name: string): Promise<KeyFile> {
  const identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const file = path.join(dir, name);
  fs.writeFileSync(file, `# created: test\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });
  return { file, identity, recipient };
}

/** Decrypts with the reference `age -d` when installed, else with age-encryption. */
async function ageDecrypt(sealed: Buffer, key: KeyFile, dir: string): Promise<Buffer> {
  if (!hasAge) {
    const decrypter = new Decrypter();
    decrypter.addIdentity(key.identity);
    return Buffer.from(await decrypter.decrypt(sealed));
  }
  const input = path.join(dir, 'object.zip.age');
  fs.writeFileSync(input, sealed);
  const plain = execFileSync(AGE, ['-d', '-i', key.file, input], { maxBuffer: 256 * 1024 ** 2 });
  fs.rmSync(input);
  return plain;
}

/** The age header's length: up to and including the `--- <mac>` line. */
function headerLength(sealed: Buffer): number {
  const mac = sealed.indexOf('\n--- ');
  return sealed.indexOf('\n', mac + 1) + 1;
}

/** A real store that records the length announced to each put, and counts ranged reads. */
function recordingPuts(inner: BackupStore): BackupStore & { puts: { name: string; size: number | null | undefined }[]; ranges: { count: number; bytes: number } } {
  const puts: { name: string; size: number | null | undefined }[] = [];
  const ranges = { count: 0, bytes: 0 };
  return {
    kind: inner.kind,
    display: inner.display,
    puts,
    ranges,
    put(name: string, body: Readable, options?: PutOptions) {
      puts.push({ name, size: options?.size });
      return inner.put(name, body, options);
    },
    list: () => inner.list(),
    stat: (name: string) => inner.stat(name),
    get: (name: string, signal?: AbortSignal) => inner.get(name, signal),
    getRange: (name: string, start: number, end: number) => {
      ranges.count += 1;
      ranges.bytes += end - start;
      return inner.getRange(name, start, end);
    },
    delete: (name: string) => inner.delete(name),
    close: () => inner.close(),
  };
}

async function bucketStore(prefix = 'app'): Promise<{ bucket: string; prefix: string; store: BackupStore }> {
  const bucket = `enc-${process.pid}-${++bucketNo}`;
  await s3.createBucket(bucket);
  return { bucket, prefix, store: await openStore({ url: s3.url(bucket, prefix), credentials: TEST_CREDENTIALS, env: {} }) };
}

/** Every file and folder with content hashes, but dbzip's own `.dbzip/` (spool, pre-restore backups, the folder store). */
const stateOf = (dir: string): string =>
  fingerprintTree(dir, { ignoreReaderSidecars: true })
    .split('\n')
    .filter((line) => !/^[DFL] \.dbzip(\/|\s|$)/.test(line))
    .join('\n');

const rejection = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => undefined, (error: unknown) => error);

describe('encrypted backups into a store (library)', () => {
  test('an encrypted backup goes up to S3 as one PUT of its predicted size; age -d of the object gives a zip that verifies', async ({ tmpDir }) => {
    // WAL databases are pinned by default, so the length is known before the first byte (docs/guarantees.md).
    makeDatabase(path.join(tmpDir, 'data', 'a.db'), { rows: 200 });
    makeDatabase(path.join(tmpDir, 'data', 'b.db'));
    const owner = await keyFile(tmpDir, 'owner.key');
    const { bucket, prefix, store: inner } = await bucketStore();
    const store = recordingPuts(inner);
    const result = await backupToStore({ backup: { dataDir: path.join(tmpDir, 'data'), encrypt: { recipients: [owner.recipient] } }, store, prefix: 'dbzip' });
    expect(result.name).toMatch(/^dbzip-backup-\d{8}-\d{6}\.zip\.age$/);
    expect(result.encrypted).toBe(true);

    // The length was announced before the first byte, and the object is exactly that long, from one PUT.
    expect(store.puts).toEqual([{ name: result.name, size: result.bytes }]);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}/${result.name}` }));
    expect(head.ContentLength).toBe(result.bytes);
    expect(head.ETag).not.toContain('-');

    const { stream } = await store.get(result.name);
    const sealed = await collect(stream);
    expect(sealed.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    const plain = await ageDecrypt(sealed, owner, tmpDir);
    expect(sealed.length).toBe(headerLength(sealed) + payloadSize(plain.length));
    fs.writeFileSync(path.join(tmpDir, 'plain.zip'), plain);
    const report = await verifyArchive(path.join(tmpDir, 'plain.zip'));
    expect(report).toMatchObject({ ok: true, encrypted: false });
    expect(report.databases.map((d) => d.path).sort()).toEqual(['a.db', 'b.db']);
    expect(await store.list()).toEqual([expect.objectContaining({ name: result.name, encrypted: true, size: result.bytes })]);
  });

  test('a stored .zip.age verifies in place with the identity; no key, a wrong key, a tampered or a truncated object are refused', async ({ tmpDir }) => {
    // 8 MiB: 129 chunks, several read-ahead batches while every chunk is authenticated.
    makeBigDatabase(path.join(tmpDir, 'data', 'a.db'), 8);
    const owner = await keyFile(tmpDir, 'owner.key');
    const stranger = await keyFile(tmpDir, 'stranger.key');
    const { bucket, prefix, store: inner } = await bucketStore();
    const store = recordingPuts(inner);
    const { name, bytes } = await backupToStore({ backup: { dataDir: path.join(tmpDir, 'data'), encrypt: { recipients: [owner.recipient] } }, store, prefix: 'dbzip' });

    const report = await verifyArchive(await storedArchive(store, name), { decrypt: { identities: [owner.identity] } });
    expect(report).toMatchObject({ ok: true, encrypted: true, problems: [], databases: [{ path: 'a.db', integrity: 'ok' }] });
    expect(report.totalBytes).toBeGreaterThan(8 * 1024 ** 2);
    // One sequential read authenticates it all, one more reads the database: a few GETs, not one per
    // MiB, and about twice the object, never more.
    expect(store.ranges.count).toBeLessThanOrEqual(10);
    expect(store.ranges.bytes).toBeLessThan(2.1 * bytes);

    const noKey = await rejection(verifyArchive(await storedArchive(store, name)));
    expect(noKey).toBeInstanceOf(DecryptionError);
    expect(noKey).toMatchObject({ reason: 'NO_KEY', message: expect.stringContaining(name) });
    const wrong = await rejection(verifyArchive(await storedArchive(store, name), { decrypt: { identities: [stranger.identity] } }));
    expect(wrong).toMatchObject({ reason: 'WRONG_KEY' });
    expect((wrong as Error).message).not.toContain(stranger.identity);

    // Altered copies under other backup names: one flipped byte in the middle, and one cut short.
    const sealed = await collect((await store.get(name)).stream);
    const tampered = Buffer.from(sealed);
    const middle = Math.floor(sealed.length / 2);
    tampered[middle] = tampered[middle]! ^ 0x01;
    const copies: [string, Buffer, RegExp][] = [
      ['dbzip-backup-20200101-000000.zip.age', tampered, /chunk \d+ does not authenticate/],
      ['dbzip-backup-20200101-000001.zip.age', sealed.subarray(0, sealed.length - 1000), /truncated/],
    ];
    for (const [copy, body, message] of copies) {
      await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${copy}`, Body: body }));
      const error = await rejection(verifyArchive(await storedArchive(store, copy), { decrypt: { identities: [owner.identity] } }));
      expect(error, copy).toMatchObject({ reason: 'DAMAGED' });
      expect((error as Error).message, copy).toMatch(message);
    }
  });

  test('retention counts .zip.age backups like .zip ones: newest kept, oldest deleted first', async ({ tmpDir }) => {
    makeSmallDatabase(path.join(tmpDir, 'data', 'a.db'));
    const owner = await keyFile(tmpDir, 'owner.key');
    const store = await openStore(path.join(tmpDir, 'store'));
    const at = (minute: number) => () => new Date(Date.UTC(2026, 0, 1, 3, minute, 0));
    // Plain, encrypted, plain, encrypted: as when encryption is turned on and off again.
    for (const [minute, encrypt] of [[0, false], [1, true], [2, false], [3, true]] as const) {
      await backupToStore({
        backup: { dataDir: path.join(tmpDir, 'data'), ...(encrypt ? { encrypt: { recipients: [owner.recipient] } } : {}) },
        store,
        prefix: 'dbzip',
        now: at(minute),
      });
    }
    expect((await store.list()).map((b) => [b.name, b.encrypted])).toEqual([
      ['dbzip-backup-20260101-030300.zip.age', true],
      ['dbzip-backup-20260101-030200.zip', false],
      ['dbzip-backup-20260101-030100.zip.age', true],
      ['dbzip-backup-20260101-030000.zip', false],
    ]);
    const result = await applyRetention(store, { keep: 3, prefix: 'dbzip', now: new Date(Date.UTC(2026, 0, 2)) });
    expect(result.remove.map((b) => b.name)).toEqual(['dbzip-backup-20260101-030000.zip']);
    // A run's own retention: the newest (encrypted) and one more are kept.
    const run = await backupToStore({ backup: { dataDir: path.join(tmpDir, 'data'), encrypt: { recipients: [owner.recipient] } }, store, prefix: 'dbzip', retention: { keep: 2 }, now: at(4) });
    expect(run.retention?.removed).toEqual(['dbzip-backup-20260101-030200.zip', 'dbzip-backup-20260101-030100.zip.age']);
    expect(fs.readdirSync(path.join(tmpDir, 'store')).sort()).toEqual(['dbzip-backup-20260101-030300.zip.age', 'dbzip-backup-20260101-030400.zip.age']);
  });
});

describe('stored encrypted backups over HTTP', () => {
  let server: RunningServer | undefined;

  async function serve(options: Partial<ServerOptions> & { dataDir: string }) {
    const key = newKey();
    const log = captureLogger();
    server = await startServer({ auth: { apiKey: key }, port: 0, logger: log.logger, ...options });
    const url = server.url;
    const call = (p: string, init: RequestInit = {}) => fetch(`${url}${p}`, { ...init, headers: { 'X-API-Key': key, ...(init.headers as Record<string, string> | undefined) } });
    return { call, log };
  }

  async function stop() {
    await server?.close();
    server = undefined;
  }

  test('a per-second schedule stores .zip.age backups; the list and status say encrypted; retention keeps counting them', async ({ tmpDir }) => {
    makeSmallDatabase(path.join(tmpDir, 'data', 'a.db'), 5);
    const owner = await keyFile(tmpDir, 'owner.key');
    const folder = path.join(tmpDir, 'store');
    const { call, log } = await serve({ dataDir: path.join(tmpDir, 'data'), store: folder, schedule: '* * * * * *', keep: 2, encrypt: { recipients: [owner.recipient] }, decrypt: { identities: [owner.identity] } });
    try {
      await waitFor(() => log.lines.filter((l) => l['event'] === 'stored-backup' && l['outcome'] === 'ok').length >= 3, 30_000, 'three scheduled runs');
      const list = (await (await call('/api/backups')).json()) as { encrypted: boolean; backups: { name: string; encrypted: boolean; size: number }[] };
      expect(list.encrypted).toBe(true);
      expect(list.backups.length).toBeGreaterThanOrEqual(2);
      for (const b of list.backups) {
        expect(b.name).toMatch(/^dbzip-backup-\d{8}-\d{6}\.zip\.age$/);
        expect(b.encrypted).toBe(true);
      }
      const runs = log.lines.filter((l) => l['event'] === 'stored-backup' && l['outcome'] === 'ok');
      expect(runs.flatMap((l) => l['removed'] as string[]).length).toBeGreaterThanOrEqual(1);
      const health = (await (await call('/api/health?details=1')).json()) as { storedBackups: { encrypted: boolean } };
      expect(health.storedBackups.encrypted).toBe(true);
    } finally {
      await stop();
    }
    const left = fs.readdirSync(folder);
    expect(left.length).toBeLessThanOrEqual(3); // two kept, plus at most one a run finished while stopping
    for (const name of left) expect(name).toMatch(/\.zip\.age$/);
    expect(log.text()).not.toContain(owner.identity);
  });

  test('verify and restore of a stored .zip.age decrypt with the server\'s identity; none, a wrong one or a tampered object: 422 and nothing changes', async ({ tmpDir }) => {
    const dataDir = path.join(tmpDir, 'data');
    makeSmallDatabase(path.join(dataDir, 'a.db'), 5);
    const owner = await keyFile(tmpDir, 'owner.key');
    const stranger = await keyFile(tmpDir, 'stranger.key');
    const folder = path.join(tmpDir, 'store');
    const store = await openStore(folder);
    const { name } = await backupToStore({ backup: { dataDir, encrypt: { recipients: [owner.recipient] } }, store, prefix: 'dbzip' });
    const sealed = fs.readFileSync(path.join(folder, name));
    const tamperedName = 'dbzip-backup-20200101-000000.zip.age';
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 40] = tampered[tampered.length - 40]! ^ 0x01;
    fs.writeFileSync(path.join(folder, tamperedName), tampered);

    // The data changes after the backup: 9 rows instead of 5.
    makeSmallDatabase(path.join(tmpDir, 'other', 'a.db'), 9);
    fs.copyFileSync(path.join(tmpDir, 'other', 'a.db'), path.join(dataDir, 'a.db'));
    const before = stateOf(dataDir);

    const refusals: [string, Partial<ServerOptions>, string, RegExp][] = [
      ['no identity', {}, name, /--identity|identity file/],
      ['wrong identity', { decrypt: { identities: [stranger.identity] } }, name, /none of the given identities/],
      ['tampered', { decrypt: { identities: [owner.identity] } }, tamperedName, /does not authenticate/],
    ];
    for (const [what, extra, target, message] of refusals) {
      const { call, log } = await serve({ dataDir, store: folder, ...extra });
      try {
        for (const action of ['verify', 'restore', 'restore?dryRun=1']) {
          const res = await call(`/api/backups/${target}/${action}`, { method: 'POST' });
          const body = (await res.json()) as { error?: { code: string; message: string } };
          expect(res.status, `${what} ${action}`).toBe(422);
          expect(body.error, `${what} ${action}`).toMatchObject({ code: 'DECRYPTION_FAILED', message: expect.stringMatching(message) });
        }
      } finally {
        await stop();
      }
      expect(stateOf(dataDir), what).toBe(before);
      expect(fs.readdirSync(path.join(dataDir, '.dbzip')).filter((f) => f.startsWith('upload-')), what).toEqual([]);
      expect(log.text(), what).not.toContain(owner.identity);
      expect(log.text(), what).not.toContain(stranger.identity);
    }

    const { call, log } = await serve({ dataDir, store: folder, decrypt: { identities: [owner.identity] } });
    try {
      const verified = await call(`/api/backups/${name}/verify`, { method: 'POST' });
      expect(await verified.json()).toMatchObject({ name, ok: true, problems: [], databases: [{ path: 'a.db', integrity: 'ok' }] });
      const download = await call(`/api/backups/${name}`);
      expect(download.headers.get('content-type')).toBe('application/octet-stream');
      expect(download.headers.get('x-dbzip-encryption')).toBe('age');
      expect(Buffer.from(await download.arrayBuffer()).equals(sealed)).toBe(true);
      const dry = await call(`/api/backups/${name}/restore?dryRun=1`, { method: 'POST' });
      expect(await dry.json()).toMatchObject({ dryRun: true, applied: false, verify: { ok: true } });
      expect(stateOf(dataDir)).toBe(before);
      const real = await call(`/api/backups/${name}/restore`, { method: 'POST' });
      expect(real.status).toBe(200);
      expect(await real.json()).toMatchObject({ applied: true });
      expect(rowCount(fs.readFileSync(path.join(dataDir, 'a.db')))).toBe(5);
    } finally {
      await stop();
    }
    expect(log.text()).not.toContain(owner.identity);
    // The spooled copy was encrypted and is gone; no plaintext zip was left in the private folder.
    expect(fs.readdirSync(path.join(dataDir, '.dbzip')).filter((f) => f.startsWith('upload-'))).toEqual([]);
  });

  test('back up now into S3 with encryption: one PUT of the exact length, downloaded as an age file that decrypts to the zip', async ({ tmpDir }) => {
    const dataDir = path.join(tmpDir, 'data');
    makeSmallDatabase(path.join(dataDir, 'a.db'), 5, 'wal');
    const owner = await keyFile(tmpDir, 'owner.key');
    const { bucket, prefix, store } = await bucketStore();
    const recording = recordingPuts(store);
    const { call } = await serve({ dataDir, store: recording, encrypt: { recipients: [owner.recipient] }, decrypt: { identities: [owner.identity] } });
    try {
      expect((await call('/api/backups', { method: 'POST' })).status).toBe(202);
      let name = '';
      await waitFor(async () => {
        const list = (await (await call('/api/backups')).json()) as { lastSuccess: { name: string } | null; lastFailure: unknown };
        if (list.lastFailure !== null) throw new Error(`run failed: ${JSON.stringify(list.lastFailure)}`);
        name = list.lastSuccess?.name ?? '';
        return name !== '';
      }, 30_000, 'the stored backup');
      expect(name).toMatch(/\.zip\.age$/);
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}/${name}` }));
      expect(recording.puts).toEqual([{ name, size: head.ContentLength }]);
      expect(head.ETag).not.toContain('-');
      const download = await call(`/api/backups/${name}`);
      const sealed = Buffer.from(await download.arrayBuffer());
      expect(Number(download.headers.get('content-length'))).toBe(sealed.length);
      expect(sealed.length).toBe(head.ContentLength);
      expect(rowCount((await unzip(await ageDecrypt(sealed, owner, tmpDir))).get('a.db') ?? Buffer.alloc(0))).toBe(5);
      expect(await (await call(`/api/backups/${name}/verify`, { method: 'POST' })).json()).toMatchObject({ ok: true, databases: [{ path: 'a.db' }] });
    } finally {
      await stop();
    }
  });
});

describe('dbzip backup --to with encryption, verify <store> --identity, serve --store --encrypt-to', () => {
  test('backs up into a bucket as .zip.age, verifies and restores from it with the identity; no key or a wrong one changes nothing', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    makeDatabase(path.join(data, 'app.db'), { rows: 50 });
    const owner = await keyFile(tmpDir, 'owner.key');
    const stranger = await keyFile(tmpDir, 'stranger.key');
    const { bucket } = await bucketStore('cli');
    const url = s3.url(bucket, 'cli');
    const run = await dbzip(['backup', data, '--to', url, '--encrypt-to', owner.recipient, '--json'], { env: s3.env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { name: string; encrypted: boolean; bytes: number };
    expect(result).toMatchObject({ name: expect.stringMatching(/^dbzip-backup-\d{8}-\d{6}\.zip\.age$/), encrypted: true });

    const named = await dbzip(['verify', s3.url(bucket, `cli/${result.name}`), '--identity', owner.file], { env: s3.env });
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toContain(`${result.name}: ok (age-encrypted`);
    const newest = await dbzip(['verify', url, '--identity', owner.file, '--json'], { env: s3.env });
    expect(JSON.parse(newest.stdout)).toMatchObject({ ok: true, encrypted: true, archive: expect.stringContaining(result.name) });

    const noKey = await dbzip(['verify', url], { env: s3.env });
    expect(noKey.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    expect(noKey.stderr).toContain('--identity');
    const wrong = await dbzip(['verify', url, '--identity', stranger.file], { env: s3.env });
    expect(wrong.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    expect(wrong.stderr).toMatch(/none of the given identities/);
    expect(wrong.stderr + wrong.stdout).not.toContain(stranger.identity);

    // Restore straight from the bucket: a wrong key changes nothing, the right one restores.
    const target = path.join(tmpDir, 'target');
    makeDatabase(path.join(target, 'app.db'), { rows: 7 });
    const before = stateOf(target);
    const refused = await dbzip(['restore', url, '--identity', stranger.file, '--data-dir', target, '--yes'], { env: s3.env });
    expect(refused.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    expect(stateOf(target)).toBe(before);
    expect(fs.readdirSync(path.join(target, '.dbzip')).filter((f) => f.startsWith('upload-'))).toEqual([]);
    const restored = await dbzip(['restore', s3.url(bucket, `cli/${result.name}`), '--identity', owner.file, '--data-dir', target, '--yes'], { env: s3.env });
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain(`copied s3://${bucket}/cli`);
    expect(logicalHashOfFile(path.join(target, 'app.db'))).toBe(logicalHashOfFile(path.join(data, 'app.db')));
    expect(fs.readdirSync(path.join(target, '.dbzip')).filter((f) => f.startsWith('upload-'))).toEqual([]);
  });

  test('a passphrase from a file encrypts into a folder store; the passphrase is never printed', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'data', 'app.db'));
    const phrase = 'correct horse battery staple 7f3a';
    fs.writeFileSync(path.join(tmpDir, 'phrase.txt'), `${phrase}\n`, { mode: 0o600 });
    const run = await dbzip(['backup', 'data', '--to', 'store', '--passphrase-file', 'phrase.txt'], { cwd: tmpDir });
    expect(run.code, run.stderr).toBe(0);
    const [name] = fs.readdirSync(path.join(tmpDir, 'store'));
    expect(name).toMatch(/^dbzip-backup-\d{8}-\d{6}\.zip\.age$/);
    expect(run.stderr).toContain('age-encrypted');
    const verify = await dbzip(['verify', 'store', '--passphrase-file', 'phrase.txt'], { cwd: tmpDir });
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`${name}: ok (age-encrypted`);
    fs.writeFileSync(path.join(tmpDir, 'wrong.txt'), 'not the passphrase\n');
    const wrong = await dbzip(['verify', 'store', '--passphrase-file', 'wrong.txt'], { cwd: tmpDir });
    expect(wrong.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    for (const out of [run, verify, wrong]) expect(out.stdout + out.stderr).not.toContain(phrase);
  });

  test('serve --store --schedule --encrypt-to --identity: scheduled .zip.age backups verify over HTTP; no key in its pino log', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    makeDatabase(path.join(data, 'app.db'), { rows: 20 });
    const owner = await keyFile(tmpDir, 'owner.key');
    fs.writeFileSync(path.join(tmpDir, 'recipients.txt'), `# owner\n${owner.recipient}\n`);
    const folder = path.join(tmpDir, 'store');
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--data-dir', data, '--no-auth', '--port', '0', '--store', folder, '--schedule', '* * * * * *', '--encrypt-to', 'recipients.txt'],
      { cwd: tmpDir, env: { PATH: process.env['PATH'] ?? '', DBZIP_IDENTITY_FILE: owner.file }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    try {
      await waitFor(() => /http:\/\/127\.0\.0\.1:\d+/.test(stdout) || child.exitCode !== null, 20_000, 'the server address');
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      expect(url, stderr).toBeDefined();
      // Printed just after the address, so it may arrive a moment later.
      await waitFor(() => stdout.includes('downloads and stored backups are encrypted with age to 1 recipient(s)'), 10_000, 'the encryption notice');
      // pino's JSON lines: on stdout, or stderr when dbzip decides so; the key must be in neither.
      await waitFor(() => /"event":"stored-backup".*"outcome":"ok"/.test(stdout + stderr), 30_000, 'a scheduled run');
      const name = /"outcome":"ok","name":"(dbzip-backup-\d{8}-\d{6}\.zip\.age)"/.exec(stdout + stderr)?.[1];
      expect(name, stdout + stderr).toBeDefined();
      const verified = await fetch(`${url}/api/backups/${name}/verify`, { method: 'POST' });
      expect(verified.status).toBe(200);
      expect(await verified.json()).toMatchObject({ ok: true, databases: [{ path: 'app.db', integrity: 'ok' }] });
    } finally {
      child.kill('SIGTERM');
      await withTimeout(exited, 30_000, 'serve to stop');
    }
    expect(stdout + stderr).not.toContain(owner.identity);
    for (const file of fs.readdirSync(folder)) expect(file).toMatch(/\.zip\.age$/);
    // What the store holds decrypts with the owner's key into the data that was backed up.
    const newest = fs.readdirSync(folder).sort().at(-1)!;
    const plain = await ageDecrypt(fs.readFileSync(path.join(folder, newest)), owner, tmpDir);
    fs.writeFileSync(path.join(tmpDir, 'app-from-store.zip'), plain);
    const target = path.join(tmpDir, 'target');
    fs.mkdirSync(target);
    const restored = await dbzip(['restore', path.join(folder, newest), '--identity', owner.file, '--data-dir', target, '--yes']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(logicalHashOfFile(path.join(target, 'app.db'))).toBe(logicalHashOfFile(path.join(data, 'app.db')));
  });
});
