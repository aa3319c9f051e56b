/**
 * Verifies a dbzip archive end to end without extracting it: structure, manifest, every entry's
 * size, SHA-256 and CRC-32, and `PRAGMA integrity_check` of every database image.
 * Content problems never throw: all of them are collected in the report, so one run tells the
 * whole story. Databases are read into memory one at a time; everything else is streamed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { contentDigest } from '../archive/content-digest.js';
import {
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  MANIFEST_NAME,
  MAX_VERSION_BYTES,
  VERSION_NAME,
  type AssetEntry,
  type DatabaseEntry,
  type Manifest,
  type PinInfo,
  type SkippedEntry,
} from '../archive/manifest.js';
import { ZipReader, entryLabel, entryNameProblem, resolveZipReaderOptions, type RangeSource, type ZipEntry, type ZipReaderOptions } from '../archive/zip-reader.js';
import { ArchiveError, DbzipError, errorMessage, OptionsError } from '../errors.js';
import { DEFAULTS, MAX_BUFFER_BYTES, resolveDecrypt, type DecryptOptions } from '../options.js';
import { checkDatabaseImage, readImageHeader } from '../snapshot/image-check.js';

export interface VerifyOptions extends ZipReaderOptions {
  /** Largest database image read into memory for integrity_check. Default `DEFAULTS.maxDatabaseBytes`. */
  maxDatabaseBytes?: number;
  /** Keys for an age-encrypted archive (`.zip.age`); a plain zip needs none. See docs/encryption.md. */
  decrypt?: DecryptOptions;
}

export interface VerifiedDatabase {
  path: string;
  bytes: number;
  /** `'ok'`, or what integrity_check (or reading the entry) reported instead. */
  integrity: 'ok' | string;
  /**
   * SHA-256 of the image with the header fields SQLite rewrites without a content change zeroed
   * (src/archive/content-digest.ts); restore compares it to tell "unchanged". Absent when the image was not read.
   */
  contentSha256?: string;
}

export interface VerifiedAsset {
  path: string;
  bytes: number;
}

export interface VerifyReport {
  /** True exactly when `problems` is empty. */
  ok: boolean;
  /** Every problem found, in the order found. */
  problems: string[];
  /** The manifest when it was read and is well-formed, else null. */
  manifest: Manifest | null;
  /** The content of `VERSION`, trimmed; null when it could not be read. */
  appVersion: string | null;
  /** Databases listed in the manifest and present in the archive, with their check result. */
  databases: VerifiedDatabase[];
  /** Assets listed in the manifest, present, and read. */
  assets: VerifiedAsset[];
  /** Uncompressed bytes of every entry, as the central directory declares them. */
  totalBytes: number;
  /** True when the archive was age-encrypted (and every byte of it authenticated). */
  encrypted: boolean;
}

/** Roomy for `maxEntries` assets at a few hundred bytes of JSON each. */
const MAX_MANIFEST_BYTES = 64 * 1024 ** 2;

interface ResolvedVerifyOptions {
  zip: ZipReaderOptions;
  maxDatabaseBytes: number;
  decrypt: DecryptOptions | undefined;
}

function resolveVerifyOptions(options: VerifyOptions): ResolvedVerifyOptions {
  if (options === null || typeof options !== 'object') throw new OptionsError('options must be an object');
  const zip = resolveZipReaderOptions(options);
  const { maxDatabaseBytes = DEFAULTS.maxDatabaseBytes } = options;
  if (typeof maxDatabaseBytes !== 'number' || !Number.isInteger(maxDatabaseBytes) || maxDatabaseBytes < 1 || maxDatabaseBytes > MAX_BUFFER_BYTES) {
    throw new OptionsError(`option "maxDatabaseBytes" must be a whole number from 1 to ${MAX_BUFFER_BYTES}, got ${String(maxDatabaseBytes)}`);
  }
  return { zip, maxDatabaseBytes, decrypt: resolveDecrypt('decrypt', options.decrypt) };
}

/** ArchiveErrors from the reader already name the entry; keep their wording. */
function problemsOf(error: unknown, context: string): readonly string[] {
  return error instanceof ArchiveError ? error.problems : [`${context}: ${errorMessage(error)}`];
}

// ---- manifest shape ---------------------------------------------------------------------------

type Check = (value: unknown) => boolean;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString: Check = (v) => typeof v === 'string';
const isCount: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isInteger: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v);
const isSha256: Check = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

// Keyed by the interfaces' own keys, so a field added to the manifest type fails to compile here.
const DATABASE_FIELDS: Record<keyof DatabaseEntry, Check> = {
  path: isString,
  bytes: isCount,
  sha256: isSha256,
  crc32: (v) => typeof v === 'string' && /^[0-9a-f]{8}$/.test(v),
  pageSize: isCount,
  pageCount: isCount,
  journalMode: (v) => v === 'wal' || v === 'rollback',
  userVersion: isInteger,
  // Either way verify runs its own integrity_check on every database.
  quickCheck: (v) => v === 'ok' || v === 'skipped',
  pinned: (v) => typeof v === 'boolean',
};
const ASSET_FIELDS: Record<keyof AssetEntry, Check> = { path: isString, bytes: isCount, sha256: isSha256 };
const SKIPPED_FIELDS: Record<keyof SkippedEntry, Check> = { path: isString, code: isString, reason: isString };
const PIN_FIELDS: Record<keyof PinInfo, Check> = {
  mode: (v) => v === 'none' || v === 'all' || v === 'all-blocking',
  databases: (v) => Array.isArray(v) && v.every((d) => typeof d === 'string'),
  windowMs: (v) => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0),
  notPinned: (v) => v === undefined || (isRecord(v) && Array.isArray(v['databases']) && v['databases'].every((d) => typeof d === 'string') && typeof v['reason'] === 'string'),
};
const MANIFEST_FIELDS: Record<keyof Manifest, Check> = {
  format: (v) => v === MANIFEST_FORMAT,
  formatVersion: (v) => v === MANIFEST_FORMAT_VERSION,
  createdAt: isString,
  dbzipVersion: isString,
  sqliteVersion: isString,
  appVersion: isString,
  level: (v) => isCount(v) && (v as number) <= 9,
  pin: (v) => isRecord(v) && fieldProblems('', v, PIN_FIELDS).length === 0,
  databases: Array.isArray,
  assets: Array.isArray,
  skipped: Array.isArray,
};

function fieldProblems(where: string, value: Record<string, unknown>, fields: Record<string, Check>): string[] {
  return Object.entries(fields)
    .filter(([key, check]) => !check(value[key]))
    .map(([key]) => `${where}: field "${key}" is missing or invalid`);
}

interface ParsedManifest {
  /** The manifest when every field is well-formed. */
  manifest: Manifest | null;
  /** False when it cannot be used at all (unparseable, unknown format, no entry lists): then no entry is "unlisted". */
  usable: boolean;
  /** Well-formed entries, usable even when some other field is malformed. */
  databases: DatabaseEntry[];
  assets: AssetEntry[];
  problems: string[];
}

function parseManifest(bytes: Buffer): ParsedManifest {
  const unusable = (problem: string): ParsedManifest => ({ manifest: null, usable: false, databases: [], assets: [], problems: [problem] });
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    return unusable(`${MANIFEST_NAME} does not parse: ${errorMessage(error)}`);
  }
  if (!isRecord(value)) return unusable(`${MANIFEST_NAME} is not a JSON object`);
  if (value['format'] !== MANIFEST_FORMAT) {
    return unusable(`${MANIFEST_NAME}: format is ${JSON.stringify(value['format'])}, not "${MANIFEST_FORMAT}"`);
  }
  if (value['formatVersion'] !== MANIFEST_FORMAT_VERSION) {
    return unusable(`${MANIFEST_NAME}: formatVersion ${JSON.stringify(value['formatVersion'])} is not one this dbzip knows (${MANIFEST_FORMAT_VERSION})`);
  }
  const problems = fieldProblems(MANIFEST_NAME, value, MANIFEST_FIELDS);
  const databasesValue = value['databases'];
  const assetsValue = value['assets'];
  if (!Array.isArray(databasesValue) || !Array.isArray(assetsValue)) return { manifest: null, usable: false, databases: [], assets: [], problems };

  const seen = new Set<string>();
  function wellFormed<T>(list: unknown[], kind: 'databases' | 'assets', fields: Record<string, Check>): T[] {
    const out: T[] = [];
    list.forEach((item, i) => {
      const where = `${MANIFEST_NAME}: ${kind}[${i}]`;
      if (!isRecord(item)) {
        problems.push(`${where} is not an object`);
        return;
      }
      const itemProblems = fieldProblems(where, item, fields);
      if (itemProblems.length > 0) {
        problems.push(...itemProblems);
        return;
      }
      const path = item['path'] as string;
      // The manifest is trusted no more than the entries: a restore would write to these paths.
      const nameProblem = entryNameProblem(path);
      if (nameProblem !== null) problems.push(`${where}: path ${JSON.stringify(path)}: ${nameProblem}`);
      else if (path === VERSION_NAME || path === MANIFEST_NAME) problems.push(`${where}: path ${JSON.stringify(path)} is reserved`);
      else if (seen.has(path.normalize('NFC'))) problems.push(`${where}: path ${JSON.stringify(path)} is listed more than once`);
      else {
        seen.add(path.normalize('NFC'));
        out.push(item as T);
      }
    });
    return out;
  }
  const databases = wellFormed<DatabaseEntry>(databasesValue, 'databases', DATABASE_FIELDS);
  const assets = wellFormed<AssetEntry>(assetsValue, 'assets', ASSET_FIELDS);
  if (Array.isArray(value['skipped'])) {
    value['skipped'].forEach((item: unknown, i) => {
      const where = `${MANIFEST_NAME}: skipped[${i}]`;
      problems.push(...(isRecord(item) ? fieldProblems(where, item, SKIPPED_FIELDS) : [`${where} is not an object`]));
    });
  }
  return { manifest: problems.length === 0 ? (value as unknown as Manifest) : null, usable: true, databases, assets, problems };
}

// ---- entry checks -----------------------------------------------------------------------------

function compareListed(
  problems: string[],
  label: string,
  listed: { bytes: number; sha256: string },
  actual: { bytes: number; sha256: string },
): void {
  if (actual.bytes !== listed.bytes) problems.push(`${label}: ${actual.bytes} bytes in the archive, ${listed.bytes} in the manifest`);
  if (actual.sha256 !== listed.sha256) problems.push(`${label}: sha256 mismatch (archive ${actual.sha256}, manifest ${listed.sha256})`);
}

async function checkDatabase(reader: ZipReader, entry: ZipEntry, listed: DatabaseEntry, report: VerifyReport, maxDatabaseBytes: number): Promise<void> {
  const label = `database ${JSON.stringify(entry.name)}`;
  if (entry.uncompressedSize > maxDatabaseBytes) {
    // Still worth hashing: the bytes may be right even if this machine cannot check the pages.
    report.problems.push(`${label}: ${entry.uncompressedSize} bytes is over maxDatabaseBytes (${maxDatabaseBytes}); integrity not checked`);
    try {
      const digest = await reader.digestEntry(entry);
      compareListed(report.problems, label, listed, digest);
      report.databases.push({ path: entry.name, bytes: digest.bytes, integrity: 'not checked: over maxDatabaseBytes' });
    } catch (error) {
      report.problems.push(...problemsOf(error, label));
      report.databases.push({ path: entry.name, bytes: entry.uncompressedSize, integrity: `not checked: ${errorMessage(error)}` });
    }
    return;
  }

  let image: Buffer;
  try {
    image = await reader.readEntry(entry, maxDatabaseBytes);
  } catch (error) {
    report.problems.push(...problemsOf(error, label));
    report.databases.push({ path: entry.name, bytes: entry.uncompressedSize, integrity: `not checked: ${errorMessage(error)}` });
    return;
  }
  const digest = { bytes: image.length, sha256: createHash('sha256').update(image).digest('hex') };
  compareListed(report.problems, label, listed, digest);
  // The reader has matched the bytes to the central directory's CRC; when the hash agrees too, a
  // different manifest CRC means the writer recorded it wrongly.
  const crc = entry.crc32.toString(16).padStart(8, '0');
  if (digest.sha256 === listed.sha256 && crc !== listed.crc32) report.problems.push(`${label}: crc32 ${crc} in the archive, ${listed.crc32} in the manifest`);
  try {
    const header = readImageHeader(image);
    if (header.pageSize !== listed.pageSize) report.problems.push(`${label}: page size ${header.pageSize}, manifest says ${listed.pageSize}`);
    if (header.pageCount !== listed.pageCount) report.problems.push(`${label}: ${header.pageCount} pages, manifest says ${listed.pageCount}`);
  } catch (error) {
    report.problems.push(`${label}: ${errorMessage(error)}`);
  }
  const check = checkDatabaseImage(image, 'integrity');
  // integrity_check lists up to 100 findings; a few say enough.
  const integrity = check.ok ? 'ok' : check.messages.slice(0, 5).join('; ');
  if (!check.ok) report.problems.push(`${label}: integrity_check failed: ${integrity}`);
  report.databases.push({ path: entry.name, bytes: image.length, integrity, contentSha256: contentDigest(image) });
}

async function checkAsset(reader: ZipReader, entry: ZipEntry, listed: AssetEntry, report: VerifyReport): Promise<void> {
  const label = `asset ${JSON.stringify(entry.name)}`;
  try {
    const digest = await reader.digestEntry(entry);
    compareListed(report.problems, label, listed, digest);
    report.assets.push({ path: entry.name, bytes: digest.bytes });
  } catch (error) {
    report.problems.push(...problemsOf(error, label));
  }
}

async function readSmall(reader: ZipReader, entry: ZipEntry, maxBytes: number, report: VerifyReport): Promise<Buffer | null> {
  try {
    return await reader.readEntry(entry, maxBytes);
  } catch (error) {
    report.problems.push(...problemsOf(error, entryLabel(entry.name)));
    return null;
  }
}

async function checkContents(reader: ZipReader, report: VerifyReport, maxDatabaseBytes: number): Promise<void> {
  const { problems } = report;
  problems.push(...reader.problems);
  report.totalBytes = reader.entries.reduce((sum, e) => sum + e.uncompressedSize, 0);
  // With part of the central directory unread, "missing" and "unlisted" findings would be noise.
  if (!reader.complete) return;

  const byName = new Map<string, ZipEntry>();
  for (const entry of reader.entries) if (!byName.has(entry.name)) byName.set(entry.name, entry);
  const readable = (entry: ZipEntry | undefined): entry is ZipEntry => entry !== undefined && entry.problems.length === 0;

  const versionEntry = byName.get(VERSION_NAME);
  if (versionEntry === undefined) problems.push(`${VERSION_NAME} is missing`);
  else {
    if (reader.entries[0] !== versionEntry) problems.push(`${VERSION_NAME} is not the first entry`);
    const bytes = readable(versionEntry) ? await readSmall(reader, versionEntry, MAX_VERSION_BYTES, report) : null;
    if (bytes !== null) report.appVersion = bytes.toString('utf8').trim();
  }

  const manifestEntry = byName.get(MANIFEST_NAME);
  let parsed: ParsedManifest | null = null;
  if (manifestEntry === undefined) problems.push(`${MANIFEST_NAME} is missing`);
  else {
    if (reader.entries.at(-1) !== manifestEntry) problems.push(`${MANIFEST_NAME} is not the last entry`);
    const bytes = readable(manifestEntry) ? await readSmall(reader, manifestEntry, MAX_MANIFEST_BYTES, report) : null;
    if (bytes !== null) {
      parsed = parseManifest(bytes);
      problems.push(...parsed.problems);
      report.manifest = parsed.manifest;
    }
  }
  const appVersion = parsed?.manifest?.appVersion;
  if (appVersion !== undefined && report.appVersion !== null && appVersion.trim() !== report.appVersion) {
    problems.push(`${VERSION_NAME} says ${JSON.stringify(report.appVersion)} but the manifest's appVersion is ${JSON.stringify(appVersion)}`);
  }

  const databases = new Map((parsed?.databases ?? []).map((d) => [d.path, d]));
  const assets = new Map((parsed?.assets ?? []).map((a) => [a.path, a]));
  for (const path of databases.keys()) if (!byName.has(path)) problems.push(`database ${JSON.stringify(path)} is in the manifest but not in the archive`);
  for (const path of assets.keys()) if (!byName.has(path)) problems.push(`asset ${JSON.stringify(path)} is in the manifest but not in the archive`);

  // Archive order, so the file is read front to back; refused entries are never inflated.
  for (const entry of reader.entries) {
    if (!readable(entry) || entry === versionEntry || entry === manifestEntry) continue;
    const database = databases.get(entry.name);
    const asset = assets.get(entry.name);
    if (database !== undefined) await checkDatabase(reader, entry, database, report, maxDatabaseBytes);
    else if (asset !== undefined) await checkAsset(reader, entry, asset, report);
    else {
      if (parsed?.usable === true) problems.push(`${entryLabel(entry.name)} is not listed in the manifest`);
      // Still read it: a CRC or size problem is worth knowing even for an unlisted entry.
      try {
        await reader.digestEntry(entry);
      } catch (error) {
        problems.push(...problemsOf(error, entryLabel(entry.name)));
      }
    }
  }
}

/** Throws ArchiveError when `zipPath` is not there to verify; that is not a content problem. */
async function assertFile(zipPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(zipPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ArchiveError([code === 'ENOENT' ? `${zipPath}: no such file` : `${zipPath} cannot be read: ${errorMessage(error)}`], { cause: error });
  }
  if (!stat.isFile()) throw new ArchiveError([`${zipPath} is not a regular file`]);
}

/**
 * Reads the whole archive and reports every problem found. Throws OptionsError for bad options,
 * ArchiveError when the file is missing or unreadable, and DecryptionError when it is age-encrypted
 * and cannot be decrypted and authenticated with `decrypt`; never for what the zip holds.
 * `source` is a file path, or a RangeSource (a stored backup, read with ranged requests; a store
 * that fails while the zip is opened throws its own error).
 */
export async function verifyArchive(source: string | RangeSource, options: VerifyOptions = {}): Promise<VerifyReport> {
  const resolved = resolveVerifyOptions(options);
  if (typeof source === 'string') await assertFile(source);
  const report: VerifyReport = { ok: false, problems: [], manifest: null, appVersion: null, databases: [], assets: [], totalBytes: 0, encrypted: false };
  let reader: ZipReader | undefined;
  try {
    reader = await ZipReader.open(source, resolved.zip, resolved.decrypt);
    report.encrypted = reader.encrypted;
  } catch (error) {
    // A store that failed (network, credentials) says nothing about the archive's content.
    if (error instanceof ArchiveError && error.cause instanceof DbzipError) throw error.cause;
    // The file is there, so failing to open it as a zip is a finding about its content.
    if (!(error instanceof ArchiveError) || (error.cause as NodeJS.ErrnoException | undefined)?.syscall !== undefined) throw error;
    report.problems.push(...error.problems);
  }
  if (reader !== undefined) {
    try {
      await checkContents(reader, report, resolved.maxDatabaseBytes);
    } finally {
      await reader.close();
    }
  }
  report.ok = report.problems.length === 0;
  return report;
}

/** Throws `ArchiveError(report.problems)` unless the report is ok. */
export function assertArchiveValid(report: VerifyReport): void {
  if (!report.ok) throw new ArchiveError(report.problems.length > 0 ? report.problems : ['archive failed verification']);
}
