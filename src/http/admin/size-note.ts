import type { Inspection } from '../../inspect.js';
import type { PinMode } from '../../options.js';

/**
 * Why the page's download will have no Content-Length (so the browser shows no total), and what the
 * operator can change. The size is exact only when entries are stored (level 0) and every database is
 * pinned (see docs/guarantees.md): `pin: 'all'` pins WAL databases only, 'all-blocking' every one.
 */
export interface SizeNote {
  /** The databases whose size is only known once they are read (rollback journal, not pinned). */
  databases: string[];
  /** The server compresses downloads: the length is unknown whatever the databases. */
  level: number | null;
  pinNone: boolean;
}

export function sizeNote(inspection: Inspection, backup: { level: number; pin: PinMode }): SizeNote | undefined {
  const level = backup.level === 0 ? null : backup.level;
  const pinNone = backup.pin === 'none';
  const databases = inspection.databases.filter((db) => pinNone || (backup.pin === 'all' && db.journalMode !== 'wal')).map((db) => db.path);
  if (level === null && databases.length === 0) return undefined;
  return { databases, level, pinNone };
}
