/**
 * A full garbage collection of the calling thread's V8 heap, on demand. dbzip's images are memory outside
 * that heap (SQLite's, or ArrayBuffers passed between threads), which V8 frees only when it collects the
 * objects holding them, and it does that lazily: up to tens of MiB of images already written can wait
 * while the next one is read. Callers collect at the moments that matter (an image let go in a worker; in
 * the CLI, before a large image is read). The flag is set only long enough to take a `gc` function, as
 * jest's leak detector does; it is process-wide, so a thread setting it at the same moment can turn it
 * off between our two steps: try again (a few rounds at most). Without it, V8 frees when it gets to it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full collection costs milliseconds to tens of milliseconds whatever the heap holds, which is most of a
 * small backup: an image under this size can wait for V8 (it is never two large images at once).
 */
export const COLLECT_FROM_BYTES = 16 * 1024 * 1024;

export function takeGarbageCollector(): () => void {
  for (let attempt = 0; attempt < 100; attempt++) {
    setFlagsFromString('--expose-gc');
    try {
      return runInNewContext('gc') as () => void;
    } catch {
      continue;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  return () => {};
}
