/**
 * dbzip as another project gets it: `npm pack`, then `npm install <tarball>` into a scratch project, then
 * import, require, the binary and the types. Offline: the scratch project's dependencies are hard-linked
 * from this checkout's node_modules first (better-sqlite3's native build included), so npm has nothing
 * to fetch and nothing to compile; everything else is npm's own install of the tarball.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { test } from './helpers/tmp.js';

const run = promisify(execFile);
const ROOT = path.resolve('.');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  engines: { node: string };
  scripts: Record<string, string>;
};
const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });

/** The production dependencies' top-level folders in this checkout (nested ones come along inside them). */
async function productionPackages(): Promise<string[]> {
  const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  const top = new Set<string>();
  const modules = path.join(ROOT, 'node_modules') + path.sep;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(modules)) continue;
    const parts = line.slice(modules.length).split(path.sep);
    top.add(parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
  }
  return [...top];
}

/** `^a.b.c` and `>=a.b.c` ranges joined by `||`: all package.json's engines field uses. */
function satisfies(version: string, range: string): boolean {
  const parse = (v: string) => v.split('.').map(Number) as [number, number, number];
  const atLeast = (a: number[], b: number[]) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
  const v = parse(version);
  return range.split('||').some((part) => {
    const m = /^\s*(\^|>=)(\d+\.\d+\.\d+)\s*$/.exec(part);
    if (m === null) throw new Error(`engines range part not understood: ${part}`);
    const floor = parse(m[2]!);
    return atLeast(v, floor) >= 0 && (m[1] === '>=' || v[0] === floor[0]);
  });
}

describe('the npm package', () => {
  test('packs dist, docs, LICENSE and CHANGELOG; installs into a new project; import, require(), the dbzip binary and the types all work, and it backs up', async ({ tmpDir }) => {
    // `npm test` has just built dist/; `prepare` (the build on a git install) is not run here, so
    // no second tsc rewrites dist/ under the other test files.
    const { stdout: packed } = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmpDir], ROOT);
    const [info] = JSON.parse(packed) as { filename: string; files: { path: string }[] }[];
    const files = info!.files.map((f) => f.path);
    for (const wanted of ['package.json', 'LICENSE', 'CHANGELOG.md', 'README.md', 'docs/service.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/bin.js', 'dist/snapshot/snapshot-worker.js']) {
      expect(files, wanted).toContain(wanted);
    }
    expect(files.filter((f) => /^(src|test|fixtures|bench|scripts)\//.test(f))).toEqual([]);
    expect(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} dbzip contributors\n/);
    expect(pkg.scripts['prepare'], 'a git install builds dist/').toBeDefined();

    const project = path.join(tmpDir, 'project');
    fs.mkdirSync(path.join(project, 'node_modules', '@types'), { recursive: true });
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    for (const name of [...(await productionPackages()), '@types/node']) {
      fs.mkdirSync(path.dirname(path.join(project, 'node_modules', name)), { recursive: true });
      await run('cp', ['-al', path.join(ROOT, 'node_modules', name), path.join(project, 'node_modules', name)]);
    }
    await npm(['install', '--offline', '--ignore-scripts', path.join(tmpDir, info!.filename)], project);
    const installed = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'dbzip', 'package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(pkg.version);
    expect(fs.lstatSync(path.join(project, 'node_modules', 'dbzip')).isSymbolicLink(), 'a real copy, not a link to this checkout').toBe(false);

    const data = path.join(tmpDir, 'data');
    await generateFixtures(data);
    fs.writeFileSync(
      path.join(project, 'backup.js'),
      `import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createBackup, verifyArchive, DBZIP_VERSION } from 'dbzip';
const backup = await createBackup({ dataDir: process.argv[2] });
await pipeline(backup.stream, createWriteStream('out.zip'));
const report = await verifyArchive('out.zip');
console.log(JSON.stringify({ version: DBZIP_VERSION, ok: report.ok, databases: report.databases.map((d) => d.path) }));
`,
    );
    const esm = await run(process.execPath, ['backup.js', data], { cwd: project, timeout: 60_000 });
    expect(JSON.parse(esm.stdout)).toEqual({ version: pkg.version, ok: true, databases: ['app.db', 'settings.db'] });

    // require() of an ES module: Node 20.19+ and 22.12+ (the engines range starts there).
    const cjs = await run(process.execPath, ['--input-type=commonjs', '-e', "const d = require('dbzip'); console.log(typeof d.createBackup, typeof require('dbzip/http').createApp, typeof require('dbzip/cli').runCli, d.DBZIP_VERSION)"], { cwd: project });
    expect(cjs.stdout.trim()).toBe(`function function function ${pkg.version}`);

    const bin = await run(path.join(project, 'node_modules', '.bin', 'dbzip'), ['--version'], { cwd: project });
    expect(bin.stdout.trim()).toBe(pkg.version);
    const verified = await run(path.join(project, 'node_modules', '.bin', 'dbzip'), ['verify', 'out.zip'], { cwd: project });
    expect(verified.stdout).toMatch(/out\.zip: ok/);

    // The types resolve through package.json "exports" under strict NodeNext, as a TypeScript project uses them.
    fs.writeFileSync(
      path.join(project, 'check.ts'),
      `import { createBackup, type Backup, type BackupOptions } from 'dbzip';
import { createApp, type AppOptions } from 'dbzip/http';
const options: BackupOptions = { dataDir: '.', level: 0 };
const app = createApp({ dataDir: '.', auth: { none: true } } satisfies AppOptions);
const backup: Backup = await createBackup(options);
const size: number | null = backup.size;
const read: number = backup.progress.inputBytes;
export { size, read, app };
`,
    );
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', 'check.ts'], { cwd: project, timeout: 60_000 });
  }, 180_000);

  test('the running Node is inside package.json engines, and provides what dbzip needs of it (zlib.crc32, require of ES modules)', async () => {
    expect(satisfies(process.versions.node, pkg.engines.node), `${process.versions.node} vs ${pkg.engines.node}`).toBe(true);
    expect(satisfies('20.19.9', pkg.engines.node)).toBe(false);
    expect(satisfies('22.11.0', pkg.engines.node)).toBe(false);
    expect(typeof (await import('node:zlib')).crc32).toBe('function');
    expect(process.features).toHaveProperty('require_module', true);
  });
});
