/**
 * File-level steps shared by both modes: write beside the target, fsync, rename over, fsync the
 * folder. A rename within one folder is atomic, so a crash leaves the old file or the new one.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ZipEntry, ZipReader } from '../archive/zip-reader.js';
import { ArchiveError } from '../errors.js';

/** Staged files are named `<target>.dbzip-new-<16 hex>`; leftovers of a killed restore match this. */
export const STAGING_MARK = '.dbzip-new-';
export const STAGING_PATTERN = /\.dbzip-new-[0-9a-f]{16}$/;
/** The files SQLite keeps beside a database. */
export const SIDECARS = ['-wal', '-shm', '-journal'] as const;

const DEFAULT_MODE = 0o644;

export function stagingPathFor(target: string): string {
  return `${target}${STAGING_MARK}${randomBytes(8).toString('hex')}`;
}

/** The mode a new file should get: the replaced file's, else 0644. */
async function modeFor(target: string): Promise<number> {
  const stat = await fs.lstat(target).catch(() => null);
  return stat?.isFile() ? stat.mode & 0o7777 : DEFAULT_MODE;
}

/**
 * Creates the missing folders of `target` inside `root` and returns the ones it made, outermost
 * first (so a failed restore can remove them again). Never follows a link: the plan already
 * refused any target whose folders are links, and `mkdir` does not follow a final link.
 */
export async function makeParents(root: string, target: string): Promise<string[]> {
  const made: string[] = [];
  const rel = path.relative(root, path.dirname(target));
  if (rel === '') return made;
  let dir = root;
  for (const part of rel.split(path.sep)) {
    dir = path.join(dir, part);
    try {
      await fs.mkdir(dir, { mode: 0o755 });
      made.push(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const stat = await fs.lstat(dir);
      if (!stat.isDirectory()) throw new Error(`${dir} is not a folder`);
    }
  }
  return made;
}

/** Writes `source` to a new file (never an existing one), fsyncs it and gives it `mode`. */
async function writeNew(file: string, mode: number, write: (handle: fs.FileHandle) => Promise<void>): Promise<void> {
  const handle = await fs.open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  let written = false;
  try {
    await write(handle);
    await handle.chmod(mode);
    await handle.sync();
    written = true;
  } finally {
    await handle.close();
    if (!written) await fs.rm(file, { force: true });
  }
}

/** Stages a buffer beside `target`; returns the staged path. */
export async function stageBuffer(target: string, bytes: Buffer): Promise<string> {
  const staged = stagingPathFor(target);
  await writeNew(staged, await modeFor(target), async (handle) => {
    await handle.writeFile(bytes);
  });
  return staged;
}

/**
 * Streams one archive entry beside `target`, hashing as it goes; the staged file is removed unless
 * its SHA-256 matches the manifest (the archive may have changed since it was verified).
 */
export async function stageEntry(reader: ZipReader, entry: ZipEntry, listed: { bytes: number; sha256: string }, target: string): Promise<string> {
  const staged = stagingPathFor(target);
  await writeNew(staged, await modeFor(target), async (handle) => {
    const { bytes, sha256 } = await reader.digestEntry(entry, (chunk) => handle.write(chunk));
    if (bytes !== listed.bytes || sha256 !== listed.sha256) {
      throw new ArchiveError([`entry ${JSON.stringify(entry.name)} changed since it was verified (sha256 ${sha256}, manifest ${listed.sha256})`]);
    }
  });
  return staged;
}

/** Removes a database's -wal, -shm and -journal; only safe once its main file is settled or gone. */
export async function removeSidecars(dbPath: string): Promise<void> {
  for (const suffix of SIDECARS) await fs.rm(`${dbPath}${suffix}`, { force: true });
}

/**
 * Removes staged files a killed restore left beside its targets (they are never live data) and
 * returns their paths. Only regular files whose names match STAGING_PATTERN are touched.
 */
export async function removeStaleStaging(dirs: Iterable<string>): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of new Set(dirs)) {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!STAGING_PATTERN.test(name)) continue;
      const file = path.join(dir, name);
      const stat = await fs.lstat(file).catch(() => null);
      if (stat?.isFile()) {
        await fs.rm(file, { force: true });
        removed.push(file);
      }
    }
  }
  return removed;
}

/** Removes folders a failed restore created, innermost first, if they are still empty. */
export async function removeEmptyDirs(dirs: readonly string[]): Promise<void> {
  for (const dir of [...dirs].reverse()) await fs.rmdir(dir).catch(() => {});
}
