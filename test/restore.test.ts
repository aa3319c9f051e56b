import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import { generateFixtures } from '../fixtures/generate.js';
import { VERSION_NAME } from '../src/archive/manifest.js';
import { AbortedError, OptionsError, RestoreError } from '../src/errors.js';
import { createSpool, restore, RESTORE_DEFAULTS, type RestoreOptions } from '../src/restore/index.js';
import { prunePreRestore, publishPreRestore, writePreRestore } from '../src/restore/pre-restore.js';
import { writeImageIntoLive } from '../src/snapshot/apply-image.js';
import { verifyArchive } from '../src/verify/index.js';
import { makeDatabase } from './helpers/backup.js';
import {
  backupToFile,
  fingerprintTree,
  logicalHashOfFile,
  logicalHashOfImage,
  readArchive,
  readGeneration,
  startChild,
  writeGeneration,
} from './helpers/restore.js';
import { test, withTimeout } from './helpers/tmp.js';

const EXTENSIONS = ['.db', '.sqlite'];

/** Every database's content, every asset's bytes and VERSION in the data dir equal the archive's. */
async function expectMatchesArchive(dataDir: string, zipPath: string): Promise<void> {
  const { entries, manifest } = await readArchive(zipPath);
  const byName = new Map(entries.map((e) => [e.name, e.data]));
  for (const db of manifest.databases) {
    expect(logicalHashOfFile(path.join(dataDir, db.path)), db.path).toBe(logicalHashOfImage(byName.get(db.path) as Buffer));
  }
  for (const asset of manifest.assets) expect(fs.readFileSync(path.join(dataDir, asset.path)).equals(byName.get(asset.path) as Buffer), asset.path).toBe(true);
  expect(fs.readFileSync(path.join(dataDir, VERSION_NAME), 'utf8')).toBe(byName.get(VERSION_NAME)?.toString('utf8'));
}

/** Content of every database plus asset bytes, to compare two states of the data dir. */
function contentOf(dataDir: string, databases: readonly string[], assets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const db of databases) out[db] = fs.existsSync(path.join(dataDir, db)) ? logicalHashOfFile(path.join(dataDir, db)) : 'absent';
  for (const a of assets) out[a] = fs.existsSync(path.join(dataDir, a)) ? fs.readFileSync(path.join(dataDir, a)).toString('base64') : 'absent';
  return out;
}

/** Fixture data dir, a backup of it, then changes to databases (WAL and rollback) and assets. */
async function changedFixture(tmpDir: string): Promise<{ data: string; zip: string }> {
  const data = path.join(tmpDir, 'data');
  await generateFixtures(data);
  const zip = path.join(tmpDir, 'backup.zip');
  await backupToFile(zip, { dataDir: data, extensions: EXTENSIONS });
  const app = new Database(path.join(data, 'app.db'));
  app.exec('DELETE FROM attachments; UPDATE users SET name = name || \'!\'');
  app.close();
  const settings = new Database(path.join(data, 'settings.db'));
  settings.exec("INSERT OR REPLACE INTO settings (key, value) VALUES ('theme', 'changed'), ('new', 'x')");
  settings.close();
  fs.writeFileSync(path.join(data, 'assets', 'logo.svg'), '<svg>changed</svg>');
  fs.rmSync(path.join(data, 'assets', 'img', 'pixel.bin'));
  fs.writeFileSync(path.join(data, 'assets', 'added-later.txt'), 'not in the backup');
  makeDatabase(path.join(data, 'extra.db'), { rows: 3 });
  return { data, zip };
}

function filesNamed(dir: string, pattern: RegExp): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => pattern.test(p));
}

describe('restore: round trips', () => {
  for (const mode of ['online', 'offline'] as const) {
    test(`${mode}: backup, change, restore gives the backup's content back, and the plan says what changed`, async ({ tmpDir }) => {
      const { data, zip } = await changedFixture(tmpDir);

      const report = await restore({ archive: zip, dataDir: data, mode });

      await expectMatchesArchive(data, zip);
      expect(report.applied).toBe(true);
      const actions = Object.fromEntries(report.plan.items.map((i) => [i.path, i.action]));
      expect(actions).toMatchObject({
        VERSION: 'unchanged',
        'app.db': 'replaced',
        'settings.db': 'replaced',
        'events.sqlite': 'unchanged',
        'assets/logo.svg': 'replaced',
        'assets/img/pixel.bin': 'added',
        'assets/docs/readme.txt': 'unchanged',
        'assets/added-later.txt': 'kept',
        'extra.db': 'kept',
      });
      // Kept without exact; junk.db (not SQLite) is never touched.
      expect(fs.existsSync(path.join(data, 'extra.db'))).toBe(true);
      expect(fs.readFileSync(path.join(data, 'junk.db'), 'utf8')).toContain('not');
      // Journal modes as they were, nothing staged left behind, the pre-restore backup verifies.
      expect(readHeaderMode(path.join(data, 'app.db'))).toBe(2);
      expect(readHeaderMode(path.join(data, 'settings.db'))).toBe(1);
      expect(filesNamed(data, /dbzip-new-|\.partial$/)).toEqual([]);
      expect(report.preRestore).toMatch(/\.dbzip\/pre-restore-\d{8}-\d{6}(-\d+)?\.zip$/);
      expect((await verifyArchive(report.preRestore as string)).ok).toBe(true);
      expect(fs.existsSync(path.join(data, '.dbzip', 'restore.lock'))).toBe(false);
    });
  }

  test('the pre-restore backup restores the state from before the restore', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    const dbs = ['app.db', 'settings.db', 'events.sqlite', 'extra.db'];
    const assets = ['assets/logo.svg', 'assets/img/pixel.bin', 'assets/added-later.txt'];
    const before = contentOf(data, dbs, assets);

    const first = await restore({ archive: zip, dataDir: data, mode: 'offline', exact: true });
    expect(contentOf(data, dbs, assets)).not.toEqual(before);
    expect(fs.existsSync(path.join(data, 'extra.db'))).toBe(false);

    await restore({ archive: first.preRestore as string, dataDir: data, mode: 'online', exact: true });
    expect(contentOf(data, dbs, assets)).toEqual(before);
  });

  test('offline into an empty data directory creates every file and folder; online does too', async ({ tmpDir }) => {
    const { zip } = await changedFixture(tmpDir);
    for (const mode of ['offline', 'online'] as const) {
      const fresh = path.join(tmpDir, `fresh-${mode}`);
      fs.mkdirSync(fresh);
      const report = await restore({ archive: zip, dataDir: fresh, mode });
      expect(report.plan.items.every((i) => i.action === 'added')).toBe(true);
      await expectMatchesArchive(fresh, zip);
      expect(fs.statSync(path.join(fresh, '.dbzip')).mode & 0o777).toBe(0o700);
    }
  });

  test('exact removes databases and assets the archive lacks, and nothing a backup would not archive', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    fs.writeFileSync(path.join(data, 'notes.txt'), 'not a database, not an asset');
    fs.writeFileSync(path.join(data, 'extra.db-wal'), '');
    fs.mkdirSync(path.join(data, '.dbzip'), { mode: 0o700 });
    fs.writeFileSync(path.join(data, '.dbzip', 'keep-me.db'), 'private');

    const report = await restore({ archive: zip, dataDir: data, mode: 'online', exact: true });

    expect(report.plan.items.filter((i) => i.action === 'removed').map((i) => i.path).sort()).toEqual(['assets/added-later.txt', 'extra.db']);
    expect(fs.existsSync(path.join(data, 'extra.db'))).toBe(false);
    expect(fs.existsSync(path.join(data, 'extra.db-wal'))).toBe(false);
    expect(fs.existsSync(path.join(data, 'assets', 'added-later.txt'))).toBe(false);
    for (const kept of ['notes.txt', 'junk.db', 'empty.db', '.dbzip/keep-me.db']) expect(fs.existsSync(path.join(data, kept)), kept).toBe(true);
    await expectMatchesArchive(data, zip);
  });

  test('online: a dry run of the same archive right after restoring it reads unchanged for every file, though SQLite rewrote header bytes; a real change reads replaced', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    await restore({ archive: zip, dataDir: data, mode: 'online' });
    // The backup API bumped the live files' change counter, schema cookie and version-valid-for: the bytes differ.
    const { entries } = await readArchive(zip);
    const archived = entries.find((e) => e.name === 'app.db')!.data;
    expect(fs.readFileSync(path.join(data, 'app.db')).equals(archived)).toBe(false);

    const dry = await restore({ archive: zip, dataDir: data, dryRun: true });
    expect(dry.plan.items.filter((i) => i.action !== 'unchanged' && i.action !== 'kept')).toEqual([]);
    const again = await restore({ archive: zip, dataDir: data, mode: 'online' });
    expect(again.applied).toBe(false);
    expect(again.preRestore).toBeNull();

    // One changed row is content: replaced, by the same comparison.
    const db = new Database(path.join(data, 'settings.db'));
    db.exec("CREATE TABLE note (v TEXT); INSERT INTO note VALUES ('changed')");
    db.close();
    const changed = await restore({ archive: zip, dataDir: data, dryRun: true });
    expect(Object.fromEntries(changed.plan.items.map((i) => [i.path, i.action]))).toMatchObject({ 'settings.db': 'replaced', 'app.db': 'unchanged' });
  });

  test('restoring the same archive twice changes nothing the second time and writes no pre-restore backup', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    await restore({ archive: zip, dataDir: data, mode: 'offline' });
    const before = fingerprintTree(data, { ignoreReaderSidecars: true });

    const again = await restore({ archive: zip, dataDir: data, mode: 'offline' });

    expect(again.applied).toBe(false);
    expect(again.preRestore).toBeNull();
    expect(again.plan.summary).toMatchObject({ added: 0, replaced: 0, removed: 0 });
    expect(fingerprintTree(data, { ignoreReaderSidecars: true })).toBe(before);
  });

  test(`keeps the newest keepPreRestore pre-restore backups (default ${RESTORE_DEFAULTS.keepPreRestore})`, async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    writeGeneration(path.join(data, 'g.db'), 1);
    const zips = [path.join(tmpDir, 'g1.zip'), path.join(tmpDir, 'g2.zip')];
    await backupToFile(zips[0] as string, { dataDir: data });
    writeGeneration(path.join(data, 'g.db'), 2);
    await backupToFile(zips[1] as string, { dataDir: data });

    const made: string[] = [];
    for (let i = 0; i < 4; i++) {
      const report = await restore({ archive: zips[i % 2] as string, dataDir: data, keepPreRestore: 2 });
      made.push(report.preRestore as string);
      expect(readGeneration(path.join(data, 'g.db')).gen).toBe((i % 2) + 1);
    }
    const left = fs.readdirSync(path.join(data, '.dbzip')).filter((n) => n.endsWith('.zip')).map((n) => path.join(data, '.dbzip', n)).sort();
    expect(left).toEqual(made.slice(-2).sort());
  });
});

describe('pre-restore backups', () => {
  test('several in one second are named -2, -3… above any that exist, so pruning keeps the newest', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    writeGeneration(path.join(data, 'g.db'), 1);
    const dir = path.join(data, '.dbzip');
    fs.mkdirSync(dir);
    const date = new Date(Date.UTC(2030, 0, 2, 3, 4, 5));
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const pre = await writePreRestore(dir, { dataDir: data }, date);
      await publishPreRestore(pre);
      names.push(path.basename(pre.path));
      await prunePreRestore(dir, 2);
    }
    expect(names).toEqual(['pre-restore-20300102-030405.zip', 'pre-restore-20300102-030405-2.zip', 'pre-restore-20300102-030405-3.zip', 'pre-restore-20300102-030405-4.zip']);
    expect(fs.readdirSync(dir).sort()).toEqual(names.slice(-2));
  });
});

describe('restore: verify first, change nothing on refusal', () => {
  test('a dry run verifies and plans but changes nothing, not even .dbzip/ (SQLite may add a reader\'s -shm)', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    const before = fingerprintTree(data, { ignoreReaderSidecars: true });

    const report = await restore({ archive: zip, dataDir: data, dryRun: true, exact: true });

    expect(report.dryRun).toBe(true);
    expect(report.applied).toBe(false);
    expect(report.preRestore).toBeNull();
    expect(report.verify.ok).toBe(true);
    expect(report.plan.summary).toMatchObject({ replaced: 3, added: 1, removed: 2 });
    expect(fingerprintTree(data, { ignoreReaderSidecars: true })).toBe(before);
  });

  test('an archive from a newer application version is refused unless forced; an older one is allowed', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir); // the archive says 1.4.2
    fs.writeFileSync(path.join(data, 'VERSION'), '1.4.1\n');
    const before = fingerprintTree(data);

    const error = await restore({ archive: zip, dataDir: data }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreError);
    expect((error as RestoreError).code).toBe('RESTORE_REFUSED');
    expect((error as RestoreError).message).toContain('archive version 1.4.2 is newer than the data directory\'s 1.4.1');
    expect(fingerprintTree(data)).toBe(before);

    // The running application's version, when given, is what counts.
    const allowed = await restore({ archive: zip, dataDir: data, appVersion: 'v1.10.0', dryRun: true });
    expect(allowed.version).toMatchObject({ comparison: 'older', allowed: true, currentSource: 'option' });

    const forced = await restore({ archive: zip, dataDir: data, force: true });
    expect(forced.version).toMatchObject({ comparison: 'newer', forced: true });
    expect(fs.readFileSync(path.join(data, 'VERSION'), 'utf8')).toBe('1.4.2\n');
  });

  test('declining the confirmation leaves the data directory unchanged and no pre-restore backup', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    const before = fingerprintTree(data, { ignoreReaderSidecars: true });
    let seen: string[] = [];

    const error = await restore({
      archive: zip,
      dataDir: data,
      confirm: (plan) => {
        seen = plan.items.map((i) => `${i.action} ${i.path}`);
        expect(fs.readdirSync(path.join(data, '.dbzip')).some((n) => n.endsWith('.zip.partial'))).toBe(true);
        return false;
      },
    }).catch((e: unknown) => e);

    expect((error as RestoreError).code).toBe('RESTORE_REFUSED');
    expect(seen).toContain('replaced app.db');
    expect(fs.readdirSync(path.join(data, '.dbzip'))).toEqual([]);
    expect(fingerprintTree(data, { ignoreReaderSidecars: true }).split('\n').filter((l) => !l.includes('.dbzip')).join('\n')).toBe(before);
  });

  test('an aborted signal stops the restore before anything changes', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    const before = fingerprintTree(data);
    await expect(restore({ archive: zip, dataDir: data, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
    expect(fingerprintTree(data)).toBe(before);
  });

  test('offline mode refuses while another process has a WAL database open, and changes no data file', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    const db = path.join(data, 'g.db');
    writeGeneration(db, 1);
    const zip = path.join(tmpDir, 'g1.zip');
    await backupToFile(zip, { dataDir: data });
    writeGeneration(db, 2);
    const reader = startChild({ role: 'reader', dbPath: db });
    try {
      await reader.waitFor('ready', 20_000);
      const error = await restore({ archive: zip, dataDir: data, mode: 'offline', busyTimeoutMs: 200 }).catch((e: unknown) => e);
      expect((error as RestoreError).code).toBe('RESTORE_REFUSED');
      expect((error as RestoreError).message).toMatch(/"g\.db" is in use.*online mode/);
    } finally {
      reader.child.send('stop');
      await withTimeout(reader.closed, 20_000, 'reader');
    }
    expect(readGeneration(db).gen).toBe(2);
    expect(filesNamed(data, /dbzip-new-/)).toEqual([]);
    // Refused before the confirmation: no pre-restore backup was kept either.
    expect(fs.readdirSync(path.join(data, '.dbzip'))).toEqual([]);
  });

  test('options are checked up front, with messages naming the option', async ({ tmpDir }) => {
    const base: RestoreOptions = { archive: path.join(tmpDir, 'x.zip'), dataDir: tmpDir };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ mode: 'live' }, /option "mode" must be one of online, offline/],
      [{ keepPreRestore: 0 }, /option "keepPreRestore" must be a whole number from 1/],
      [{ dryrun: true }, /unknown option "dryrun"; did you mean "dryRun"\?/],
      [{ archive: '' }, /option "archive" is required/],
      [{ maxRatio: 0 }, /option "maxRatio"/],
      [{ assets: ['../up'] }, /option "assets" must name a path inside the data directory/],
      [{ removeArchive: true }, /option "removeArchive" is only allowed for an archive inside/],
    ];
    for (const [extra, message] of cases) {
      await expect(restore({ ...base, ...extra } as RestoreOptions), JSON.stringify(extra)).rejects.toThrow(message);
      await expect(restore({ ...base, ...extra } as RestoreOptions)).rejects.toBeInstanceOf(OptionsError);
    }
  });
});

describe('restore: spooled uploads', () => {
  test('createSpool gives a fresh path in <dataDir>/.dbzip (0700); removeArchive deletes it after success and after failure', async ({ tmpDir }) => {
    const { data, zip } = await changedFixture(tmpDir);
    const spool = await createSpool(data);
    expect(path.dirname(spool)).toBe(path.join(data, '.dbzip'));
    expect(fs.statSync(path.dirname(spool)).mode & 0o777).toBe(0o700);
    expect(await createSpool(data)).not.toBe(spool);
    fs.copyFileSync(zip, spool);

    const report = await restore({ archive: spool, dataDir: data, removeArchive: true });
    expect(report.archiveRemoved).toBe(true);
    expect(fs.existsSync(spool)).toBe(false);
    await expectMatchesArchive(data, zip);

    const bad = await createSpool(data);
    fs.writeFileSync(bad, fs.readFileSync(zip).subarray(0, 1000));
    await expect(restore({ archive: bad, dataDir: data, removeArchive: true })).rejects.toMatchObject({ code: 'ARCHIVE_INVALID' });
    expect(fs.existsSync(bad)).toBe(false);
  });
});

describe('restore: online details', () => {
  test('writeImageIntoLive waits while another connection holds the write lock, then copies in one step', async ({ tmpDir }) => {
    const live = path.join(tmpDir, 'live.db');
    writeGeneration(live, 1);
    const image = (() => {
      writeGeneration(path.join(tmpDir, 'src.db'), 3);
      const db = new Database(path.join(tmpDir, 'src.db'));
      try {
        return db.serialize();
      } finally {
        db.close();
      }
    })();
    const holder = new Database(live);
    holder.exec('BEGIN IMMEDIATE');
    const release = setTimeout(() => holder.exec('COMMIT'), 300);
    try {
      // better-sqlite3 alone would resolve at once, having copied nothing.
      const result = await writeImageIntoLive(live, image, { busyTimeoutMs: 5_000, scratchDir: tmpDir });
      expect(result.attempts).toBeGreaterThan(1);
      expect(result.journalMode).toBe('wal');
      expect(readGeneration(live).gen).toBe(3);

      holder.exec('BEGIN IMMEDIATE');
      await expect(writeImageIntoLive(live, image, { busyTimeoutMs: 100, scratchDir: tmpDir })).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
      holder.exec('COMMIT');
    } finally {
      clearTimeout(release);
      holder.close();
    }
  });

  test('keeps the live journal mode in both directions (WAL archive into rollback file, rollback archive into WAL file)', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    writeGeneration(path.join(data, 'w.db'), 1, { journal: 'wal' });
    writeGeneration(path.join(data, 'r.db'), 1, { journal: 'delete' });
    const zip = path.join(tmpDir, 'g1.zip');
    await backupToFile(zip, { dataDir: data });
    fs.rmSync(data, { recursive: true });
    writeGeneration(path.join(data, 'w.db'), 2, { journal: 'delete' });
    writeGeneration(path.join(data, 'r.db'), 2, { journal: 'wal' });

    await restore({ archive: zip, dataDir: data, mode: 'online' });

    expect(readGeneration(path.join(data, 'w.db')).gen).toBe(1);
    expect(readGeneration(path.join(data, 'r.db')).gen).toBe(1);
    expect(readHeaderMode(path.join(data, 'w.db'))).toBe(1);
    expect(readHeaderMode(path.join(data, 'r.db'))).toBe(2);
  });

  test('a WAL database with another page size is rebuilt to the live page size; a rollback one takes the archive\'s', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    writeGeneration(path.join(data, 'w.db'), 1, { journal: 'wal', pageSize: 4096 });
    writeGeneration(path.join(data, 'r.db'), 1, { journal: 'delete', pageSize: 4096 });
    const zip = path.join(tmpDir, 'g1.zip');
    await backupToFile(zip, { dataDir: data });
    fs.rmSync(data, { recursive: true });
    writeGeneration(path.join(data, 'w.db'), 2, { journal: 'wal', pageSize: 1024 });
    writeGeneration(path.join(data, 'r.db'), 2, { journal: 'delete', pageSize: 8192 });

    const report = await restore({ archive: zip, dataDir: data, mode: 'online' });

    expect(report.notes).toEqual([expect.stringContaining('w.db: rebuilt with the live file\'s page size')]);
    expect(readGeneration(path.join(data, 'w.db')).gen).toBe(1);
    expect(readGeneration(path.join(data, 'r.db')).gen).toBe(1);
    expect(fs.readFileSync(path.join(data, 'w.db')).readUInt16BE(16)).toBe(1024);
    expect(fs.readFileSync(path.join(data, 'r.db')).readUInt16BE(16)).toBe(4096);
    expect(fs.readdirSync(path.join(data, '.dbzip')).filter((n) => n.startsWith('convert-'))).toEqual([]);
  });
});

/** Byte 18 of the header: 1 = rollback journal, 2 = WAL. */
function readHeaderMode(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const header = Buffer.alloc(100);
    fs.readSync(fd, header, 0, 100, 0);
    return header[18] ?? 0;
  } finally {
    fs.closeSync(fd);
  }
}
