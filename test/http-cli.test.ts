/** `dbzip serve`: flags and environment variables, key handling, --demo, and stopping on a signal. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { SERVE_SETTINGS } from '../src/cli/commands/serve.js';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/run-cli.js';
import { createApp } from '../src/http/app.js';
import { makeBigDatabase } from './helpers/backup.js';
import { newKey, rawGet, readAll, refusesConnections, unzip, waitFor } from './http-helpers.js';
import { test, withTimeout } from './helpers/tmp.js';

interface Session {
  /** Settles with the exit code once runCli returns. */
  exit: Promise<number>;
  stdout: () => string;
  stderr: () => string;
  stop: () => void;
}

function output() {
  let text = '';
  return {
    out: { write: (chunk: string | Uint8Array) => ((text += chunk.toString()), true), once: () => undefined, on: () => undefined, off: () => undefined },
    text: () => text,
  };
}

/** Runs `dbzip <args>` in this process with its own environment, as bin.ts would. */
function serve(args: string[], env: Record<string, string>, cwd: string): Session {
  const stdout = output();
  const stderr = output();
  const controller = new AbortController();
  const io: CliIo = { stdout: stdout.out, stderr: stderr.out, stdin: new PassThrough(), env, cwd, signal: controller.signal };
  return { exit: runCli(args, io), stdout: stdout.text, stderr: stderr.text, stop: () => controller.abort(new Error('received SIGTERM')) };
}

/** Waits for the server's address on stdout (or the command to end first, which is returned). */
async function urlOf(session: Session): Promise<string> {
  const found = async () => {
    for (;;) {
      const match = /(http:\/\/127\.0\.0\.1:\d+)/.exec(session.stdout());
      if (match?.[1] !== undefined) return match[1];
      const done = await Promise.race([session.exit.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]);
      if (done) throw new Error(`serve ended early: ${session.stderr()}`);
    }
  };
  return withTimeout(found(), 15_000, 'server address on stdout');
}

describe('dbzip serve', () => {
  test('--demo prints a fresh key once with ready-to-paste curl lines; the key works and never reaches the logs', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const session = serve(['serve', '--demo', '--data-dir', '.', '--port', '0'], {}, tmpDir);
    const url = await urlOf(session);
    const key = /API key \(shown once[^)]*\): (\S+)/.exec(session.stdout())?.[1];
    expect(key).toMatch(/^[0-9a-f]{40}$/);
    expect(session.stdout()).toContain(`curl -fSOJ -H "X-API-Key: ${key}" ${url}/api/backup`);
    const res = await fetch(`${url}/api/backup`, { headers: { 'X-API-Key': key! } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect((await fetch(`${url}/api/databases`)).status).toBe(401);
    session.stop();
    expect(await withTimeout(session.exit, 10_000, 'serve to stop')).toBe(0);
    expect(session.stderr()).not.toContain(key);
  });

  test('--demo prints its banner last: no log line follows it while requests are served, unless --log asks for them', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    // One stream for both, as a terminal shows them.
    const session = serve(['serve', '--demo', '--data-dir', '.', '--port', '0'], {}, tmpDir);
    const url = await urlOf(session);
    const key = /API key \(shown once[^)]*\): (\S+)/.exec(session.stdout())?.[1];
    for (const route of ['/', '/api/databases', '/api/backup', '/api/openapi.json']) await (await fetch(`${url}${route}`, { headers: { 'X-API-Key': key! } })).arrayBuffer();
    expect(session.stderr()).toBe('');
    expect(session.stdout().trimEnd()).toMatch(/Press Ctrl-C to stop\.$/);
    // The banner names every route with the key where one is needed, the restore route included.
    expect(session.stdout()).toContain(`curl -fsS -H "X-API-Key: ${key}" -H 'Content-Type: application/zip' --data-binary @backup.zip '${url}/api/restore?dryRun=1'`);
    expect(session.stdout()).toContain(`curl -fsS -H "X-API-Key: ${key}" ${url}/api/openapi.json`);
    expect((await fetch(`${url}/api/openapi.json`)).status).toBe(401);
    session.stop();
    expect(await withTimeout(session.exit, 10_000, 'serve to stop')).toBe(0);

    const logged = serve(['serve', '--demo', '--data-dir', '.', '--port', '0', '--log', 'stderr'], {}, tmpDir);
    const url2 = await urlOf(logged);
    await (await fetch(`${url2}/api/health`)).arrayBuffer();
    logged.stop();
    expect(await withTimeout(logged.exit, 10_000, 'serve to stop')).toBe(0);
    expect(logged.stderr()).toContain('"msg":"request"');
  });

  test('serve --help lists exactly the routes of the OpenAPI document, with the key wherever the document requires one', async ({ tmpDir }) => {
    const help = output();
    const io: CliIo = { stdout: help.out, stderr: output().out, stdin: new PassThrough(), env: {}, cwd: tmpDir, signal: new AbortController().signal };
    expect(await runCli(['serve', '--help'], io)).toBe(0);
    const listed = [...help.text().matchAll(/^ {2}(GET|POST|PUT|DELETE|PATCH) +(\/\S*) +(key|no key) /gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key } });
    const doc = (await (await app.request('/api/openapi.json', { headers: { 'X-API-Key': key } })).json()) as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
      security?: unknown[];
    };
    const documented: string[] = [];
    for (const [route, methods] of Object.entries(doc.paths)) {
      // The page's own form posts are not routes an operator calls.
      if (route === '/signin' || route === '/signout') continue;
      for (const [method, op] of Object.entries(methods)) documented.push(`${method.toUpperCase()} ${route.replace(/\{(\w+)\}/g, ':$1')} ${(op.security ?? doc.security ?? []).length > 0 ? 'key' : 'no key'}`);
    }
    expect(listed.sort()).toEqual(documented.sort());
    expect(listed).toContain('POST /api/restore key');
    expect(listed).toContain('GET /api/openapi.json key');
  });

  test('takes every setting from the environment: key file, port, prefix, concurrency, log stream', async ({ tmpDir }) => {
    await generateFixtures(path.join(tmpDir, 'data'));
    const key = newKey();
    fs.writeFileSync(path.join(tmpDir, 'key'), `${key}\n`, { mode: 0o600 });
    const session = serve(
      ['serve'],
      { DBZIP_DATA_DIR: 'data', DBZIP_API_KEY_FILE: 'key', DBZIP_PORT: '0', DBZIP_FILE_PREFIX: 'shop', DBZIP_MAX_CONCURRENT: '1', DBZIP_LOG: 'stdout', DBZIP_LEVEL: '6' },
      tmpDir,
    );
    const url = await urlOf(session);
    const res = await fetch(`${url}/api/backup`, { headers: { Authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/filename="shop-backup-/);
    expect(res.headers.get('x-dbzip-length')).toBe('unknown');
    const manifest = JSON.parse((await unzip(Buffer.from(await res.arrayBuffer()))).get('manifest.json')!.toString()) as { level: number };
    expect(manifest.level).toBe(6);
    session.stop();
    expect(await withTimeout(session.exit, 10_000, 'serve to stop')).toBe(0);
    expect(session.stdout()).toContain('"maxConcurrent":1');
    expect(session.stdout()).not.toContain(key);
  });

  test('a flag wins over its environment variable', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const session = serve(['serve', '--data-dir', '.', '--file-prefix', 'flag'], { DBZIP_API_KEY: key, DBZIP_PORT: '0', DBZIP_FILE_PREFIX: 'env' }, tmpDir);
    const url = await urlOf(session);
    const res = await fetch(`${url}/api/backup?db=settings.db`, { headers: { 'X-API-Key': key } });
    expect(res.headers.get('content-disposition')).toMatch(/filename="flag-backup-/);
    await res.arrayBuffer();
    session.stop();
    expect(await session.exit).toBe(0);
  });

  test('refuses to start without a key, with a weak key, with two key sources, or with --no-auth off loopback; messages name the source and never the key', async ({ tmpDir }) => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['serve', '--data-dir', '.'], {}, /no API key: set DBZIP_API_KEY or DBZIP_API_KEY_FILE.*--no-auth/],
      [['serve', '--data-dir', '.'], { DBZIP_API_KEY: 'changeme-changeme' }, /API key from DBZIP_API_KEY is too weak/],
      [['serve', '--data-dir', '.', '--api-key-file', 'missing'], {}, /--api-key-file: cannot read .*missing: ENOENT/],
      [['serve', '--data-dir', '.', '--api-key-file', 'k'], { DBZIP_API_KEY: newKey() }, /both DBZIP_API_KEY and --api-key-file/],
      [['serve', '--data-dir', '.', '--no-auth', '--host', '0.0.0.0'], {}, /--no-auth is refused on host "0\.0\.0\.0"/],
      [['serve', '--data-dir', '.'], { DBZIP_NO_AUTH: '1', DBZIP_HOST: '::' }, /DBZIP_NO_AUTH is refused on host "::"/],
      [['serve', '--data-dir', '.', '--demo', '--no-auth'], {}, /--demo generates a key/],
      [['serve'], { DBZIP_API_KEY: newKey() }, /--data-dir \(or DBZIP_DATA_DIR\) is required/],
      [['serve', '--data-dir', '.'], { DBZIP_API_KEY: newKey(), DBZIP_PORT: 'eighty' }, /DBZIP_PORT must be a whole number/],
      [['serve', '--data-dir', '.'], { DBZIP_API_KEY: newKey(), DBZIP_TRUST_PROXY: 'maybe' }, /DBZIP_TRUST_PROXY must be/],
      [['serve', '--data-dir', '.'], { DBZIP_API_KEY: newKey(), DBZIP_STRICT: 'perhaps' }, /DBZIP_STRICT must be true or false/],
      [['serve', '--data-dir', '.', '--rate-limit', '10'], { DBZIP_API_KEY: newKey() }, /--rate-limit must be <max requests>\/<seconds>/],
      [['serve', '--data-dir', 'nope'], { DBZIP_API_KEY: newKey(), DBZIP_PORT: '0' }, /data directory .*nope/],
    ];
    for (const [args, env, message] of cases) {
      const session = serve(args, env, tmpDir);
      const code = await withTimeout(session.exit, 10_000, args.join(' '));
      expect(code, `${args.join(' ')} ${JSON.stringify(env)}`).toBeGreaterThan(1);
      expect(session.stderr()).toMatch(message);
      if (env['DBZIP_API_KEY'] !== undefined) expect(session.stderr()).not.toContain(env['DBZIP_API_KEY']);
    }
  });

  test('--no-auth serves on loopback without a key', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const session = serve(['serve', '--data-dir', '.', '--no-auth', '--port', '0'], {}, tmpDir);
    const url = await urlOf(session);
    expect((await fetch(`${url}/api/databases`)).status).toBe(200);
    session.stop();
    expect(await session.exit).toBe(0);
  });

  test('--max-upload-bytes and DBZIP_MAX_UPLOAD_BYTES bound POST /api/restore (413 over it)', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    for (const [args, env] of [[['--max-upload-bytes', '100'], {}], [[], { DBZIP_MAX_UPLOAD_BYTES: '100' }]] as const) {
      const session = serve(['serve', '--data-dir', '.', '--no-auth', '--port', '0', ...args], env, tmpDir);
      const url = await urlOf(session);
      const response = await fetch(`${url}/api/restore?dryRun=1`, { method: 'POST', headers: { 'Content-Type': 'application/zip' }, body: Buffer.alloc(101) });
      expect(response.status).toBe(413);
      session.stop();
      expect(await session.exit).toBe(0);
    }
  });

  test('the environment table lists every flag of serve, each variable once', () => {
    const envs = SERVE_SETTINGS.map((s) => s.env);
    expect(new Set(envs).size).toBe(envs.length);
    expect(envs.every((e) => e.startsWith('DBZIP_'))).toBe(true);
    for (const required of ['DBZIP_DATA_DIR', 'DBZIP_API_KEY', 'DBZIP_API_KEY_FILE', 'DBZIP_HOST', 'DBZIP_PORT', 'DBZIP_MAX_CONCURRENT', 'DBZIP_TRUST_PROXY', 'DBZIP_FILE_PREFIX']) {
      expect(envs).toContain(required);
    }
  });

  test('on SIGTERM the built binary stops accepting, lets a running download finish, and exits 0', async ({ tmpDir }) => {
    makeBigDatabase(path.join(tmpDir, 'big.db'), 16, 'wal');
    const key = newKey();
    const child = spawn(process.execPath, [path.resolve('dist/cli/bin.js'), 'serve', '--data-dir', tmpDir, '--port', '0'], {
      env: { ...process.env, DBZIP_API_KEY: key },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const url = await withTimeout(
      (async () => {
        while (!/http:\/\/127\.0\.0\.1:\d+/.test(stdout)) await new Promise((r) => setTimeout(r, 20));
        return /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
      })(),
      15_000,
      'server address',
    );
    const download = await rawGet(`${url}/api/backup`, { 'X-API-Key': key });
    download.res.pause();
    const body = readAll(download.res);
    child.kill('SIGTERM');
    // Waits for the listener to close (the event), not for a guessed time.
    await waitFor(() => refusesConnections(`${url}/api/health`), 10_000, 'the listener closed after SIGTERM');
    download.res.resume();
    const files = await unzip(await withTimeout(body, 20_000, 'download across SIGTERM'));
    expect(files.has('big.db')).toBe(true);
    expect(await withTimeout(exited, 10_000, 'exit after SIGTERM')).toBe(0);
  });
});
