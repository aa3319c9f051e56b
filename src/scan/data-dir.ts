/**
 * The data directory's own rules, owned here once: whether it is usable, and what its VERSION says.
 * Every entry point (backup, restore, the server, the restore route) asks these, so one condition
 * always gives one code and one message.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MAX_VERSION_BYTES, VERSION_NAME } from '../archive/manifest.js';
import { DataDirError } from '../errors.js';

/**
 * Resolves `dataDir` through links and checks that it is a directory this process can list.
 * DATA_DIR_NOT_FOUND when it is missing or not a directory, DATA_DIR_UNREADABLE otherwise.
 */
export async function checkDataDir(dataDir: string): Promise<string> {
  let real: string;
  try {
    real = await fs.realpath(dataDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new DataDirError('DATA_DIR_NOT_FOUND', dataDir, `data directory ${dataDir} does not exist`, { cause: error });
    }
    throw new DataDirError('DATA_DIR_UNREADABLE', dataDir, `data directory ${dataDir} cannot be read: ${code ?? String(error)}`, { cause: error });
  }
  if (!(await fs.stat(real)).isDirectory()) throw new DataDirError('DATA_DIR_NOT_FOUND', dataDir, `data directory ${dataDir} is not a directory`);
  try {
    await fs.access(real, fsConstants.R_OK | fsConstants.X_OK);
  } catch (error) {
    throw new DataDirError('DATA_DIR_UNREADABLE', dataDir, `data directory ${dataDir} cannot be read: permission denied`, { cause: error });
  }
  return real;
}

/**
 * `<dataDir>/VERSION` trimmed, or null when there is none, it is empty, or it is not a regular file of
 * at most MAX_VERSION_BYTES. Backup and restore both read it here, so they always agree on it.
 */
export async function readVersionFile(dataDir: string): Promise<string | null> {
  const file = path.join(dataDir, VERSION_NAME);
  const stat = await fs.lstat(file).catch(() => null);
  if (stat === null || !stat.isFile() || stat.size > MAX_VERSION_BYTES) return null;
  const text = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  return text === '' ? null : text;
}
