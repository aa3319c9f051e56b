/**
 * Reads a rollback-journal database's image straight from its file, under the caller's read lock, into
 * pieces of our own memory that can be transferred to the main thread as they are. Used for every
 * rollback-journal snapshot except a small one checked on a copy after the lock is released (which
 * needs the image as one buffer).
 *
 * Why it is the same image serialize() would give: in rollback-journal mode a writer needs an EXCLUSIVE
 * lock to change the database file (to commit or to spill its cache), and no connection gets one while
 * ours holds SHARED; a hot journal was rolled back before our first read could start. So while the lock
 * is held the file is the committed database, page for page. (Not so in WAL mode, where committed pages
 * live in the -wal file: those databases are always serialize()d.) It is about twice as fast as
 * serialize(), which copies page by page through SQLite's pager, and needs no second copy to be sent.
 *
 * Why it never opens the file: SQLite's locks are POSIX record locks, and closing *any* descriptor of a
 * file drops every such lock the process holds on it: ours, a checker's, and the host application's
 * own connections in the same process. So the file is read with pread() through a descriptor that is
 * already open on it (SQLite keeps its own open while any connection in the process holds a lock), found
 * in /proc/self/fd, and checked after every piece to still name the same file. Without /proc, or when
 * no descriptor is found, the caller serializes.
 */
import fs from 'node:fs';
import { CHUNK_BYTES } from './protocol.js';

/** Which file a path names, to be sure the file we read is the one SQLite opened and locked. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

export function fileIdentity(path: string): FileIdentity | undefined {
  try {
    const { dev, ino } = fs.statSync(path);
    return { dev, ino };
  } catch {
    return undefined;
  }
}

export function sameFile(a: FileIdentity | undefined, b: FileIdentity | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

function namesFile(fd: number, identity: FileIdentity): boolean {
  try {
    return sameFile(fs.fstatSync(fd), identity);
  } catch {
    return false;
  }
}

/** A descriptor this process already has open on the file (SQLite's, while it holds a lock), if /proc tells. */
function openDescriptor(identity: FileIdentity): number | undefined {
  let names: string[];
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  return names.map(Number).find((fd) => Number.isInteger(fd) && namesFile(fd, identity));
}

/** SQLite never stores a page at the 1 GiB offset (the lock-byte page); serialize() zero-fills it. */
const LOCK_BYTE_OFFSET = 0x40000000;

/**
 * The first `bytes` of the database file that `identity` names, in pieces of CHUNK_BYTES (the last one
 * shorter), read past its end as zeros as SQLite does; or undefined when it cannot be read without
 * opening the file: the caller then serializes through its own connection.
 */
export function readFileImage(identity: FileIdentity | undefined, bytes: number, pageSize: number): Uint8Array[] | undefined {
  const fd = identity === undefined ? undefined : openDescriptor(identity);
  if (identity === undefined || fd === undefined) return undefined;
  const pieces: Uint8Array[] = [];
  for (let offset = 0; offset < bytes; offset += CHUNK_BYTES) {
    // Memory of its own (transferable), not zero-filled first: the read overwrites it all.
    const piece = Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, bytes - offset));
    let filled = 0;
    try {
      while (filled < piece.length) {
        const read = fs.readSync(fd, piece, filled, piece.length - filled, offset + filled);
        if (read === 0) break;
        filled += read;
      }
    } catch {
      return undefined;
    }
    // Whoever owned the descriptor may have closed it, and the number may now name another file.
    if (!namesFile(fd, identity)) return undefined;
    piece.fill(0, filled);
    // Pages are at most 64 KiB and CHUNK_BYTES is a multiple of that, so the page lies within one piece.
    if (offset <= LOCK_BYTE_OFFSET && LOCK_BYTE_OFFSET < offset + piece.length) piece.fill(0, LOCK_BYTE_OFFSET - offset, LOCK_BYTE_OFFSET - offset + pageSize);
    pieces.push(piece);
  }
  return pieces;
}
