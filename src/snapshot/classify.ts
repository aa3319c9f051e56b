/**
 * Why SQLite could not open or read a database, in words that say what to do. SQLite's own message for
 * most of these is "unable to open database file" (SQLITE_CANTOPEN), whatever the cause; the cause is
 * found here from the process and the file system, without opening the database file (closing any
 * descriptor of it would drop every POSIX lock this process holds on it).
 */
import { accessSync, closeSync, constants, existsSync, openSync } from 'node:fs';
import { devNull } from 'node:os';
import path from 'node:path';
import type { FailureCode } from './protocol.js';

export interface Classified {
  code: FailureCode;
  reason: string;
}

const errnoOf = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? 'error';

/**
 * `'EMFILE'` when this process cannot open one more file right now because its descriptor limit is
 * reached, `'ENFILE'` when the system's is; undefined when it can.
 */
export function descriptorsExhausted(): 'EMFILE' | 'ENFILE' | undefined {
  try {
    closeSync(openSync(devNull, 'r'));
    return undefined;
  } catch (error) {
    const code = errnoOf(error);
    return code === 'EMFILE' || code === 'ENFILE' ? code : undefined;
  }
}

/** Why `file` cannot be opened, when the file system says (`undefined` when it does not). */
function cannotOpenBecause(file: string): string | undefined {
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    return `dbzip may not read it (${errnoOf(error)}): give the user dbzip runs as read permission`;
  }
  const dir = path.dirname(file);
  try {
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (error) {
    // A rollback-journal database opens read-only in a read-only folder; a WAL one needs its -shm.
    if (existsSync(`${file}-shm`)) return undefined;
    const name = path.basename(file);
    return (
      `it is a WAL database without ${name}-shm, in a folder dbzip cannot write to (${errnoOf(error)}): ` +
      `SQLite must create ${name}-shm and ${name}-wal beside a WAL database to read it. ` +
      'Give dbzip write access to the folder, or run the backup while the application has the database open'
    );
  }
}

/**
 * Turns an error of opening or reading `file` into a skip code and reason. Call it before closing the
 * handle that failed: descriptor exhaustion is recognised by the process having none left.
 */
export function classify(error: unknown, file: string): Classified {
  const code = (error as { code?: string }).code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB') return { code: 'NOT_SQLITE', reason: 'no SQLite header (file is not a database)' };
  const exhausted = code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR') ? descriptorsExhausted() : undefined;
  if (exhausted === 'EMFILE') {
    return {
      code: 'OUT_OF_DESCRIPTORS',
      reason: `too many open files (EMFILE): the process's descriptor limit is reached, so SQLite cannot open ${path.basename(file)}. Raise the limit (ulimit -n, systemd LimitNOFILE=) (${code})`,
    };
  }
  if (exhausted === 'ENFILE') {
    return {
      code: 'OUT_OF_DESCRIPTORS',
      reason: `too many open files in the system (ENFILE): the system-wide limit is reached, so SQLite cannot open ${path.basename(file)}. Raise fs.file-max or close files elsewhere (${code})`,
    };
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH')) {
    const because = cannotOpenBecause(file);
    return { code: 'UNREADABLE', reason: because === undefined ? `cannot open: ${message} (${code})` : `cannot open: ${because} (${code})` };
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return { code: 'SNAPSHOT_FAILED', reason: `locked by another connection for longer than the busy timeout (${code})` };
  }
  return { code: 'SNAPSHOT_FAILED', reason: code === '' ? message : `${message} (${code})` };
}
