import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { EXIT_CODES } from '../src/cli/exit-codes.js';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/run-cli.js';
import { formatBytes } from '../src/format.js';
import { verifyArchive } from '../src/verify/index.js';
import { fingerprintTree, logicalHashOfFile } from './helpers/restore.js';
import { test } from './helpers/tmp.js';

/** The built CLI, run as users run it (`npm test` builds first). */
const BIN = path.resolve('dist/cli/bin.js');
const AGE = '/usr/bin/age';
const hasAge = fs.existsSync(AGE);
const referenceTest = test.skipIf(!hasAge && process.env['CI'] === undefined);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function dbzip(args: string[], cwd: string): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** In this process with a fake terminal on stdin and stderr; `typed` answers each passphrase prompt in turn. */
async function cliOnTerminal(args: string[], cwd: string, typed: string[] = []): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const answers = [...typed];
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin });
  const io: CliIo = {
    stdout: { write: (c) => ((stdout += String(c)), true), once: () => undefined, on: () => undefined, off: () => undefined },
    stderr: {
      isTTY: true,
      columns: 120,
      write: (c) => {
        stderr += String(c);
        // Typed one key at a time once the prompt shows, as a person would; raw mode sends \r for Enter.
        if (String(c).startsWith('Passphrase') && answers.length > 0) {
          const answer = answers.shift()!;
          setImmediate(() => {
            for (const ch of `${answer}\r`) stdin.write(ch);
          });
        }
        return true;
      },
      once: () => undefined,
      on: () => undefined,
      off: () => undefined,
    },
    stdin,
    env: {},
    cwd,
    signal: new AbortController().signal,
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

async function keyFile(dir: string, name: string): Promise<{ file: string; identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  const file = path.join(dir, name);
  fs.writeFileSync(file, `# created: test\n# public key: ${await identityToRecipient(identity)}\n${identity}\n`, { mode: 0o600 });
  return { file, identity, recipient: await identityToRecipient(identity) };
}

describe('dbzip backup --encrypt-to, verify and restore --identity', () => {
  referenceTest('an encrypted backup from the CLI decrypts with age -d, verifies and restores with --identity', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const owner = await keyFile(tmpDir, 'owner.key');
    const spare = await keyFile(tmpDir, 'spare.key');
    fs.writeFileSync(path.join(tmpDir, 'recipients.txt'), `# the spare key, kept offline\n${spare.recipient}\n`);
    const backup = await dbzip(['backup', data, '--encrypt-to', owner.recipient, '--encrypt-to', 'recipients.txt', '-q'], tmpDir);
    expect(backup).toMatchObject({ code: 0 });
    const written = fs.readdirSync(tmpDir).filter((f) => f.startsWith('dbzip-backup-'));
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/^dbzip-backup-\d{8}-\d{6}\.zip\.age$/);
    const file = path.join(tmpDir, written[0]!);

    for (const key of [owner, spare]) {
      execFileSync(AGE, ['-d', '-i', key.file, '-o', path.join(tmpDir, 'plain.zip'), file]);
      expect((await verifyArchive(path.join(tmpDir, 'plain.zip'))).ok).toBe(true);
      fs.rmSync(path.join(tmpDir, 'plain.zip'));
    }

    const verify = await dbzip(['verify', file, '--identity', 'owner.key'], tmpDir);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/: ok \(age-encrypted/);

    const noKey = await dbzip(['verify', file], tmpDir);
    expect(noKey.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    expect(noKey.stderr).toContain('--identity');

    const stranger = await keyFile(tmpDir, 'stranger.key');
    const wrong = await dbzip(['verify', file, '--identity', stranger.file], tmpDir);
    expect(wrong.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    expect(wrong.stderr).toMatch(/none of the given identities/);
    expect(wrong.stderr).not.toContain(stranger.identity);

    const target = path.join(tmpDir, 'target');
    fs.mkdirSync(target);
    const restored = await dbzip(['restore', file, '--identity', 'spare.key', '--data-dir', target, '--yes'], tmpDir);
    expect(restored.code, restored.stderr).toBe(0);
    expect(logicalHashOfFile(path.join(target, 'app.db'))).toBe(logicalHashOfFile(path.join(data, 'app.db')));
  });

  test('a wrong identity leaves the data dir byte-identical and exits with DECRYPTION_FAILED', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const owner = await keyFile(tmpDir, 'owner.key');
    const other = await keyFile(tmpDir, 'other.key');
    expect((await dbzip(['backup', data, '--encrypt-to', owner.recipient, '-o', 'b.zip.age', '-q'], tmpDir)).code).toBe(0);
    fs.writeFileSync(path.join(data, 'assets', 'logo.svg'), '<svg>changed after the backup</svg>');
    const before = fingerprintTree(data, { ignoreReaderSidecars: true });
    const run = await dbzip(['restore', 'b.zip.age', '--identity', other.file, '--data-dir', data, '--yes'], tmpDir);
    expect(run.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    expect(fingerprintTree(data, { ignoreReaderSidecars: true })).toBe(before);
  });

  test('keys in the wrong place are refused without echoing them: a secret key as a recipient, a public key as an identity', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const owner = await keyFile(tmpDir, 'owner.key');
    const asRecipient = await dbzip(['backup', data, '--encrypt-to', 'owner.key', '-o', 'x.zip.age'], tmpDir);
    expect(asRecipient.code).toBe(EXIT_CODES.INVALID_OPTION);
    expect(asRecipient.stderr).toMatch(/secret key/);
    expect(asRecipient.stderr).not.toContain(owner.identity);
    expect(fs.existsSync(path.join(tmpDir, 'x.zip.age'))).toBe(false);
    fs.writeFileSync(path.join(tmpDir, 'pub.txt'), `${owner.recipient}\n`);
    const asIdentity = await dbzip(['verify', 'whatever.zip.age', '--identity', 'pub.txt'], tmpDir);
    expect(asIdentity.code).toBe(EXIT_CODES.INVALID_OPTION);
    expect(asIdentity.stderr).toMatch(/public key/);
  });

  test('the progress bar on a terminal counts to 100 % of the encrypted length', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const owner = await keyFile(tmpDir, 'owner.key');
    const run = await cliOnTerminal(['backup', data, '--pin', 'all-blocking', '--encrypt-to', owner.recipient, '-o', 'p.zip.age'], tmpDir);
    expect(run.code, run.stderr).toBe(0);
    const bytes = fs.statSync(path.join(tmpDir, 'p.zip.age')).size;
    expect(run.stderr).toContain('100%');
    // The exact total (no "~" estimate), counted to the end.
    expect(run.stderr).toContain(`${formatBytes(bytes)} of ${formatBytes(bytes)}`);
    expect(run.stderr).not.toContain('(estimate)');
    expect(run.stderr).toMatch(/age-encrypted\)/);
  });
});

describe('passphrase mode (CLI only, from a prompt or a file)', () => {
  test('a passphrase typed at the prompt (twice) encrypts, and the same passphrase from a file verifies', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const phrase = 'tram purple velvet canyon';
    const run = await cliOnTerminal(['backup', data, '--passphrase', '-o', 'p.zip.age', '-q'], tmpDir, [phrase, phrase]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toContain(phrase); // not echoed
    fs.writeFileSync(path.join(tmpDir, 'phrase.txt'), `${phrase}\n`, { mode: 0o600 });
    const verify = await dbzip(['verify', 'p.zip.age', '--passphrase-file', 'phrase.txt'], tmpDir);
    expect(verify.code, verify.stderr).toBe(0);
    fs.writeFileSync(path.join(tmpDir, 'wrong.txt'), 'not it\n');
    const wrong = await dbzip(['verify', 'p.zip.age', '--passphrase-file', 'wrong.txt'], tmpDir);
    expect(wrong.code).toBe(EXIT_CODES.DECRYPTION_FAILED);
    expect(wrong.stderr).toMatch(/wrong passphrase/);
    expect(wrong.stderr).not.toContain('not it');
  }, 120_000);

  test('two different passphrases at the prompt, or a prompt without a terminal, are refused before any work', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const differ = await cliOnTerminal(['backup', data, '--passphrase', '-o', 'd.zip.age'], tmpDir, ['one thing', 'another']);
    expect(differ.code).toBe(EXIT_CODES.INVALID_OPTION);
    expect(differ.stderr).toMatch(/differ/);
    const piped = await dbzip(['backup', data, '--passphrase', '-o', 'n.zip.age'], tmpDir);
    expect(piped.code).toBe(EXIT_CODES.INVALID_OPTION);
    expect(piped.stderr).toMatch(/needs a terminal/);
    expect(fs.readdirSync(tmpDir).filter((f) => f.endsWith('.age'))).toEqual([]);
  });
});
