import path from 'node:path';
import type { RangeSource } from '../archive/zip-reader.js';
import { OptionsError, StoreUrlError } from '../errors.js';
import { integer } from '../options.js';
import { resolveCredentials, type Env, type S3Credentials } from './credentials.js';
import { FolderStore } from './folder-store.js';
import { checkBackupName } from './names.js';
import type { BackupStore } from './store.js';
import { displayLocation, parseStoreUrl, type StoreLocation } from './url.js';

/** Where backups are kept, and how to reach it. A bare string is `{ url }`. */
export interface StoreOptions {
  /** `s3://bucket/prefix?endpoint=…&region=…&path-style=true`, `file:///folder`, or a folder path. Required. */
  url: string;
  /** S3 only: the keys themselves (library use). Default: a credentials file, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */
  credentials?: S3Credentials;
  /** S3 only: an AWS shared-credentials file (`[default]` / AWS_PROFILE section). Default: AWS_SHARED_CREDENTIALS_FILE. */
  credentialsFile?: string;
  /** S3 only: multipart part size for uploads of unknown length; memory use is about twice this. Default `STORE_DEFAULTS.partSizeBytes`. */
  partSizeBytes?: number;
  /** Where the AWS_* variables are read. Default `process.env`. */
  env?: Env;
}

export type StoreOption = string | StoreOptions;

/** Every store default in one place. */
export const STORE_DEFAULTS = {
  /** 8 MiB parts: S3's minimum is 5 MiB; 10,000 parts of 8 MiB allow 78 GiB. */
  partSizeBytes: 8 * 1024 ** 2,
  region: 'us-east-1',
  /** The default folder store, inside the data directory's private folder (never archived). */
  folder: path.join('.dbzip', 'backups'),
} as const;

const MIN_PART = 5 * 1024 ** 2;
const KEYS = new Set(['url', 'credentials', 'credentialsFile', 'partSizeBytes', 'env']);

/** `<dataDir>/.dbzip/backups`: where `--schedule` keeps backups when no store is named. */
export function defaultStoreFolder(dataDir: string): string {
  return path.join(path.resolve(dataDir), STORE_DEFAULTS.folder);
}

export interface ResolvedStoreOptions {
  location: StoreLocation;
  /** For messages and the page; never a credential. */
  display: string;
  credentials: S3Credentials | undefined;
  credentialsFile: string | undefined;
  partSizeBytes: number;
  env: Env;
}

/** Validates eagerly (the URL, the part size); credentials are read when the store is opened. */
export function resolveStoreOptions(option: StoreOption, cwd: string = process.cwd()): ResolvedStoreOptions {
  const options: StoreOptions = typeof option === 'string' ? { url: option } : option;
  if (options === null || typeof options !== 'object') throw new OptionsError('option "store" must be a URL or { url, … }');
  for (const key of Object.keys(options)) if (!KEYS.has(key)) throw new OptionsError(`unknown store option "${key}"`);
  if (typeof options.url !== 'string') throw new StoreUrlError('option "store.url" is required: s3://bucket/prefix or a folder');
  const location = parseStoreUrl(options.url, cwd);
  if (options.credentialsFile !== undefined && (typeof options.credentialsFile !== 'string' || options.credentialsFile === '')) {
    throw new OptionsError('option "store.credentialsFile" must be a non-empty string');
  }
  return {
    location,
    display: displayLocation(location),
    credentials: options.credentials,
    credentialsFile: options.credentialsFile === undefined ? undefined : path.resolve(cwd, options.credentialsFile),
    partSizeBytes: integer('store.partSizeBytes', options.partSizeBytes, STORE_DEFAULTS.partSizeBytes, MIN_PART, 5 * 1024 ** 3),
    env: options.env ?? process.env,
  };
}

/** Opens a store: a folder at once, a bucket once its credentials are read (STORE_DENIED without any). No request is sent yet. */
export async function openStore(option: StoreOption | ResolvedStoreOptions, cwd?: string): Promise<BackupStore> {
  const resolved = typeof option === 'object' && 'location' in option ? option : resolveStoreOptions(option, cwd);
  const { location, env } = resolved;
  if (location.kind === 'folder') return new FolderStore(location.folder);
  const credentials = await resolveCredentials({ credentials: resolved.credentials, credentialsFile: resolved.credentialsFile }, env);
  // Loaded only for a bucket: the AWS SDK adds about 150 ms to every command's start.
  const { S3Store } = await import('./s3-store.js');
  const envEndpoint = env['AWS_ENDPOINT_URL_S3'] ?? env['AWS_ENDPOINT_URL'];
  return new S3Store({
    location,
    credentials,
    region: env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? STORE_DEFAULTS.region,
    endpoint: envEndpoint === undefined || envEndpoint === '' ? undefined : envEndpoint,
    partSizeBytes: resolved.partSizeBytes,
  });
}

/** A stored backup as something verifyArchive can read by ranges, without downloading it. */
export async function storedArchive(store: BackupStore, name: string): Promise<RangeSource> {
  checkBackupName(name);
  const { size } = await store.stat(name);
  return { label: `${store.display}/${name}`, size, readRange: (start, end) => store.getRange(name, start, end) };
}
