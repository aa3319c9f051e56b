import path from 'node:path';
import { FILE_PREFIX_PATTERN } from '../archive/file-name.js';
import { OptionsError } from '../errors.js';
import { integer, resolveBackupOptions, resolveDecrypt, type BackupOptions, type DecryptOptions, type Logger, type ResolvedBackupOptions } from '../options.js';
import { checkRetention } from '../store/retention.js';
import { resolveStoreOptions, type ResolvedStoreOptions, type StoreOption } from '../store/open.js';
import type { BackupStore } from '../store/store.js';
import { apiKeyWeakness, keyDigest } from './auth.js';
import { checkSchedule, type ScheduleOption } from './stored-backups.js';

/**
 * Who may call the protected routes. "No auth" is a choice you spell out (`{ none: true }`),
 * never what you get by leaving a key out: a missing key (`apiKey: process.env.X` while X is unset)
 * makes every protected route answer 403 until it is configured.
 */
export type AuthOption = { apiKey: string | undefined } | { none: true };

/** At most `max` requests per client address within `windowMs`, on every route but health. */
export interface RateLimitOption {
  max: number;
  windowMs: number;
}

/**
 * Options of `createApp`. The backup options (dataDir, extensions, assets, level, pin, …) apply to
 * every download; a request may narrow `databases` and set `level` with query parameters.
 */
export interface AppOptions extends Omit<BackupOptions, 'signal' | 'logger' | 'date'> {
  /** Required in practice: `{ apiKey }` (16+ characters, not a placeholder) or `{ none: true }`. Without it protected routes answer 403. */
  auth?: AuthOption | undefined;
  /** Backups running at once; the next request gets 429 with Retry-After. Default `HTTP_DEFAULTS.maxConcurrent`. */
  maxConcurrent?: number;
  /** Download name: `<filePrefix>-backup-<UTC yyyymmdd-hhmmss>.zip`. Default `HTTP_DEFAULTS.filePrefix`. */
  filePrefix?: string;
  /**
   * Proxies in front of dbzip whose X-Forwarded-For is believed: `true` means one. The client address is
   * then taken that many entries from the right, so a client cannot spoof it. Default: X-Forwarded-For ignored.
   */
  trustProxy?: boolean | number;
  /** Per-client request limit (by the address above). Default: none. */
  rateLimit?: RateLimitOption | undefined;
  /**
   * A download whose client takes longer than this to accept the next 64 KiB is cut off, freeing its slot,
   * its image in memory and (when pinned) the read transaction that keeps SQLite from checkpointing the WAL.
   * Time the server spends snapshotting does not count. 0 disables. Default `HTTP_DEFAULTS.stallTimeoutMs`.
   */
  stallTimeoutMs?: number;
  /**
   * How long a browser stays signed in after entering the key on the page (GET /). The expiry is part of the
   * signed cookie value, so it holds whatever the browser does. Default `HTTP_DEFAULTS.sessionTtlMs` (12 h).
   */
  sessionTtlMs?: number;
  /**
   * Largest archive `POST /api/restore` accepts, in bytes. A larger Content-Length is refused before
   * anything is read; an upload without one is cut off at the limit. Either way 413, and the spooled
   * part is removed. The upload is spooled to `<dataDir>/.dbzip/`, so that file system needs the room.
   * Default `HTTP_DEFAULTS.maxUploadBytes` (8 GiB).
   */
  maxUploadBytes?: number;
  /**
   * Receives one line per request and an audit line per download or restore (pino fits). createApp's default:
   * silent, so an embedding app's stdout stays its own; startServer's default: pino JSON lines on stdout.
   */
  logger?: Logger;
  /**
   * Where stored backups go (docs/stores.md): a folder, `s3://bucket/prefix?endpoint=…`, `{ url, credentials, … }`,
   * or an already opened store. Enables the /api/backups routes and the page's "Stored backups" card.
   * Default: none; with `schedule` alone, `<dataDir>/.dbzip/backups`.
   */
  store?: StoreOption | BackupStore | undefined;
  /** Back up into the store on this cron schedule (`"0 3 * * *"`, or `{ cron, timezone }`; time zone default UTC). Default: none. */
  schedule?: string | ScheduleOption | undefined;
  /** After each successful stored backup, keep this many of the newest (at least 1) and delete older ones. Default: keep all. */
  keep?: number | undefined;
  /** With `keep`: also keep every backup younger than this many days. */
  keepDays?: number | undefined;
  /**
   * Identities (`AGE-SECRET-KEY-1…`) that `POST /api/restore` decrypts age-encrypted uploads with, and
   * the stored-backup verify and restore routes a `.zip.age` with. Only the server's own: a request never
   * brings a key. Without it an encrypted archive gets 422. Default: none. (`encrypt`, from the backup
   * options, covers downloads and stored backups alike.)
   */
  decrypt?: { identities: readonly string[] };
}

/** Options of `startServer`: the app's, plus where to listen and how to stop. */
export interface ServerOptions extends AppOptions {
  /** Default `HTTP_DEFAULTS.host` (loopback). `{ none: true }` auth is refused on any other host. */
  host?: string;
  /** 0 picks a free port (see the returned `url`). Default `HTTP_DEFAULTS.port`. */
  port?: number;
  /** How long `close()` lets running downloads finish before cutting them off. Default `HTTP_DEFAULTS.shutdownTimeoutMs`. */
  shutdownTimeoutMs?: number;
}

/** Every HTTP default in one place. */
export const HTTP_DEFAULTS = {
  maxConcurrent: 2,
  filePrefix: 'dbzip',
  trustProxy: 0,
  host: '127.0.0.1',
  port: 8080,
  shutdownTimeoutMs: 30_000,
  stallTimeoutMs: 60_000,
  sessionTtlMs: 12 * 3_600_000,
  /** 8 GiB: the largest archive POST /api/restore accepts. */
  maxUploadBytes: 8 * 1024 ** 3,
  /** Restores running at once per app (the data directory's lock file also keeps other processes out). */
  maxConcurrentRestores: 1,
  /** Retry-After of a 429 for a full backup queue: a guess, as a backup's length is unknown. */
  busyRetryAfterSeconds: 5,
} as const;

/** The key itself is not kept: only its digest, which is all the comparison needs. */
export type ResolvedAuth = { kind: 'key'; digest: Buffer } | { kind: 'none' } | { kind: 'unconfigured' };

export interface ResolvedAppOptions {
  backup: Omit<ResolvedBackupOptions, 'signal' | 'logger' | 'date'>;
  /** The options as given, minus the app's own: passed on to createBackup / inspect. */
  backupOptions: BackupOptions;
  auth: ResolvedAuth;
  maxConcurrent: number;
  filePrefix: string;
  trustProxy: number;
  rateLimit: RateLimitOption | undefined;
  stallTimeoutMs: number;
  sessionTtlMs: number;
  maxUploadBytes: number;
  logger: Logger | undefined;
  decrypt: DecryptOptions | undefined;
  /** Undefined without a store. */
  stored: ResolvedStored | undefined;
}

export interface ResolvedStored {
  store: ResolvedStoreOptions | BackupStore;
  schedule: { cron: string; timezone: string } | undefined;
  retention: { keep: number; keepDays: number | undefined } | undefined;
}

export interface ResolvedServerOptions extends ResolvedAppOptions {
  host: string;
  port: number;
  shutdownTimeoutMs: number;
}

const APP_KEYS = [
  'auth', 'maxConcurrent', 'filePrefix', 'trustProxy', 'rateLimit', 'stallTimeoutMs', 'sessionTtlMs', 'maxUploadBytes', 'logger', 'store', 'schedule', 'keep', 'keepDays', 'decrypt',
] as const;
const SERVER_KEYS = ['host', 'port', 'shutdownTimeoutMs'] as const;

/** Likely slips, caught early (as options.ts does for backup options). */
const MISSPELLINGS: Record<string, string> = {
  apiKey: 'did you mean auth: { apiKey }?',
  key: 'did you mean auth: { apiKey }?',
  noAuth: 'did you mean auth: { none: true }?',
  maxConcurrency: 'did you mean "maxConcurrent"?',
  concurrency: 'did you mean "maxConcurrent"?',
  prefix: 'did you mean "filePrefix"?',
  fileNamePrefix: 'did you mean "filePrefix"?',
  trustProxies: 'did you mean "trustProxy"?',
  idleTimeoutMs: 'did you mean "stallTimeoutMs"?',
  sessionTtl: 'did you mean "sessionTtlMs"?',
  sessionMaxAgeMs: 'did you mean "sessionTtlMs"?',
  maxUploadSize: 'did you mean "maxUploadBytes"?',
  uploadLimit: 'did you mean "maxUploadBytes"?',
  maxBodyBytes: 'did you mean "maxUploadBytes"?',
  hostname: 'did you mean "host"?',
  cron: 'did you mean "schedule"?',
  storeUrl: 'did you mean "store"?',
  retention: 'did you mean "keep" (and "keepDays")?',
  keepLast: 'did you mean "keep"?',
  signal: 'each request has its own signal, aborted when the client goes away',
  date: 'every download is stamped with the time it starts',
};

function resolveAuth(auth: unknown): ResolvedAuth {
  if (auth === undefined) return { kind: 'unconfigured' };
  if (auth === null || typeof auth !== 'object') throw new OptionsError('option "auth" must be { apiKey: string } or { none: true }');
  if ('none' in auth) {
    if (auth.none !== true || 'apiKey' in auth) throw new OptionsError('option "auth": { none: true } takes no other field; to use a key pass { apiKey }');
    return { kind: 'none' };
  }
  if (!('apiKey' in auth)) throw new OptionsError('option "auth" must be { apiKey: string } or { none: true }');
  // A key read from an unset variable is "not configured", which answers 403 until it is set.
  if (auth.apiKey === undefined || auth.apiKey === '') return { kind: 'unconfigured' };
  if (typeof auth.apiKey !== 'string') throw new OptionsError('option "auth.apiKey" must be a string');
  const weakness = apiKeyWeakness(auth.apiKey);
  if (weakness !== undefined) throw new OptionsError(`option "auth.apiKey" is too weak: ${weakness}`);
  return { kind: 'key', digest: keyDigest(auth.apiKey) };
}

function resolveTrustProxy(value: unknown): number {
  if (value === undefined || value === false) return HTTP_DEFAULTS.trustProxy;
  if (value === true) return 1;
  return integer('trustProxy', value, HTTP_DEFAULTS.trustProxy, 0, 32);
}

function resolveRateLimit(value: unknown): RateLimitOption | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') throw new OptionsError('option "rateLimit" must be { max, windowMs }');
  const { max, windowMs } = value as Partial<RateLimitOption>;
  return { max: integer('rateLimit.max', max, 0, 1, 1_000_000), windowMs: integer('rateLimit.windowMs', windowMs, 0, 1, 24 * 3_600_000) };
}

function isLogger(value: unknown): value is Logger {
  const l = value as Partial<Logger> | null;
  return typeof l === 'object' && l !== null && typeof l.info === 'function' && typeof l.warn === 'function' && typeof l.error === 'function';
}

const isStore = (value: unknown): value is BackupStore =>
  typeof value === 'object' && value !== null && typeof (value as BackupStore).put === 'function' && typeof (value as BackupStore).list === 'function';

function resolveStored(options: AppOptions, dataDir: string): ResolvedStored | undefined {
  const { store, schedule, keep, keepDays } = options;
  if (store === undefined && schedule === undefined) {
    if (keep !== undefined || keepDays !== undefined) throw new OptionsError('options "keep" and "keepDays" need a "store" or a "schedule"');
    return undefined;
  }
  if (keepDays !== undefined && keep === undefined) throw new OptionsError('option "keepDays" needs "keep" too (how many of the newest to keep in any case)');
  return {
    store: isStore(store) ? store : resolveStoreOptions(store ?? path.join(dataDir, '.dbzip', 'backups')),
    schedule: schedule === undefined ? undefined : checkSchedule(schedule),
    retention: keep === undefined ? undefined : checkRetention(keep, keepDays),
  };
}

/** Validates everything once, eagerly, with messages that name the option. */
export function resolveAppOptions(options: AppOptions): ResolvedAppOptions {
  if (options === null || typeof options !== 'object') throw new OptionsError('options must be an object');
  for (const key of Object.keys(options)) {
    const meant = MISSPELLINGS[key];
    if (meant !== undefined) throw new OptionsError(`unknown option "${key}": ${meant}`);
  }
  const backupOptions: Record<string, unknown> = { ...options };
  for (const key of [...APP_KEYS, ...SERVER_KEYS]) delete backupOptions[key];
  const { signal: _s, logger: _l, date: _d, ...backup } = resolveBackupOptions(backupOptions as unknown as BackupOptions);
  const filePrefix = options.filePrefix ?? HTTP_DEFAULTS.filePrefix;
  if (typeof filePrefix !== 'string' || !FILE_PREFIX_PATTERN.test(filePrefix)) {
    throw new OptionsError(`option "filePrefix" must be 1 to 64 letters, digits, ".", "_" or "-", got ${JSON.stringify(filePrefix)}`);
  }
  if (options.logger !== undefined && !isLogger(options.logger)) throw new OptionsError('option "logger" must have info, warn and error methods (pino fits)');
  // A passphrase belongs to a person at a prompt, not to a service's configuration.
  if (backup.encrypt !== undefined && 'passphrase' in backup.encrypt) throw new OptionsError('option "encrypt": the server encrypts to recipients (age1…), not to a passphrase');
  const decrypt = resolveDecrypt('decrypt', options.decrypt);
  if (decrypt !== undefined && 'passphrase' in decrypt) throw new OptionsError('option "decrypt": the server decrypts with identities, not a passphrase');
  return {
    backup,
    backupOptions: backupOptions as unknown as BackupOptions,
    auth: resolveAuth(options.auth),
    maxConcurrent: integer('maxConcurrent', options.maxConcurrent, HTTP_DEFAULTS.maxConcurrent, 1, 1_000),
    filePrefix,
    trustProxy: resolveTrustProxy(options.trustProxy),
    rateLimit: resolveRateLimit(options.rateLimit),
    stallTimeoutMs: integer('stallTimeoutMs', options.stallTimeoutMs, HTTP_DEFAULTS.stallTimeoutMs, 0, 3_600_000),
    // A minute to 30 days; the cookie's Max-Age says the same (browsers cap it at 400 days anyway).
    sessionTtlMs: integer('sessionTtlMs', options.sessionTtlMs, HTTP_DEFAULTS.sessionTtlMs, 60_000, 30 * 24 * 3_600_000),
    maxUploadBytes: integer('maxUploadBytes', options.maxUploadBytes, HTTP_DEFAULTS.maxUploadBytes, 1, Number.MAX_SAFE_INTEGER),
    logger: options.logger,
    stored: resolveStored(options, backup.dataDir),
    decrypt,
  };
}

/** 127.0.0.0/8, ::1 and "localhost": the only hosts where serving without a key is allowed. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const app = resolveAppOptions(options);
  const host = options.host ?? HTTP_DEFAULTS.host;
  if (typeof host !== 'string' || host.trim() === '') throw new OptionsError('option "host" must be a non-empty string');
  if (app.auth.kind === 'unconfigured') {
    throw new OptionsError('no API key configured (option "auth"): pass auth: { apiKey }, or auth: { none: true } to serve without one on a loopback host');
  }
  if (app.auth.kind === 'none' && !isLoopbackHost(host)) {
    throw new OptionsError(`auth: { none: true } is refused on host "${host}": without a key, listen on a loopback address (127.0.0.1, ::1, localhost) only`);
  }
  return {
    ...app,
    host,
    port: integer('port', options.port, HTTP_DEFAULTS.port, 0, 65_535),
    shutdownTimeoutMs: integer('shutdownTimeoutMs', options.shutdownTimeoutMs, HTTP_DEFAULTS.shutdownTimeoutMs, 0, 3_600_000),
  };
}
