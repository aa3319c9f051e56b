import fs from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { checkBuild } from './global-setup.js';
import { test } from './helpers/tmp.js';

function write(file: string, mtimeSeconds: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
  fs.utimesSync(file, mtimeSeconds, mtimeSeconds);
}

describe('the test run refuses a missing or stale build at once', () => {
  test('says to build when dist/ is missing', ({ tmpDir }) => {
    write(path.join(tmpDir, 'src/backup.ts'), 1000);
    expect(() => checkBuild(tmpDir)).toThrow('dist/ is missing: run `npm run build` first');
  });

  test('says to build when a source file is newer than the build', ({ tmpDir }) => {
    write(path.join(tmpDir, 'dist/cli/bin.js'), 1000);
    write(path.join(tmpDir, 'src/http/admin/page.tsx'), 2000);
    expect(() => checkBuild(tmpDir)).toThrow('dist/ is older than src/: run `npm run build` first');
  });

  test('lets a fresh build through', ({ tmpDir }) => {
    write(path.join(tmpDir, 'src/backup.ts'), 1000);
    write(path.join(tmpDir, 'dist/cli/bin.js'), 2000);
    expect(() => checkBuild(tmpDir)).not.toThrow();
  });
});
