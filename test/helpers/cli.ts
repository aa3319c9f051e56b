import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { withTimeout } from './tmp.js';

/** The built CLI, run as users run it: a separate process (`npm test` builds first). */
export const BIN = path.resolve('dist/cli/bin.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `dbzip <args>` in a child process and collects its exit code and output. */
export async function dbzip(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The partial files `dbzip backup -o <out>` writes before the rename. */
export function partialsOf(out: string): string[] {
  const prefix = `${path.basename(out)}.dbzip-`;
  return fs
    .readdirSync(path.dirname(out))
    .filter((name) => name.startsWith(prefix) && name.endsWith('.partial'))
    .map((name) => path.join(path.dirname(out), name));
}

/** Waits until a run writing `out` has created its partial file, and returns its path. */
export function partialAppears(out: string): Promise<string> {
  return withTimeout(
    (async () => {
      for (;;) {
        const [partial] = partialsOf(out);
        if (partial !== undefined) return partial;
        await new Promise((r) => setTimeout(r, 2));
      }
    })(),
    30_000,
    'the .partial file to appear',
  );
}
