import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

let version: string | undefined;

/**
 * The SQLite library that takes the snapshots (bundled with better-sqlite3). Loaded on first use,
 * not at import: createBackup asks while its snapshot worker starts, so the main thread's copy of
 * better-sqlite3 loads on the other core instead of in front of everything else.
 */
export function sqliteVersion(): string {
  if (version !== undefined) return version;
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(':memory:');
  try {
    version = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
    return version;
  } finally {
    db.close();
  }
}
