import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { beforeAll, afterAll, describe, expect, test } from 'vitest';
import type { Manifest } from '../src/archive/manifest.js';
import { ArchiveError, DbzipError, RestoreError } from '../src/errors.js';
import { restore, type RestoreOptions } from '../src/restore/index.js';
import { backupToFile, fingerprintTree, readArchive, sha256, withManifest, writeGeneration } from './helpers/restore.js';
import { writeRawZip, type RawEntry } from './helpers/zip.js';
import { makeTmpDir, type TmpDir } from './helpers/tmp.js';

/**
 * One good archive (generation 1) and a data directory at generation 2; each hostile archive is
 * the good one edited. Every restore must be refused with every problem named, and the data
 * directory must stay byte-for-byte the same (nothing is read through SQLite before verification).
 */
let tmp: TmpDir;
let data: string;
let good: { entries: RawEntry[]; manifest: Manifest };
let counter = 0;

beforeAll(async () => {
  tmp = makeTmpDir('restore-hostile');
  data = path.join(tmp.dir, 'data');
  const stage = path.join(tmp.dir, 'stage');
  writeDataDir(stage, 1);
  const zip = path.join(tmp.dir, 'good.zip');
  await backupToFile(zip, { dataDir: stage });
  good = await readArchive(zip);
  writeDataDir(data, 2);
});

/** Two databases (WAL and rollback), two assets and VERSION 2.0.0, all marked with `generation`. */
function writeDataDir(dir: string, generation: number): void {
  writeGeneration(path.join(dir, 'app.db'), generation, { journal: 'wal', blobBytes: 200 });
  writeGeneration(path.join(dir, 'rollback.db'), generation, { journal: 'delete' });
  fs.mkdirSync(path.join(dir, 'assets', 'img'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'assets', 'img', 'a.bin'), Buffer.alloc(3000, generation));
  fs.writeFileSync(path.join(dir, 'assets', 'readme.txt'), `generation ${generation}\n`);
  fs.writeFileSync(path.join(dir, 'VERSION'), '2.0.0\n');
}

afterAll(async () => {
  await tmp.cleanup();
});

function zipOf(entries: readonly RawEntry[]): string {
  const file = path.join(tmp.dir, `hostile-${++counter}.zip`);
  writeRawZip(file, entries);
  return file;
}

const clone = (m: Manifest): Manifest => JSON.parse(JSON.stringify(m)) as Manifest;

/** Adds an entry before the manifest and lists it in the manifest as an asset (or database). */
function withExtra(entry: RawEntry, kind: 'assets' | 'databases' = 'assets'): RawEntry[] {
  const manifest = clone(good.manifest);
  if (kind === 'assets') manifest.assets.push({ path: entry.name, bytes: entry.data.length, sha256: sha256(entry.data) });
  else {
    const db = manifest.databases[0] as Manifest['databases'][number];
    manifest.databases.push({ ...db, path: entry.name });
  }
  const entries = good.entries.filter((e) => e.name !== 'manifest.json');
  return withManifest([...entries, entry], manifest);
}

/** Restores `zip` in both modes; each must fail like `expected` and leave the data dir as it was. */
async function expectRefused(zip: string, expected: { code: string; problems: (string | RegExp)[] }, options: Partial<RestoreOptions> = {}): Promise<DbzipError> {
  const before = fingerprintTree(data);
  let last: DbzipError | undefined;
  for (const mode of ['online', 'offline'] as const) {
    const error = await restore({ archive: zip, dataDir: data, mode, ...options }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DbzipError);
    const dbzipError = error as DbzipError;
    expect(dbzipError.code, dbzipError.message).toBe(expected.code);
    const problems = error instanceof ArchiveError ? error.problems : [dbzipError.message];
    for (const wanted of expected.problems) {
      expect(problems.some((p) => (typeof wanted === 'string' ? p.includes(wanted) : wanted.test(p))), `${String(wanted)} in ${JSON.stringify(problems)}`).toBe(true);
    }
    expect(fingerprintTree(data)).toBe(before);
    last = dbzipError;
  }
  return last as DbzipError;
}

describe('restore refuses hostile archives and leaves the data directory byte-for-byte unchanged', () => {
  test('the good archive itself restores (control), in a copy of the data directory', async () => {
    const copy = path.join(tmp.dir, 'control');
    fs.cpSync(data, copy, { recursive: true });
    const report = await restore({ archive: zipOf(good.entries), dataDir: copy, dryRun: true });
    expect(report.plan.summary).toMatchObject({ replaced: 4, unchanged: 1 });
  });

  test('zip-slip: an entry named ../evil.db', async () => {
    await expectRefused(zipOf(withExtra({ name: '../evil.db', data: Buffer.from('x') }, 'databases')), {
      code: 'ARCHIVE_INVALID',
      problems: ['entry "../evil.db": name has a ".." segment'],
    });
    expect(fs.existsSync(path.join(tmp.dir, 'evil.db'))).toBe(false);
  });

  test('an absolute entry name', async () => {
    const target = path.join(tmp.dir, 'abs-evil.txt');
    await expectRefused(zipOf(withExtra({ name: target, data: Buffer.from('x') })), { code: 'ARCHIVE_INVALID', problems: ['name is an absolute path'] });
    expect(fs.existsSync(target)).toBe(false);
  });

  test('a symbolic link entry', async () => {
    await expectRefused(zipOf(withExtra({ name: 'assets/link', data: Buffer.from('../../../etc/passwd'), unixMode: 0o120777 })), {
      code: 'ARCHIVE_INVALID',
      problems: ['entry "assets/link": is a symbolic link'],
    });
  });

  test('a zip bomb: one deflated entry at about 1000:1, and a total over maxTotalBytes', async () => {
    const zeros = Buffer.alloc(24 * 1024 * 1024);
    await expectRefused(zipOf(withExtra({ name: 'assets/bomb.bin', data: zeros, method: 8 })), {
      code: 'ARCHIVE_INVALID',
      problems: [/entry "assets\/bomb\.bin": compression ratio \d+:1 .* over the limit of 1000:1/],
    });
    await expectRefused(zipOf(good.entries), { code: 'ARCHIVE_INVALID', problems: [/over the limit of 10000 \(option maxTotalBytes\)/] }, { maxTotalBytes: 10_000 });
  });

  test('a corrupted database whose hashes were recomputed to match: integrity_check catches it', async () => {
    const manifest = clone(good.manifest);
    const entries = good.entries.map((e) => ({ ...e, data: Buffer.from(e.data) }));
    const db = entries.find((e) => e.name === 'app.db') as RawEntry;
    const pageSize = db.data.readUInt16BE(16);
    // Scramble the b-tree page headers and cell pointers of a few pages in the middle (row
    // payload alone is opaque to SQLite: only structure is checked).
    for (const page of [4, 5, 6]) db.data.fill(0x5a, (page - 1) * pageSize + 1, (page - 1) * pageSize + 48);
    const listed = manifest.databases.find((d) => d.path === 'app.db') as Manifest['databases'][number];
    listed.sha256 = sha256(db.data);
    listed.crc32 = crc32(db.data).toString(16).padStart(8, '0');
    await expectRefused(zipOf(withManifest(entries, manifest)), { code: 'ARCHIVE_INVALID', problems: [/database "app\.db": integrity_check failed/] });
  });

  test('an entry that does not match the manifest, and an entry the manifest does not list', async () => {
    const entries = good.entries.map((e) => (e.name === 'assets/readme.txt' ? { ...e, data: Buffer.from('generation X\n') } : e));
    const withUnlisted = [...entries.slice(0, -1), { name: 'assets/unlisted.txt', data: Buffer.from('?') }, ...entries.slice(-1)];
    await expectRefused(zipOf(withUnlisted), {
      code: 'ARCHIVE_INVALID',
      problems: ['asset "assets/readme.txt": sha256 mismatch', 'entry "assets/unlisted.txt" is not listed in the manifest'],
    });
  });

  test('a truncated archive', async () => {
    const whole = fs.readFileSync(zipOf(good.entries));
    const cut = path.join(tmp.dir, 'truncated.zip');
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    await expectRefused(cut, { code: 'ARCHIVE_INVALID', problems: [/cannot be opened as a zip file/] });
  });

  test('names that are valid in a zip but must never be written: .dbzip/, a staged-file name, a WAL of an archived database', async () => {
    const manifest = clone(good.manifest);
    const extras: RawEntry[] = [
      { name: '.dbzip/pre-restore-20990101-000000.zip', data: Buffer.from('fake undo') },
      { name: 'assets/x.dbzip-new-0123456789abcdef', data: Buffer.from('staged') },
      { name: 'app.db-wal', data: Buffer.from('stale wal') },
    ];
    for (const e of extras) manifest.assets.push({ path: e.name, bytes: e.data.length, sha256: sha256(e.data) });
    const entries = [...good.entries.slice(0, -1), ...extras];
    await expectRefused(zipOf(withManifest(entries, manifest)), {
      code: 'ARCHIVE_INVALID',
      problems: [
        "asset \".dbzip/pre-restore-20990101-000000.zip\": is inside dbzip's private folder",
        'asset "assets/x.dbzip-new-0123456789abcdef": holds ".dbzip-new-"',
        'asset "app.db-wal": dbzip archives assets inside asset folders',
        'asset "app.db-wal": SQLite would take it for the -wal file of database "app.db"',
      ],
    });
  });

  test('every problem is listed at once, not just the first', async () => {
    const entries = withExtra({ name: '../up.txt', data: Buffer.from('x') }).map((e) => (e.name === 'assets/readme.txt' ? { ...e, data: Buffer.from('changed') } : e));
    const error = await expectRefused(zipOf(entries), { code: 'ARCHIVE_INVALID', problems: ['name has a ".." segment', 'asset "assets/readme.txt"'] });
    expect((error as ArchiveError).problems.length).toBeGreaterThanOrEqual(2);
    expect(error.message).toMatch(/^invalid archive \(\d+ problems\):\n- /);
  });

  test('a folder in the data directory that is a link: the archive would write through it', async () => {
    const outside = path.join(tmp.dir, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    fs.writeFileSync(path.join(outside, 'readme.txt'), 'outside, must not change');
    const linked = path.join(tmp.dir, 'linked-data');
    fs.cpSync(data, linked, { recursive: true });
    fs.rmSync(path.join(linked, 'assets'), { recursive: true });
    fs.symlinkSync(outside, path.join(linked, 'assets'));
    const before = fingerprintTree(linked) + fingerprintTree(outside);

    const error = await restore({ archive: zipOf(good.entries), dataDir: linked }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RestoreError);
    expect((error as RestoreError).code).toBe('RESTORE_REFUSED');
    expect((error as RestoreError).message).toContain('folder "assets" in the data directory is a symbolic link');
    expect(fingerprintTree(linked) + fingerprintTree(outside)).toBe(before);
  });
});
