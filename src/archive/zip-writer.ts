/**
 * A small streaming ZIP writer (store or raw deflate) with zip64, in place of `archiver`.
 * archiver computes CRC-32 in pure JS over whole buffers (about 2 s of blocked event loop per GB)
 * and cannot tell the archive's length before writing it. Here CRC-32 is zlib's native `crc32`,
 * deflate runs on libuv's thread pool, and `storedArchiveSize` gives a store-mode archive's exact
 * length in advance (a Content-Length before the first byte).
 *
 * The bytes depend only on the inputs and `date`: times are encoded in UTC and the only extra
 * field ever written is zip64 (0x0001), so reproducible backups stay byte-identical.
 */
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { constants as zlibConstants, crc32 as zlibCrc32, deflateRaw as deflateRawCallback, type ZlibOptions } from 'node:zlib';

export interface ZipWriterOptions {
  /** 0 stores entries; 1 to 9 deflate at that level. */
  level: number;
  /** Every entry's modification time. */
  date: Date;
}

export interface WrittenEntry {
  name: string;
  size: number;
  compressedSize: number;
  crc32: number;
  /** Where the entry's local header starts. */
  offset: number;
  /** True when the entry's sizes needed zip64 fields (a late offset alone does not count). */
  zip64: boolean;
}

export type ZipWriterErrorReason = 'INVALID_NAME' | 'DUPLICATE_NAME' | 'SIZE_MISMATCH';

/** An entry was refused or failed; `entry` names it so the caller can map the error to the file. */
export class ZipWriterError extends Error {
  readonly reason: ZipWriterErrorReason;
  readonly entry: string;

  constructor(reason: ZipWriterErrorReason, entry: string, message: string) {
    super(message);
    this.name = 'ZipWriterError';
    this.reason = reason;
    this.entry = entry;
  }
}

const SIG_LOCAL = 0x04034b50;
const SIG_DESCRIPTOR = 0x08074b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_ZIP64_END = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_END = 0x06054b50;

const LOCAL_HEADER_BYTES = 30;
const CENTRAL_HEADER_BYTES = 46;
const END_BYTES = 22;
const ZIP64_END_BYTES = 56;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EXTRA_ID = 0x0001;

const MAX16 = 0xffff;
const MAX32 = 0xffffffff;

const FLAG_DESCRIPTOR = 1 << 3;
const FLAG_UTF8 = 1 << 11;
const METHOD_STORE = 0;
const METHOD_DEFLATE = 8;
const VERSION_MADE_BY = (3 << 8) | 45; // Unix, spec 4.5
const VERSION_NEEDED = 20;
const VERSION_NEEDED_ZIP64 = 45;
const EXTERNAL_ATTRIBUTES = (0o100644 << 16) >>> 0; // regular file, rw-r--r--

/** Stored buffers go out in views of this size so one huge snapshot is not one huge chunk. */
const SLICE_BYTES = 1024 * 1024;
/** The central directory goes out in chunks of about this size rather than one per entry. */
const CENTRAL_CHUNK_BYTES = 64 * 1024;

// DOS times cannot express anything outside these; clamp rather than wrap around.
const DOS_MIN_MS = Date.UTC(1980, 0, 1);
const DOS_MAX_MS = Date.UTC(2107, 11, 31, 23, 59, 58);

/**
 * zlib's deflateBound() for raw deflate with the default windowBits and memLevel (Node's defaults):
 * incompressible input grows by stored-block headers, about 0.03 %, so 1.3 MB near 4 GiB.
 */
function deflateBound(size: number): number {
  return size + Math.floor(size / 4096) + Math.floor(size / 16384) + Math.floor(size / 33554432) + 7;
}

/**
 * Whether an entry of `size` uncompressed bytes needs zip64 sizes. Decided before its first byte is
 * written because the local header comes first. For deflate this is stricter than "size >= 0xFFFF0000":
 * that margin (64 KiB) is smaller than deflate's worst-case growth near 4 GiB.
 */
export function entryNeedsZip64(size: number, deflate: boolean): boolean {
  return size >= MAX32 || (deflate && (size >= 0xffff0000 || deflateBound(size) >= MAX32));
}

function localHeaderBytes(nameBytes: number, zip64: boolean): number {
  return LOCAL_HEADER_BYTES + nameBytes + (zip64 ? 4 + 16 : 0);
}

function descriptorBytes(zip64: boolean): number {
  return zip64 ? 24 : 16;
}

function centralHeaderBytes(nameBytes: number, zip64: boolean): number {
  return CENTRAL_HEADER_BYTES + nameBytes + (zip64 ? 4 + 24 : 0);
}

function needsZip64End(count: number, centralOffset: number, centralSize: number): boolean {
  return count >= MAX16 || centralOffset >= MAX32 || centralSize >= MAX32;
}

function endBytes(count: number, centralOffset: number, centralSize: number): number {
  return (needsZip64End(count, centralOffset, centralSize) ? ZIP64_END_BYTES + ZIP64_LOCATOR_BYTES : 0) + END_BYTES;
}

function nameProblem(name: string, encoded: Buffer): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.includes('\0')) return 'it contains NUL';
  if (name.includes('\\')) return 'it contains "\\" (use "/")';
  if (name.startsWith('/')) return 'it is absolute';
  if (/^[A-Za-z]:/.test(name)) return 'it starts with a drive letter';
  // Lone surrogates would all encode as U+FFFD, so two different names could collide in the zip.
  if (encoded.toString('utf8') !== name) return 'it is not valid Unicode';
  if (encoded.length > MAX16) return `it is ${encoded.length} bytes long, over ${MAX16}`;
  for (const segment of name.split('/')) {
    if (segment === '') return 'it has an empty segment (leading, trailing or doubled "/")';
    if (segment === '.' || segment === '..') return `it has a "${segment}" segment`;
  }
  return undefined;
}

/** The name as UTF-8 bytes, or a ZipWriterError saying what is wrong with it. */
function encodeName(name: string, seen: ReadonlySet<string>): Buffer {
  if (typeof name !== 'string') throw new TypeError('a zip entry name must be a string');
  const encoded = Buffer.from(name, 'utf8');
  const problem = nameProblem(name, encoded);
  if (problem !== undefined) throw new ZipWriterError('INVALID_NAME', name, `invalid zip entry name ${JSON.stringify(name)}: ${problem}`);
  if (seen.has(name)) throw new ZipWriterError('DUPLICATE_NAME', name, `duplicate zip entry name ${JSON.stringify(name)}`);
  return encoded;
}

function checkSize(what: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`${what} must be a whole number of bytes >= 0, got ${String(size)}`);
}

/** DOS date and time fields of `date` read in UTC, so the bytes do not depend on the machine's time zone. */
function dosDateTime(date: Date): { date: number; time: number } {
  const d = new Date(Math.min(Math.max(date.getTime(), DOS_MIN_MS), DOS_MAX_MS));
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
  };
}

interface EntryRecord {
  entry: WrittenEntry;
  encodedName: Buffer;
  flags: number;
  method: number;
}

interface LocalHeaderFields {
  encodedName: Buffer;
  flags: number;
  method: number;
  dos: { date: number; time: number };
  zip64: boolean;
  /** Zero when a data descriptor carries it (spec 4.4.4). */
  crc32: number;
  /** Stored entries only (compressed = uncompressed); zero when unknown, see `#entry`. */
  size: number;
}

function localHeader(h: LocalHeaderFields): Buffer {
  const b = Buffer.alloc(localHeaderBytes(h.encodedName.length, h.zip64));
  const { size } = h;
  const size32 = h.zip64 ? MAX32 : size;
  b.writeUInt32LE(SIG_LOCAL, 0);
  b.writeUInt16LE(h.zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 4);
  b.writeUInt16LE(h.flags, 6);
  b.writeUInt16LE(h.method, 8);
  b.writeUInt16LE(h.dos.time, 10);
  b.writeUInt16LE(h.dos.date, 12);
  b.writeUInt32LE(h.crc32, 14);
  b.writeUInt32LE(size32, 18);
  b.writeUInt32LE(size32, 22);
  b.writeUInt16LE(h.encodedName.length, 26);
  b.writeUInt16LE(b.length - LOCAL_HEADER_BYTES - h.encodedName.length, 28);
  h.encodedName.copy(b, LOCAL_HEADER_BYTES);
  if (h.zip64) {
    // Spec 4.5.3: a local zip64 extra holds both sizes.
    let p = LOCAL_HEADER_BYTES + h.encodedName.length;
    p = b.writeUInt16LE(ZIP64_EXTRA_ID, p);
    p = b.writeUInt16LE(16, p);
    p = b.writeBigUInt64LE(BigInt(size), p);
    b.writeBigUInt64LE(BigInt(size), p);
  }
  return b;
}

function dataDescriptor(crc32: number, compressedSize: number, size: number, zip64: boolean): Buffer {
  const b = Buffer.alloc(descriptorBytes(zip64));
  b.writeUInt32LE(SIG_DESCRIPTOR, 0);
  b.writeUInt32LE(crc32, 4);
  if (zip64) {
    b.writeBigUInt64LE(BigInt(compressedSize), 8);
    b.writeBigUInt64LE(BigInt(size), 16);
  } else {
    b.writeUInt32LE(compressedSize, 8);
    b.writeUInt32LE(size, 12);
  }
  return b;
}

function centralHeader(r: EntryRecord, dos: { date: number; time: number }): Buffer {
  const { entry, encodedName } = r;
  const zip64 = entry.zip64 || entry.offset >= MAX32;
  const b = Buffer.alloc(centralHeaderBytes(encodedName.length, zip64));
  b.writeUInt32LE(SIG_CENTRAL, 0);
  b.writeUInt16LE(VERSION_MADE_BY, 4);
  b.writeUInt16LE(zip64 ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 6);
  b.writeUInt16LE(r.flags, 8);
  b.writeUInt16LE(r.method, 10);
  b.writeUInt16LE(dos.time, 12);
  b.writeUInt16LE(dos.date, 14);
  b.writeUInt32LE(entry.crc32, 16);
  b.writeUInt32LE(zip64 ? MAX32 : entry.compressedSize, 20);
  b.writeUInt32LE(zip64 ? MAX32 : entry.size, 24);
  b.writeUInt16LE(encodedName.length, 28);
  b.writeUInt16LE(b.length - CENTRAL_HEADER_BYTES - encodedName.length, 30);
  // 32 comment length, 34 disk number start, 36 internal attributes: all zero
  b.writeUInt32LE(EXTERNAL_ATTRIBUTES, 38);
  b.writeUInt32LE(zip64 ? MAX32 : entry.offset, 42);
  encodedName.copy(b, CENTRAL_HEADER_BYTES);
  if (zip64) {
    // All three fields are 0xFFFFFFFF above, so all three appear here, in this order (spec 4.5.3).
    let p = CENTRAL_HEADER_BYTES + encodedName.length;
    p = b.writeUInt16LE(ZIP64_EXTRA_ID, p);
    p = b.writeUInt16LE(24, p);
    p = b.writeBigUInt64LE(BigInt(entry.size), p);
    p = b.writeBigUInt64LE(BigInt(entry.compressedSize), p);
    b.writeBigUInt64LE(BigInt(entry.offset), p);
  }
  return b;
}

function endRecords(count: number, centralOffset: number, centralSize: number): Buffer {
  const zip64 = needsZip64End(count, centralOffset, centralSize);
  const b = Buffer.alloc(endBytes(count, centralOffset, centralSize));
  let p = 0;
  if (zip64) {
    p = b.writeUInt32LE(SIG_ZIP64_END, p);
    p = b.writeBigUInt64LE(BigInt(ZIP64_END_BYTES - 12), p); // size of the rest of the record
    p = b.writeUInt16LE(VERSION_MADE_BY, p);
    p = b.writeUInt16LE(VERSION_NEEDED_ZIP64, p);
    p = b.writeUInt32LE(0, p); // this disk
    p = b.writeUInt32LE(0, p); // disk where the central directory starts
    p = b.writeBigUInt64LE(BigInt(count), p); // entries on this disk
    p = b.writeBigUInt64LE(BigInt(count), p); // entries in total
    p = b.writeBigUInt64LE(BigInt(centralSize), p);
    p = b.writeBigUInt64LE(BigInt(centralOffset), p);
    p = b.writeUInt32LE(SIG_ZIP64_LOCATOR, p);
    p = b.writeUInt32LE(0, p); // disk holding the zip64 end record
    p = b.writeBigUInt64LE(BigInt(centralOffset + centralSize), p); // where the zip64 end record starts
    p = b.writeUInt32LE(1, p); // disks in total
  }
  p = b.writeUInt32LE(SIG_END, p);
  p = b.writeUInt16LE(0, p); // this disk
  p = b.writeUInt16LE(0, p); // disk where the central directory starts
  p = b.writeUInt16LE(zip64 ? MAX16 : count, p);
  p = b.writeUInt16LE(zip64 ? MAX16 : count, p);
  p = b.writeUInt32LE(zip64 ? MAX32 : centralSize, p);
  p = b.writeUInt32LE(zip64 ? MAX32 : centralOffset, p);
  b.writeUInt16LE(0, p); // comment length
  return b;
}

async function* slices(data: Buffer): AsyncGenerator<Buffer> {
  for (let start = 0; start < data.length; start += SLICE_BYTES) yield data.subarray(start, start + SLICE_BYTES);
}

interface Tally {
  bytes: number;
  crc32: number;
}

/** Passes chunks through untouched, counting them, and refuses to go past or stop short of `expected`. */
async function* measured(name: string, source: AsyncIterable<Buffer>, expected: number, tally: Tally, crc: boolean): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    // Checked before the chunk goes out: the archive must never hold more than the size announced.
    if (tally.bytes + chunk.length > expected) {
      throw new ZipWriterError('SIZE_MISMATCH', name, `${name}: read more than the expected ${expected} bytes`);
    }
    tally.bytes += chunk.length;
    if (crc) tally.crc32 = zlibCrc32(chunk, tally.crc32);
    yield chunk;
  }
  if (tally.bytes !== expected) {
    throw new ZipWriterError('SIZE_MISMATCH', name, `${name}: read ${tally.bytes} bytes, expected ${expected}`);
  }
}

/** Input block of the parallel deflate: large enough that zlib's per-call set-up is noise. */
const DEFLATE_BLOCK_BYTES = 1024 * 1024;
/** Deflate's window: each block may refer back this far into the one before. */
const DEFLATE_WINDOW_BYTES = 32 * 1024;
/** Blocks deflating at once on libuv's thread pool: one per core, plus one queued so no core waits. */
const DEFLATE_PARALLEL = availableParallelism() + 1;
/** An empty final block (BFINAL=1, fixed Huffman, end-of-block): what zlib ends an empty stream with. */
const DEFLATE_FINAL_BLOCK = Buffer.from([0x03, 0x00]);

const deflateRawAsync = promisify(deflateRawCallback);

/** Re-cuts `source` into blocks of exactly `size` bytes (the last may be shorter): the same input always deflates the same way. */
async function* blocks(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (let chunk of source) {
    while (pendingBytes + chunk.length >= size) {
      const take = size - pendingBytes;
      yield pendingBytes === 0 ? chunk.subarray(0, take) : Buffer.concat([...pending, chunk.subarray(0, take)], size);
      pending = [];
      pendingBytes = 0;
      chunk = chunk.subarray(take);
    }
    if (chunk.length > 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

/**
 * Raw deflate on every core, as pigz does it: each 1 MiB block is deflated on its own (on libuv's
 * thread pool) with the previous block's last 32 KiB as its dictionary and ends with a sync flush, so
 * the blocks concatenate into one valid stream, closed by an empty final block. The output is
 * deterministic and within a few bytes per MiB of zlib's streaming output.
 * An error from `source` comes out of the iteration.
 */
async function* deflateRaw(source: AsyncIterable<Buffer>, level: number): AsyncGenerator<Buffer> {
  const inFlight: Promise<Buffer>[] = [];
  let previous: Buffer | undefined;
  for await (const block of blocks(source, DEFLATE_BLOCK_BYTES)) {
    const options: ZlibOptions = { level, finishFlush: zlibConstants.Z_SYNC_FLUSH };
    if (previous !== undefined) options.dictionary = previous.subarray(-DEFLATE_WINDOW_BYTES);
    const job = deflateRawAsync(block, options);
    job.catch(() => {}); // a job left behind when the entry is abandoned
    inFlight.push(job);
    previous = block;
    if (inFlight.length >= DEFLATE_PARALLEL) yield await inFlight.shift()!;
  }
  while (inFlight.length > 0) yield await inFlight.shift()!;
  yield DEFLATE_FINAL_BLOCK;
}

type WriterState = 'open' | 'busy' | 'broken' | 'finished';

/**
 * Writes one archive as a sequence of chunks. Entries go one after the other: drain each generator
 * before starting the next. An entry that fails or is abandoned half-way leaves the writer broken.
 */
export class ZipWriter {
  readonly #level: number;
  readonly #dos: { date: number; time: number };
  readonly #records: EntryRecord[] = [];
  readonly #entries: WrittenEntry[] = [];
  readonly #names = new Set<string>();
  #offset = 0;
  #state: WriterState = 'open';

  constructor(options: ZipWriterOptions) {
    const { level, date } = options;
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`zip level must be a whole number from 0 to 9, got ${String(level)}`);
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new RangeError('zip date must be a valid Date');
    this.#level = level;
    this.#dos = dosDateTime(date);
  }

  /** Bytes yielded so far. */
  get offset(): number {
    return this.#offset;
  }

  get entries(): readonly WrittenEntry[] {
    return this.#entries;
  }

  /** An entry whose bytes and CRC-32 are already known (VERSION, the manifest). Stored: no data descriptor. */
  async *addBuffer(name: string, data: Buffer, crc32: number): AsyncGenerator<Buffer> {
    if (!Buffer.isBuffer(data)) throw new TypeError(`zip entry ${name}: data must be a Buffer`);
    if (!Number.isInteger(crc32) || crc32 < 0 || crc32 > MAX32) throw new RangeError(`zip entry ${name}: crc32 must be an unsigned 32-bit integer`);
    yield* this.#entry(name, slices(data), data.length, crc32);
  }

  /**
   * An entry read from a stream whose size is announced in advance (an asset file). CRC-32 is computed
   * while streaming; a ZipWriterError (SIZE_MISMATCH) is thrown if the stream is shorter or longer.
   */
  async *addStream(name: string, source: AsyncIterable<Buffer>, expectedSize: number): AsyncGenerator<Buffer> {
    checkSize(`zip entry ${name}: expectedSize`, expectedSize);
    yield* this.#entry(name, source, expectedSize, undefined);
  }

  /** Central directory, zip64 end records when needed, end of central directory. */
  *finish(): Generator<Buffer> {
    this.#begin('finish the archive');
    let complete = false;
    try {
      const centralOffset = this.#offset;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for (const record of this.#records) {
        const header = centralHeader(record, this.#dos);
        pending.push(header);
        pendingBytes += header.length;
        if (pendingBytes >= CENTRAL_CHUNK_BYTES) {
          yield this.#count(Buffer.concat(pending, pendingBytes));
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pendingBytes > 0) yield this.#count(Buffer.concat(pending, pendingBytes));
      yield this.#count(endRecords(this.#records.length, centralOffset, this.#offset - centralOffset));
      complete = true;
    } finally {
      this.#state = complete ? 'finished' : 'broken';
    }
  }

  #begin(action: string): void {
    if (this.#state === 'open') return;
    const why = { busy: 'another entry is still being written', broken: 'an earlier entry failed', finished: 'the archive is finished' }[this.#state];
    throw new Error(`cannot ${action}: ${why}`);
  }

  #count(chunk: Buffer): Buffer {
    this.#offset += chunk.length;
    return chunk;
  }

  /** `crc32` known means a stored entry can carry everything in its local header; otherwise a data descriptor follows. */
  async *#entry(name: string, data: AsyncIterable<Buffer>, size: number, crc32: number | undefined): AsyncGenerator<Buffer> {
    this.#begin(`add zip entry ${JSON.stringify(name)}`);
    const encodedName = encodeName(name, this.#names);
    this.#names.add(name);
    this.#state = 'busy';
    let complete = false;
    try {
      const deflate = this.#level > 0;
      const descriptor = deflate || crc32 === undefined;
      const zip64 = entryNeedsZip64(size, deflate);
      const flags = FLAG_UTF8 | (descriptor ? FLAG_DESCRIPTOR : 0);
      const method = deflate ? METHOD_DEFLATE : METHOD_STORE;
      const offset = this.#offset;
      // With a data descriptor the local sizes are zero, except a stored zip64 entry's: Info-ZIP unzip
      // takes those from the local zip64 extra even with bit 3 set, and zeros make it read no data.
      // The size is exact there (announced in advance and enforced); deflate's compressed size is not.
      const headerSize = descriptor && (deflate || !zip64) ? 0 : size;
      yield this.#count(localHeader({ encodedName, flags, method, dos: this.#dos, zip64, crc32: descriptor ? 0 : (crc32 ?? 0), size: headerSize }));

      const tally: Tally = { bytes: 0, crc32: 0 };
      const input = measured(name, data, size, tally, crc32 === undefined);
      let compressedSize = 0;
      for await (const chunk of deflate ? deflateRaw(input, this.#level) : input) {
        compressedSize += chunk.length;
        yield this.#count(chunk);
      }
      const crc = crc32 ?? tally.crc32;
      // entryNeedsZip64 leaves deflate a margin from zlib's own bound; this only guards against that being wrong.
      if (!zip64 && compressedSize >= MAX32) throw new Error(`zip entry ${name}: deflated to ${compressedSize} bytes, too many without zip64`);
      if (descriptor) yield this.#count(dataDescriptor(crc, compressedSize, size, zip64));

      const entry: WrittenEntry = { name, size, compressedSize, crc32: crc, offset, zip64 };
      this.#entries.push(entry);
      this.#records.push({ entry, encodedName, flags, method });
      complete = true;
    } finally {
      this.#state = complete ? 'open' : 'broken';
    }
  }
}

/**
 * Exact byte length of a store-mode (level 0) archive holding these entries in this order, as
 * ZipWriter would write it: `buffer` entries without a data descriptor, `stream` entries with one.
 */
export function storedArchiveSize(entries: readonly { name: string; size: number; kind: 'buffer' | 'stream' }[]): number {
  const names = new Set<string>();
  let offset = 0;
  let centralSize = 0;
  for (const { name, size, kind } of entries) {
    const nameBytes = encodeName(name, names).length;
    names.add(name);
    checkSize(`zip entry ${name}: size`, size);
    if (kind !== 'buffer' && kind !== 'stream') throw new RangeError(`zip entry ${name}: kind must be "buffer" or "stream"`);
    const zip64 = entryNeedsZip64(size, false);
    centralSize += centralHeaderBytes(nameBytes, zip64 || offset >= MAX32);
    offset += localHeaderBytes(nameBytes, zip64) + size + (kind === 'stream' ? descriptorBytes(zip64) : 0);
  }
  return offset + centralSize + endBytes(entries.length, offset, centralSize);
}
