/**
 * Writing a file so that it either appears complete or not at all: `<target>.partial`, flushed to
 * disk before close, then moved into place, then the folder flushed so the new name survives a crash.
 * The CLI's `backup -o file` and the folder store both write this way.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir, writeBackAsWritten, WRITE_BUFFER_BYTES } from '../durable.js';

export interface AtomicWriteOptions {
  /** Replace an existing `target` (rename); otherwise an existing one fails with EEXIST and is left as it was. */
  replace: boolean;
  signal?: AbortSignal | undefined;
  /** A transform the bytes pass through on the way (the CLI's progress bar). */
  through?: Transform | undefined;
}

/** Thrown (as `code: 'EEXIST'`) when `replace` is false and the target exists. */
function exists(target: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${target} already exists`), { code: 'EEXIST' });
}

/**
 * Streams `source` into `target` atomically and resolves with the bytes written. On any failure
 * (the source errors, the disk is full, the signal aborts) the `.partial` is removed and it rejects.
 */
export async function writeFileAtomically(source: Readable, target: string, options: AtomicWriteOptions): Promise<number> {
  const partial = `${target}.partial`;
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  try {
    // flush: fsync before close, so the rename never publishes data still in the page cache.
    const file = createWriteStream(partial, { mode: 0o600, flush: true, highWaterMark: WRITE_BUFFER_BYTES });
    const signal = options.signal === undefined ? {} : { signal: options.signal };
    if (options.through === undefined) await pipeline(source, count, writeBackAsWritten(file), file, signal);
    else await pipeline(source, options.through, count, writeBackAsWritten(file), file, signal);
    if (options.replace) await fs.rename(partial, target);
    else {
      // link() fails if the target exists, where rename() would silently replace it.
      try {
        await fs.link(partial, target);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw exists(target);
        // File systems without hard links: check, then rename (a race here only replaces a same-named backup).
        if (await fs.lstat(target).then(() => true, () => false)) throw exists(target);
        await fs.rename(partial, target);
      }
      await fs.rm(partial, { force: true });
    }
  } catch (error) {
    await fs.rm(partial, { force: true });
    throw error;
  }
  await fsyncDir(path.dirname(target));
  return bytes;
}
