/** What makes a written file survive a power cut: owned here, used by the CLI, restore and stores. */
import { constants as fsConstants, fdatasync, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Transform } from 'node:stream';

/** fsync a folder so a rename or unlink in it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync each folder once. */
export async function fsyncDirs(dirs: Iterable<string>): Promise<void> {
  for (const dir of new Set(dirs)) await fsyncDir(dir);
}

/**
 * Buffer of a backup file being written (and of the streams just before it): several small zip records
 * (an asset's header, data and descriptor) then wait together and go out in one writev, instead of one
 * write each, each awaited (Node's default is 16 KiB). 203 assets of 51 MiB: 375 → 325 ms.
 */
export const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Bytes between two early flushes of a file being written. */
const WRITEBACK_BYTES = 32 * 1024 * 1024;

/**
 * Passes bytes through to `file` and, every 32 MiB, starts an fdatasync of what is already written (one
 * at a time, on libuv's thread pool). The kernel would otherwise keep a whole backup dirty in the page
 * cache and write all of it in the final fsync; flushed as it goes, that fsync only waits for the tail.
 * Durability still comes from the final fsync: an early flush that fails is left to it.
 */
export function writeBackAsWritten(file: WriteStream): Transform {
  let sinceFlush = 0;
  let flushing = false;
  // Set once the file is open (undocumented in @types/node, public in Node's fs.WriteStream).
  const fd = (): unknown => (file as unknown as { fd: unknown }).fd;
  return new Transform({
    highWaterMark: WRITE_BUFFER_BYTES,
    transform(chunk: Buffer, _encoding, callback) {
      sinceFlush += chunk.length;
      const open = fd();
      if (sinceFlush >= WRITEBACK_BYTES && !flushing && typeof open === 'number') {
        sinceFlush = 0;
        flushing = true;
        fdatasync(open, () => (flushing = false));
      }
      callback(null, chunk);
    },
  });
}
