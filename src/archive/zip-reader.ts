/**
 * Reads zip files (the only module that imports yauzl). An archive comes from outside, so
 * everything that can be judged from the central directory is judged before any entry is
 * inflated, and every problem is collected rather than stopping at the first. Reads then
 * enforce the same caps while inflating and check each entry's CRC-32, which yauzl does not.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { ArchiveError, DecryptionError, errorMessage, OptionsError } from '../errors.js';
import { AgeFile, ageKind, ageKindOf, armoredError, type DecryptWith } from './age.js';
import { MAX_BUFFER_BYTES } from '../options.js';

export interface ZipReaderOptions {
  /** Most entries an archive may hold. Default `ZIP_READER_DEFAULTS.maxEntries`. */
  maxEntries?: number;
  /** Most uncompressed bytes, summed over all entries, declared and actually inflated. Default `ZIP_READER_DEFAULTS.maxTotalBytes`. */
  maxTotalBytes?: number;
  /** Largest uncompressed : compressed ratio of an entry over `ZIP_READER_DEFAULTS.ratioMinBytes`. Default `ZIP_READER_DEFAULTS.maxRatio`. */
  maxRatio?: number;
}

export type ResolvedZipReaderOptions = Required<ZipReaderOptions>;

/** Every limit's default in one place. */
export const ZIP_READER_DEFAULTS = {
  maxEntries: 100_000,
  /** 64 GiB: far above any data directory dbzip is meant for, far below a disk-filling bomb. */
  maxTotalBytes: 64 * 1024 ** 3,
  /** Deflate tops out near 1032:1, so only a near-perfect run of one byte gets past this. */
  maxRatio: 1000,
  /** Not an option: a small file of spaces compresses past any ratio and harms nobody. */
  ratioMinBytes: 1024 ** 2,
} as const;

/**
 * A zip that is not a local file, read by byte ranges: a backup in a bucket is verified with
 * ranged GETs instead of being downloaded first.
 */
export interface RangeSource {
  /** How the archive is named in messages (a URL or key, never a credential). */
  readonly label: string;
  /** Total bytes. */
  readonly size: number;
  /** Bytes `start` to `end` (exclusive); the stream fails if the source does. */
  readRange(start: number, end: number): Readable;
}

/**
 * yauzl's hook for reading a zip from anything that serves byte ranges: a bucket (RangeSource) or
 * an age-encrypted file (AgeFile: every range is decrypted and authenticated on the way, and
 * closing the zip closes its file).
 */
class RangeReader extends yauzl.RandomAccessReader {
  readonly #source: Pick<RangeSource, 'readRange'> & { close?: () => Promise<void> };

  constructor(source: Pick<RangeSource, 'readRange'> & { close?: () => Promise<void> }) {
    super();
    this.#source = source;
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return this.#source.readRange(start, end);
  }

  override close(callback: (error: Error | null) => void): void {
    if (this.#source.close === undefined) super.close(callback);
    else this.#source.close().then(() => callback(null), (error: Error) => callback(error));
  }
}

/** One entry as the central directory describes it. */
export interface ZipEntry {
  /** Position in the central directory, from 0. */
  readonly index: number;
  /** Decoded name (UTF-8 when flagged, else CP437), backslashes kept so they can be refused. */
  readonly name: string;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** CRC-32 from the central directory; reads compare the inflated bytes to it. */
  readonly crc32: number;
  readonly compressionMethod: number;
  /** Why this entry must not be read; empty when it is safe. Reading a refused entry throws. */
  readonly problems: readonly string[];
}

const UTF8_FLAG = 0x800;
const ENCRYPTED_FLAG = 0x1;
const METHOD_STORE = 0;
const METHOD_DEFLATE = 8;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const DOS_DIRECTORY = 0x10;
/** Fixed part of a local file header; its name follows. */
const LOCAL_HEADER_BYTES = 30;

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new OptionsError(`option "${name}" must be a whole number of at least 1, got ${String(value)}`);
  }
  return value;
}

export function resolveZipReaderOptions(options: ZipReaderOptions = {}): ResolvedZipReaderOptions {
  if (options === null || typeof options !== 'object') throw new OptionsError('options must be an object');
  const { maxRatio } = options;
  if (maxRatio !== undefined && (typeof maxRatio !== 'number' || !Number.isFinite(maxRatio) || maxRatio < 1)) {
    throw new OptionsError(`option "maxRatio" must be a finite number of at least 1, got ${String(maxRatio)}`);
  }
  return {
    maxEntries: positiveInteger('maxEntries', options.maxEntries, ZIP_READER_DEFAULTS.maxEntries),
    maxTotalBytes: positiveInteger('maxTotalBytes', options.maxTotalBytes, ZIP_READER_DEFAULTS.maxTotalBytes),
    maxRatio: maxRatio ?? ZIP_READER_DEFAULTS.maxRatio,
  };
}

/** How an entry is named in problems; JSON quoting makes NUL and control characters visible. */
export function entryLabel(name: string): string {
  return `entry ${JSON.stringify(name)}`;
}

/**
 * Why `name` is unsafe as an entry name, or null. dbzip writes only relative, `/`-separated,
 * normalised file paths, so anything else is refused rather than interpreted.
 */
export function entryNameProblem(name: string): string | null {
  if (name.length === 0) return 'name is empty';
  if (name.includes('\0')) return 'name holds a NUL character';
  if (name.includes('\\')) return 'name holds a backslash';
  if (name.startsWith('/')) return 'name is an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'name starts with a drive letter';
  if (name.endsWith('/')) return 'is a directory entry (dbzip never writes them)';
  const segments = name.split('/');
  if (segments.includes('..')) return 'name has a ".." segment';
  if (segments.some((s) => s === '' || s === '.')) return 'name has an empty or "." segment';
  return null;
}

/** Keeps ArchiveErrors as they are; anything else (zlib, I/O, yauzl) becomes one naming the entry. */
function asArchiveError(error: unknown, entry: ZipEntry): ArchiveError {
  if (error instanceof ArchiveError) return error;
  return new ArchiveError([`${entryLabel(entry.name)}: ${errorMessage(error)}`], { cause: error });
}

interface MutableEntry extends ZipEntry {
  problems: string[];
}

interface Listing {
  entries: MutableEntry[];
  raw: Map<ZipEntry, Entry>;
  problems: string[];
  complete: boolean;
}

/** Problems of one entry that the central directory shows on its own. */
function ownProblems(entry: Entry, name: string, limits: ResolvedZipReaderOptions): string[] {
  const problems: string[] = [];
  if ((entry.generalPurposeBitFlag & UTF8_FLAG) !== 0 && !isUtf8(entry.fileNameRaw)) problems.push('name is flagged UTF-8 but is not valid UTF-8');
  const nameProblem = entryNameProblem(name);
  if (nameProblem !== null) problems.push(nameProblem);
  const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (type === S_IFLNK) problems.push('is a symbolic link');
  else if (type === S_IFDIR || (entry.externalFileAttributes & DOS_DIRECTORY) !== 0) {
    if (!name.endsWith('/')) problems.push('is a directory entry (dbzip never writes them)');
  } else if (type !== 0 && type !== S_IFREG) problems.push(`is a special file (mode ${type.toString(8)})`);
  if ((entry.generalPurposeBitFlag & ENCRYPTED_FLAG) !== 0) problems.push('is encrypted');
  if (entry.compressionMethod !== METHOD_STORE && entry.compressionMethod !== METHOD_DEFLATE) {
    problems.push(`uses compression method ${entry.compressionMethod}; only 0 (store) and 8 (deflate) are allowed`);
  } else if (entry.compressionMethod === METHOD_STORE && entry.compressedSize !== entry.uncompressedSize) {
    problems.push(`is stored uncompressed but its sizes differ (${entry.compressedSize} != ${entry.uncompressedSize})`);
  }
  if (
    entry.uncompressedSize > ZIP_READER_DEFAULTS.ratioMinBytes &&
    entry.uncompressedSize > entry.compressedSize * limits.maxRatio
  ) {
    const ratio = entry.compressedSize === 0 ? 'infinite' : `${Math.round(entry.uncompressedSize / entry.compressedSize)}:1`;
    problems.push(
      `compression ratio ${ratio} (${entry.uncompressedSize} bytes from ${entry.compressedSize}) is over the limit of ${limits.maxRatio}:1 (option maxRatio)`,
    );
  }
  return problems;
}

/** Every central directory record, or as many as could be read (then the listing is incomplete). */
async function readCentralDirectory(zip: ZipFile, listing: Listing): Promise<Entry[]> {
  const rawEntries: Entry[] = [];
  try {
    for await (const entry of zip.eachEntry()) rawEntries.push(entry);
  } catch (error) {
    listing.problems.push(`central directory is malformed after ${rawEntries.length} entries: ${errorMessage(error)}`);
    listing.complete = false;
  }
  return rawEntries;
}

function markDuplicateNames(listing: Listing): void {
  const { problems } = listing;
  // The same name twice is ambiguous (which one wins on extraction?), so every copy is refused.
  // NFC catches `é` written precomposed in one entry and decomposed in another.
  const byName = new Map<string, MutableEntry[]>();
  for (const entry of listing.entries) {
    const key = entry.name.normalize('NFC');
    const group = byName.get(key);
    if (group === undefined) byName.set(key, [entry]);
    else group.push(entry);
  }
  for (const group of byName.values()) {
    if (group.length < 2) continue;
    const names = [...new Set(group.map((e) => e.name))];
    problems.push(
      names.length === 1
        ? `${entryLabel(names[0] ?? '')}: name appears ${group.length} times`
        : `entries ${names.map((n) => JSON.stringify(n)).join(', ')} have the same name after Unicode NFC normalisation`,
    );
    for (const entry of group) entry.problems.push('duplicate name');
  }
}

function markOverlaps(listing: Listing): void {
  const { problems } = listing;
  // Entries whose data overlap share compressed bytes: the trick behind bombs that stay under a
  // per-entry ratio. The local header is at least 30 bytes plus the name before the data starts.
  const byOffset = [...listing.entries].sort(
    (a, b) => (listing.raw.get(a)?.relativeOffsetOfLocalHeader ?? 0) - (listing.raw.get(b)?.relativeOffsetOfLocalHeader ?? 0),
  );
  for (let i = 0; i + 1 < byOffset.length; i++) {
    const a = byOffset[i];
    const b = byOffset[i + 1];
    const rawA = a === undefined ? undefined : listing.raw.get(a);
    const rawB = b === undefined ? undefined : listing.raw.get(b);
    if (a === undefined || b === undefined || rawA === undefined || rawB === undefined) continue;
    const endA = rawA.relativeOffsetOfLocalHeader + LOCAL_HEADER_BYTES + rawA.fileNameLength + rawA.compressedSize;
    if (endA > rawB.relativeOffsetOfLocalHeader) {
      problems.push(`entries ${JSON.stringify(a.name)} and ${JSON.stringify(b.name)} overlap in the file`);
      a.problems.push('overlaps another entry');
      b.problems.push('overlaps another entry');
    }
  }
}

async function listEntries(zip: ZipFile, limits: ResolvedZipReaderOptions): Promise<Listing> {
  const problems: string[] = [];
  const listing: Listing = { entries: [], raw: new Map(), problems, complete: true };
  // Refuse before walking a central directory that claims millions of entries.
  if (zip.entryCount > limits.maxEntries) {
    problems.push(`archive has ${zip.entryCount} entries, over the limit of ${limits.maxEntries} (option maxEntries)`);
    listing.complete = false;
    return listing;
  }

  const rawEntries = await readCentralDirectory(zip, listing);
  let declaredTotal = 0;
  for (const [index, raw] of rawEntries.entries()) {
    // decodeStrings is off (so one bad name cannot end the listing): decode as yauzl would,
    // but strictly, keeping backslashes so they are refused instead of silently turned into `/`.
    const name = yauzl.getFileNameLowLevel(raw.generalPurposeBitFlag, raw.fileNameRaw, raw.extraFields, true);
    const entry: MutableEntry = {
      index,
      name,
      compressedSize: raw.compressedSize,
      uncompressedSize: raw.uncompressedSize,
      crc32: raw.crc32,
      compressionMethod: raw.compressionMethod,
      problems: ownProblems(raw, name, limits),
    };
    for (const problem of entry.problems) problems.push(`${entryLabel(name)}: ${problem}`);
    declaredTotal += raw.uncompressedSize;
    listing.entries.push(entry);
    listing.raw.set(entry, raw);
  }

  markDuplicateNames(listing);
  markOverlaps(listing);
  if (declaredTotal > limits.maxTotalBytes) {
    problems.push(`entries add up to ${declaredTotal} bytes uncompressed, over the limit of ${limits.maxTotalBytes} (option maxTotalBytes)`);
  }
  return listing;
}

/**
 * Passes an entry's bytes through, failing as soon as they run past the declared size or the
 * archive-wide cap, and at the end unless the size and CRC-32 match the central directory.
 */
class EntryCheck extends Transform {
  readonly #entry: ZipEntry;
  readonly #reserve: (bytes: number) => boolean;
  #bytes = 0;
  #crc = 0;

  constructor(entry: ZipEntry, reserve: (bytes: number) => boolean) {
    super();
    this.#entry = entry;
    this.#reserve = reserve;
  }

  #fail(problem: string): ArchiveError {
    return new ArchiveError([`${entryLabel(this.#entry.name)}: ${problem}`]);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#entry.uncompressedSize) {
      callback(this.#fail(`inflates past its declared size of ${this.#entry.uncompressedSize} bytes`));
      return;
    }
    if (!this.#reserve(chunk.length)) {
      callback(this.#fail('reading it goes past the archive-wide limit (option maxTotalBytes)'));
      return;
    }
    this.#crc = crc32(chunk, this.#crc);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#bytes !== this.#entry.uncompressedSize) {
      callback(this.#fail(`holds ${this.#bytes} bytes, not the ${this.#entry.uncompressedSize} its header declares`));
    } else if (this.#crc !== this.#entry.crc32) {
      callback(this.#fail(`CRC-32 mismatch: data has ${hex(this.#crc)}, the central directory says ${hex(this.#entry.crc32)}`));
    } else {
      callback();
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Errors from yauzl, zlib or the disk arrive here through pipeline(): name the entry in them.
    callback(error === null ? null : asArchiveError(error, this.#entry));
  }
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}

const YAUZL_OPTIONS = {
  autoClose: false, // closed by close(), so no path leaves the handle open or closes it twice
  lazyEntries: true,
  decodeStrings: false, // with it, yauzl stops the listing at the first unsafe name
  validateEntrySizes: false, // same for a stored entry's sizes; listEntries() checks them instead
} as const;

/**
 * Opens a plain zip, or decrypts an age-encrypted one (authenticating all of it first) when `keys`
 * are given. An encrypted file without keys is a DecryptionError, not "not a zip".
 */
async function openZipFile(zipPath: string, keys: DecryptWith | undefined): Promise<{ zip: ZipFile; encrypted: boolean }> {
  const kind = await ageKind(zipPath).catch(() => null);
  if (kind === 'armored') throw armoredError(zipPath);
  if (kind === null) return { zip: await yauzl.openPromise(zipPath, YAUZL_OPTIONS), encrypted: false };
  if (keys === undefined) {
    throw new DecryptionError('NO_KEY', zipPath, `${zipPath} is encrypted with age; give the identity file that decrypts it (--identity <file>, option "decrypt")`);
  }
  const age = await AgeFile.open(zipPath, keys);
  try {
    return { zip: await yauzl.fromRandomAccessReaderPromise(new RangeReader(age), age.size, YAUZL_OPTIONS), encrypted: true };
  } catch (error) {
    await age.close();
    throw error;
  }
}

/**
 * The same for a stored backup read by ranges: the first bytes say whether it is age-encrypted; an
 * encrypted one is authenticated whole in one sequential read, then decrypted range by range.
 */
async function openRangeSource(source: RangeSource, keys: DecryptWith | undefined): Promise<{ zip: ZipFile; encrypted: boolean }> {
  const kind = await ageKindOf(source);
  if (kind === 'armored') throw armoredError(source.label);
  if (kind === null) return { zip: await yauzl.fromRandomAccessReaderPromise(new RangeReader(source), source.size, YAUZL_OPTIONS), encrypted: false };
  if (keys === undefined) {
    throw new DecryptionError('NO_KEY', source.label, `${source.label} is encrypted with age; give the identity file that decrypts it (--identity <file>, option "decrypt")`);
  }
  const age = await AgeFile.openSource(source, keys);
  try {
    return { zip: await yauzl.fromRandomAccessReaderPromise(new RangeReader(age), age.size, YAUZL_OPTIONS), encrypted: true };
  } catch (error) {
    await age.close();
    throw error;
  }
}

/**
 * An open zip file with its central directory already checked. Close it (or use `withZipReader`):
 * the file handle stays open until `close()` is called and every entry stream has ended.
 */
export class ZipReader {
  readonly path: string;
  /** In central directory order. */
  readonly entries: readonly ZipEntry[];
  /** Every structural problem, for the archive as a whole and per entry (those also in `entry.problems`). */
  readonly problems: readonly string[];
  /** False when the central directory was not read to its end (too many entries, or malformed). */
  readonly complete: boolean;
  readonly limits: ResolvedZipReaderOptions;
  /** True when the file is age-encrypted: it was authenticated whole before the listing, and every read decrypts. */
  readonly encrypted: boolean;
  readonly #zip: ZipFile;
  readonly #raw: ReadonlyMap<ZipEntry, Entry>;
  #inflated = 0;

  private constructor(path: string, zip: ZipFile, listing: Listing, limits: ResolvedZipReaderOptions, encrypted: boolean) {
    this.path = path;
    this.encrypted = encrypted;
    this.#zip = zip;
    this.entries = listing.entries;
    this.#raw = listing.raw;
    this.problems = listing.problems;
    this.complete = listing.complete;
    this.limits = limits;
  }

  /**
   * Opens `zipPath` and checks its central directory. Throws OptionsError for bad options and
   * ArchiveError when the file cannot be opened or is not a zip at all, DecryptionError when it is
   * age-encrypted and `keys` are missing or do not open it; every other problem is in `problems`.
   */
  static async open(source: string | RangeSource, options: ZipReaderOptions = {}, keys?: DecryptWith): Promise<ZipReader> {
    const limits = resolveZipReaderOptions(options);
    const zipPath = typeof source === 'string' ? source : source.label;
    let zip: ZipFile;
    let encrypted: boolean;
    try {
      // Encrypted or not is decided by the content, for a local file and a stored backup alike.
      ({ zip, encrypted } = typeof source === 'string' ? await openZipFile(source, keys) : await openRangeSource(source, keys));
    } catch (error) {
      if (error instanceof DecryptionError || error instanceof OptionsError) throw error;
      throw new ArchiveError([`${zipPath} cannot be opened as a zip file: ${errorMessage(error)}`], { cause: error });
    }
    try {
      const listing = await listEntries(zip, limits);
      // From here on yauzl counts inflated bytes too, in addition to EntryCheck.
      zip.validateEntrySizes = true;
      return new ZipReader(zipPath, zip, listing, limits, encrypted);
    } catch (error) {
      zip.close();
      throw error;
    }
  }

  /** Uncompressed bytes handed out so far, over all reads; capped by `maxTotalBytes`. */
  get inflatedBytes(): number {
    return this.#inflated;
  }

  #rawFor(entry: ZipEntry): Entry {
    const raw = this.#raw.get(entry);
    if (raw === undefined) throw new Error(`${entryLabel(entry.name)} does not belong to ${this.path}`);
    if (!this.#zip.isOpen) throw new Error(`zip reader for ${this.path} is closed`);
    if (entry.problems.length > 0) {
      throw new ArchiveError([`${entryLabel(entry.name)}: refused: ${entry.problems.join('; ')}`]);
    }
    return raw;
  }

  /**
   * Streams one entry's uncompressed bytes. The stream fails with an ArchiveError when the bytes
   * run past the declared size or `maxTotalBytes` (the inflater is destroyed at once), or when
   * the size or CRC-32 at the end do not match. Consume it or destroy it: it holds the file open.
   */
  async openEntryStream(entry: ZipEntry): Promise<Readable> {
    const raw = this.#rawFor(entry);
    let source: Readable;
    try {
      // Tools that extract by the local header would see a different name; refuse the disagreement.
      const local = await this.#zip.readLocalFileHeaderPromise(raw);
      if (!local.fileName.equals(raw.fileNameRaw)) {
        throw new ArchiveError([`${entryLabel(entry.name)}: local header names it ${JSON.stringify(local.fileName.toString('latin1'))}`]);
      }
      if (local.compressionMethod !== raw.compressionMethod) {
        throw new ArchiveError([`${entryLabel(entry.name)}: local header says compression method ${local.compressionMethod}, not ${raw.compressionMethod}`]);
      }
      source = await this.#zip.openReadStreamPromise(raw);
    } catch (error) {
      throw asArchiveError(error, entry);
    }
    const check = new EntryCheck(entry, (bytes) => {
      this.#inflated += bytes;
      return this.#inflated <= this.limits.maxTotalBytes;
    });
    // pipeline() destroys the source when `check` fails or its consumer destroys it, which
    // releases yauzl's reference on the file; the error itself surfaces on `check`.
    pipeline(source, check, () => {});
    return check;
  }

  /** Reads one entry into a Buffer of exactly its declared size, refusing before reading when that is over `maxBytes`. */
  async readEntry(entry: ZipEntry, maxBytes: number = MAX_BUFFER_BYTES): Promise<Buffer> {
    const limit = Math.min(maxBytes, MAX_BUFFER_BYTES);
    if (entry.uncompressedSize > limit) {
      throw new ArchiveError([`${entryLabel(entry.name)}: ${entry.uncompressedSize} bytes is too large to read into memory (limit ${limit})`]);
    }
    const stream = await this.openEntryStream(entry);
    // EntryCheck never passes more than the declared size, so the buffer cannot overflow.
    const out = Buffer.allocUnsafe(entry.uncompressedSize);
    let at = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunk.copy(out, at);
      at += chunk.length;
    }
    return out;
  }

  /**
   * Streams one entry through SHA-256, never holding more than one chunk; `sink` (awaited) gets each
   * chunk too, so a caller can write the entry while it is hashed.
   */
  async digestEntry(entry: ZipEntry, sink?: (chunk: Buffer) => Promise<unknown>): Promise<{ bytes: number; sha256: string }> {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of (await this.openEntryStream(entry)) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (sink !== undefined) await sink(chunk);
    }
    return { bytes, sha256: hash.digest('hex') };
  }

  /** Resolves once the file descriptor is really closed (yauzl closes it after the last entry stream ends). */
  close(): Promise<void> {
    if (!this.#zip.isOpen) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.#zip.once('close', () => resolve()));
    this.#zip.close();
    return closed;
  }
}

/** Opens a zip, runs `use`, and closes the zip whatever happens. */
export async function withZipReader<T>(zipPath: string | RangeSource, options: ZipReaderOptions, use: (reader: ZipReader) => Promise<T>, keys?: DecryptWith): Promise<T> {
  const reader = await ZipReader.open(zipPath, options, keys);
  try {
    return await use(reader);
  } finally {
    await reader.close();
  }
}
