/**
 * Browser sign-in: a signed, expiring session cookie, the checks that keep other sites from using it,
 * and where cookies go (the mount prefix). API clients never see any of this: they send the key.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { generateCookie } from 'hono/cookie';

export const SESSION_COOKIE = 'dbzip_session';
/** `dbzip_dl_<token>=1`: set on a successful backup response so the page knows the download started. */
export const DOWNLOAD_COOKIE_PREFIX = 'dbzip_dl_';
export const DOWNLOAD_TOKEN_PATTERN = /^[A-Za-z0-9]{8,32}$/;
/** Long enough for the page to poll it (every 250 ms), short enough to leave nothing behind. */
export const DOWNLOAD_COOKIE_MAX_AGE_SECONDS = 60;

/** `v1.<expiry, Unix seconds>.<nonce>.<HMAC-SHA256 of "v1.<expiry>.<nonce>", base64url>` */
const TOKEN = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;
/** Signed-out tokens remembered at most: enough for any real use, bounded against misuse. */
const MAX_REVOKED = 10_000;

/**
 * Issues and checks session tokens. The signing key is derived from the API key's digest, not drawn
 * at random per process: a session survives a restart and works on every replica that shares the
 * key, and rotating the key signs every browser out. Whoever could forge a token already holds the
 * key, which grants everything a session does.
 */
export class Sessions {
  readonly ttlMs: number;
  readonly #key: Buffer;
  readonly #now: () => number;
  /** Tokens signed out before they expired (this process only), with their expiry in Unix seconds. */
  readonly #revoked = new Map<string, number>();

  constructor(keyDigest: Buffer, ttlMs: number, now: () => number = () => Date.now()) {
    this.#key = createHmac('sha256', keyDigest).update('dbzip session cookie v1').digest();
    this.ttlMs = ttlMs;
    this.#now = now;
  }

  #sign(payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('base64url');
  }

  /** A new token valid for `ttlMs`. */
  issue(): string {
    const expires = Math.floor((this.#now() + this.ttlMs) / 1000);
    const payload = `v1.${expires}.${randomBytes(12).toString('base64url')}`;
    return `${payload}.${this.#sign(payload)}`;
  }

  /** The token's expiry (Unix seconds) when it is well-formed, correctly signed, unexpired and not signed out. */
  #check(token: string): number | undefined {
    const match = TOKEN.exec(token);
    if (match === null) return undefined;
    const [, expiresText, nonce, signature] = match as unknown as [string, string, string, string];
    const expected = Buffer.from(this.#sign(`v1.${expiresText}.${nonce}`));
    if (!timingSafeEqual(expected, Buffer.from(signature))) return undefined;
    const expires = Number(expiresText);
    const now = this.#now() / 1000;
    // A token from a longer TTL than today's (the option was lowered) is held to the current one.
    if (expires <= now || expires > now + this.ttlMs / 1000 + 1) return undefined;
    if (this.#revoked.has(token)) return undefined;
    return expires;
  }

  isValid(token: string): boolean {
    return this.#check(token) !== undefined;
  }

  /** Whether any of the request's session cookies is valid (a browser may hold one per mount path). */
  fromRequest(c: Context): boolean {
    return cookieValues(c.req.header('cookie'), SESSION_COOKIE).some((token) => this.isValid(token));
  }

  /** Signs out the request's valid session tokens in this process, besides clearing the cookie. */
  revoke(c: Context): void {
    const nowSeconds = this.#now() / 1000;
    for (const [token, expires] of this.#revoked) if (expires <= nowSeconds) this.#revoked.delete(token);
    for (const token of cookieValues(c.req.header('cookie'), SESSION_COOKIE)) {
      const expires = this.#check(token);
      if (expires === undefined) continue;
      if (this.#revoked.size >= MAX_REVOKED) this.#revoked.delete(this.#revoked.keys().next().value as string);
      this.#revoked.set(token, expires);
    }
  }
}

/** Every value of cookie `name` in a Cookie header: more than one when several paths match. */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (header === undefined) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    values.push(pair.slice(eq + 1).trim());
  }
  return values;
}

/** The first value of a comma-separated forwarding header, lower-cased. */
const firstForwarded = (c: Context, header: string): string | undefined => c.req.header(header)?.split(',')[0]?.trim().toLowerCase() || undefined;

/** https when the request URL says so, or (only with trustProxy) when X-Forwarded-Proto does. */
export function isSecureRequest(c: Context, trustProxy: number): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true;
  return trustProxy > 0 && firstForwarded(c, 'x-forwarded-proto') === 'https';
}

/** The origin the browser sees: the request URL's, or with trustProxy X-Forwarded-Proto/-Host when present. */
export function requestOrigin(c: Context, trustProxy: number): string {
  const url = new URL(c.req.url);
  const proto = isSecureRequest(c, trustProxy) ? 'https:' : url.protocol;
  const host = (trustProxy > 0 ? firstForwarded(c, 'x-forwarded-host') : undefined) ?? url.host;
  return `${proto}//${host}`;
}

/**
 * Why a browser request must not act on the session cookie, or undefined when it may.
 * SameSite=Strict already keeps the cookie off cross-site requests; this is the second lock, and it
 * also refuses `same-site` (a sibling subdomain, which SameSite lets through). A request without
 * Fetch Metadata and without Origin (an old browser, curl) is judged by the cookie alone.
 */
export function crossSiteReason(c: Context, trustProxy: number): string | undefined {
  const site = c.req.header('sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site') return `came from another site (Sec-Fetch-Site: ${site})`;
  const origin = c.req.header('origin');
  if (origin !== undefined && origin !== requestOrigin(c, trustProxy)) {
    return `has Origin ${origin}, not ${requestOrigin(c, trustProxy)} (behind a proxy: pass the Host header through, or set trustProxy)`;
  }
  return undefined;
}

/** Characters a Set-Cookie Path cannot carry as they are. */
const UNSAFE_IN_PATH = /[^\x21-\x7e]|[;,]/g;

/**
 * The path the app is mounted at, as the browser sent it ('' at the root): the request's raw path
 * minus the route's own path. Used as the cookies' Path, so a mounted app's cookies stay off the
 * host's other paths.
 */
export function mountPrefix(c: Context, routePath: string): string {
  const raw = new URL(c.req.url).pathname;
  const prefix = raw.endsWith(routePath) ? raw.slice(0, raw.length - routePath.length) : c.req.path.slice(0, Math.max(0, c.req.path.length - routePath.length));
  return prefix.replace(/\/+$/, '').replace(UNSAFE_IN_PATH, (ch) => encodeURIComponent(ch));
}

/** A relative URL from the request to the page at the mount root (`prefix` from mountPrefix). */
export function pageHref(c: Context, prefix: string): string {
  const raw = new URL(c.req.url).pathname;
  const dir = raw.slice(0, raw.lastIndexOf('/') + 1);
  const below = dir.startsWith(`${prefix}/`) ? dir.slice(prefix.length + 1) : '';
  const ups = below.split('/').filter((s) => s !== '').length;
  if (prefix === '') return ups === 0 ? './' : '../'.repeat(ups);
  return `${'../'.repeat(ups + 1)}${prefix.slice(prefix.lastIndexOf('/') + 1)}`;
}

export interface CookieOptions {
  path: string;
  maxAgeSeconds: number;
  httpOnly: boolean;
  secure: boolean;
}

/** A Set-Cookie value (Hono's generateCookie); SameSite=Strict always, Path `/` for an app at the root. */
export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  return generateCookie(name, value, {
    maxAge: Math.floor(o.maxAgeSeconds),
    path: o.path === '' ? '/' : o.path,
    httpOnly: o.httpOnly,
    secure: o.secure,
    sameSite: 'Strict',
  });
}
