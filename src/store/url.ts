/**
 * Store URLs: `s3://bucket/prefix?endpoint=…&region=…&path-style=true`, `file:///folder`, or a folder
 * path. Credentials never come from the URL: a URL with a user or password is refused (and not
 * echoed, as it may hold a secret); they come from the standard AWS variables or a credentials file.
 */
import path from 'node:path';
import { StoreUrlError } from '../errors.js';

export interface FolderLocation {
  kind: 'folder';
  folder: string;
}

export interface S3Location {
  kind: 's3';
  bucket: string;
  /** Key prefix without leading or trailing `/`; '' for the bucket's top. */
  prefix: string;
  /** Custom endpoint (MinIO, R2, B2, Garage…); undefined: AWS itself. */
  endpoint: string | undefined;
  region: string | undefined;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. Default: true with a custom endpoint. */
  pathStyle: boolean | undefined;
}

export type StoreLocation = FolderLocation | S3Location;

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SEGMENT = /^[A-Za-z0-9._-]{1,200}$/;
const REGION = /^[a-z0-9-]{1,64}$/;
const S3_PARAMS = new Set(['endpoint', 'region', 'path-style']);

function switchParam(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new StoreUrlError(`store URL parameter "${name}" must be true or false, got ${JSON.stringify(value)}`);
}

function parseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new StoreUrlError(`store URL parameter "endpoint" must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (url.username !== '' || url.password !== '') throw new StoreUrlError('store URL parameter "endpoint" holds credentials; they never go in a URL (use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a credentials file)');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new StoreUrlError(`store URL parameter "endpoint" must be http:// or https://, got ${url.protocol}`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new StoreUrlError('store URL parameter "endpoint" must be just scheme, host and port (the bucket goes after s3://)');
  }
  return url.origin;
}

function parseS3(text: string): S3Location {
  // Checked on the raw text: new URL() would keep a password we must not echo in any message.
  if (/^s3:\/\/[^/?#]*@/i.test(text)) {
    throw new StoreUrlError('a store URL must not hold credentials (user:password@); set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or use a credentials file');
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StoreUrlError(`not a valid store URL: ${JSON.stringify(text)}`);
  }
  const bucket = url.hostname;
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new StoreUrlError(`bucket ${JSON.stringify(bucket)} is not a valid bucket name (3 to 63 lower-case letters, digits, "." and "-")`);
  }
  if (url.port !== '') throw new StoreUrlError('an s3:// URL names a bucket, not a host: put host and port in ?endpoint=');
  if (url.hash !== '') throw new StoreUrlError('a store URL has no #fragment');
  // From the raw text: new URL() would resolve "a/../b" to "b" and hide the trick.
  const rawPath = (text.replace(/^s3:\/\/[^/?#]*/i, '').split(/[?#]/)[0] ?? '').replace(/^\//, '').replace(/\/$/, '');
  const segments = rawPath === '' ? [] : rawPath.split('/');
  for (const segment of segments) {
    if (!SEGMENT.test(segment) || segment === '.' || segment === '..') {
      throw new StoreUrlError(`key prefix ${JSON.stringify(rawPath)}: every part must be letters, digits, ".", "_" or "-" (and not "." or "..")`);
    }
  }
  const location: S3Location = { kind: 's3', bucket, prefix: segments.join('/'), endpoint: undefined, region: undefined, pathStyle: undefined };
  for (const [key, value] of url.searchParams) {
    if (!S3_PARAMS.has(key)) throw new StoreUrlError(`unknown store URL parameter "${key}" (known: ${[...S3_PARAMS].join(', ')})`);
    if (key === 'endpoint') location.endpoint = parseEndpoint(value);
    else if (key === 'region') {
      if (!REGION.test(value)) throw new StoreUrlError(`store URL parameter "region" must be a region name like eu-central-1 or auto, got ${JSON.stringify(value)}`);
      location.region = value;
    } else location.pathStyle = switchParam(key, value);
  }
  return location;
}

/**
 * Parses a store URL; a folder path is resolved against `cwd`. Throws StoreUrlError (exit 2, HTTP 400)
 * with the reason.
 */
export function parseStoreUrl(text: string, cwd: string = process.cwd()): StoreLocation {
  if (typeof text !== 'string' || text.trim() === '') throw new StoreUrlError('a store URL must be a non-empty string: s3://bucket/prefix or a folder');
  const value = text.trim();
  if (/^s3:/i.test(value)) return parseS3(value);
  if (/^file:/i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new StoreUrlError(`not a valid file: URL: ${JSON.stringify(value)}`);
    }
    if (url.host !== '' || url.search !== '' || url.hash !== '') throw new StoreUrlError('a file: store URL is file:///absolute/folder, with no host, query or fragment');
    return { kind: 'folder', folder: path.resolve(decodeURIComponent(url.pathname)) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new StoreUrlError(`unsupported store URL scheme in ${JSON.stringify(value.split('://')[0])}://: use s3://bucket/prefix, file:///folder or a folder path`);
  }
  if (value.includes('\0')) throw new StoreUrlError('a store folder path must not hold a NUL character');
  return { kind: 'folder', folder: path.resolve(cwd, value) };
}

/** How a location is shown in logs, messages and the page: never a credential. */
export function displayLocation(location: StoreLocation): string {
  if (location.kind === 'folder') return location.folder;
  const where = `s3://${location.bucket}${location.prefix === '' ? '' : `/${location.prefix}`}`;
  return location.endpoint === undefined ? where : `${where} (${location.endpoint})`;
}
