import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pipeline as pipelinePromise } from 'node:stream/promises';
import { crc32, createInflateRaw, deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { entryNeedsZip64, storedArchiveSize, ZipWriter, ZipWriterError } from '../src/archive/zip-writer.js';

const run = promisify(execFile);
const UNZIP = '/usr/bin/unzip';
const hasUnzip = existsSync(UNZIP);
/** unzip -t needs about 30 s per 4 GiB here, so checking the big entries' data with it is opt-in. */
const SLOW = process.env.DBZIP_SLOW_TESTS === '1';
const DATE = new Date('2024-02-29T13:37:42Z');
const MiB = 1024 * 1024;
const MAX32 = 0xffffffff;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'dbzip-zip-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Op =
  | { kind: 'buffer'; name: string; data: Buffer }
  | { kind: 'stream'; name: string; data: Buffer; chunk?: number; expectedSize?: number };

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let start = 0; start < data.length; start += size) yield data.subarray(start, start + size);
}

function chunksOf(writer: ZipWriter, op: Op): AsyncGenerator<Buffer> {
  return op.kind === 'buffer'
    ? writer.addBuffer(op.name, op.data, crc32(op.data))
    : writer.addStream(op.name, chunked(op.data, op.chunk ?? 7000), op.expectedSize ?? op.data.length);
}

/** Buffer.equals: toEqual walks big buffers byte by byte through its generic matcher, taking seconds. */
const same = (a: Buffer | undefined, b: Buffer): boolean => a !== undefined && a.equals(b);

async function collect(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

async function build(level: number, ops: readonly Op[], date = DATE): Promise<{ zip: Buffer; writer: ZipWriter }> {
  const writer = new ZipWriter({ level, date });
  const parts: Buffer[] = [];
  for (const op of ops) parts.push(await collect(chunksOf(writer, op)));
  parts.push(await collect(writer.finish()));
  return { zip: Buffer.concat(parts), writer };
}

interface ReadBack {
  entry: yauzl.Entry;
  local: yauzl.LocalFileHeader;
  /** Only for entries up to 64 MiB; big ones are checked by their CRC. */
  data: Buffer | undefined;
  /** CRC-32 of the bytes yauzl decoded (yauzl itself checks sizes, not CRCs). */
  dataCrc: number;
}

async function readZip(zip: yauzl.ZipFile): Promise<ReadBack[]> {
  const out: ReadBack[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const local = await zip.readLocalFileHeaderPromise(entry);
      const keep = entry.uncompressedSize <= 64 * MiB;
      const parts: Buffer[] = [];
      let dataCrc = 0;
      for await (const chunk of await zip.openReadStreamPromise(entry)) {
        dataCrc = crc32(chunk as Buffer, dataCrc);
        if (keep) parts.push(chunk as Buffer);
      }
      out.push({ entry, local, data: keep ? Buffer.concat(parts) : undefined, dataCrc });
    }
  } finally {
    zip.close();
  }
  return out;
}

const readBuffer = async (zip: Buffer): Promise<ReadBack[]> => readZip(await yauzl.fromBufferPromise(zip, { lazyEntries: true, strictFileNames: true }));

/** `unzip -t`, optionally of some members only; a non-zero exit (any error found) rejects. */
async function unzipTest(file: string, members: readonly string[] = []): Promise<string> {
  const { stdout } = await run(UNZIP, ['-t', file, ...members], { maxBuffer: 64 * MiB });
  return stdout;
}

/** Writes chunks at their offsets but leaves holes for chunks of `holes`: a sparse file of zeros costs no disk. */
async function writeSparse(file: string, chunks: AsyncIterable<Buffer> | Iterable<Buffer>, holes: readonly ArrayBufferLike[]): Promise<number> {
  const handle = await open(file, 'w');
  let position = 0;
  try {
    for await (const chunk of chunks) {
      if (!holes.includes(chunk.buffer)) await handle.write(chunk, 0, chunk.length, position);
      position += chunk.length;
    }
    await handle.truncate(position);
  } finally {
    await handle.close();
  }
  return position;
}

async function* concatAsync(...sources: (AsyncIterable<Buffer> | Iterable<Buffer>)[]): AsyncGenerator<Buffer> {
  for (const source of sources) yield* source;
}

const compressible = Buffer.from('SQLite format 3\0'.repeat(20_000) + 'the end', 'latin1');

const MIX: Op[] = [
  { kind: 'buffer', name: 'VERSION', data: Buffer.from('1.2.3\n') },
  { kind: 'buffer', name: 'app.db', data: randomBytes(2 * MiB + 123) },
  { kind: 'buffer', name: 'empty.db', data: Buffer.alloc(0) },
  { kind: 'buffer', name: 'sub/dir/compressible.db', data: compressible },
  { kind: 'stream', name: 'assets/ünïcödé/日本語 ファイル.txt', data: Buffer.from('こんにちは, zip\n') },
  { kind: 'stream', name: 'assets/empty.bin', data: Buffer.alloc(0) },
  { kind: 'stream', name: 'assets/photo.jpg', data: randomBytes(300_001), chunk: 65_536 },
  { kind: 'stream', name: 'assets/🎉.txt', data: Buffer.from('party') },
  { kind: 'buffer', name: 'manifest.json', data: Buffer.from('{"format":"dbzip"}\n') },
];

describe('ZipWriter in store mode', () => {
  it('writes buffer and stream entries that yauzl reads back with the same bytes and CRC-32', async () => {
    const { zip, writer } = await build(0, MIX);
    const read = await readBuffer(zip);
    expect(read.map((r) => r.entry.fileName)).toEqual(MIX.map((op) => op.name));
    for (const [i, op] of MIX.entries()) {
      const { entry, data, dataCrc } = read[i]!;
      expect(same(data, op.data)).toBe(true);
      expect(entry.crc32).toBe(crc32(op.data));
      expect(dataCrc).toBe(entry.crc32);
      expect(entry.compressionMethod).toBe(0);
      expect(entry.compressedSize).toBe(op.data.length);
      expect(entry.relativeOffsetOfLocalHeader).toBe(writer.entries[i]!.offset);
    }
    expect(writer.entries.map((e) => [e.name, e.size, e.compressedSize, e.crc32, e.zip64])).toEqual(
      MIX.map((op) => [op.name, op.data.length, op.data.length, crc32(op.data), false]),
    );
    expect(writer.offset).toBe(zip.length);
  });

  it('marks names as UTF-8, files as Unix rw-r--r--, and times in UTC', async () => {
    const { zip } = await build(0, MIX);
    for (const { entry, local } of await readBuffer(zip)) {
      expect(entry.generalPurposeBitFlag & 0x0800).toBe(0x0800);
      expect(entry.versionMadeBy).toBe((3 << 8) | 45);
      expect(entry.versionNeededToExtract).toBe(20);
      expect(entry.externalFileAttributes).toBe((0o100644 << 16) >>> 0);
      expect(entry.extraFieldLength).toBe(0);
      expect(local.extraFieldLength).toBe(0);
      expect(entry.getLastModDate({ timezone: 'UTC' })).toEqual(DATE);
    }
  });

  it('puts CRC and sizes in the local header of a buffer entry and follows a stream entry with a data descriptor', async () => {
    const ops: Op[] = [
      { kind: 'buffer', name: 'a.db', data: Buffer.from('database bytes') },
      { kind: 'stream', name: 'b.txt', data: Buffer.from('asset bytes') },
    ];
    const { zip } = await build(0, ops);
    const [a, b] = await readBuffer(zip);
    expect(a!.local.generalPurposeBitFlag).toBe(0x0800);
    expect([a!.local.crc32, a!.local.compressedSize, a!.local.uncompressedSize]).toEqual([crc32(ops[0]!.data), 14, 14]);
    // No descriptor: the next local header starts right after the data.
    expect(zip.readUInt32LE(a!.local.fileDataStart + 14)).toBe(0x04034b50);

    expect(b!.local.generalPurposeBitFlag).toBe(0x0808);
    expect([b!.local.crc32, b!.local.compressedSize, b!.local.uncompressedSize]).toEqual([0, 0, 0]);
    const descriptor = b!.local.fileDataStart + 11;
    expect(zip.readUInt32LE(descriptor)).toBe(0x08074b50);
    expect([zip.readUInt32LE(descriptor + 4), zip.readUInt32LE(descriptor + 8), zip.readUInt32LE(descriptor + 12)]).toEqual([crc32(ops[1]!.data), 11, 11]);
    expect(zip.readUInt32LE(descriptor + 16)).toBe(0x02014b50);
  });

  it('ends a small archive with a plain end of central directory and no zip64 records', async () => {
    const { zip, writer } = await build(0, MIX);
    const end = zip.subarray(zip.length - 22);
    expect(end.readUInt32LE(0)).toBe(0x06054b50);
    expect([end.readUInt16LE(8), end.readUInt16LE(10)]).toEqual([MIX.length, MIX.length]);
    const centralOffset = end.readUInt32LE(16);
    expect(centralOffset).toBe(writer.entries.at(-1)!.offset + 30 + Buffer.byteLength('manifest.json') + 19);
    expect(end.readUInt32LE(12)).toBe(zip.length - 22 - centralOffset);
    expect(zip.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBe(-1);
  });

  it('yields a buffer entry as views of at most 1 MiB into the caller\'s buffer, never copies', async () => {
    const data = randomBytes(3 * MiB + 5);
    const writer = new ZipWriter({ level: 0, date: DATE });
    const chunks: Buffer[] = [];
    for await (const chunk of writer.addBuffer('big.db', data, crc32(data))) chunks.push(chunk);
    const body = chunks.slice(1);
    expect(body.map((c) => c.length)).toEqual([MiB, MiB, MiB, 5]);
    for (const chunk of body) expect(chunk.buffer).toBe(data.buffer);
  });

  it('passes a stream entry\'s chunks through without copying them', async () => {
    const data = randomBytes(100_000);
    const writer = new ZipWriter({ level: 0, date: DATE });
    const chunks: Buffer[] = [];
    for await (const chunk of writer.addStream('a.bin', chunked(data, 30_000), data.length)) chunks.push(chunk);
    for (const chunk of chunks.slice(1, -1)) expect(chunk.buffer).toBe(data.buffer);
  });

  it('counts offset as the bytes yielded so far', async () => {
    const writer = new ZipWriter({ level: 0, date: DATE });
    let seen = 0;
    for await (const chunk of writer.addStream('x.bin', chunked(randomBytes(50_000), 10_000), 50_000)) {
      seen += chunk.length;
      expect(writer.offset).toBe(seen);
    }
    for (const chunk of writer.finish()) {
      seen += chunk.length;
      expect(writer.offset).toBe(seen);
    }
  });

  it('writes zero-length buffer and stream entries', async () => {
    const ops: Op[] = [
      { kind: 'buffer', name: 'empty.db', data: Buffer.alloc(0) },
      { kind: 'stream', name: 'empty.txt', data: Buffer.alloc(0) },
    ];
    const { zip } = await build(0, ops);
    const read = await readBuffer(zip);
    expect(read.map((r) => [r.entry.fileName, r.entry.uncompressedSize, r.entry.crc32, r.data!.length])).toEqual([
      ['empty.db', 0, 0, 0],
      ['empty.txt', 0, 0, 0],
    ]);
  });
});

describe('storedArchiveSize', () => {
  it('equals the real length for a mix of buffer and stream entries, unicode names and empty entries', async () => {
    const { zip } = await build(0, MIX);
    expect(storedArchiveSize(MIX.map((op) => ({ name: op.name, size: op.data.length, kind: op.kind })))).toBe(zip.length);
  });

  it('equals the real length of an archive with no entries', async () => {
    const { zip } = await build(0, []);
    expect(zip.length).toBe(22);
    expect(storedArchiveSize([])).toBe(22);
    expect((await readBuffer(zip)).length).toBe(0);
  });

  it('refuses the names the writer refuses', () => {
    expect(() => storedArchiveSize([{ name: '../x', size: 1, kind: 'buffer' }])).toThrow(ZipWriterError);
    expect(() =>
      storedArchiveSize([
        { name: 'a', size: 1, kind: 'buffer' },
        { name: 'a', size: 2, kind: 'stream' },
      ]),
    ).toThrow(/duplicate zip entry name "a"/);
    expect(() => storedArchiveSize([{ name: 'a', size: -1, kind: 'buffer' }])).toThrow(RangeError);
  });
});

describe('ZipWriter in deflate mode', () => {
  it.each([1, 9])('round-trips buffer and stream entries at level %i', async (level) => {
    const { zip, writer } = await build(level, MIX);
    const read = await readBuffer(zip);
    for (const [i, op] of MIX.entries()) {
      const { entry, local, data, dataCrc } = read[i]!;
      expect(entry.fileName).toBe(op.name);
      expect(same(data, op.data)).toBe(true);
      expect([entry.crc32, dataCrc]).toEqual([crc32(op.data), crc32(op.data)]);
      expect(entry.compressionMethod).toBe(8);
      expect(local.generalPurposeBitFlag).toBe(0x0808);
      expect(entry.compressedSize).toBe(writer.entries[i]!.compressedSize);
    }
    const text = writer.entries.find((e) => e.name === 'sub/dir/compressible.db')!;
    expect(text.compressedSize).toBeLessThan(text.size / 50);
    expect(writer.offset).toBe(zip.length);
  });

  it('deflates a multi-MiB entry in 1 MiB blocks that read back as one stream, the same however the input is chunked', async () => {
    // Text with long-range repeats, so back-references cross the 1 MiB block boundaries.
    const lines = Array.from({ length: 200_000 }, (_, i) => `${i % 977},user-${(i * 7919) % 5003},"${'payload '.repeat(i % 5)}"\n`);
    const data = Buffer.from(lines.join(''));
    expect(data.length).toBeGreaterThan(3 * MiB);
    const outputs: { zip: Buffer; compressed: number }[] = [];
    for (const chunk of [7000, MiB, MiB + 1, data.length]) {
      const { zip, writer } = await build(6, [{ kind: 'stream', name: 'big.csv', data, chunk }]);
      const [read] = await readBuffer(zip);
      expect(same(read!.data, data)).toBe(true);
      outputs.push({ zip, compressed: writer.entries[0]!.compressedSize });
    }
    expect(outputs.every((o) => o.zip.equals(outputs[0]!.zip))).toBe(true);
    // Within 1 % of zlib deflating the whole entry as one stream.
    expect(outputs[0]!.compressed / deflateRawSync(data, { level: 6 }).length).toBeLessThan(1.01);
  });

  it('writes a data descriptor with the CRC and both sizes after a deflated buffer', async () => {
    const { zip, writer } = await build(6, [{ kind: 'buffer', name: 'c.db', data: compressible }]);
    const [e] = writer.entries;
    const descriptor = e!.offset + 30 + 4 + e!.compressedSize;
    expect(zip.readUInt32LE(descriptor)).toBe(0x08074b50);
    expect([zip.readUInt32LE(descriptor + 4), zip.readUInt32LE(descriptor + 8), zip.readUInt32LE(descriptor + 12)]).toEqual([
      crc32(compressible),
      e!.compressedSize,
      compressible.length,
    ]);
  });
});

describe.skipIf(!hasUnzip)('unzip -t', () => {
  it.each([0, 1, 9])('finds no errors in an archive written at level %i', async (level) => {
    const { zip } = await build(level, MIX);
    const file = path.join(dir, `mix-${level}.zip`);
    await writeFile(file, zip);
    const out = await unzipTest(file);
    expect(out).toMatch(/No errors detected/);
    expect(out).toContain('assets/ünïcödé/日本語 ファイル.txt');
  });
});

describe('determinism', () => {
  it('gives byte-identical output for the same inputs and date, whatever the time zone', async () => {
    const first = (await build(6, MIX)).zip;
    const saved = process.env.TZ;
    try {
      for (const tz of ['Pacific/Kiritimati', 'America/St_Johns', 'UTC']) {
        process.env.TZ = tz;
        expect((await build(6, MIX)).zip.equals(first)).toBe(true);
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
    expect((await build(6, MIX, new Date(DATE.getTime() + 2000))).zip.equals(first)).toBe(false);
  });

  it('clamps dates outside the DOS range instead of wrapping around', async () => {
    const early = await readBuffer((await build(0, MIX.slice(0, 1), new Date('1970-01-01T00:00:00Z'))).zip);
    expect(early[0]!.entry.getLastModDate({ timezone: 'UTC' })).toEqual(new Date('1980-01-01T00:00:00Z'));
    const late = await readBuffer((await build(0, MIX.slice(0, 1), new Date('2200-01-01T00:00:00Z'))).zip);
    expect(late[0]!.entry.getLastModDate({ timezone: 'UTC' })).toEqual(new Date('2107-12-31T23:59:58Z'));
  });
});

describe('size checks', () => {
  it.each([0, 6])('throws at level %i when a stream is shorter than expectedSize', async (level) => {
    const writer = new ZipWriter({ level, date: DATE });
    const error = await collect(writer.addStream('assets/short.bin', chunked(randomBytes(1000), 100), 1001)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ZipWriterError);
    expect(error).toMatchObject({ reason: 'SIZE_MISMATCH', entry: 'assets/short.bin', message: 'assets/short.bin: read 1000 bytes, expected 1001' });
  });

  it.each([0, 6])('throws at level %i when a stream is longer than expectedSize, before yielding the excess', async (level) => {
    const writer = new ZipWriter({ level, date: DATE });
    const error = await collect(writer.addStream('assets/long.bin', chunked(randomBytes(1000), 100), 950)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ZipWriterError);
    expect(error).toMatchObject({ reason: 'SIZE_MISMATCH', entry: 'assets/long.bin' });
    if (level === 0) expect(writer.offset).toBeLessThanOrEqual(30 + 'assets/long.bin'.length + 950);
  });

  it('lets an error thrown by the source through unchanged', async () => {
    const boom = new Error('EIO');
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('abc');
      throw boom;
    }
    for (const level of [0, 6]) {
      const writer = new ZipWriter({ level, date: DATE });
      await expect(collect(writer.addStream('a.bin', failing(), 10))).rejects.toBe(boom);
    }
  });
});

describe('names', () => {
  it.each([
    ['an empty name', '', /it is empty/],
    ['an absolute name', '/etc/passwd', /it is absolute/],
    ['a drive letter', 'C:/x.db', /drive letter/],
    ['a backslash', 'a\\b.db', /contains "\\"/],
    ['a leading .. segment', '../escape.db', /".." segment/],
    ['an inner .. segment', 'a/../../b', /".." segment/],
    ['a . segment', 'a/./b', /"." segment/],
    ['a doubled slash', 'a//b', /empty segment/],
    ['a trailing slash', 'folder/', /empty segment/],
    ['a NUL', 'nul\0.db', /contains NUL/],
    ['a lone surrogate', 'bad\ud800.db', /not valid Unicode/],
    ['a name over 65535 bytes', 'x'.repeat(70_000), /over 65535/],
  ])('refuses %s', async (_label, name, message) => {
    const writer = new ZipWriter({ level: 0, date: DATE });
    const error = await collect(writer.addBuffer(name, Buffer.from('x'), crc32(Buffer.from('x')))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ZipWriterError);
    expect(error).toMatchObject({ reason: 'INVALID_NAME', entry: name });
    expect((error as Error).message).toMatch(message);
    await expect(collect(writer.addStream(name, chunked(Buffer.alloc(0), 1), 0))).rejects.toThrow(ZipWriterError);
  });

  it('refuses a duplicate name and keeps the writer usable', async () => {
    const writer = new ZipWriter({ level: 0, date: DATE });
    await collect(writer.addBuffer('a.db', Buffer.from('1'), crc32(Buffer.from('1'))));
    await expect(collect(writer.addStream('a.db', chunked(Buffer.from('2'), 1), 1))).rejects.toMatchObject({
      reason: 'DUPLICATE_NAME',
      message: 'duplicate zip entry name "a.db"',
    });
    const rest = await collect(concatAsync(writer.addBuffer('b.db', Buffer.from('2'), crc32(Buffer.from('2'))), writer.finish()));
    expect(rest.length).toBeGreaterThan(0);
  });
});

describe('writer state', () => {
  it('refuses to start an entry while another is being written', async () => {
    const writer = new ZipWriter({ level: 0, date: DATE });
    const first = writer.addStream('a.bin', chunked(Buffer.alloc(10), 1), 10);
    await first.next();
    await expect(writer.addBuffer('b.bin', Buffer.alloc(1), 0).next()).rejects.toThrow(/another entry is still being written/);
    expect(() => writer.finish().next()).toThrow(/another entry is still being written/);
    await collect(first);
    expect(writer.entries.map((e) => e.name)).toEqual(['a.bin']);
  });

  it('is broken by an entry that failed or was abandoned half-way', async () => {
    const failed = new ZipWriter({ level: 0, date: DATE });
    await collect(failed.addStream('a.bin', chunked(Buffer.alloc(10), 1), 11)).catch(() => {});
    await expect(failed.addBuffer('b.bin', Buffer.alloc(1), 0).next()).rejects.toThrow(/an earlier entry failed/);

    let closed = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        yield* chunked(randomBytes(400_000), 1000);
      } finally {
        closed = true;
      }
    }
    const abandoned = new ZipWriter({ level: 6, date: DATE });
    const gen = abandoned.addStream('a.bin', source(), 400_000);
    await gen.next(); // local header
    await gen.next(); // first deflated chunk: the pipeline is running
    await gen.return(undefined);
    expect(() => abandoned.finish().next()).toThrow(/an earlier entry failed/);
    await expect.poll(() => closed).toBe(true);
  });

  it('refuses entries after finish', async () => {
    const writer = new ZipWriter({ level: 0, date: DATE });
    await collect(writer.finish());
    await expect(writer.addBuffer('late.db', Buffer.alloc(1), 0).next()).rejects.toThrow(/the archive is finished/);
  });

  it('refuses a level outside 0..9 and an invalid date', () => {
    expect(() => new ZipWriter({ level: 10, date: DATE })).toThrow(RangeError);
    expect(() => new ZipWriter({ level: 1.5, date: DATE })).toThrow(RangeError);
    expect(() => new ZipWriter({ level: 0, date: new Date(Number.NaN) })).toThrow(RangeError);
  });
});

describe('zip64', () => {
  it('decides zip64 from the size known in advance, leaving deflate room to grow', () => {
    expect(entryNeedsZip64(MAX32 - 1, false)).toBe(false);
    expect(entryNeedsZip64(MAX32, false)).toBe(true);
    expect(entryNeedsZip64(3 * 1024 * MiB, true)).toBe(false);
    expect(entryNeedsZip64(0xffff0000, true)).toBe(true);
    // Incompressible data grows by ~0.03 % under deflate: 1 MiB short of 4 GiB is not enough margin.
    expect(entryNeedsZip64(4096 * MiB - MiB, true)).toBe(true);
    expect(entryNeedsZip64(4096 * MiB - MiB, false)).toBe(false);
  });

  it('writes a zip64 end of central directory record for 65535 entries', async () => {
    const writer = new ZipWriter({ level: 0, date: DATE });
    const parts: Buffer[] = [];
    const sizes: { name: string; size: number; kind: 'buffer' }[] = [];
    for (let i = 0; i < 0xffff; i++) {
      const name = `e/${i}`;
      sizes.push({ name, size: 0, kind: 'buffer' });
      for await (const chunk of writer.addBuffer(name, Buffer.alloc(0), 0)) parts.push(chunk);
    }
    parts.push(...writer.finish());
    const zip = Buffer.concat(parts);
    expect(storedArchiveSize(sizes)).toBe(zip.length);

    const end = zip.subarray(zip.length - 22);
    expect([end.readUInt16LE(8), end.readUInt16LE(10), end.readUInt32LE(12), end.readUInt32LE(16)]).toEqual([0xffff, 0xffff, MAX32, MAX32]);
    const locator = zip.subarray(zip.length - 42, zip.length - 22);
    expect(locator.readUInt32LE(0)).toBe(0x07064b50);
    const record = zip.subarray(Number(locator.readBigUInt64LE(8)));
    expect(record.readUInt32LE(0)).toBe(0x06064b50);
    expect(record.readBigUInt64LE(32)).toBe(0xffffn);

    const read = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
    expect(read.entryCount).toBe(0xffff);
    read.close();
    if (hasUnzip) {
      const file = path.join(dir, 'many.zip');
      await writeFile(file, zip);
      expect(await unzipTest(file)).toMatch(/No errors detected in compressed data of .*many\.zip/);
      await rm(file);
    }
  });

  // Store-mode data goes out as views of the caller's buffers, so the sink can leave those
  // regions as holes: a sparse 8 GiB file that costs a few kilobytes of disk.
  it('writes stored entries past 4 GiB with zip64 sizes, offsets and end records that yauzl and unzip read', async () => {
    const big = Buffer.alloc(MAX32); // untouched pages: virtual memory only
    const zeros = Buffer.alloc(64 * MiB);
    const streamed = 66 * zeros.length; // 4.125 GiB
    let bigCrc = 0;
    for (let start = 0; start < big.length; start += 1024 * MiB) bigCrc = crc32(big.subarray(start, start + 1024 * MiB), bigCrc);
    async function* repeatZeros(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 66; i++) yield zeros;
    }
    const small = Buffer.from('after the big ones');

    const writer = new ZipWriter({ level: 0, date: DATE });
    const file = path.join(dir, 'big-store.zip');
    const length = await writeSparse(
      file,
      concatAsync(
        writer.addBuffer('big-buffer.bin', big, bigCrc),
        writer.addBuffer('after-buffer.txt', small, crc32(small)),
        writer.addStream('big-stream.bin', repeatZeros(), streamed),
        writer.addStream('after-stream.txt', chunked(small, 5), small.length),
        writer.finish(),
      ),
      [big.buffer, zeros.buffer],
    );
    expect((await stat(file)).size).toBe(length);
    expect(length).toBe(writer.offset);
    expect(
      storedArchiveSize([
        { name: 'big-buffer.bin', size: big.length, kind: 'buffer' },
        { name: 'after-buffer.txt', size: small.length, kind: 'buffer' },
        { name: 'big-stream.bin', size: streamed, kind: 'stream' },
        { name: 'after-stream.txt', size: small.length, kind: 'stream' },
      ]),
    ).toBe(length);
    expect(writer.entries.map((e) => e.zip64)).toEqual([true, false, true, false]);
    expect(writer.entries[3]!.offset).toBeGreaterThan(2 * MAX32);
    const streamedCrc = writer.entries[2]!.crc32;

    const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
    const entries: yauzl.Entry[] = [];
    for await (const entry of zip.eachEntry()) entries.push(entry);
    expect(entries.map((e) => [e.fileName, e.uncompressedSize, e.compressedSize, e.crc32, e.relativeOffsetOfLocalHeader])).toEqual(
      writer.entries.map((e) => [e.name, e.size, e.size, e.crc32, e.offset]),
    );
    expect(entries.map((e) => e.versionNeededToExtract)).toEqual([45, 45, 45, 45]);
    const bigLocal = await zip.readLocalFileHeaderPromise(entries[0]!);
    expect([bigLocal.versionNeededToExtract, bigLocal.crc32, bigLocal.compressedSize, bigLocal.uncompressedSize]).toEqual([45, bigCrc, MAX32, MAX32]);
    expect(yauzl.parseExtraFields(bigLocal.extraField)).toEqual([{ id: 1, data: Buffer.from('ffffffff00000000ffffffff00000000', 'hex') }]);
    const streamLocal = await zip.readLocalFileHeaderPromise(entries[2]!);
    expect(streamLocal.generalPurposeBitFlag).toBe(0x0808);
    // Its size is exact in advance, and Info-ZIP unzip reads a stored entry's size from here even
    // with a data descriptor: zeros made it test zero bytes and report a bad CRC.
    const sizes = Buffer.alloc(16);
    sizes.writeBigUInt64LE(BigInt(streamed), 0);
    sizes.writeBigUInt64LE(BigInt(streamed), 8);
    expect(yauzl.parseExtraFields(streamLocal.extraField)).toEqual([{ id: 1, data: sizes }]);
    for (const i of [1, 3]) {
      const content = await collect(await zip.openReadStreamPromise(entries[i]!));
      expect(content.toString()).toBe('after the big ones');
    }
    zip.close();

    // The 8-byte data descriptor of the big stream and the zip64 end records, read from the file's tail.
    const handle = await open(file, 'r');
    try {
      const descriptor = Buffer.alloc(24);
      await handle.read(descriptor, 0, 24, streamLocal.fileDataStart + streamed);
      expect([descriptor.readUInt32LE(0), descriptor.readUInt32LE(4), descriptor.readBigUInt64LE(8), descriptor.readBigUInt64LE(16)]).toEqual([
        0x08074b50,
        streamedCrc,
        BigInt(streamed),
        BigInt(streamed),
      ]);
      const tail = Buffer.alloc(98);
      await handle.read(tail, 0, 98, length - 98);
      expect(tail.readUInt32LE(0)).toBe(0x06064b50);
      const centralOffset = Number(tail.readBigUInt64LE(48));
      expect(centralOffset).toBeGreaterThan(MAX32);
      expect(Number(tail.readBigUInt64LE(40))).toBe(length - 98 - centralOffset);
      expect(tail.readUInt32LE(56)).toBe(0x07064b50);
      expect(Number(tail.readBigUInt64LE(64))).toBe(length - 98);
    } finally {
      await handle.close();
    }

    if (hasUnzip) {
      // The small entries sit past 4 GiB: Info-ZIP finds them only through the zip64 offsets.
      expect(await unzipTest(file, ['after-buffer.txt', 'after-stream.txt'])).toMatch(/No errors detected in .* for the 2 files tested/);
      if (SLOW) expect(await unzipTest(file)).toMatch(/No errors detected in compressed data/);
    }
    await rm(file);
  }, 180_000);

  it('deflates a stream past 4 GiB as zip64 with an 8-byte data descriptor', async () => {
    const zeros = Buffer.alloc(64 * MiB);
    const size = 66 * zeros.length;
    async function* repeatZeros(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 66; i++) yield zeros;
    }
    const writer = new ZipWriter({ level: 1, date: DATE });
    const zip = await collect(concatAsync(writer.addStream('zeros.bin', repeatZeros(), size), writer.addBuffer('after.txt', Buffer.from('ok'), crc32(Buffer.from('ok'))), writer.finish()));
    const [big, after] = writer.entries;
    expect(big).toMatchObject({ size, zip64: true, offset: 0 });
    expect(after!.zip64).toBe(false);

    const local = zip.subarray(0, 30 + 9 + 20);
    expect([local.readUInt16LE(4), local.readUInt16LE(6), local.readUInt32LE(18), local.readUInt32LE(22)]).toEqual([45, 0x0808, MAX32, MAX32]);
    const descriptor = zip.subarray(local.length + big!.compressedSize);
    expect([descriptor.readUInt32LE(0), descriptor.readUInt32LE(4), descriptor.readBigUInt64LE(8), descriptor.readBigUInt64LE(16)]).toEqual([
      0x08074b50,
      big!.crc32,
      BigInt(big!.compressedSize),
      BigInt(size),
    ]);
    expect(after!.offset).toBe(local.length + big!.compressedSize + 24);

    const read = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
    const entries: yauzl.Entry[] = [];
    for await (const entry of read.eachEntry()) entries.push(entry);
    expect(entries.map((e) => [e.fileName, e.uncompressedSize, e.compressedSize, e.crc32, e.relativeOffsetOfLocalHeader])).toEqual(
      writer.entries.map((e) => [e.name, e.size, e.compressedSize, e.crc32, e.offset]),
    );
    // Inflate the 4 GiB ourselves with big output chunks: through yauzl's 16 KiB chunks it takes 10 s longer.
    const inflater = createInflateRaw({ chunkSize: 4 * MiB });
    const raw = await read.openReadStreamPromise(entries[0]!, { decompress: false });
    let inflated = 0;
    let inflatedCrc = 0;
    const done = pipelinePromise(raw, inflater);
    for await (const chunk of inflater) {
      inflated += (chunk as Buffer).length;
      inflatedCrc = crc32(chunk as Buffer, inflatedCrc);
    }
    await done;
    expect([inflated, inflatedCrc]).toEqual([size, big!.crc32]);
    expect((await collect(await read.openReadStreamPromise(entries[1]!))).toString()).toBe('ok');
    read.close();

    if (hasUnzip) {
      const file = path.join(dir, 'big-deflate.zip');
      await writeFile(file, zip);
      expect(await unzipTest(file, ['after.txt'])).toMatch(/No errors detected in .* for the 1 file tested/);
      if (SLOW) expect(await unzipTest(file)).toMatch(/No errors detected in compressed data/);
      await rm(file);
    }
  }, 180_000);
});
