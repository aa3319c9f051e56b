/**
 * dbzip's private folder inside a data directory (`<dataDir>/.dbzip/`, mode 0700): uploaded archives
 * are spooled there (same file system as the data, so nothing goes through /tmp) and pre-restore
 * backups are kept there. Backups never archive it and `exact` never removes anything in it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BusyError, RestoreError } from '../errors.js';
import { PRIVATE_FOLDER } from '../scan/index.js';

export { PRIVATE_FOLDER };

export function privateDirOf(dataDir: string): string {
  return path.join(path.resolve(dataDir), PRIVATE_FOLDER);
}

/** Creates `<dataDir>/.dbzip/` (0700) if needed and refuses one that is a link or not a folder. Returns its path. */
export async function ensurePrivateDir(dataDir: string): Promise<string> {
  const dir = privateDirOf(dataDir);
  await fs.mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const stat = await fs.lstat(dir);
  if (stat.isSymbolicLink() || !stat.isDirectory()) {
    throw new RestoreError('RESTORE_REFUSED', `${dir} must be a folder, not a link or a file: dbzip keeps its spool and pre-restore backups there`);
  }
  // Uploads and backups of the whole data directory: owner only, whatever the umask made of it.
  if ((stat.mode & 0o077) !== 0) await fs.chmod(dir, 0o700);
  return dir;
}

/**
 * A fresh, unused file name inside `<dataDir>/.dbzip/` for an uploaded archive; the folder is
 * created (0700) when missing. Create the file with the `wx` flag and pass it to `restore()` with
 * `removeArchive: true`, which deletes it when the restore ends, whatever the outcome.
 */
export async function createSpool(dataDir: string): Promise<string> {
  const dir = await ensurePrivateDir(dataDir);
  return path.join(dir, `upload-${Date.now()}-${randomBytes(8).toString('hex')}.zip`);
}

/** True when `file` is directly inside `<dataDir>/.dbzip/` (both resolved through links). */
export async function isInPrivateDir(dataDir: string, file: string): Promise<boolean> {
  try {
    const dir = await fs.realpath(privateDirOf(dataDir));
    const parent = await fs.realpath(path.dirname(file));
    return parent === dir;
  } catch {
    return false;
  }
}

const LOCK_NAME = 'restore.lock';
const heldInProcess = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One restore per data directory at a time: a lock file holding the owner's pid. A lock left by a
 * process that no longer exists (killed mid-restore) is taken over.
 */
export async function lockDataDir(privateDir: string): Promise<() => Promise<void>> {
  const file = path.join(privateDir, LOCK_NAME);
  const busy = () => new BusyError(`another restore is running on this data directory (${file})`, 5);
  if (heldInProcess.has(file)) throw busy();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      heldInProcess.add(file);
      return async () => {
        heldInProcess.delete(file);
        await fs.rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number.parseInt(await fs.readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw busy();
      await fs.rm(file, { force: true });
    }
  }
  throw busy();
}
