import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Decrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { createSealer, payloadSize, plainSizeOfPayload } from '../src/archive/age.js';
import { createBackup } from '../src/backup.js';
import { DecryptionError, OptionsError } from '../src/errors.js';
import { restore } from '../src/restore/index.js';
import { verifyArchive } from '../src/verify/index.js';
import { collect } from './helpers/backup.js';
import { fingerprintTree, logicalHashOfFile } from './helpers/restore.js';
import { test } from './helpers/tmp.js';

/** Debian's reference implementation; CI installs it, so only a developer machine may lack it. */
const AGE = '/usr/bin/age';
const hasAge = fs.existsSync(AGE) && fs.existsSync('/usr/bin/age-keygen');
const referenceTest = test.skipIf(!hasAge && process.env['CI'] === undefined);

const CHUNK = 64 * 1024;
const SIZES = [0, 1, 2, 15, 16, 17, CHUNK - 17, CHUNK - 16, CHUNK - 1, CHUNK, CHUNK + 1, CHUNK + 16, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1, 3 * CHUNK, 1024 * 1024, 1024 * 1024 + 12345];

interface KeyPair {
  identity: string;
  recipient: string;
  file: string;
}

/** A key pair from the reference age-keygen when there is one, else from age-encryption; saved as an identity file. */
async function keyPair(dir: string, name: string): Promise<KeyPair> {
  const file = path.join(dir, `${name}.key`);
  if (hasAge) {
    execFileSync('/usr/bin/age-keygen', ['-o', file], { stdio: 'pipe' });
    const identity = fs.readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    return { identity, recipient: (await identityToRecipient(identity)) as string, file };
  }
  const identity = await generateX25519Identity();
  fs.writeFileSync(file, `${identity}\n`, { mode: 0o600 });
  return { identity, recipient: await identityToRecipient(identity), file };
}

/** Feeds `data` in uneven pieces, so chunk boundaries never line up with the input's. */
function unevenly(data: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = [1, 7, 4096, 65535, 70000, 333][i % 6]!;
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces, { objectMode: false });
}

async function sealBytes(data: Buffer, recipients: readonly string[]): Promise<{ sealed: Buffer; predicted: number }> {
  const sealer = await createSealer({ recipients });
  const predicted = sealer.encryptedSize(data.length);
  return { sealed: await collect(sealer.seal(unevenly(data))), predicted };
}

async function fixtureBackup(tmpDir: string, options: { recipients?: readonly string[] } = {}): Promise<{ data: string; file: string; size: number | null }> {
  const data = path.join(tmpDir, 'data');
  await generateFixtures(data);
  const file = path.join(tmpDir, options.recipients === undefined ? 'backup.zip' : 'backup.zip.age');
  // all-blocking pins the fixture's rollback database too, so the length is known in advance.
  const backup = await createBackup({ dataDir: data, pin: 'all-blocking', ...(options.recipients === undefined ? {} : { encrypt: { recipients: options.recipients } }) });
  await pipeline(backup.stream, fs.createWriteStream(file));
  await backup.manifest;
  return { data, file, size: backup.size };
}

/** Every database's content and every other file's bytes, for "unchanged" checks. */
function stateOf(dir: string): string {
  return fingerprintTree(dir, { ignoreReaderSidecars: true });
}

describe('age framing', () => {
  test('the predicted encrypted length equals the bytes produced, for sizes around every chunk boundary', async ({ tmpDir }) => {
    const { recipient, identity } = await keyPair(tmpDir, 'k');
    for (const size of SIZES) {
      const data = randomBytes(size);
      const { sealed, predicted } = await sealBytes(data, [recipient]);
      expect(sealed.length, `size ${size}`).toBe(predicted);
      const decrypter = new Decrypter();
      decrypter.addIdentity(identity);
      expect(Buffer.from(await decrypter.decrypt(sealed)).equals(data), `size ${size} decrypts with age-encryption`).toBe(true);
    }
  });

  test('the payload length maps back to the plaintext length, and impossible lengths are refused', () => {
    for (const size of SIZES) expect(plainSizeOfPayload(payloadSize(size)), `size ${size}`).toBe(size);
    expect(plainSizeOfPayload(16 + 15)).toBeNull(); // shorter than one tag
    expect(plainSizeOfPayload(16 + CHUNK + 16 + 16)).toBeNull(); // an empty chunk after a full one
    expect(plainSizeOfPayload(16 + CHUNK + 16 + 5)).toBeNull(); // a torn tag
  });

  referenceTest('files we seal decrypt with the reference age -d, for sizes around every chunk boundary', async ({ tmpDir }) => {
    const { recipient, file: keyFile } = await keyPair(tmpDir, 'k');
    for (const size of [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK, 1024 * 1024 + 7]) {
      const data = randomBytes(size);
      const { sealed } = await sealBytes(data, [recipient]);
      const plain = execFileSync(AGE, ['-d', '-i', keyFile], { input: sealed, maxBuffer: 64 * 1024 * 1024 });
      expect(plain.equals(data), `size ${size}`).toBe(true);
    }
  });
});

describe('encrypted backups', () => {
  referenceTest('an encrypted backup has exactly the announced size and decrypts with age -d into a zip that verifies', async ({ tmpDir }) => {
    const { recipient, file: keyFile } = await keyPair(tmpDir, 'owner');
    const { file, size } = await fixtureBackup(tmpDir, { recipients: [recipient] });
    const bytes = fs.readFileSync(file);
    expect(size).toBe(bytes.length);
    expect(bytes.subarray(0, 22).toString('latin1')).toBe('age-encryption.org/v1\n');
    // No file name, manifest or SQLite header in the clear.
    for (const needle of ['manifest.json', 'app.db', 'SQLite format 3', 'PK\x03\x04']) expect(bytes.includes(needle), needle).toBe(false);
    const plainZip = path.join(tmpDir, 'plain.zip');
    execFileSync(AGE, ['-d', '-i', keyFile, '-o', plainZip, file]);
    expect((await verifyArchive(plainZip)).ok).toBe(true);
  });

  test('dbzip verify decrypts on the fly with the identity and checks everything inside', async ({ tmpDir }) => {
    const { recipient, identity } = await keyPair(tmpDir, 'owner');
    const { file } = await fixtureBackup(tmpDir, { recipients: [recipient] });
    const report = await verifyArchive(file, { decrypt: { identities: [identity] } });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.encrypted).toBe(true);
    expect(report.databases.map((d) => d.integrity).every((i) => i === 'ok')).toBe(true);
    expect(report.databases.length).toBeGreaterThan(0);
  });

  referenceTest('a backup encrypted to several recipients opens with each identity, with age -d and with dbzip', async ({ tmpDir }) => {
    const a = await keyPair(tmpDir, 'a');
    const b = await keyPair(tmpDir, 'b');
    const c = await keyPair(tmpDir, 'c');
    const { file } = await fixtureBackup(tmpDir, { recipients: [a.recipient, b.recipient] });
    for (const who of [a, b]) {
      execFileSync(AGE, ['-d', '-i', who.file, '-o', path.join(tmpDir, `${path.basename(who.file)}.zip`), file]);
      expect((await verifyArchive(file, { decrypt: { identities: [who.identity] } })).ok).toBe(true);
    }
    expect(() => execFileSync(AGE, ['-d', '-i', c.file, '-o', path.join(tmpDir, 'c.zip'), file], { stdio: 'pipe' })).toThrow();
    await expect(verifyArchive(file, { decrypt: { identities: [c.identity] } })).rejects.toMatchObject({ name: 'DecryptionError', reason: 'WRONG_KEY' });
  });

  referenceTest('a plain backup encrypted with age -e -r restores with dbzip and the identity', async ({ tmpDir }) => {
    const { recipient, identity } = await keyPair(tmpDir, 'owner');
    const { data, file } = await fixtureBackup(tmpDir);
    const sealed = `${file}.age`;
    execFileSync(AGE, ['-e', '-r', recipient, '-o', sealed, file]);
    const before = logicalHashOfFile(path.join(data, 'settings.db'));
    const target = path.join(tmpDir, 'restored');
    fs.mkdirSync(target);
    const report = await restore({ archive: sealed, dataDir: target, decrypt: { identities: [identity] } });
    expect(report.applied).toBe(true);
    expect(report.verify.encrypted).toBe(true);
    expect(logicalHashOfFile(path.join(target, 'settings.db'))).toBe(before);
  });

  referenceTest('an ASCII-armored file (age -a) is refused as NOT_AGE, by name, instead of "not a zip"', async ({ tmpDir }) => {
    const { recipient, identity } = await keyPair(tmpDir, 'owner');
    const { file } = await fixtureBackup(tmpDir);
    const armored = path.join(tmpDir, 'armored.zip.age');
    execFileSync(AGE, ['-a', '-e', '-r', recipient, '-o', armored, file]);
    await expect(verifyArchive(armored, { decrypt: { identities: [identity] } })).rejects.toMatchObject({ reason: 'NOT_AGE', message: expect.stringMatching(/ASCII-armored/) });
    await expect(verifyArchive(armored)).rejects.toMatchObject({ reason: 'NOT_AGE' });
  });

  test('a passphrase-encrypted backup opens with the passphrase only', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const file = path.join(tmpDir, 'p.zip.age');
    const backup = await createBackup({ dataDir: data, pin: 'all-blocking', encrypt: { passphrase: 'correct horse battery staple' } });
    await pipeline(backup.stream, fs.createWriteStream(file));
    expect(fs.statSync(file).size).toBe(backup.size);
    expect((await verifyArchive(file, { decrypt: { passphrase: 'correct horse battery staple' } })).ok).toBe(true);
    await expect(verifyArchive(file, { decrypt: { passphrase: 'wrong horse' } })).rejects.toMatchObject({ reason: 'WRONG_KEY' });
  }, 60_000);
});

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Another base64 character for `byte`: the header stays parseable while its meaning changes. */
const nextBase64 = (byte: number): number => BASE64.charCodeAt((BASE64.indexOf(String.fromCharCode(byte)) + 1) % 64);

describe('refusing encrypted archives that cannot be trusted', () => {
  async function setup(tmpDir: string) {
    const owner = await keyPair(tmpDir, 'owner');
    const other = await keyPair(tmpDir, 'other');
    // The backup comes from one data dir and is restored into another, which must stay untouched.
    const { file } = await fixtureBackup(tmpDir, { recipients: [owner.recipient] });
    const target = path.join(tmpDir, 'target');
    await generateFixtures(target);
    fs.writeFileSync(path.join(target, 'assets', 'logo.svg'), '<svg>mine</svg>');
    return { owner, other, file, target, before: stateOf(target) };
  }

  async function expectRefused(archive: string, target: string, before: string, identity: string, reason: string, message: RegExp): Promise<void> {
    for (const dryRun of [true, false]) {
      const error = await restore({ archive, dataDir: target, dryRun, decrypt: { identities: [identity] } }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, `dryRun ${dryRun}`).toBeInstanceOf(DecryptionError);
      expect((error as DecryptionError).reason).toBe(reason);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain(identity);
      expect(stateOf(target)).toBe(before);
    }
  }

  test('a wrong identity is refused with DecryptionError WRONG_KEY and the data dir stays byte-identical', async ({ tmpDir }) => {
    const { other, file, target, before } = await setup(tmpDir);
    await expectRefused(file, target, before, other.identity, 'WRONG_KEY', /none of the given identities/);
  });

  test('an encrypted archive without an identity is refused with NO_KEY, not "not a zip"', async ({ tmpDir }) => {
    const { file, target, before } = await setup(tmpDir);
    await expect(restore({ archive: file, dataDir: target })).rejects.toMatchObject({ name: 'DecryptionError', reason: 'NO_KEY' });
    await expect(verifyArchive(file)).rejects.toMatchObject({ reason: 'NO_KEY' });
    expect(stateOf(target)).toBe(before);
  });

  test('one flipped bit in the header MAC, the nonce or any chunk is refused as DAMAGED before anything changes', async ({ tmpDir }) => {
    const { owner, file, target, before } = await setup(tmpDir);
    const bytes = fs.readFileSync(file);
    const macLine = bytes.indexOf('\n--- ') + 1;
    const payload = bytes.indexOf('\n', macLine) + 1;
    const spots = { mac: macLine + 10, nonce: payload + 3, first: payload + 16 + 100, middle: Math.floor(bytes.length / 2), last: bytes.length - 1 };
    for (const [where, at] of Object.entries(spots)) {
      const tampered = Buffer.from(bytes);
      // In the text header a flipped bit may make a character that is not base64 (a parse error, not a
      // failed MAC): there, change it to the next base64 character instead, which stays well-formed.
      tampered[at] = at < payload ? nextBase64(tampered[at]!) : tampered[at]! ^ 0x01;
      const out = path.join(tmpDir, `tampered-${where}.zip.age`);
      fs.writeFileSync(out, tampered);
      await expectRefused(out, target, before, owner.identity, 'DAMAGED', /tampered|damaged|authenticate/);
    }
    // An altered recipient stanza no longer opens with the owner's key: indistinguishable from another recipient's.
    const stanza = Buffer.from(bytes);
    stanza[macLine - 10] = nextBase64(stanza[macLine - 10]!);
    fs.writeFileSync(path.join(tmpDir, 'tampered-stanza.zip.age'), stanza);
    await expectRefused(path.join(tmpDir, 'tampered-stanza.zip.age'), target, before, owner.identity, 'WRONG_KEY', /cannot decrypt|can decrypt/);
  });

  test('a file cut short, at a chunk boundary or inside a chunk or the header, is refused as DAMAGED (truncated)', async ({ tmpDir }) => {
    const { owner, file, target, before } = await setup(tmpDir);
    const bytes = fs.readFileSync(file);
    const payloadStart = bytes.indexOf('\n', bytes.indexOf('\n---') + 1) + 1 + 16;
    expect(bytes.length - payloadStart).toBeGreaterThan(2 * (CHUNK + 16));
    const cuts = { boundary: payloadStart + CHUNK + 16, inside: payloadStart + CHUNK + 16 + 1000, tag: bytes.length - 5, header: 40 };
    for (const [where, at] of Object.entries(cuts)) {
      const out = path.join(tmpDir, `cut-${where}.zip.age`);
      fs.writeFileSync(out, bytes.subarray(0, at));
      await expectRefused(out, target, before, owner.identity, 'DAMAGED', /truncated/);
    }
  });
});

describe('encryption options', () => {
  test('a recipient that is not an X25519 age key is refused before any snapshot, without echoing it', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const secret = (await generateX25519Identity()) as string;
    for (const recipients of [[secret], ['ssh-ed25519 AAAA'], [], ['age1' + 'q'.repeat(58)]]) {
      const error = await createBackup({ dataDir: data, encrypt: { recipients } }).then(() => null, (e: unknown) => e);
      expect(error, JSON.stringify(recipients).slice(0, 20)).toBeInstanceOf(OptionsError);
      expect((error as Error).message).not.toContain(secret);
    }
    await expect(createBackup({ dataDir: data, encrypt: { recipients: ['x'], passphrase: 'y' } as never })).rejects.toBeInstanceOf(OptionsError);
    await expect(verifyArchive(path.join(tmpDir, 'none.zip'), { decrypt: { identities: [secret.toLowerCase()] } })).rejects.toBeInstanceOf(OptionsError);
  });
});
