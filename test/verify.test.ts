import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { contentDigest } from '../src/archive/content-digest.js';
import { MANIFEST_NAME, VERSION_NAME, type Manifest } from '../src/archive/manifest.js';
import { ZipReader, entryNameProblem } from '../src/archive/zip-reader.js';
import { ArchiveError, OptionsError } from '../src/errors.js';
import { checkDatabaseImage, readImageHeader } from '../src/snapshot/image-check.js';
import { assertArchiveValid, verifyArchive } from '../src/verify/index.js';
import { writeRawZip } from './helpers/zip.js';

// ---- fixtures -----------------------------------------------------------------------------------

let root: string;

beforeEach(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'dbzip-verify-')));
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A real database with an index, so corrupting table or index pages shows up in integrity_check. */
function makeDatabase(file: string, options: { wal?: boolean; rows?: number } = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    if (options.wal === true) db.pragma('journal_mode = wal');
    db.pragma('user_version = 7');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t (v)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < (options.rows ?? 2000); i++) insert.run(`value number ${i} `.repeat(3));
    })();
  } finally {
    db.close(); // checkpoints: the file holds every page, its header still says WAL when wal is set
  }
}

/** Flips bytes in the cell area of two leaf pages in the middle of the file. */
function corruptDatabase(file: string): void {
  const bytes = fs.readFileSync(file);
  const pageSize = bytes.readUInt16BE(16);
  const middle = Math.floor(bytes.readUInt32BE(28) / 2);
  for (const page of [middle, middle + 1]) {
    const at = (page - 1) * pageSize + pageSize - 40;
    for (let i = 0; i < 8; i++) bytes[at + i] = (bytes[at + i] ?? 0) ^ 0xff;
  }
  fs.writeFileSync(file, bytes);
}

interface Stage {
  dir: string;
  databases: string[];
  assets: string[];
}

/** A data directory as a backup would archive it: two databases (one WAL, one in a subfolder) and assets. */
function makeStage(): Stage {
  const dir = path.join(root, 'stage');
  fs.mkdirSync(path.join(dir, 'assets', 'img'), { recursive: true });
  fs.writeFileSync(path.join(dir, VERSION_NAME), '1.2.3\n');
  makeDatabase(path.join(dir, 'app.db'));
  makeDatabase(path.join(dir, 'sub', 'x.sqlite'), { wal: true, rows: 300 });
  fs.writeFileSync(path.join(dir, 'assets', 'img', 'a.png'), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251)));
  fs.writeFileSync(path.join(dir, 'assets', 'readme.txt'), 'hello dbzip readme, stored as is\n');
  return { dir, databases: ['app.db', 'sub/x.sqlite'], assets: ['assets/img/a.png', 'assets/readme.txt'] };
}

/** A manifest matching the staged files byte for byte, header fields read by hand. */
function makeManifest(stage: Stage): Manifest {
  return {
    format: 'dbzip',
    formatVersion: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    dbzipVersion: '0.1.0',
    sqliteVersion: '3.50.0',
    appVersion: '1.2.3',
    level: 6,
    pin: { mode: 'all', databases: [...stage.databases], windowMs: null },
    databases: stage.databases.map((p) => {
      const bytes = fs.readFileSync(path.join(stage.dir, p));
      const rawPageSize = bytes.readUInt16BE(16);
      return {
        path: p,
        bytes: bytes.length,
        sha256: sha256(bytes),
        crc32: crc32(bytes).toString(16).padStart(8, '0'),
        pageSize: rawPageSize === 1 ? 65_536 : rawPageSize,
        pageCount: bytes.readUInt32BE(28),
        journalMode: bytes[18] === 2 ? ('wal' as const) : ('rollback' as const),
        userVersion: bytes.readInt32BE(60),
        quickCheck: 'ok' as const,
        pinned: true,
      };
    }),
    assets: stage.assets.map((p) => {
      const bytes = fs.readFileSync(path.join(stage.dir, p));
      return { path: p, bytes: bytes.length, sha256: sha256(bytes) };
    }),
    skipped: [],
  };
}

/** Zips `names` from the stage in that order with Info-ZIP; no extra fields, no directory entries. */
function zipStage(stage: Stage, names: readonly string[], flags: readonly string[] = []): string {
  const zipPath = path.join(root, `archive-${Math.random().toString(36).slice(2)}.zip`);
  execFileSync('zip', ['-X', '-D', '-q', ...flags, zipPath, ...names], { cwd: stage.dir });
  return zipPath;
}

/** Writes the manifest and zips VERSION, databases, assets, any extras, then manifest.json last. */
function buildArchive(stage: Stage, manifest: Manifest, options: { extra?: string[]; flags?: string[] } = {}): string {
  fs.writeFileSync(path.join(stage.dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  return zipStage(stage, [VERSION_NAME, ...stage.databases, ...stage.assets, ...(options.extra ?? []), MANIFEST_NAME], options.flags ?? []);
}

/** Replaces every occurrence of a name (local and central header) with one of the same length. */
function patchName(zipPath: string, from: string, to: string): void {
  const a = Buffer.from(from);
  const b = Buffer.from(to);
  expect(b.length).toBe(a.length);
  const bytes = fs.readFileSync(zipPath);
  let count = 0;
  for (let at = bytes.indexOf(a); at !== -1; at = bytes.indexOf(a, at + a.length)) {
    b.copy(bytes, at);
    count++;
  }
  expect(count).toBe(2); // local header + central directory
  fs.writeFileSync(zipPath, bytes);
}

/** 200 MiB of zeros deflated by Info-ZIP (about 1030:1) from a sparse file: no disk used for the source. */
function makeZipBomb(name = 'zeros.bin'): string {
  const dir = path.join(root, 'bomb');
  fs.mkdirSync(dir, { recursive: true });
  fs.closeSync(fs.openSync(path.join(dir, name), 'w'));
  fs.truncateSync(path.join(dir, name), 200 * 1024 ** 2);
  const zipPath = path.join(root, 'bomb.zip');
  execFileSync('zip', ['-X', '-q', zipPath, name], { cwd: dir });
  fs.rmSync(dir, { recursive: true });
  return zipPath;
}

/** Open descriptors of this process that point at `file` (Linux only). */
function openHandlesTo(file: string): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  }).length;
}

const hasProblem = (problems: readonly string[], ...parts: string[]): boolean =>
  problems.some((p) => parts.every((part) => p.includes(part)));

// ---- tests --------------------------------------------------------------------------------------

describe('verifyArchive', () => {
  test('a good archive verifies ok, with every database integrity-checked and every asset listed', async () => {
    const stage = makeStage();
    const manifest = makeManifest(stage);
    const zipPath = buildArchive(stage, manifest);

    const report = await verifyArchive(zipPath);

    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.appVersion).toBe('1.2.3');
    expect(report.manifest).toEqual(manifest);
    // contentSha256: the image's SHA-256 with SQLite's header bookkeeping zeroed (what restore compares).
    const content = (p: string) => contentDigest(fs.readFileSync(path.join(stage.dir, p)));
    expect(report.databases).toEqual(manifest.databases.map((d) => ({ path: d.path, bytes: d.bytes, integrity: 'ok', contentSha256: content(d.path) })));
    expect(report.databases.map((d) => d.contentSha256)).not.toEqual(manifest.databases.map((d) => d.sha256));
    expect(report.assets).toEqual(manifest.assets.map((a) => ({ path: a.path, bytes: a.bytes })));
    const staged = [VERSION_NAME, ...stage.databases, ...stage.assets, MANIFEST_NAME];
    expect(report.totalBytes).toBe(staged.reduce((sum, p) => sum + fs.statSync(path.join(stage.dir, p)).size, 0));
    expect(() => assertArchiveValid(report)).not.toThrow();
  });

  test('a zip-slip name (../evil.db) and an absolute name are refused and never read', async () => {
    const stage = makeStage();
    fs.mkdirSync(path.join(stage.dir, 'zz'));
    fs.mkdirSync(path.join(stage.dir, 'qq'));
    fs.writeFileSync(path.join(stage.dir, 'zz', 'evil.db'), 'payload one');
    fs.writeFileSync(path.join(stage.dir, 'qq', 'abs.db'), 'payload two');
    const zipPath = buildArchive(stage, makeManifest(stage), { extra: ['zz/evil.db', 'qq/abs.db'] });
    patchName(zipPath, 'zz/evil.db', '../evil.db');
    patchName(zipPath, 'qq/abs.db', '/q/abs.db');

    const report = await verifyArchive(zipPath);

    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(['entry "../evil.db": name has a ".." segment', 'entry "/q/abs.db": name is an absolute path']);

    const reader = await ZipReader.open(zipPath);
    try {
      const evil = reader.entries.find((e) => e.name === '../evil.db');
      expect(evil?.problems).toEqual(['name has a ".." segment']);
      await expect(reader.readEntry(evil!)).rejects.toThrow(/refused/);
      expect(reader.inflatedBytes).toBe(0);
    } finally {
      reader.close();
    }
  });

  test('unsafe entry names are recognised: backslash, drive letter, NUL, empty and dot segments, directories', () => {
    for (const bad of ['..', 'a/../b.db', 'a\\b.db', 'C:/x.db', 'c:x.db', '/etc/x.db', 'a\0b', 'a//b', './a', 'a/.', 'dir/', '']) {
      expect(entryNameProblem(bad), JSON.stringify(bad)).not.toBeNull();
    }
    for (const good of ['app.db', 'sub/x.sqlite', 'assets/img/a.png', '..foo/x', 'a..b', 'é.txt']) {
      expect(entryNameProblem(good), JSON.stringify(good)).toBeNull();
    }
  });

  test('a symlink entry is refused', async () => {
    const stage = makeStage();
    fs.symlinkSync('../app.db', path.join(stage.dir, 'assets', 'link.png'));
    const zipPath = buildArchive(stage, makeManifest(stage), { extra: ['assets/link.png'], flags: ['-y'] });

    const report = await verifyArchive(zipPath);

    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(['entry "assets/link.png": is a symbolic link']);
  });

  test('duplicate names are refused, whether byte-identical or equal only after NFC normalisation', async () => {
    const stage = makeStage();
    fs.writeFileSync(path.join(stage.dir, 'assets', 'b1.txt'), 'first copy');
    fs.writeFileSync(path.join(stage.dir, 'assets', 'b2.txt'), 'second copy');
    const zipPath = buildArchive(stage, makeManifest(stage), { extra: ['assets/b1.txt', 'assets/b2.txt'] });
    patchName(zipPath, 'assets/b2.txt', 'assets/b1.txt');

    const report = await verifyArchive(zipPath);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(['entry "assets/b1.txt": name appears 2 times']);

    const nfcPath = path.join(root, 'nfc.zip');
    writeRawZip(nfcPath, [
      { name: 'caf\u00e9.txt', data: Buffer.from('precomposed') },
      { name: 'cafe\u0301.txt', data: Buffer.from('decomposed') },
    ]);
    const reader = await ZipReader.open(nfcPath);
    try {
      expect(reader.problems).toEqual([`entries "caf\u00e9.txt", "cafe\u0301.txt" have the same name after Unicode NFC normalisation`]);
      expect(reader.entries.map((e) => e.problems)).toEqual([['duplicate name'], ['duplicate name']]);
    } finally {
      reader.close();
    }
  });

  test('entries dbzip never writes are refused: directories, encrypted entries, other compression methods', async () => {
    const zipPath = path.join(root, 'odd.zip');
    writeRawZip(zipPath, [
      { name: 'dir/', data: Buffer.alloc(0), unixMode: 0o040755 },
      { name: 'folder', data: Buffer.alloc(0), unixMode: 0o040755 },
      { name: 'secret.db', data: Buffer.from('xxxxxxxxxxxxyyyy'), flags: 0x801 },
      { name: 'bzip2.db', data: Buffer.from('whatever'), method: 12 },
      { name: 'fifo', data: Buffer.alloc(0), unixMode: 0o010644 },
    ]);
    const reader = await ZipReader.open(zipPath);
    try {
      expect(reader.entries.map((e) => e.problems)).toEqual([
        ['is a directory entry (dbzip never writes them)'],
        ['is a directory entry (dbzip never writes them)'],
        ['is encrypted'],
        ['uses compression method 12; only 0 (store) and 8 (deflate) are allowed'],
        ['is a special file (mode 10000)'],
      ]);
    } finally {
      reader.close();
    }
  });

  test('a zip bomb is refused by the ratio cap from the central directory, without inflating it', async () => {
    const zipPath = makeZipBomb();
    expect(fs.statSync(zipPath).size).toBeLessThan(300_000);

    const report = await verifyArchive(zipPath);
    expect(report.ok).toBe(false);
    expect(hasProblem(report.problems, 'entry "zeros.bin"', 'compression ratio', 'option maxRatio')).toBe(true);

    const reader = await ZipReader.open(zipPath);
    try {
      const bomb = reader.entries[0]!;
      expect(bomb.uncompressedSize).toBe(200 * 1024 ** 2);
      await expect(reader.readEntry(bomb)).rejects.toBeInstanceOf(ArchiveError);
      await expect(reader.openEntryStream(bomb)).rejects.toThrow(/refused: compression ratio/);
      expect(reader.inflatedBytes).toBe(0);
    } finally {
      reader.close();
    }

    // The cap is what refused it: raised, the same central directory lists clean.
    const lenient = await ZipReader.open(zipPath, { maxRatio: 2000 });
    try {
      expect(lenient.problems).toEqual([]);
    } finally {
      lenient.close();
    }
  });

  test('an entry that inflates past its declared size is stopped while inflating', async () => {
    const zipPath = makeZipBomb();
    // Declare 1,000,000 bytes (under the 1 MiB ratio floor) in both headers; the data holds 200 MiB.
    const bytes = fs.readFileSync(zipPath);
    const centralAt = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes.writeUInt32LE(1_000_000, 22);
    bytes.writeUInt32LE(1_000_000, centralAt + 24);
    fs.writeFileSync(zipPath, bytes);

    const reader = await ZipReader.open(zipPath);
    try {
      expect(reader.problems).toEqual([]);
      await expect(reader.readEntry(reader.entries[0]!)).rejects.toThrow(/entry "zeros.bin"/);
      expect(reader.inflatedBytes).toBeLessThanOrEqual(1_000_000);
    } finally {
      reader.close();
    }

    // The archive-wide cap counts inflated bytes too, not only the declared ones.
    const capped = await ZipReader.open(zipPath, { maxTotalBytes: 300_000 });
    try {
      expect(capped.problems).toEqual(['entries add up to 1000000 bytes uncompressed, over the limit of 300000 (option maxTotalBytes)']);
      await expect(capped.readEntry(capped.entries[0]!)).rejects.toThrow(/archive-wide limit \(option maxTotalBytes\)/);
      expect(capped.inflatedBytes).toBeLessThanOrEqual(300_000 + 64 * 1024);
    } finally {
      capped.close();
    }
  });

  test('a manifest hash mismatch is reported', async () => {
    const stage = makeStage();
    const manifest = makeManifest(stage);
    manifest.assets[0]!.sha256 = '0'.repeat(64);
    const zipPath = buildArchive(stage, manifest);

    const report = await verifyArchive(zipPath);

    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      `asset "assets/img/a.png": sha256 mismatch (archive ${sha256(fs.readFileSync(path.join(stage.dir, 'assets/img/a.png')))}, manifest ${'0'.repeat(64)})`,
    ]);
  });

  test('a manifest whose crc32 or page count disagrees with the database is reported', async () => {
    const stage = makeStage();
    const manifest = makeManifest(stage);
    manifest.databases[1]!.crc32 = '00000000';
    manifest.databases[1]!.pageCount += 1;
    const report = await verifyArchive(buildArchive(stage, manifest));
    expect(report.problems).toEqual([
      expect.stringMatching(/^database "sub\/x\.sqlite": crc32 [0-9a-f]{8} in the archive, 00000000 in the manifest$/),
      `database "sub/x.sqlite": ${manifest.databases[1]!.pageCount - 1} pages, manifest says ${manifest.databases[1]!.pageCount}`,
    ]);
  });

  test('a corrupted database fails integrity_check while the others pass', async () => {
    const stage = makeStage();
    corruptDatabase(path.join(stage.dir, 'app.db'));
    const zipPath = buildArchive(stage, makeManifest(stage)); // manifest hashes the corrupted bytes

    const report = await verifyArchive(zipPath);

    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatch(/^database "app\.db": integrity_check failed: /);
    expect(report.databases.find((d) => d.path === 'app.db')?.integrity).not.toBe('ok');
    expect(report.databases.find((d) => d.path === 'sub/x.sqlite')?.integrity).toBe('ok');
  });

  test('a missing manifest is reported, and VERSION is still read', async () => {
    const stage = makeStage();
    const zipPath = zipStage(stage, [VERSION_NAME, ...stage.databases]);

    const report = await verifyArchive(zipPath);

    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(['manifest.json is missing']);
    expect(report.manifest).toBeNull();
    expect(report.appVersion).toBe('1.2.3');
  });

  test('a manifest of an unknown format version is reported and not used', async () => {
    const stage = makeStage();
    const manifest = { ...makeManifest(stage), formatVersion: 2 } as unknown as Manifest;
    const report = await verifyArchive(buildArchive(stage, manifest));
    expect(report.problems).toEqual(['manifest.json: formatVersion 2 is not one this dbzip knows (1)']);
    expect(report.manifest).toBeNull();
  });

  test('several problems in one archive are all listed', async () => {
    const stage = makeStage();
    const manifest = makeManifest(stage);
    manifest.appVersion = '9.9.9';
    manifest.assets.push({ path: 'assets/gone.txt', bytes: 1, sha256: '1'.repeat(64) });
    manifest.assets[1]!.bytes += 1;
    corruptDatabase(path.join(stage.dir, 'app.db'));
    const corrupted = fs.readFileSync(path.join(stage.dir, 'app.db'));
    manifest.databases[0]!.sha256 = sha256(corrupted);
    manifest.databases[0]!.crc32 = crc32(corrupted).toString(16).padStart(8, '0');
    fs.writeFileSync(path.join(stage.dir, 'notes.txt'), 'not in the manifest');
    fs.mkdirSync(path.join(stage.dir, 'zz'));
    fs.writeFileSync(path.join(stage.dir, 'zz', 'evil.db'), 'payload');
    fs.writeFileSync(path.join(stage.dir, MANIFEST_NAME), `${JSON.stringify(manifest)}\n`);
    // manifest.json in the middle and VERSION second: both order rules broken too.
    const zipPath = zipStage(stage, ['app.db', VERSION_NAME, MANIFEST_NAME, 'sub/x.sqlite', ...stage.assets, 'notes.txt', 'zz/evil.db']);
    patchName(zipPath, 'zz/evil.db', '../evil.db');

    const report = await verifyArchive(zipPath);

    const expected: string[][] = [
      ['entry "../evil.db"', '".." segment'],
      ['VERSION is not the first entry'],
      ['manifest.json is not the last entry'],
      ['VERSION says "1.2.3"', '"9.9.9"'],
      ['asset "assets/gone.txt" is in the manifest but not in the archive'],
      ['database "app.db"', 'integrity_check failed'],
      ['asset "assets/readme.txt"', 'bytes in the archive'],
      ['entry "notes.txt" is not listed in the manifest'],
    ];
    for (const parts of expected) expect(hasProblem(report.problems, ...parts), parts.join(' … ')).toBe(true);
    expect(report.problems).toHaveLength(expected.length);
    expect(() => assertArchiveValid(report)).toThrow(ArchiveError);
    try {
      assertArchiveValid(report);
    } catch (error) {
      expect((error as ArchiveError).problems).toEqual(report.problems);
    }
  });

  test('a CRC-32 mismatch in a stored entry is detected', async () => {
    const stage = makeStage();
    const zipPath = buildArchive(stage, makeManifest(stage), { flags: ['-0'] });
    const bytes = fs.readFileSync(zipPath);
    const at = bytes.indexOf(Buffer.from('hello dbzip readme'));
    expect(at).toBeGreaterThan(0);
    bytes[at] = (bytes[at] ?? 0) ^ 0x20; // 'h' → 'H': same size, different CRC
    fs.writeFileSync(zipPath, bytes);

    const report = await verifyArchive(zipPath);

    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatch(/^entry "assets\/readme\.txt": CRC-32 mismatch/);
  });

  test('a file that is not a zip is reported, while a missing file or bad option throws', async () => {
    const notZip = path.join(root, 'not.zip');
    fs.writeFileSync(notZip, 'just text, no end of central directory record');
    const report = await verifyArchive(notZip);
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toContain('cannot be opened as a zip file');

    await expect(verifyArchive(path.join(root, 'absent.zip'))).rejects.toBeInstanceOf(ArchiveError);
    await expect(verifyArchive(root)).rejects.toThrow(/not a regular file/);
    await expect(verifyArchive(notZip, { maxRatio: 0 })).rejects.toBeInstanceOf(OptionsError);
    await expect(verifyArchive(notZip, { maxEntries: 1.5 })).rejects.toThrow(/"maxEntries"/);
    await expect(verifyArchive(notZip, { maxDatabaseBytes: -1 })).rejects.toThrow(/"maxDatabaseBytes"/);
  });

  test('too many entries are refused from the entry count before the central directory is walked', async () => {
    const stage = makeStage();
    const report = await verifyArchive(buildArchive(stage, makeManifest(stage)), { maxEntries: 3 });
    expect(report.problems).toEqual(['archive has 6 entries, over the limit of 3 (option maxEntries)']);
  });

  test.skipIf(!fs.existsSync('/proc/self/fd'))('the zip file handle is closed after verification, even when reads fail', async () => {
    const stage = makeStage();
    corruptDatabase(path.join(stage.dir, 'app.db'));
    const zipPath = buildArchive(stage, makeManifest(stage), { flags: ['-0'] });
    const bytes = fs.readFileSync(zipPath);
    const at = bytes.indexOf(Buffer.from('hello dbzip readme'));
    bytes[at] = (bytes[at] ?? 0) ^ 0x20;
    fs.writeFileSync(zipPath, bytes);

    const report = await verifyArchive(zipPath);
    expect(report.ok).toBe(false);
    // verifyArchive resolves only after the descriptor is really closed.
    expect(openHandlesTo(zipPath)).toBe(0);
  });
});

describe('database image checks', () => {
  test('a WAL-mode image passes integrity_check and its header bytes are left as they were', () => {
    const file = path.join(root, 'wal.db');
    makeDatabase(file, { wal: true, rows: 50 });
    const image = fs.readFileSync(file);
    const before = Buffer.from(image);

    expect(readImageHeader(image)).toMatchObject({ journalMode: 'wal', userVersion: 7, pageSize: image.readUInt16BE(16) });
    expect(checkDatabaseImage(image, 'integrity')).toEqual({ ok: true, messages: ['ok'] });
    expect(checkDatabaseImage(image, 'quick')).toEqual({ ok: true, messages: ['ok'] });
    expect(image.equals(before)).toBe(true);
  });

  test('an image without the SQLite header fails the check, and its header does not parse', () => {
    expect(checkDatabaseImage(Buffer.alloc(0), 'quick').ok).toBe(false);
    expect(checkDatabaseImage(Buffer.alloc(4096), 'integrity').ok).toBe(false);
    expect(() => readImageHeader(Buffer.alloc(100))).toThrow(/SQLite format 3/);
    expect(() => readImageHeader(Buffer.from('SQLite'))).toThrow(/shorter than the 100-byte/);
  });
});
