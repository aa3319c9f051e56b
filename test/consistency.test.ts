import path from 'node:path';
import { describe, expect } from 'vitest';
import { backupToZip } from './helpers/backup.js';
import { test } from './helpers/tmp.js';
import { checkLedgerInvariant, openSnapshotBuffer, startWriter, type WriterJournal } from './helpers/writer.js';

/**
 * A separate process commits transactions that keep SUM(amount) = 0 as fast as it can.
 * Every snapshot taken meanwhile must hold the invariant and pass integrity_check,
 * and the writer (with a busy timeout, as any multi-process app has) must never fail.
 */
describe.each<WriterJournal>(['wal', 'delete'])('snapshots under a concurrent writer process (%s journal)', (journal) => {
  test('every snapshot holds the invariant and passes integrity_check; the writer sees no error', async ({ tmpDir }) => {
    const dbPath = path.join(tmpDir, 'ledger.db');
    const writer = await startWriter({ dbPath, journal, blobBytes: 100 });
    const counters: number[] = [];
    try {
      for (let run = 0; run < 5; run++) {
        for (const pin of ['all', 'none'] as const) {
          const { zip, manifest } = await backupToZip({ dataDir: tmpDir, pin });
          expect(manifest.skipped).toEqual([]);
          const db = openSnapshotBuffer(zip.files.get('ledger.db')!);
          try {
            const check = checkLedgerInvariant(db);
            expect(check, `run ${run} pin ${pin}`).toMatchObject({ sum: 0, integrity: 'ok', ok: true });
            counters.push(check.counter);
          } finally {
            db.close();
          }
        }
      }
    } finally {
      const stats = await writer.stop();
      expect(stats.errorMessages).toEqual([]);
      expect(stats.errors).toBe(0);
      expect(stats.commits).toBeGreaterThan(0);
    }
    // The writer really was committing during the backups.
    expect(new Set(counters).size).toBeGreaterThan(1);
  });
});
