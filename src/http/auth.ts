import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { DbzipError } from '../errors.js';
import type { ResolvedAuth } from './options.js';
import { crossSiteReason, type Sessions } from './session.js';

export const MIN_API_KEY_LENGTH = 16;

/** Words and runs that make a key guessable, matched case-insensitively with separators removed. */
const PLACEHOLDERS = [
  'changeme', 'change', 'password', 'passwd', 'passw0rd', 'secret', 'testing', 'test', 'example', 'sample',
  'default', 'admin', 'root', 'apikey', 'api', 'key', 'token', 'dbzip', 'letmein', 'qwerty', 'asdf', 'abcd',
  'your', 'here', 'replace', 'todo', 'fixme', 'insert', 'dummy', 'demo', 'xxx', 'foo', 'bar', 'my', '1234',
].sort((a, b) => b.length - a.length);

const HOW_TO = 'generate one with: openssl rand -base64 32';

/**
 * Why a key is too weak to guard a copy of every database, or undefined when it is fine.
 * The reason never repeats the key, so it is safe to print and log.
 */
export function apiKeyWeakness(key: string): string | undefined {
  if (key.length < MIN_API_KEY_LENGTH) return `it has ${key.length} characters, at least ${MIN_API_KEY_LENGTH} are required; ${HOW_TO}`;
  if (new Set(key).size < 8) return `it repeats a handful of characters; ${HOW_TO}`;
  const plain = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  let rest = plain;
  for (const word of PLACEHOLDERS) rest = rest.replaceAll(word, ' ');
  // What is left once placeholder words and digits are gone is what an attacker has to guess.
  if (rest !== plain && rest.replace(/[\s\d]/g, '').length < 8) return `it looks like a placeholder (such as "changeme" or "secret-api-key-123"); ${HOW_TO}`;
  return undefined;
}

/** Keys are compared as SHA-256 digests: equal lengths, so timingSafeEqual leaks neither content nor length. */
export const keyDigest = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/** X-API-Key, else `Authorization: Bearer <key>`. Never the query string: URLs end up in logs and histories. */
function presentedKey(c: Context): string | undefined {
  const header = c.req.header('x-api-key')?.trim();
  if (header !== undefined && header !== '') return header;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(c.req.header('authorization') ?? '');
  return match?.[1];
}

export const UNAUTHORIZED_MESSAGE =
  'a valid API key is required: send it in the X-API-Key header or as Authorization: Bearer <key> (in a browser: sign in on the page)';
export const FORBIDDEN_MESSAGE =
  'dbzip has no API key configured, so it serves nothing: the operator must pass auth: { apiKey } to createApp ' +
  '(or auth: { none: true } when the host application already authenticates this path)';
/** Followed by crossSiteReason(): "… and this request came from another site (…)". */
export const CROSS_SITE_MESSAGE = "cross-site request refused: dbzip's browser session works only from its own page, and this request";

/** Whether `key` is the configured one, compared in constant time. */
export function keyMatches(auth: Extract<ResolvedAuth, { kind: 'key' }>, key: string): boolean {
  return timingSafeEqual(auth.digest, keyDigest(key));
}

/**
 * Guards a route: the API key (header), or else a valid session cookie from a same-origin browser
 * request. A request that sends a key is judged by the key alone. Failures throw, so the one error
 * handler writes the answer.
 */
export function requireAuth(auth: ResolvedAuth, sessions: Sessions | undefined, trustProxy: number): MiddlewareHandler {
  if (auth.kind === 'none') return async (_c, next) => next();
  if (auth.kind === 'unconfigured') {
    return async () => {
      throw new DbzipError('FORBIDDEN', FORBIDDEN_MESSAGE);
    };
  }
  return async (c, next) => {
    const key = presentedKey(c);
    // A missing key is hashed too, so every failure takes the same path; the message never says which part was wrong.
    const matches = keyMatches(auth, key ?? '');
    if (key === undefined && sessions?.fromRequest(c) === true) {
      const reason = crossSiteReason(c, trustProxy);
      if (reason !== undefined) throw new DbzipError('FORBIDDEN', `${CROSS_SITE_MESSAGE} ${reason}`);
      return next();
    }
    if (key === undefined || !matches) throw new DbzipError('UNAUTHORIZED', UNAUTHORIZED_MESSAGE);
    await next();
  };
}
