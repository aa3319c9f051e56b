/**
 * How many databases one backup may pin at once. A pinned WAL database holds up to three descriptors
 * (the database, its -wal and its -shm) until it is read, so pinning hundreds of them can exhaust the
 * process's limit (`ulimit -n`); then SQLite fails to open the next database, which would be skipped
 * for a reason that is ours, not the database's. The budget leaves a reserve for everything else the
 * process opens meanwhile: the databases read unpinned, the output file, assets, HTTP connections.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Descriptors one pinned database holds: the database, its -wal and its -shm. */
export const DESCRIPTORS_PER_PIN = 3;
/** Kept free for the rest of the process: this many, or a quarter of the limit when that is more. */
export const MIN_RESERVE = 64;
/** Where the limit cannot be read (no /proc): pin at most this many (300 descriptors). */
export const PINS_WITHOUT_PROC = 100;

export interface PinBudget {
  /** The soft limit on open files (`ulimit -n`); null when unknown. */
  limit: number | null;
  /** Descriptors open in the process when the budget was taken; null when unknown. */
  open: number | null;
  reserve: number;
  /** Databases that may be pinned. */
  pins: number;
}

/** The soft "Max open files" of this process, from /proc/self/limits (Linux). */
function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return Number.POSITIVE_INFINITY;
    return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : null;
  } catch {
    return null;
  }
}

/** The budget now: what the limit leaves after the descriptors open and the reserve. */
export function pinBudget(): PinBudget {
  const limit = openFileLimit();
  let open: number | null = null;
  try {
    open = readdirSync('/proc/self/fd').length;
  } catch {
    // no /proc
  }
  if (limit === null || open === null) return { limit, open, reserve: MIN_RESERVE, pins: PINS_WITHOUT_PROC };
  if (limit === Number.POSITIVE_INFINITY) return { limit, open, reserve: MIN_RESERVE, pins: Number.MAX_SAFE_INTEGER };
  const reserve = Math.max(MIN_RESERVE, Math.floor(limit / 4));
  return { limit, open, reserve, pins: Math.max(0, Math.floor((limit - open - reserve) / DESCRIPTORS_PER_PIN)) };
}
