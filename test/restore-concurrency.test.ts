import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect } from 'vitest';
import { restore } from '../src/restore/index.js';
import { backupToFile, readGeneration, startChild, writeGeneration, type ReaderStats } from './helpers/restore.js';
import { test, withTimeout } from './helpers/tmp.js';
import { checkLedgerInvariant, startWriter } from './helpers/writer.js';
import { waitFor } from './http-helpers.js';

describe('online restore under live connections', () => {
  for (const journal of ['wal', 'delete'] as const) {
    test(`${journal}: a reader process running queries throughout sees only whole generations, old or new`, async ({ tmpDir }) => {
      const data = path.join(tmpDir, 'data');
      const db = path.join(data, 'gen.db');
      const zips: string[] = [];
      for (const gen of [1, 2]) {
        writeGeneration(db, gen, { journal, blobBytes: 300 });
        zips.push(path.join(tmpDir, `gen${gen}.zip`));
        await backupToFile(zips[gen - 1] as string, { dataDir: data });
      }
      const reader = startChild({ role: 'reader', dbPath: db });
      let stats: ReaderStats;
      try {
        await reader.waitFor('gen 2', 20_000);
        // Back and forth, so the reader crosses several switches.
        for (let round = 0; round < 4; round++) {
          const gen = round % 2 === 0 ? 1 : 2;
          await restore({ archive: zips[gen - 1] as string, dataDir: data, mode: 'online' });
          expect(readGeneration(db).gen).toBe(gen);
        }
        await reader.waitFor('gen 1', 20_000);
      } finally {
        if (reader.child.connected) reader.child.send('stop');
      }
      const line = await withTimeout(reader.waitFor('stats ', 20_000), 25_000, 'reader stats');
      stats = JSON.parse(line.slice('stats '.length)) as ReaderStats;
      console.info(`[restore ${journal}] reader: ${JSON.stringify(stats)}`);
      await reader.closed;
      expect(stats.errors).toEqual([]);
      expect(stats.mixed).toBe(0);
      expect(stats.byGen['1']).toBeGreaterThan(0);
      expect(stats.byGen['2']).toBeGreaterThan(0);
      expect(stats.reads).toBeGreaterThan(50);
    });
  }

  test('a writer process keeps committing through an online restore, and its invariant holds on the restored data', async ({ tmpDir }) => {
    const data = path.join(tmpDir, 'data');
    const ledger = path.join(data, 'ledger.db');
    const zip = path.join(tmpDir, 'ledger.zip');
    fs.mkdirSync(data, { recursive: true });
    const counter = () => {
      const check = new Database(ledger, { readonly: true });
      try {
        const state = checkLedgerInvariant(check);
        expect(state.ok, JSON.stringify(state)).toBe(true);
        return state.counter;
      } finally {
        check.close();
      }
    };
    const writer = await startWriter({ dbPath: ledger, journal: 'wal' });
    /** A row the test commits after the backup: gone again once the backup is restored. */
    const markers = (sql: string) => {
      const db = new Database(ledger);
      try {
        db.pragma('busy_timeout = 10000');
        db.exec('CREATE TABLE IF NOT EXISTS marker (note TEXT)');
        if (sql !== '') db.exec(sql);
        return (db.prepare('SELECT COUNT(*) AS n FROM marker').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    let restoredCounter = -1;
    try {
      markers('');
      await backupToFile(zip, { dataDir: data });
      const backedUp = counter();
      expect(markers("INSERT INTO marker VALUES ('after the backup')")).toBe(1);
      await waitFor(() => counter() > backedUp, 10_000, 'the writer committing after the backup');
      const report = await restore({ archive: zip, dataDir: data, mode: 'online' });
      restoredCounter = counter();
      expect(report.plan.items.find((i) => i.path === 'ledger.db')?.action).toBe('replaced');
      // Back to the backup's state: what was committed after it is gone (the writer carries on from there).
      expect(markers('')).toBe(0);
      await waitFor(() => counter() > restoredCounter, 10_000, 'the writer committing on the restored data');
    } finally {
      const stats = await writer.stop();
      expect(stats.errors, JSON.stringify(stats.errorMessages)).toBe(0);
    }
    const db = new Database(ledger, { readonly: true });
    try {
      const after = checkLedgerInvariant(db);
      expect(after.ok, JSON.stringify(after)).toBe(true);
      // The writer carried on from the restored state.
      expect(after.counter).toBeGreaterThan(restoredCounter);
    } finally {
      db.close();
    }
  });
});
