/** The admin page and browser sign-in through app.request(): cookies, their flags and the cross-site locks. */
import path from 'node:path';
import { Hono } from 'hono';
import { afterEach, describe, expect, vi } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { createApp, type DbzipApp } from '../src/http/app.js';
import type { AppOptions } from '../src/http/options.js';
import { captureLogger, newKey } from './http-helpers.js';
import { test } from './helpers/tmp.js';

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
/** What Chromium sends with a form post from the page itself (app.request's origin is http://localhost). */
const SAME_ORIGIN = { Origin: 'http://localhost', 'Sec-Fetch-Site': 'same-origin' };
const NAVIGATION = { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

type Fetcher = Pick<DbzipApp, 'request'>;

function makeApp(dataDir: string, options: Partial<AppOptions> = {}) {
  const key = newKey();
  const log = captureLogger();
  const app = createApp({ dataDir, auth: { apiKey: key }, logger: log.logger, ...options });
  return { app, key, log };
}

const signInRequest = (app: Fetcher, key: string, url = '/signin', headers: Record<string, string> = SAME_ORIGIN) =>
  app.request(url, { method: 'POST', headers: { ...FORM, ...headers }, body: new URLSearchParams({ key }).toString() });

/** Signs in and returns `dbzip_session=<token>`, as the browser would send it back. */
async function signIn(app: Fetcher, key: string, url = '/signin'): Promise<string> {
  const res = await signInRequest(app, key, url);
  expect(res.status).toBe(303);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

/** The attributes of a Set-Cookie header, lower-cased names. */
function cookieAttributes(header: string | null): { pair: string; attrs: Record<string, string> } {
  const [pair, ...rest] = (header ?? '').split(';').map((s) => s.trim());
  const attrs: Record<string, string> = {};
  for (const a of rest) {
    const [name, value = ''] = a.split('=');
    attrs[name!.toLowerCase()] = value;
  }
  return { pair: pair!, attrs };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the page at GET /', () => {
  test('shows only the sign-in form to a visitor without a session: labelled, posting to a relative URL, nothing about the data', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { app } = makeApp(tmpDir);
    const res = await app.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/frame-ancestors 'self'/);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    const html = await res.text();
    expect(html.startsWith('<!DOCTYPE html><html lang="en">')).toBe(true);
    expect(html).toContain(`<style nonce="${nonce}">`);
    expect(html).toMatch(/<form class="signin" method="post" action="\.\/signin">/);
    expect(html).toMatch(/<label for="api-key">API key<\/label>/);
    expect(html).toMatch(/<input id="api-key" name="key" type="password" required=""/);
    for (const secret of ['app.db', 'settings.db', 'junk.db', '1.4.2', tmpDir, 'Download backup']) expect(html).not.toContain(secret);
  });

  test('signed in, it shows the version, each database with size, journal mode and time, the asset folders, the skips and why, and the Download link', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { app, key } = makeApp(tmpDir);
    const cookie = await signIn(app, key);
    const res = await app.request('/', { headers: { Cookie: cookie } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toMatch(/App version <strong>1\.4\.2<\/strong>/);
    expect(html).toMatch(/<td class="name" data-label="Name">app\.db<\/td><td class="num" data-label="Size" title="[\d,]+ bytes">[\d.]+ KiB<\/td><td data-label="Journal"><span class="tag">WAL<\/span>/);
    expect(html).toMatch(/settings\.db<\/td>.*?rollback/);
    expect(html).toMatch(/<time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>/);
    expect(html).toMatch(/<span class="name">assets\/<\/span>/);
    expect(html).toMatch(/junk\.db<\/span>\s*<span class="tag">NOT_SQLITE<\/span><\/span><span class="why">no SQLite header/);
    expect(html).toMatch(/<a id="download" class="button" href="\.\/api\/backup" data-cookie-path="\/" data-progress="[^"]*api\/backup\/progress">/);
    expect(html).toMatch(/<form method="post" action="\.\/signout">/);
    expect(html).toMatch(/<script nonce="[^"]+">/);
    expect(html).not.toContain(tmpDir);
    // The restore card: the script un-hides the form and posts the file to the relative api/restore; without it a note says how.
    expect(html).toMatch(/<form id="restore-form" class="restore-form" data-url="\.\/api\/restore" hidden="">/);
    expect(html).toMatch(/<label for="restore-file">Backup zip<\/label>/);
    expect(html).toMatch(/<label for="restore-mode">Mode<\/label>/);
    expect(html).toMatch(/<label for="restore-exact">Exact<\/label>/);
    expect(html).toMatch(/<noscript>.*needs JavaScript/s);
  });

  test('signed in with a data dir that is gone, it says why with the status of the one table (503), not a blank page', async ({ tmpDir }) => {
    const { app, key } = makeApp(path.join(tmpDir, 'gone'));
    const cookie = await signIn(app, key);
    const res = await app.request('/', { headers: { Cookie: cookie } });
    expect(res.status).toBe(503);
    const html = await res.text();
    expect(html).toContain('DATA_DIR_NOT_FOUND');
    expect(html).toContain('Download backup');
  });

  test('auth: { none: true } shows the data without a sign-in and offers no sign-out; without a key configured the page says so with 403', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const open = createApp({ dataDir: tmpDir, auth: { none: true }, logger: captureLogger().logger });
    const html = await (await open.request('/')).text();
    expect(html).toContain('app.db');
    expect(html).not.toContain('signout');
    expect((await signInRequest(open, 'anything')).status).toBe(303);

    const unconfigured = createApp({ dataDir: tmpDir, logger: captureLogger().logger });
    const res = await unconfigured.request('/');
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/no API key configured/);
    expect((await signInRequest(unconfigured, newKey())).status).toBe(403);
  });
});

describe('sign-in', () => {
  test('a wrong key shows the form again with an error and 401, sets no cookie, and is audited without the key', async ({ tmpDir }) => {
    const { app, log } = makeApp(tmpDir);
    const wrong = newKey();
    const res = await signInRequest(app, wrong);
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="dbzip"');
    const html = await res.text();
    expect(html).toMatch(/role="alert"><strong>Not signed in<\/strong><span>That is not the API key of this service/);
    expect(html).toMatch(/aria-invalid="true"/);
    expect(html).not.toContain(wrong);
    expect(log.lines.find((l) => l['audit'] === 'signin')).toMatchObject({ outcome: 'rejected' });
    expect(log.text()).not.toContain(wrong);
  });

  test('the right key sets an HttpOnly, SameSite=Strict session cookie on the mount path that expires in 12 h, and redirects to the page', async ({ tmpDir }) => {
    const { app, key, log } = makeApp(tmpDir);
    const res = await signInRequest(app, ` ${key}\r\n`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('./');
    const { pair, attrs } = cookieAttributes(res.headers.get('set-cookie'));
    expect(pair).toMatch(/^dbzip_session=v1\.\d+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(attrs).toEqual({ 'max-age': '43200', path: '/', httponly: '', samesite: 'Strict' });
    const expires = Number(pair.split('.')[1]);
    expect(expires * 1000 - Date.now()).toBeGreaterThan(12 * 3_600_000 - 5_000);
    expect(expires * 1000 - Date.now()).toBeLessThanOrEqual(12 * 3_600_000);
    expect(log.lines.find((l) => l['audit'] === 'signin')).toMatchObject({ outcome: 'ok' });
    expect(log.text()).not.toContain(key);
    expect(log.text()).not.toContain(pair.split('=')[1]);
  });

  test('the cookie is Secure over https, and behind a trusted proxy that says X-Forwarded-Proto: https; never on the proxy\'s word alone', async ({ tmpDir }) => {
    const direct = makeApp(tmpDir);
    const https = await direct.app.request('https://backup.example/signin', {
      method: 'POST',
      headers: { ...FORM, Origin: 'https://backup.example' },
      body: `key=${direct.key}`,
    });
    expect(cookieAttributes(https.headers.get('set-cookie')).attrs).toHaveProperty('secure');
    const untrusted = await signInRequest(direct.app, direct.key, '/signin', { 'X-Forwarded-Proto': 'https' });
    expect(cookieAttributes(untrusted.headers.get('set-cookie')).attrs).not.toHaveProperty('secure');

    const proxied = makeApp(tmpDir, { trustProxy: true });
    const res = await proxied.app.request('/signin', {
      method: 'POST',
      headers: { ...FORM, Origin: 'https://backup.example', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'backup.example' },
      body: `key=${proxied.key}`,
    });
    expect(res.status).toBe(303);
    expect(cookieAttributes(res.headers.get('set-cookie')).attrs).toHaveProperty('secure');
  });

  test('sign-in and sign-out posts from another origin or site are refused with 403 before the key is looked at', async ({ tmpDir }) => {
    const { app, key, log } = makeApp(tmpDir);
    for (const headers of [{ Origin: 'https://evil.example' }, { Origin: 'null' }, { 'Sec-Fetch-Site': 'cross-site' }, { 'Sec-Fetch-Site': 'same-site' }]) {
      for (const url of ['/signin', '/signout']) {
        const res = await signInRequest(app, key, url, headers);
        expect(res.status, `${url} ${JSON.stringify(headers)}`).toBe(403);
        expect(res.headers.get('set-cookie')).toBeNull();
        expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^cross-site request refused/);
      }
    }
    expect(log.lines.filter((l) => l['audit'] === 'signin')).toEqual([]);
    // A client without Fetch Metadata or Origin (curl) still signs in: it had to know the key.
    expect((await signInRequest(app, key, '/signin', {})).status).toBe(303);
  });

  test('a form larger than 8 KiB is refused with 413', async ({ tmpDir }) => {
    const { app } = makeApp(tmpDir);
    const res = await signInRequest(app, 'x'.repeat(9_000));
    expect(res.status).toBe(413);
  });

  test('sessionTtlMs sets the lifetime, validated with a message that names the option', async ({ tmpDir }) => {
    const { app, key } = makeApp(tmpDir, { sessionTtlMs: 30 * 60_000 });
    const res = await signInRequest(app, key);
    expect(cookieAttributes(res.headers.get('set-cookie')).attrs['max-age']).toBe('1800');
    expect(await (await app.request('/')).text()).toContain('signed in for 30 minutes');
    expect(() => createApp({ dataDir: tmpDir, auth: { apiKey: newKey() }, sessionTtlMs: 1_000 })).toThrow(/option "sessionTtlMs"/);
    expect(() => createApp({ dataDir: tmpDir, auth: { apiKey: newKey() }, sessionTtl: 1 } as never)).toThrow(/did you mean "sessionTtlMs"/);
  });
});

describe('the session cookie on the API', () => {
  test('authorises GET /api/backup and /api/databases from the page; API clients keep using the key', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { app, key } = makeApp(tmpDir);
    const cookie = await signIn(app, key);
    for (const headers of [{}, { 'Sec-Fetch-Site': 'same-origin' }, { 'Sec-Fetch-Site': 'none' }, { Origin: 'http://localhost' }]) {
      const res = await app.request('/api/databases', { headers: { Cookie: cookie, ...headers } });
      expect(res.status, JSON.stringify(headers)).toBe(200);
    }
    const download = await app.request('/api/backup?db=settings.db', { headers: { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' } });
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toMatch(/^attachment; filename="dbzip-backup-\d{8}-\d{6}\.zip"$/);
    await download.arrayBuffer();
    // A wrong key is judged by the key, even next to a valid cookie.
    expect((await app.request('/api/databases', { headers: { Cookie: cookie, 'X-API-Key': newKey() } })).status).toBe(401);
    expect((await app.request('/api/databases', { headers: { 'X-API-Key': key, 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(200);
  });

  test('a tampered, truncated or foreign cookie is a 401', async ({ tmpDir }) => {
    const { app, key } = makeApp(tmpDir);
    const cookie = await signIn(app, key);
    const [, token] = cookie.split('=') as [string, string];
    const [v, expires, nonce, signature] = token.split('.') as [string, string, string, string];
    const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
    const other = makeApp(tmpDir);
    const foreign = await signIn(other.app, other.key);
    const bad = [
      `${v}.${expires}.${nonce}.${flip(signature)}`,
      `${v}.${Number(expires) + 3600}.${nonce}.${signature}`,
      `${v}.${expires}.${flip(nonce)}.${signature}`,
      `v2.${expires}.${nonce}.${signature}`,
      `${v}.${expires}.${nonce}`,
      '',
      'garbage',
      foreign.split('=')[1]!,
    ];
    for (const value of bad) {
      const res = await app.request('/api/openapi.json', { headers: { Cookie: `dbzip_session=${value}` } });
      expect(res.status, value).toBe(401);
    }
    expect((await app.request('/api/openapi.json', { headers: { Cookie: cookie } })).status).toBe(200);
    // Another path's cookie next to ours (a browser sends both): any valid one counts.
    expect((await app.request('/api/openapi.json', { headers: { Cookie: `dbzip_session=garbage; ${cookie}` } })).status).toBe(200);
  });

  test('expires 12 h after sign-in, whatever the browser keeps', async ({ tmpDir }) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = new Date('2026-03-01T08:00:00Z');
    vi.setSystemTime(start);
    const { app, key } = makeApp(tmpDir);
    const cookie = await signIn(app, key);
    vi.setSystemTime(start.getTime() + 12 * 3_600_000 - 1_000);
    expect((await app.request('/api/openapi.json', { headers: { Cookie: cookie } })).status).toBe(200);
    vi.setSystemTime(start.getTime() + 12 * 3_600_000);
    expect((await app.request('/api/openapi.json', { headers: { Cookie: cookie } })).status).toBe(401);
    expect(await (await app.request('/', { headers: { Cookie: cookie } })).text()).toContain('action="./signin"');
  });

  test('is refused from another site: Sec-Fetch-Site cross-site or same-site, or a foreign Origin, get 403 even with a valid cookie', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { app, key, log } = makeApp(tmpDir);
    const cookie = await signIn(app, key);
    const cases: Record<string, string>[] = [
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' },
      { Origin: 'https://evil.example' },
      { Origin: 'http://localhost:8080' },
      { Origin: 'null' },
    ];
    for (const headers of cases) {
      for (const url of ['/api/backup', '/api/databases']) {
        const res = await app.request(url, { headers: { Cookie: cookie, ...headers } });
        expect(res.status, `${url} ${JSON.stringify(headers)}`).toBe(403);
        expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/^cross-site request refused/) });
      }
    }
    expect(log.lines.filter((l) => l['audit'] === 'backup-download' && l['outcome'] !== 'rejected')).toEqual([]);
    // And the page does not count a cross-site request as signed in.
    expect(await (await app.request('/', { headers: { Cookie: cookie, 'Sec-Fetch-Site': 'cross-site' } })).text()).toContain('action="./signin"');
  });

  test('sign-out clears the cookie on the same path, and the old token is refused afterwards even if replayed', async ({ tmpDir }) => {
    const { app, key, log } = makeApp(tmpDir);
    const cookie = await signIn(app, key);
    const other = await signIn(app, key);
    expect(other).not.toBe(cookie);
    const res = await app.request('/signout', { method: 'POST', headers: { Cookie: cookie, ...SAME_ORIGIN } });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('./');
    expect(cookieAttributes(res.headers.get('set-cookie'))).toEqual({ pair: 'dbzip_session=', attrs: { 'max-age': '0', path: '/', httponly: '', samesite: 'Strict' } });
    expect((await app.request('/api/backup', { headers: { Cookie: cookie } })).status).toBe(401);
    // Another browser's session is its own.
    expect((await app.request('/api/openapi.json', { headers: { Cookie: other } })).status).toBe(200);
    expect(log.lines.find((l) => l['audit'] === 'signout')).toMatchObject({ outcome: 'ok' });
  });
});

describe('the download cookie (?dl=)', () => {
  test('a successful backup sets dbzip_dl_<token>=1, readable by the page (not HttpOnly), short-lived, SameSite=Strict', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { app, key } = makeApp(tmpDir);
    const res = await app.request('/api/backup?dl=Ab3dEf7hK9', { headers: { 'X-API-Key': key } });
    expect(res.status).toBe(200);
    expect(cookieAttributes(res.headers.get('set-cookie'))).toEqual({ pair: 'dbzip_dl_Ab3dEf7hK9=1', attrs: { 'max-age': '60', path: '/', samesite: 'Strict' } });
    await res.arrayBuffer();
    const plain = await app.request('/api/backup', { headers: { 'X-API-Key': key } });
    expect(plain.headers.get('set-cookie')).toBeNull();
    await plain.arrayBuffer();
  });

  test('a malformed token is a 400, and a backup that fails before its first byte sets no cookie', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const { app, key } = makeApp(tmpDir);
    for (const dl of ['short', 'a'.repeat(33), 'has-dash1', 'semi%3Bcolon', '']) {
      const res = await app.request(`/api/backup?dl=${dl}`, { headers: { 'X-API-Key': key } });
      expect(res.status, dl).toBe(400);
      expect(res.headers.get('set-cookie')).toBeNull();
    }
    const gone = makeApp(path.join(tmpDir, 'gone'));
    const failed = await gone.app.request('/api/backup?dl=Ab3dEf7hK9', { headers: { 'X-API-Key': gone.key } });
    expect(failed.status).toBe(503);
    expect(failed.headers.get('set-cookie')).toBeNull();
  });
});

describe('errors for browser navigations', () => {
  test('a navigation gets the error as a small HTML page with the same status and a link back; API clients keep JSON', async ({ tmpDir }) => {
    const { app, key } = makeApp(path.join(tmpDir, 'gone'));
    const page = await app.request('/api/backup?dl=Ab3dEf7hK9', { headers: { 'X-API-Key': key, ...NAVIGATION } });
    expect(page.status).toBe(503);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'self'/);
    const html = await page.text();
    expect(html).toMatch(/<main class="narrow" data-dbzip-error="DATA_DIR_NOT_FOUND" data-status="503">/);
    expect(html).toMatch(/<h1 id="error-title">The backup could not be made<\/h1>/);
    expect(html).toMatch(/<span class="message">data directory .*gone does not exist<\/span>/);
    expect(html).toMatch(/<a href="\.\.\/">Back to the backup page<\/a>/);
    for (const accept of [undefined, '*/*', 'application/json']) {
      const res = await app.request('/api/backup', { headers: { 'X-API-Key': key, ...(accept === undefined ? {} : { Accept: accept }) } });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('DATA_DIR_NOT_FOUND');
    }
  });

  test('a navigation without a session gets "Sign in first" (401, WWW-Authenticate kept), in words for a person', async ({ tmpDir }) => {
    const { app } = makeApp(tmpDir);
    const res = await app.request('/api/backup', { headers: NAVIGATION });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="dbzip"');
    const html = await res.text();
    expect(html).toContain('<h1 id="error-title">Sign in first</h1>');
    expect(html).toContain('Sign in on the backup page');
    expect(html).not.toContain('X-API-Key');
  });
});

describe('mounted under a prefix', () => {
  test('links stay relative, and every cookie (session, sign-out, download) carries the mount path, never the host\'s root', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const host = new Hono();
    host.route('/admin/backup', createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger }));

    const form = await (await host.request('/admin/backup')).text();
    expect(form).toMatch(/action="\.\/backup\/signin"/);

    const signedIn = await signInRequest(host, key, '/admin/backup/signin');
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe('../backup');
    expect(cookieAttributes(signedIn.headers.get('set-cookie')).attrs.path).toBe('/admin/backup');
    const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;

    const html = await (await host.request('/admin/backup', { headers: { Cookie: cookie } })).text();
    expect(html).toMatch(/<a id="download" class="button" href="\.\/backup\/api\/backup" data-cookie-path="\/admin\/backup" data-progress="[^"]*api\/backup\/progress">/);
    expect(html).toMatch(/action="\.\/backup\/signout"/);

    const download = await host.request('/admin/backup/api/backup?dl=Zz9Yy8Xx7W', { headers: { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' } });
    expect(download.status).toBe(200);
    expect(cookieAttributes(download.headers.get('set-cookie')).attrs.path).toBe('/admin/backup');
    await download.arrayBuffer();

    const failed = await host.request('/admin/backup/api/backup?level=x', { headers: { Cookie: cookie, ...NAVIGATION } });
    expect(await failed.text()).toMatch(/<a href="\.\.\/\.\.\/backup">Back to the backup page<\/a>/);

    const signedOut = await host.request('/admin/backup/signout', { method: 'POST', headers: { Cookie: cookie, ...SAME_ORIGIN } });
    expect(signedOut.headers.get('location')).toBe('../backup');
    expect(cookieAttributes(signedOut.headers.get('set-cookie')).attrs).toMatchObject({ path: '/admin/backup', 'max-age': '0' });
  });

  test('with a host\'s default strict routing, /admin/backup/ serves the page too (not the host\'s bare 404); other unknown paths stay 404', async ({ tmpDir }) => {
    await generateFixtures(tmpDir);
    const key = newKey();
    const host = new Hono();
    host.route('/admin/backup', createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger }));
    const form = await host.request('/admin/backup/');
    expect(form.status).toBe(200);
    expect(await form.text()).toMatch(/action="\.\/signin"/);
    const cookie = (await signInRequest(host, key, '/admin/backup/signin')).headers.get('set-cookie')!.split(';')[0]!;
    const page = await host.request('/admin/backup/', { headers: { Cookie: cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<a id="download" class="button" href="\.\/api\/backup" data-cookie-path="\/admin\/backup" data-progress="[^"]*api\/backup\/progress">/);
    expect((await host.request('/admin/backup/nope')).status).toBe(404);
    expect((await host.request('/admin/backup/api/health')).status).toBe(200);
    const alone = createApp({ dataDir: tmpDir, auth: { apiKey: key }, logger: captureLogger().logger });
    expect((await alone.request('/')).status).toBe(200);
    expect((await alone.request('/nope')).status).toBe(404);
  });

  test('a page served with a trailing slash (a host with strict: false) links without the extra segment', async ({ tmpDir }) => {
    const host = new Hono({ strict: false });
    host.route('/admin/backup', createApp({ dataDir: tmpDir, auth: { apiKey: newKey() }, logger: captureLogger().logger }));
    const html = await (await host.request('/admin/backup/')).text();
    expect(html).toMatch(/action="\.\/signin"/);
  });
});
