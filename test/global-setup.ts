/**
 * Fails the run at once, with one clear line, when dist/ is missing or older than src/: the CLI,
 * server and worker tests run the built code, and would otherwise each time out on their own.
 */
import fs from 'node:fs';
import path from 'node:path';

function newestMtime(dir: string, ending: string): number {
  let newest = 0;
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    if (name.endsWith(ending)) newest = Math.max(newest, fs.statSync(path.join(dir, name)).mtimeMs);
  }
  return newest;
}

/** Throws when `<root>/dist` is missing or older than `<root>/src`. */
export function checkBuild(root: string): void {
  const bin = path.join(root, 'dist/cli/bin.js');
  if (!fs.existsSync(bin)) throw new Error('dist/ is missing: run `npm run build` first (`npm test` builds before it tests)');
  const built = newestMtime(path.join(root, 'dist'), '.js');
  const source = Math.max(newestMtime(path.join(root, 'src'), '.ts'), newestMtime(path.join(root, 'src'), '.tsx'));
  if (source > built) {
    throw new Error('dist/ is older than src/: run `npm run build` first (`npm test` builds before it tests)');
  }
}

export default function setup(): void {
  checkBuild(path.resolve(import.meta.dirname, '..'));
}
