/** Encrypted downloads, encrypted uploads to POST /api/restore, and `dbzip serve --encrypt-to / --identity`, over real HTTP on loopback. */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Decrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/run-cli.js';
import { startServer, type RunningServer, type ServerOptions } from '../src/http/index.js';
import { captureLogger, newKey, rawGet, readAll, unzip } from './http-helpers.js';
import { fingerprintTree, logicalHashOfFile } from './helpers/restore.js';
import { test, withTimeout } from './helpers/tmp.js';

interface Keys {
  identity: string;
  recipient: string;
}

/** Every file and folder with content hashes, but dbzip's own `.dbzip/` (the upload spool lives there). */
const stateOf = (dir: string): string =>
  fingerprintTree(dir, { ignoreReaderSidecars: true })
    .split('\n')
    .filter((line) => !/^[DFL] \.dbzip(\/|\s|$)/.test(line))
    .join('\n');

async function keys(): Promise<Keys> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

async function decrypt(bytes: Buffer, identity: string): Promise<Buffer> {
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  return Buffer.from(await decrypter.decrypt(bytes));
}

async function withServer<T>(options: ServerOptions, use: (server: RunningServer) => Promise<T>): Promise<T> {
  const server = await startServer({ port: 0, ...options });
  try {
    return await use(server);
  } finally {
    await server.close();
  }
}

async function download(url: string, key: string): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const response = await rawGet(`${url}/api/backup`, { 'X-API-Key': key });
  expect(response.status).toBe(200);
  return { headers: response.headers, body: await withTimeout(readAll(response.res), 30_000, 'download') };
}

async function upload(url: string, key: string, body: Buffer, query = ''): Promise<{ status: number; json: { error?: { code: string; message: string }; applied?: boolean } }> {
  const response = await fetch(`${url}/api/restore${query}`, { method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/octet-stream' }, body });
  return { status: response.status, json: (await response.json()) as never };
}

describe('GET /api/backup on a server that encrypts', () => {
  test('the download is an age file with an exact Content-Length, a .zip.age name, and a zip inside that only the identity opens', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const owner = await keys();
    const apiKey = newKey();
    const log = captureLogger();
    await withServer({ dataDir: tmpDir, pin: 'all-blocking', auth: { apiKey }, encrypt: { recipients: [owner.recipient] }, logger: log.logger }, async (server) => {
      const { headers, body } = await download(server.url, apiKey);
      expect(headers['content-type']).toBe('application/octet-stream');
      expect(headers['content-disposition']).toMatch(/filename="dbzip-backup-\d{8}-\d{6}\.zip\.age"/);
      expect(headers['x-dbzip-encryption']).toBe('age');
      expect(Number(headers['content-length'])).toBe(body.length);
      expect(body.subarray(0, 22).toString('latin1')).toBe('age-encryption.org/v1\n');
      const files = await unzip(await decrypt(body, owner.identity));
      expect([...files.keys()]).toContain('manifest.json');
      const stranger = await keys();
      await expect(decrypt(body, stranger.identity)).rejects.toThrow();
    });
    expect(log.text()).not.toContain(owner.identity);
  });

  test('the admin page says downloads are encrypted, and says nothing of it when they are not', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const owner = await keys();
    const apiKey = newKey();
    const page = async (options: Partial<ServerOptions>) =>
      withServer({ dataDir: tmpDir, auth: { apiKey }, logger: captureLogger().logger, ...options }, async (server) => {
        const signin = await fetch(`${server.url}/signin`, { method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: server.url }, body: `key=${apiKey}` });
        const cookie = signin.headers.get('set-cookie')?.split(';')[0] ?? '';
        return (await fetch(`${server.url}/`, { headers: { Cookie: cookie } })).text();
      });
    const encrypted = await page({ encrypt: { recipients: [owner.recipient, (await keys()).recipient] } });
    expect(encrypted).toContain('id="download-encrypted"');
    expect(encrypted).toMatch(/encrypts every download with age to 2 recipients/);
    expect(encrypted).not.toContain(owner.recipient);
    const plain = await page({});
    expect(plain).toContain('Download backup');
    expect(plain).not.toContain('download-encrypted');
  });

  test('a passphrase is refused as server configuration, for encrypting and for decrypting', async ({ tmpDir }) => {
    await expect(startServer({ dataDir: tmpDir, auth: { apiKey: newKey() }, encrypt: { passphrase: 'long enough phrase' } })).rejects.toThrow(/not to a passphrase/);
    await expect(startServer({ dataDir: tmpDir, auth: { apiKey: newKey() }, decrypt: { passphrase: 'x' } as never })).rejects.toThrow(/not a passphrase/);
  });
});

describe('POST /api/restore with an encrypted archive', () => {
  async function setup(tmpDir: string) {
    const source = path.join(tmpDir, 'source');
    await generateFixtures(source);
    const owner = await keys();
    const apiKey = newKey();
    const sealed = await withServer({ dataDir: source, auth: { apiKey }, encrypt: { recipients: [owner.recipient] }, logger: captureLogger().logger }, async (server) => (await download(server.url, apiKey)).body);
    const target = path.join(tmpDir, 'target');
    await generateFixtures(target);
    fs.writeFileSync(path.join(target, 'assets', 'logo.svg'), '<svg>changed since</svg>');
    return { source, target, owner, apiKey, sealed };
  }

  test('restores with the identity the server was configured with; the identity never reaches the log', async ({ tmpDir }) => {
    const { source, target, owner, apiKey, sealed } = await setup(tmpDir);
    const log = captureLogger();
    await withServer({ dataDir: target, auth: { apiKey }, decrypt: { identities: [owner.identity] }, logger: log.logger }, async (server) => {
      const { status, json } = await upload(server.url, apiKey, sealed);
      expect(status, JSON.stringify(json)).toBe(200);
      expect(json.applied).toBe(true);
    });
    expect(fs.readFileSync(path.join(target, 'assets', 'logo.svg')).equals(fs.readFileSync(path.join(source, 'assets', 'logo.svg')))).toBe(true);
    expect(logicalHashOfFile(path.join(target, 'app.db'))).toBe(logicalHashOfFile(path.join(source, 'app.db')));
    expect(log.text()).not.toContain(owner.identity);
  });

  test('no configured identity, a wrong one, or a tampered upload: 422 DECRYPTION_FAILED and the data dir byte-identical', async ({ tmpDir }) => {
    const { target, apiKey, sealed, owner } = await setup(tmpDir);
    const before = stateOf(target);
    const stranger = await keys();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 100] = tampered[tampered.length - 100]! ^ 0x80;
    const cases: [string, Partial<ServerOptions>, Buffer, RegExp][] = [
      ['no identity', {}, sealed, /--identity|identity file/],
      ['wrong identity', { decrypt: { identities: [stranger.identity] } }, sealed, /none of the given identities/],
      ['tampered', { decrypt: { identities: [owner.identity] } }, tampered, /does not authenticate/],
    ];
    for (const [what, extra, body, message] of cases) {
      await withServer({ dataDir: target, auth: { apiKey }, logger: captureLogger().logger, ...extra }, async (server) => {
        const { status, json } = await upload(server.url, apiKey, body);
        expect(status, what).toBe(422);
        expect(json.error?.code, what).toBe('DECRYPTION_FAILED');
        expect(json.error?.message, what).toMatch(message);
      });
      expect(stateOf(target), what).toBe(before);
      // The spooled upload is gone too.
      expect(fs.readdirSync(path.join(target, '.dbzip')).filter((f) => f.startsWith('upload-')), what).toEqual([]);
    }
  });
});

describe('dbzip serve --encrypt-to and DBZIP_IDENTITY_FILE', () => {
  test('flags and environment configure encryption of downloads and decryption of uploads', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    const owner = await keys();
    fs.writeFileSync(path.join(tmpDir, 'recipients.txt'), `# backup owner\n${owner.recipient}\n`);
    fs.writeFileSync(path.join(tmpDir, 'key.txt'), `${owner.identity}\n`, { mode: 0o600 });
    const apiKey = newKey();
    let stdout = '';
    const controller = new AbortController();
    const io: CliIo = {
      stdout: { write: (c) => ((stdout += String(c)), true), once: () => undefined, on: () => undefined, off: () => undefined },
      stderr: { write: () => true, once: () => undefined, on: () => undefined, off: () => undefined },
      stdin: new PassThrough(),
      env: { DBZIP_API_KEY: apiKey, DBZIP_IDENTITY_FILE: 'key.txt' },
      cwd: tmpDir,
      signal: controller.signal,
    };
    const exit = runCli(['serve', '--data-dir', 'data', '--port', '0', '--pin', 'all-blocking', '--encrypt-to', 'recipients.txt', '--log', 'stderr'], io);
    try {
      const url = await withTimeout(
        (async () => {
          for (;;) {
            const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
            if (match?.[1] !== undefined && stdout.includes('recipient')) return match[1];
            await new Promise((r) => setTimeout(r, 20));
          }
        })(),
        15_000,
        'server address',
      );
      expect(stdout).toContain('encrypted with age to 1 recipient(s)');
      const { headers, body } = await download(url, apiKey);
      expect(Number(headers['content-length'])).toBe(body.length);
      expect((await unzip(await decrypt(body, owner.identity))).has('manifest.json')).toBe(true);
      const { status, json } = await upload(url, apiKey, body, '?dryRun=1');
      expect(status, JSON.stringify(json)).toBe(200);
    } finally {
      controller.abort();
      expect(await exit).toBe(0);
    }
  });
});
