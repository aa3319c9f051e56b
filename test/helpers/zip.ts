import fs from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';

export interface ZipEntryMeta {
  name: string;
  /** 0 = stored, 8 = deflate. */
  compressionMethod: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  /** DOS date/time of the entry, read as UTC (extended timestamps ignored). */
  lastModDate: Date;
  generalPurposeBitFlag: number;
  externalFileAttributes: number;
  versionMadeBy: number;
  extraFieldIds: number[];
}

export interface ReadZip {
  /** Entry name → uncompressed bytes. Sizes are checked by yauzl, CRC-32 here (yauzl never checks it). */
  files: Map<string, Buffer>;
  /** Entry names in central-directory order (duplicates kept, so they can be detected). */
  names: string[];
  meta: Map<string, ZipEntryMeta>;
  comment: string;
}

/** Reads a whole zip (path or bytes) into memory; rejects on a bad size, a bad CRC-32 or an unsafe entry name. */
export async function readZip(source: string | Buffer): Promise<ReadZip> {
  const options: yauzl.Options = { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: true };
  const zip = typeof source === 'string' ? await yauzl.openPromise(source, options) : await yauzl.fromBufferPromise(source, options);
  const out: ReadZip = { files: new Map(), names: [], meta: new Map(), comment: zip.comment };
  try {
    for await (const entry of zip.eachEntry()) {
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const data = Buffer.concat(chunks);
      const actual = crc32(data);
      if (actual !== entry.crc32) {
        throw new Error(`zip entry ${entry.fileName}: CRC-32 is ${actual.toString(16)}, the central directory says ${entry.crc32.toString(16)}`);
      }
      out.names.push(entry.fileName);
      out.files.set(entry.fileName, data);
      out.meta.set(entry.fileName, {
        name: entry.fileName,
        compressionMethod: entry.compressionMethod,
        crc32: entry.crc32,
        compressedSize: entry.compressedSize,
        uncompressedSize: entry.uncompressedSize,
        lastModDate: entry.getLastModDate({ timezone: 'UTC', forceDosFormat: true }),
        generalPurposeBitFlag: entry.generalPurposeBitFlag,
        externalFileAttributes: entry.externalFileAttributes,
        versionMadeBy: entry.versionMadeBy,
        extraFieldIds: entry.extraFields.map((f) => f.id),
      });
    }
  } finally {
    zip.close();
  }
  return out;
}

export interface RawEntry {
  name: string;
  data: Buffer;
  /** General purpose flags; default 0x800 (UTF-8 names). */
  flags?: number;
  /** 0 store (default), 8 deflate (the data is deflated here); any other method stores the data as is. */
  method?: number;
  /** Unix mode in the external attributes; default a regular 0644 file. */
  unixMode?: number;
}

/** Writes a zip byte by byte: for archives no honest writer (or Info-ZIP) produces. */
export function writeRawZip(zipPath: string, entries: readonly RawEntry[]): void {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const flags = entry.flags ?? 0x800;
    const method = entry.method ?? 0;
    const body = method === 8 ? deflateRawSync(entry.data) : entry.data;
    const crc = crc32(entry.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, body);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(0x031e, 4); // made by Unix
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(flags, 8);
    header.writeUInt16LE(method, 10);
    header.writeUInt16LE(0x21, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(body.length, 20);
    header.writeUInt32LE(entry.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt32LE(((entry.unixMode ?? 0o100644) << 16) >>> 0, 38);
    header.writeUInt32LE(offset, 42);
    central.push(header, name);
    offset += local.length + name.length + body.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  fs.writeFileSync(zipPath, Buffer.concat([...parts, directory, end]));
}
