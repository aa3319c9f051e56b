import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test as base } from 'vitest';

export interface TmpDir {
  /** Absolute, real path (symlinks such as macOS /var → /private/var resolved). */
  dir: string;
  /** Removes the folder and everything in it; safe to call twice. Kept when DBZIP_KEEP_TMP=1. */
  cleanup(): Promise<void>;
}

/** Makes a fresh folder under the OS temp dir, named `dbzip-<prefix>-XXXXXX`. */
export function makeTmpDir(prefix = 'test'): TmpDir {
  const safe = prefix.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 40);
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `dbzip-${safe}-`)));
  return {
    dir,
    async cleanup() {
      if (process.env['DBZIP_KEEP_TMP'] === '1') {
        console.error(`[tmp] kept ${dir}`);
        return;
      }
      await fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
    },
  };
}

/** `test` with a `tmpDir` fixture: a fresh folder per test, removed afterwards. */
export const test = base.extend<{ tmpDir: string }>({
  // The empty pattern is required: vitest reads fixture dependencies from the first parameter.
  tmpDir: async ({}, use) => {
    const tmp = makeTmpDir('t');
    try {
      await use(tmp.dir);
    } finally {
      await tmp.cleanup();
    }
  },
});

/**
 * Settles like `promise`, but rejects after `ms` with "<what> did not finish within <ms> ms",
 * so a regression that hangs fails fast with a readable message.
 */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}
