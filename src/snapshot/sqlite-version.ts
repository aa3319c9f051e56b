import Database from 'better-sqlite3';

function readVersion(): string {
  const db = new Database(':memory:');
  try {
    return (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  } finally {
    db.close();
  }
}

/** The SQLite library that takes the snapshots (bundled with better-sqlite3). */
export const sqliteVersion: string = readVersion();
