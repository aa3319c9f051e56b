import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import { createBackup } from '../src/backup.js';
import { UnknownDatabaseError } from '../src/errors.js';
import { backupToZip, makeDatabase } from './helpers/backup.js';
import { test, withTimeout } from './helpers/tmp.js';
import { openSnapshotBuffer } from './helpers/writer.js';

/** A separate process that writes each id to a.db, then (a moment later) to b.db, as fast as it can. */
function startTwoDatabaseWriter(dir: string) {
  const script = `
    const D = require('better-sqlite3');
    const open = (f) => { const db = new D(f); db.pragma('busy_timeout = 10000'); db.pragma('journal_mode = wal'); db.exec('CREATE TABLE IF NOT EXISTS ids (id INTEGER PRIMARY KEY)'); return db; };
    const a = open(process.argv[1] + '/a.db'), b = open(process.argv[1] + '/b.db');
    const insA = a.prepare('INSERT INTO ids VALUES (?)'), insB = b.prepare('INSERT INTO ids VALUES (?)');
    let id = 0, errors = 0, stop = false;
    process.on('message', () => { stop = true; });
    const tick = () => {
      for (let i = 0; i < 50 && !stop; i++) { id++; try { insA.run(id); insB.run(id); } catch (e) { errors++; process.stderr.write(String(e) + '\\n'); } }
      if (id === 50) process.send({ ready: true });
      if (stop) { a.close(); b.close(); process.send({ done: true, id, errors }, () => process.exit(0)); } else setImmediate(tick);
    };
    tick();`;
  const child = spawn(process.execPath, ['-e', script, dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise<void>((resolve) => child.on('message', (m: { ready?: boolean }) => m.ready && resolve()));
  return {
    ready: withTimeout(ready, 20_000, 'two-database writer'),
    stop: () =>
      withTimeout(
        new Promise<{ id: number; errors: number }>((resolve) => {
          child.on('message', (m: { done?: boolean; id: number; errors: number }) => m.done && resolve(m));
          child.send('stop');
        }),
        20_000,
        'writer stop',
      ),
  };
}

function ids(image: Buffer): Set<number> {
  const db = openSnapshotBuffer(image);
  try {
    return new Set(db.prepare('SELECT id FROM ids').pluck().all() as number[]);
  } finally {
    db.close();
  }
}

describe('one point in time for all databases', () => {
  test('pinned in the reverse of the write order, no id is ever in b.db without being in a.db', async ({ tmpDir }) => {
    const writer = startTwoDatabaseWriter(tmpDir);
    await writer.ready;
    let growing = 0;
    try {
      let previous = 0;
      for (let run = 0; run < 12; run++) {
        const { zip, manifest } = await backupToZip({ dataDir: tmpDir, pin: 'all', pinOrder: ['b.db'] });
        expect(manifest.pin.databases).toEqual(['b.db', 'a.db']);
        expect(manifest.pin.windowMs).toBeGreaterThanOrEqual(0);
        expect(manifest.databases.every((d) => d.pinned)).toBe(true);
        const a = ids(zip.files.get('a.db')!);
        const b = ids(zip.files.get('b.db')!);
        const orphans = [...b].filter((id) => !a.has(id));
        expect(orphans, `run ${run}`).toEqual([]);
        if (a.size > previous) growing++;
        previous = a.size;
      }
    } finally {
      expect((await writer.stop()).errors).toBe(0);
    }
    expect(growing).toBeGreaterThan(5);
  });

  test('pin none records no pinned databases; all-blocking pins rollback databases too', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'w.db'), { journal: 'wal' });
    makeDatabase(path.join(tmpDir, 'r.db'), { journal: 'delete' });
    const none = await backupToZip({ dataDir: tmpDir, pin: 'none' });
    expect(none.manifest.pin).toMatchObject({ mode: 'none', databases: [] });
    expect(none.size).toBeNull();
    const all = await backupToZip({ dataDir: tmpDir, pin: 'all' });
    expect(all.manifest.pin.databases).toEqual(['w.db']);
    expect(all.manifest.databases.map((d) => [d.path, d.pinned])).toEqual([
      ['r.db', false],
      ['w.db', true],
    ]);
    const blocking = await backupToZip({ dataDir: tmpDir, pin: 'all-blocking' });
    expect(blocking.manifest.pin.databases).toEqual(['r.db', 'w.db']);
    expect(blocking.size).toBe(blocking.bytes.length);
  });

  test('pinned databases are archived first, in the order they were pinned; the manifest lists databases by path', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'), { journal: 'delete' });
    makeDatabase(path.join(tmpDir, 'b.db'), { journal: 'wal' });
    makeDatabase(path.join(tmpDir, 'c.db'), { journal: 'wal' });
    const { zip, manifest } = await backupToZip({ dataDir: tmpDir, pinOrder: ['c.db'] });
    expect(manifest.pin.databases).toEqual(['c.db', 'b.db']);
    expect(zip.names.slice(1, 4)).toEqual(['c.db', 'b.db', 'a.db']);
    expect(manifest.databases.map((d) => [d.path, d.pinned])).toEqual([
      ['a.db', false],
      ['b.db', true],
      ['c.db', true],
    ]);
    // Unpinned, every database is archived by path.
    expect((await backupToZip({ dataDir: tmpDir, pin: 'none' })).zip.names.slice(1, 4)).toEqual(['a.db', 'b.db', 'c.db']);
  });

  test('pinOrder naming a database that is not in the backup is refused before any output', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'a.db'));
    await expect(createBackup({ dataDir: tmpDir, pinOrder: ['nope.db'] })).rejects.toBeInstanceOf(UnknownDatabaseError);
  });
});

describe('exact size before the first byte', () => {
  test('size equals the bytes produced, with assets, unicode names and an empty data dir', async ({ tmpDir }) => {
    const empty = await backupToZip({ dataDir: path.join(tmpDir) });
    expect(empty.size).toBe(empty.bytes.length);
    makeDatabase(path.join(tmpDir, 'ünï cödé.db'), { rows: 300 });
    makeDatabase(path.join(tmpDir, 'b.db'), { rows: 3 });
    const fs = await import('node:fs');
    fs.mkdirSync(path.join(tmpDir, 'assets', '日本'), { recursive: true });
    fs.writeFileSync(path.join(tmpDir, 'assets', '日本', 'x.bin'), Buffer.alloc(70_000, 7));
    fs.writeFileSync(path.join(tmpDir, 'assets', 'empty'), '');
    fs.writeFileSync(path.join(tmpDir, 'junk.db'), 'not sqlite');
    for (let i = 0; i < 5; i++) {
      const full = await backupToZip({ dataDir: tmpDir });
      expect(full.size).toBe(full.bytes.length);
    }
  });

  test('the size is unknown (null) with deflate or an unpinned rollback database', async ({ tmpDir }) => {
    makeDatabase(path.join(tmpDir, 'w.db'), { journal: 'wal' });
    expect((await createBackup({ dataDir: tmpDir, level: 1 })).size).toBeNull();
    makeDatabase(path.join(tmpDir, 'r.db'), { journal: 'delete' });
    const backup = await createBackup({ dataDir: tmpDir });
    expect(backup.size).toBeNull();
    backup.abort();
  });

  test('a pinned database keeps its announced size while a writer keeps growing it', async ({ tmpDir }) => {
    const writer = startTwoDatabaseWriter(tmpDir);
    await writer.ready;
    try {
      for (let i = 0; i < 5; i++) {
        const result = await backupToZip({ dataDir: tmpDir });
        expect(result.size).toBe(result.bytes.length);
      }
    } finally {
      await writer.stop();
    }
    const db = new Database(path.join(tmpDir, 'a.db'), { readonly: true });
    expect((db.prepare('SELECT COUNT(*) FROM ids').pluck().get() as number) > 0).toBe(true);
    db.close();
  });
});
