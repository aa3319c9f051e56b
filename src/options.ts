import { constants as bufferConstants } from 'node:buffer';
import path from 'node:path';
import { OptionsError } from './errors.js';

/** How databases are fixed in time relative to each other (see docs/guarantees.md "One point in time"). */
export type PinMode = 'none' | 'all' | 'all-blocking';

/**
 * How each snapshot is checked before it is shipped: `'quick'` runs `PRAGMA quick_check` (the
 * default); `'none'` ships it unchecked and says so in the manifest (`quickCheck: "skipped"`).
 */
export type CheckMode = 'quick' | 'none';

/** Where log lines go; pino's logger fits, and so does `console`. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What to look for in a data directory. */
export interface ScanOptions {
  /** The folder that holds the databases. Required. */
  dataDir: string;
  /** File name endings that may hold a SQLite database. Default `['.db']`. */
  extensions?: readonly string[];
  /** Look into subfolders too, keeping relative paths. Default `false`. */
  recursive?: boolean;
  /** Asset folders relative to `dataDir`, archived file by file. Default: `['assets']` when it exists. */
  assets?: readonly string[];
  /** The application version written to `VERSION`. Default: `<dataDir>/VERSION`, else dbzip's own version. */
  version?: string;
}

/**
 * Encrypt the archive with age as it streams (see docs/encryption.md): to X25519 public keys
 * (`age1…`, what `age-keygen` prints), or to one passphrase (meant for the CLI's prompt).
 */
export type EncryptOptions = { readonly recipients: readonly string[] } | { readonly passphrase: string };

/** Decrypt an age-encrypted archive: with X25519 identities (`AGE-SECRET-KEY-1…` lines of an identity file), or the passphrase. */
export type DecryptOptions = { readonly identities: readonly string[] } | { readonly passphrase: string };

export interface BackupOptions extends ScanOptions {
  /** Only these databases, by their path in the zip (`app.db`, `sub/x.db`). Default: all. */
  databases?: readonly string[];
  /** Fail instead of skipping a `.db` file that cannot be archived. Default `false`. */
  strict?: boolean;
  /** 0 stores entries uncompressed; 1 to 9 deflate at that level. Default `DEFAULTS.level`. */
  level?: number;
  /** Largest database image held in memory, in bytes. Default `DEFAULTS.maxDatabaseBytes`. */
  maxDatabaseBytes?: number;
  /** How long to wait for a lock held by a writer, in ms. Default `DEFAULTS.busyTimeoutMs`. */
  busyTimeoutMs?: number;
  /**
   * `'quick'` checks every snapshot with `PRAGMA quick_check` and skips one that fails; `'none'`
   * ships snapshots unchecked, recorded as `quickCheck: "skipped"` (for harnesses that verify the
   * archive themselves, and databases too big to check twice). Default `DEFAULTS.check`.
   */
  check?: CheckMode;
  /** Fix every WAL database at one shared moment before reading any. Default `DEFAULTS.pin`. */
  pin?: PinMode;
  /**
   * Databases to pin first, in this order; the rest follow by path. Pin a database before the ones
   * your application writes earlier in the same operation (it writes a.db then b.db: pin b.db first),
   * so a pinned backup never holds the later write without the earlier one.
   */
  pinOrder?: readonly string[];
  /** Entry times and `createdAt`; fix it (for example from SOURCE_DATE_EPOCH) for byte-identical zips. Default: now. */
  date?: Date;
  /** Cancels the backup; the stream then ends with an AbortedError. */
  signal?: AbortSignal;
  /** Receives skips and failures. Default: silent. */
  logger?: Logger;
  /** Encrypt the archive with age; `size` stays exact. Default: not encrypted. */
  encrypt?: EncryptOptions;
}

export type ResolvedScanOptions = Required<Omit<ScanOptions, 'assets' | 'version'>> & {
  assets: readonly string[] | undefined;
  version: string | undefined;
};

export interface ResolvedBackupOptions extends ResolvedScanOptions {
  databases: readonly string[] | undefined;
  strict: boolean;
  level: number;
  maxDatabaseBytes: number;
  busyTimeoutMs: number;
  check: CheckMode;
  pin: PinMode;
  pinOrder: readonly string[];
  date: Date | undefined;
  signal: AbortSignal | undefined;
  logger: Logger;
  encrypt: EncryptOptions | undefined;
}

/** Every default in one place. */
export const DEFAULTS = {
  extensions: ['.db'] as readonly string[],
  recursive: false,
  /** Default asset folder, used only when it exists. */
  assetFolder: 'assets',
  strict: false,
  /** Store: database pages compress well but deflate runs far below disk speed; see docs/design.md "Compression default". */
  level: 0,
  /** 2 GiB: a snapshot is held in memory twice while it is checked, so this needs about 4 GiB of RAM at peak. */
  maxDatabaseBytes: 2 * 1024 ** 3,
  busyTimeoutMs: 5_000,
  /** Never ship an unchecked snapshot unless asked to (STYLE.md habit 7). */
  check: 'quick' as CheckMode,
  pin: 'all' as PinMode,
} as const;

/** Node cannot hold a larger Buffer, and `serialize()` returns one Buffer. */
export const MAX_BUFFER_BYTES = bufferConstants.MAX_LENGTH;

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

const PIN_MODES: readonly PinMode[] = ['none', 'all', 'all-blocking'];
export const CHECK_MODES: readonly CheckMode[] = ['quick', 'none'];

/** Keys that look like ours but are not, caught early as better-sqlite3 does with `readOnly`. */
const MISSPELLINGS: Record<string, string> = {
  datadir: 'dataDir',
  data_dir: 'dataDir',
  compression: 'level',
  compressionLevel: 'level',
  asset: 'assets',
  database: 'databases',
  maxBytes: 'maxDatabaseBytes',
};

/**
 * Refuses any key that is not an option: a misspelt option silently ignored is an option not applied.
 * `known` is a record over every key of the options type, so adding an option without listing it
 * fails to compile.
 */
export function checkKeys(options: object, known: Record<string, true>, misspellings: Record<string, string> = MISSPELLINGS): void {
  for (const key of Object.keys(options)) {
    const meant = misspellings[key];
    if (meant !== undefined) throw new OptionsError(`unknown option "${key}"; did you mean "${meant}"?`);
    if (known[key] !== true) throw new OptionsError(`unknown option "${key}"`);
  }
}

const BACKUP_KEYS = {
  dataDir: true, extensions: true, recursive: true, assets: true, version: true, databases: true, strict: true, level: true,
  maxDatabaseBytes: true, busyTimeoutMs: true, check: true, pin: true, pinOrder: true, date: true, signal: true, logger: true, encrypt: true,
} as const satisfies Record<keyof BackupOptions, true>;
const SCAN_KEYS = {
  dataDir: true, extensions: true, recursive: true, assets: true, version: true,
} as const satisfies Record<keyof ScanOptions, true>;

/** Option validators shared by every options module; messages name the option. */
export function stringList(name: string, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) {
    throw new OptionsError(`option "${name}" must be an array of non-empty strings`);
  }
  return value as string[];
}

export function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new OptionsError(`option "${name}" must be true or false`);
  return value;
}

export function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(`option "${name}" must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Bech32 (lower case) X25519 recipient, as age-keygen prints it; the checksum is checked when the header is built. */
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const AGE_IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

function onlyKeys(name: string, value: object, keys: readonly string[]): void {
  const found = Object.keys(value);
  if (found.length !== 1 || !keys.includes(found[0]!)) {
    throw new OptionsError(`option "${name}" must be an object with exactly one of ${keys.map((k) => `"${k}"`).join(' or ')}`);
  }
}

function passphrase(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new OptionsError(`option "${name}.passphrase" must be a non-empty string`);
  return value;
}

/** Validates `encrypt`; messages give a key's position, never the key. */
export function resolveEncrypt(name: string, value: unknown): EncryptOptions | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') throw new OptionsError(`option "${name}" must be an object`);
  onlyKeys(name, value, ['recipients', 'passphrase']);
  if ('passphrase' in value) return { passphrase: passphrase(name, value.passphrase) };
  const recipients = (value as { recipients: unknown }).recipients;
  if (!Array.isArray(recipients) || recipients.length === 0) throw new OptionsError(`option "${name}.recipients" must be a non-empty array of age recipients (age1…)`);
  recipients.forEach((r: unknown, i) => {
    if (typeof r !== 'string' || !AGE_RECIPIENT.test(r)) {
      throw new OptionsError(`option "${name}.recipients"[${i}] is not an X25519 age recipient (age1 followed by 58 characters, as age-keygen prints)`);
    }
  });
  return { recipients: [...new Set(recipients as string[])] };
}

/** Validates `decrypt`; messages give an identity's position, never the identity. */
export function resolveDecrypt(name: string, value: unknown): DecryptOptions | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') throw new OptionsError(`option "${name}" must be an object`);
  onlyKeys(name, value, ['identities', 'passphrase']);
  if ('passphrase' in value) return { passphrase: passphrase(name, value.passphrase) };
  const identities = (value as { identities: unknown }).identities;
  if (!Array.isArray(identities) || identities.length === 0) throw new OptionsError(`option "${name}.identities" must be a non-empty array of age identities (AGE-SECRET-KEY-1…)`);
  identities.forEach((id: unknown, i) => {
    if (typeof id !== 'string' || !AGE_IDENTITY.test(id)) {
      throw new OptionsError(`option "${name}.identities"[${i}] is not an X25519 age identity (AGE-SECRET-KEY-1…; post-quantum and plugin identities are not supported)`);
    }
  });
  return { identities: [...identities as string[]] };
}

/** dbzip's own folder in a data directory (spool, pre-restore backups): never archived, never restored into. */
export const PRIVATE_FOLDER = '.dbzip';

/** An asset folder or database name must stay inside the data directory, and out of dbzip's own folder. */
function relativeInside(name: string, value: string): string {
  const normal = path.posix.normalize(value.replaceAll('\\', '/')).replace(/\/+$/, '');
  if (normal === '' || normal === '.' || path.posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../')) {
    throw new OptionsError(`option "${name}" must name a path inside the data directory, got "${value}"`);
  }
  if (normal.split('/')[0] === PRIVATE_FOLDER) {
    throw new OptionsError(`option "${name}": "${value}" is inside dbzip's private folder ${PRIVATE_FOLDER}/, which is never archived or restored`);
  }
  return normal;
}

/** Validated file endings, lower-cased; undefined when not given. */
export function extensionList(name: string, value: unknown): readonly string[] | undefined {
  const extensions = stringList(name, value);
  for (const ext of extensions ?? []) {
    if (!ext.startsWith('.') || ext.includes('/')) throw new OptionsError(`option "${name}": "${ext}" must start with "." and hold no "/"`);
  }
  return extensions?.map((e) => e.toLowerCase());
}

/** Validated asset folders, normalised; undefined when not given. */
export function assetFolderList(name: string, value: unknown): readonly string[] | undefined {
  return stringList(name, value)?.map((folder) => relativeInside(name, folder));
}

export function resolveScanOptions(options: ScanOptions, known: Record<string, true> = SCAN_KEYS): ResolvedScanOptions {
  if (options === null || typeof options !== 'object') throw new OptionsError('options must be an object');
  checkKeys(options, known);
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) {
    throw new OptionsError('option "dataDir" is required and must be a non-empty string');
  }
  if (options.version !== undefined && (typeof options.version !== 'string' || options.version.trim() === '')) {
    throw new OptionsError('option "version" must be a non-empty string');
  }
  return {
    dataDir: path.resolve(options.dataDir),
    extensions: extensionList('extensions', options.extensions) ?? DEFAULTS.extensions,
    recursive: bool('recursive', options.recursive, DEFAULTS.recursive),
    assets: assetFolderList('assets', options.assets),
    version: options.version?.trim(),
  };
}

export function resolveBackupOptions(options: BackupOptions): ResolvedBackupOptions {
  const scan = resolveScanOptions(options, BACKUP_KEYS);
  if (options.pin !== undefined && !PIN_MODES.includes(options.pin)) {
    throw new OptionsError(`option "pin" must be one of ${PIN_MODES.join(', ')}, got ${String(options.pin)}`);
  }
  if (options.check !== undefined && !CHECK_MODES.includes(options.check)) {
    throw new OptionsError(`option "check" must be one of ${CHECK_MODES.join(', ')}, got ${String(options.check)}`);
  }
  if (options.date !== undefined && (!(options.date instanceof Date) || Number.isNaN(options.date.getTime()))) {
    throw new OptionsError('option "date" must be a valid Date');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new OptionsError('option "signal" must be an AbortSignal');
  }
  return {
    ...scan,
    databases: stringList('databases', options.databases)?.map((d) => relativeInside('databases', d)),
    strict: bool('strict', options.strict, DEFAULTS.strict),
    level: integer('level', options.level, DEFAULTS.level, 0, 9),
    maxDatabaseBytes: integer('maxDatabaseBytes', options.maxDatabaseBytes, DEFAULTS.maxDatabaseBytes, 1, MAX_BUFFER_BYTES),
    busyTimeoutMs: integer('busyTimeoutMs', options.busyTimeoutMs, DEFAULTS.busyTimeoutMs, 0, 600_000),
    check: options.check ?? DEFAULTS.check,
    pin: options.pin ?? DEFAULTS.pin,
    pinOrder: stringList('pinOrder', options.pinOrder)?.map((d) => relativeInside('pinOrder', d)) ?? [],
    date: options.date,
    signal: options.signal,
    logger: options.logger ?? silentLogger,
    encrypt: resolveEncrypt('encrypt', options.encrypt),
  };
}
