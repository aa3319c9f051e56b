/** Routing, auth, validation, OpenAPI and logging through app.request(): no network needed. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { DbzipError, type ErrorCode } from '../src/errors.js';
import { createApp } from '../src/http/app.js';
import { apiKeyWeakness } from '../src/http/auth.js';
import { ERROR_STATUS } from '../src/http/error-status.js';
import { isLoopbackHost } from '../src/http/options.js';
import { captureLogger, integrityCheck, newKey, unzip } from './http-helpers.js';
import { test, withTimeout } from './helpers/tmp.js';

const json = async (res: Response) => (await res.json()) as { error: { code: string; message: string } };

describe('authentication', () => {
  test('every API route but health answers 401 with WWW-Authenticate without a key, and the same body for a wrong key', async ({ tmpDir }) => {
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: newKey() }, logger: captureLogger().logger });
    // '/*' only serves the page at a mounted path's trailing slash (test/http-admin.test.ts) and passes the rest on.
    const paths = [...new Set(app.routes.filter((r) => r.method === 'GET' && r.path !== '/*').map((r) => r.path))];
    // The page (/) shows its sign-in form to anyone: test/http-admin.test.ts.
    expect(paths.sort()).toEqual(['/', '/api/backup', '/api/backup/progress', '/api/backups', '/api/backups/:name', '/api/databases', '/api/health', '/api/openapi.json', '/api/pre-restore', '/api/pre-restore/:name']);
    for (const p of paths.filter((p) => p !== '/api/health' && p !== '/')) {
      const missing = await app.request(p);
      const wrong = await app.request(p, { headers: { 'X-API-Key': newKey() } });
      const wrongBearer = await app.request(p, { headers: { Authorization: `Bearer ${newKey()}` } });
      for (const res of [missing, wrong, wrongBearer]) {
        expect(res.status, p).toBe(401);
        expect(res.headers.get('WWW-Authenticate')).toBe('Bearer realm="dbzip"');
      }
      const bodies = await Promise.all([missing, wrong, wrongBearer].map((r) => r.text()));
      expect(new Set(bodies).size, 'the answer never says which part was wrong').toBe(1);
      expect(JSON.parse(bodies[0]!)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
  });

  test('accepts the key as X-API-Key or as Authorization: Bearer, never from the query string', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger });
    expect((await app.request('/api/databases', { headers: { 'X-API-Key': key } })).status).toBe(200);
    expect((await app.request('/api/databases', { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200);
    expect((await app.request('/api/databases', { headers: { Authorization: `bearer ${key}` } })).status).toBe(200);
    expect((await app.request(`/api/databases?api_key=${key}`)).status).toBe(401);
    expect((await app.request(`/api/databases?key=${key}`)).status).toBe(401);
    expect((await app.request('/api/databases', { headers: { Authorization: `Basic ${key}` } })).status).toBe(401);
    expect((await app.request('/api/databases', { headers: { 'X-API-Key': `${key}x` } })).status).toBe(401);
    expect((await app.request('/api/databases', { headers: { 'X-API-Key': key.slice(0, -1) } })).status).toBe(401);
  });

  test('health needs no key, never touches the data dir, and answers even when the data dir is gone', async ({ tmpDir }) => {
    const app = createApp({ dataDir: path.join(tmpDir, 'missing'), auth: { apiKey: newKey() }, logger: captureLogger().logger });
    const res = await app.request('/api/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  test('a sub-app created without a key answers 403 telling the operator to configure one', async ({ tmpDir }) => {
    const app = createApp({ dataDir: tmpDir, logger: captureLogger().logger });
    for (const p of ['/api/backup', '/api/databases', '/api/openapi.json']) {
      const res = await app.request(p, { headers: { 'X-API-Key': newKey() } });
      expect(res.status).toBe(403);
      const body = await json(res);
      expect(body.error.code).toBe('FORBIDDEN');
      expect(body.error.message).toMatch(/no API key configured.*auth: \{ apiKey \}/);
    }
    // An unset variable passed as the key is "not configured", not an empty key that anyone could send.
    for (const apiKey of [undefined, '']) {
      const fromUnsetEnv = createApp({ dataDir: tmpDir, auth: { apiKey }, logger: captureLogger().logger });
      expect((await fromUnsetEnv.request('/api/databases', { headers: { 'X-API-Key': '' } })).status).toBe(403);
    }
    expect((await app.request('/api/health')).status).toBe(200);
  });

  test('auth: { none: true } serves without a key, as an explicit choice', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const app = createApp({ dataDir: tmpDir, auth: { none: true }, logger: captureLogger().logger });
    expect((await app.request('/api/databases')).status).toBe(200);
  });

  test('refuses a weak key at creation, with a message that names the option and never repeats the key', () => {
    for (const weak of ['short', 'changeme', 'changemechangeme', 'password12345678', 'my-secret-api-key-2024', 'aaaaaaaaaaaaaaaaaaaa', '1234567890123456', 'test-test-test-test', 'your-api-key-here!!']) {
      expect(apiKeyWeakness(weak), weak).toBeDefined();
      let error: unknown;
      try {
        createApp({ dataDir: '/nonexistent', auth: { apiKey: weak } });
      } catch (e) {
        error = e;
      }
      expect(error, weak).toBeInstanceOf(DbzipError);
      expect((error as DbzipError).code).toBe('INVALID_OPTION');
      expect((error as Error).message).toContain('auth.apiKey');
      expect((error as Error).message).not.toContain(weak);
    }
    for (const strong of [newKey(), 'correct horse battery staple', 'vT7#qL2!mZ9@xR4$', 'Zx8-q2Lm9vTr4kPw7Yb3']) expect(apiKeyWeakness(strong), strong).toBeUndefined();
  });
});

describe('options', () => {
  test('the dbzip/http entry exports createApp, startServer and the defaults', async () => {
    const api = await import('../src/http/index.js');
    expect(typeof api.createApp).toBe('function');
    expect(typeof api.startServer).toBe('function');
    expect(api.HTTP_DEFAULTS).toMatchObject({ maxConcurrent: 2, filePrefix: 'dbzip', host: '127.0.0.1', port: 8080, shutdownTimeoutMs: 30_000 });
    expect(api.ERROR_STATUS.DATABASE_TOO_LARGE).toBe(507);
  });

  test('are validated at creation with messages that name the option, including likely slips', () => {
    expect(() => createApp({ dataDir: '/x', auth: { apiKey: newKey() }, maxConcurrent: 0 })).toThrow(/option "maxConcurrent"/);
    expect(() => createApp({ dataDir: '/x', auth: { apiKey: newKey() }, filePrefix: 'a b' })).toThrow(/option "filePrefix"/);
    expect(() => createApp({ dataDir: '/x', auth: { apiKey: newKey() }, level: 12 })).toThrow(/option "level"/);
    expect(() => createApp({ dataDir: '', auth: { apiKey: newKey() } })).toThrow(/option "dataDir"/);
    expect(() => createApp({ dataDir: '/x', apiKey: newKey() } as never)).toThrow(/did you mean auth: \{ apiKey \}/);
    expect(() => createApp({ dataDir: '/x', auth: { none: true, apiKey: newKey() } as never })).toThrow(/option "auth"/);
  });

  test('loopback means 127.0.0.0/8, ::1 and localhost only', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', 'localhost.example.com']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('GET /api/backup through app.request', () => {
  test('answers with a zip and the download headers; every database passes integrity_check', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, filePrefix: 'shop', logger: captureLogger().logger });
    const res = await app.request('/api/backup', { headers: { 'X-API-Key': key } });
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('application/zip');
    expect(res.headers.get('Content-Disposition')).toMatch(/^attachment; filename="shop-backup-\d{8}-\d{6}\.zip"$/);
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
    const files = await unzip(Buffer.from(await res.arrayBuffer()));
    expect([...files.keys()]).toContain('manifest.json');
    for (const name of ['app.db', 'settings.db']) expect(integrityCheck(files.get(name)!)).toBe('ok');
  });

  test("every answer (zip, JSON, error) carries nosniff, Referrer-Policy same-origin and the page's strict CSP, with a fresh nonce each", async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger });
    const answers = [
      await app.request('/api/backup', { headers: { 'X-API-Key': key } }),
      await app.request('/api/databases', { headers: { 'X-API-Key': key } }),
      await app.request('/api/databases'),
      await app.request('/no-such-route'),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 401, 404]);
    const nonces = answers.map((res) => {
      expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
      expect(res.headers.get('Referrer-Policy')).toBe('same-origin');
      const csp = res.headers.get('Content-Security-Policy') ?? '';
      expect(csp).toMatch(/^default-src 'none'; script-src 'nonce-[A-Za-z0-9+/=]{24}'; style-src 'nonce-[A-Za-z0-9+/=]{24}';/);
      expect(csp).toMatch(/frame-ancestors 'self'; base-uri 'none'$/);
      return /'nonce-([^']+)'/.exec(csp)?.[1];
    });
    expect(new Set(nonces).size).toBe(answers.length);
    await Promise.all(answers.map((r) => r.arrayBuffer()));
  });

  test('400 for a bad level, an unknown parameter or an unknown database, as JSON { error: { code, message } }', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger });
    const cases: [string, string, RegExp][] = [
      ['/api/backup?level=10', 'INVALID_OPTION', /level/],
      ['/api/backup?level=', 'INVALID_OPTION', /level/],
      ['/api/backup?level=x', 'INVALID_OPTION', /level/],
      ['/api/backup?dbs=app.db', 'INVALID_OPTION', /dbs/],
      ['/api/backup?db=nope.db&db=app.db', 'UNKNOWN_DATABASE', /nope\.db/],
      ['/api/backup?db=../etc/passwd', 'INVALID_OPTION', /databases/],
    ];
    for (const [url, code, message] of cases) {
      const res = await app.request(url, { headers: { 'X-API-Key': key } });
      expect(res.status, url).toBe(400);
      const body = await json(res);
      expect(body.error.code, url).toBe(code);
      expect(body.error.message, url).toMatch(message);
    }
  });

  test('db narrows the backup (repeatable) and level=6 deflates with X-Dbzip-Length: unknown', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, extensions: ['.db', '.sqlite'], logger: captureLogger().logger });
    const res = await app.request('/api/backup?db=settings.db&db=events.sqlite&level=6', { headers: { 'X-API-Key': key } });
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Length')).toBeNull();
    expect(res.headers.get('X-Dbzip-Length')).toBe('unknown');
    const files = await unzip(Buffer.from(await res.arrayBuffer()));
    expect([...files.keys()].filter((n) => !n.startsWith('assets/'))).toEqual(['VERSION', 'events.sqlite', 'settings.db', 'manifest.json']);
    const manifest = JSON.parse(files.get('manifest.json')!.toString()) as { level: number };
    expect(manifest.level).toBe(6);
  });

  test('HEAD is refused instead of running a backup nobody reads', async ({ tmpDir }) => {
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger });
    const res = await app.request('/api/backup', { method: 'HEAD', headers: { 'X-API-Key': key } });
    expect(res.status).toBe(405);
    expect(res.headers.get('Allow')).toBe('GET');
  });

  test('the (maxConcurrent + 1)th backup gets 429 with Retry-After before any work; a cancelled download frees its slot', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, maxConcurrent: 1, logger: captureLogger().logger });
    const first = await app.request('/api/backup', { headers: { 'X-API-Key': key } });
    expect(first.status).toBe(200);
    const busy = await app.request('/api/backup', { headers: { 'X-API-Key': key } });
    expect(busy.status).toBe(429);
    expect(Number(busy.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect((await json(busy)).error.code).toBe('BUSY');
    await withTimeout(first.body!.cancel(), 5_000, 'cancelling the first download');
    const again = await app.request('/api/backup', { headers: { 'X-API-Key': key } });
    expect(again.status).toBe(200);
    await again.arrayBuffer();
  });

  test('an error before the first byte maps through the one table: a missing data dir is 503', async ({ tmpDir }) => {
    const key = newKey();
    const app = createApp({ dataDir: path.join(tmpDir, 'not-there'), auth: { apiKey: key }, logger: captureLogger().logger });
    for (const p of ['/api/backup', '/api/databases']) {
      const res = await app.request(p, { headers: { 'X-API-Key': key } });
      expect(res.status).toBe(503);
      expect((await json(res)).error.code).toBe('DATA_DIR_NOT_FOUND');
    }
  });

  test('a database over the memory budget is 507 before any byte', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, maxDatabaseBytes: 10_000, logger: captureLogger().logger });
    const res = await app.request('/api/backup', { headers: { 'X-API-Key': key } });
    expect(res.status).toBe(507);
    expect((await json(res)).error.code).toBe('DATABASE_TOO_LARGE');
  });
});

describe('the error table', () => {
  test('maps every error code to a status, with the choices the issue asks for', () => {
    const expected: Partial<Record<ErrorCode, number>> = {
      INVALID_OPTION: 400, UNKNOWN_DATABASE: 400, UNAUTHORIZED: 401, FORBIDDEN: 403, BUSY: 429, PAYLOAD_TOO_LARGE: 413,
      ARCHIVE_INVALID: 400, RESTORE_REFUSED: 409, SKIPPED_IN_STRICT_MODE: 500, SNAPSHOT_FAILED: 500, SNAPSHOT_CORRUPT: 500,
      DATA_DIR_NOT_FOUND: 503, DATABASE_TOO_LARGE: 507,
    };
    expect(ERROR_STATUS).toMatchObject(expected);
  });

  test('unknown routes are JSON 404s', async ({ tmpDir }) => {
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: newKey() }, logger: captureLogger().logger });
    const res = await app.request('/api/nothing');
    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe('NOT_FOUND');
  });
});

describe('GET /api/databases', () => {
  test('lists databases with size and journal mode, assets, skipped files with reasons and the version; no server paths', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger });
    const res = await app.request('/api/databases', { headers: { 'X-API-Key': key } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(tmpDir);
    const body = JSON.parse(text) as { version: string; databases: { path: string; journalMode: string; bytes: number }[]; assets: { path: string }[]; skipped: { path: string; code: string; reason: string }[] };
    expect(body.version).toBe('1.4.2');
    expect(body.databases.map((d) => [d.path, d.journalMode])).toEqual([['app.db', 'wal'], ['settings.db', 'rollback']]);
    expect(body.databases.every((d) => d.bytes > 0)).toBe(true);
    expect(body.assets.length).toBeGreaterThan(0);
    expect(body.skipped.map((s) => [s.path, s.code])).toEqual([['empty.db', 'NOT_SQLITE'], ['junk.db', 'NOT_SQLITE']]);
  });
});

describe('GET /api/openapi.json', () => {
  test('documents every registered route, with the security schemes; a route missing from it fails here', async ({ tmpDir }) => {
    const key = newKey();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger });
    const res = await app.request('/api/openapi.json', { headers: { 'X-API-Key': key } });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown[]; parameters?: { name: string }[] }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    // Not '/*': it is the page again, at a mounted path's trailing slash, and no route of its own.
    const registered = app.routes.filter((r) => r.method !== 'ALL' && r.path !== '/*').map((r) => `${r.method.toLowerCase()} ${r.path}`);
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p.replace(/\{(\w+)\}/g, ':$1')}`));
    expect([...new Set(registered)].sort()).toEqual(documented.sort());
    expect(doc.components.securitySchemes).toEqual({
      ApiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      BearerAuth: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      SessionCookie: expect.objectContaining({ type: 'apiKey', in: 'cookie', name: 'dbzip_session' }),
    });
    for (const [p, method] of [['/api/health', 'get'], ['/', 'get'], ['/signin', 'post'], ['/signout', 'post']] as const) expect(doc.paths[p]![method]!.security, p).toEqual([]);
    for (const p of ['/api/backup', '/api/databases', '/api/openapi.json', '/api/backups', '/api/backups/{name}']) expect(doc.paths[p]!['get']!.security).toEqual([{ ApiKeyHeader: [] }, { BearerAuth: [] }, { SessionCookie: [] }]);
    expect(doc.paths['/api/backup']!['get']!.parameters?.map((q) => q.name).sort()).toEqual(['db', 'dl', 'level']);
  });
});

describe('logging', () => {
  test('one JSON line per request with method, path without query, status, bytes, duration and outcome; an audit line per download; never the key', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const { logger, lines, text } = captureLogger();
    const app = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger });
    await app.request('/api/databases?secret=1', { headers: { 'X-API-Key': key } });
    await app.request('/api/databases', { headers: { Authorization: `Bearer ${newKey()}` } });
    const download = await app.request('/api/backup?level=1', { headers: { Authorization: `Bearer ${key}` } });
    const size = (await download.arrayBuffer()).byteLength;
    const requests = () => lines.filter((l) => l.msg === 'request');
    await withTimeout(
      (async () => {
        while (requests().length < 3) await new Promise((r) => setTimeout(r, 10));
      })(),
      5_000,
      'the request line of the download',
    );
    const [listed, refused, downloaded] = requests();
    expect(listed).toMatchObject({ method: 'GET', path: '/api/databases', status: 200, outcome: 'ok' });
    expect(listed!['bytes']).toBeGreaterThan(0);
    expect(typeof listed!['durationMs']).toBe('number');
    expect(typeof listed!['time']).toBe('string');
    expect(refused).toMatchObject({ path: '/api/databases', status: 401, outcome: 'rejected' });
    expect(downloaded).toMatchObject({ path: '/api/backup', status: 200, outcome: 'ok', bytes: size, databases: 2 });
    const audit = lines.find((l) => l['audit'] === 'backup-download');
    expect(audit?.level, 'pino level, not the compression level').toBe(30);
    expect(audit).toMatchObject({ outcome: 'ok', bytes: size, databases: ['app.db', 'settings.db'], compressionLevel: 1, reqId: downloaded!['reqId'] });
    expect(text()).not.toContain(key);
    expect(text()).not.toContain('secret=1');
  });

  test('createApp without a logger writes nothing to the host\'s stdout or stderr; with one, every line goes to it', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    // A host process, as an embedding app runs it: pino would write to fd 1 directly, so only a child shows it.
    const host = `
      import { Hono } from 'hono';
      import { createApp } from ${JSON.stringify(path.resolve('dist/http/index.js'))};
      const key = ${JSON.stringify(newKey())};
      const lines = [];
      const logger = { info: (o, m) => lines.push(m), warn: (o, m) => lines.push(m), error: (o, m) => lines.push(m) };
      for (const options of [{}, { logger }]) {
        const app = new Hono();
        app.route('/admin/backup', createApp({ dataDir: ${JSON.stringify(tmpDir)}, auth: { apiKey: key }, ...options }));
        await (await app.request('/admin/backup/api/backup', { headers: { 'X-API-Key': key } })).arrayBuffer();
        await (await app.request('/admin/backup/api/databases')).arrayBuffer();
      }
      await new Promise((r) => setTimeout(r, 200));
      process.stdout.write('host: ' + JSON.stringify(['request', 'backup download'].filter((m) => lines.includes(m))) + '\\n');
    `;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', host], { cwd: path.resolve('.'), timeout: 30_000 });
    expect(stderr).toBe('');
    expect(stdout).toBe(`host: ${JSON.stringify(['request', 'backup download'])}\n`);
  });
});
