import { crc32 } from 'node:zlib';
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
