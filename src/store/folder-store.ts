/** A backup store in a local folder (default `<data-dir>/.dbzip/backups/`). */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AbortedError, DbzipError, StoreError } from '../errors.js';
import { writeFileAtomically } from './atomic-file.js';
import { checkBackupName, newestFirst, parseBackupName } from './names.js';
import type { BackupStore, PutOptions, StoredBackup } from './store.js';

function failure(error: unknown, what: string): DbzipError {
  if (error instanceof DbzipError) return error;
  const e = error as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return new AbortedError('the upload was cancelled', { cause: error });
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return new StoreError('STORE_DENIED', `${what}: permission denied`, { cause: error });
  return new StoreError('STORE_FAILED', `${what}: ${e?.code ?? e?.message ?? String(error)}`, { cause: error });
}

export class FolderStore implements BackupStore {
  readonly kind = 'folder' as const;
  readonly display: string;
  readonly #folder: string;

  constructor(folder: string) {
    this.#folder = path.resolve(folder);
    this.display = this.#folder;
  }

  #path(name: string): string {
    // checkBackupName allows one segment of [A-Za-z0-9._-] only: the result is always inside the folder.
    return path.join(this.#folder, checkBackupName(name).name);
  }

  async #ensureFolder(): Promise<void> {
    await fs.mkdir(this.#folder, { recursive: true, mode: 0o700 });
    const stat = await fs.stat(this.#folder);
    if (!stat.isDirectory()) throw new StoreError('STORE_FAILED', `${this.#folder} is not a folder`);
  }

  async put(name: string, body: Readable, options: PutOptions = {}): Promise<{ bytes: number }> {
    const target = this.#path(name);
    try {
      await this.#ensureFolder();
      const bytes = await writeFileAtomically(body, target, { replace: false, signal: options.signal });
      if (options.size != null && bytes !== options.size) {
        await fs.rm(target, { force: true });
        throw new StoreError('STORE_FAILED', `${name}: wrote ${bytes} bytes, expected ${options.size}; removed`);
      }
      return { bytes };
    } catch (error) {
      body.destroy();
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new StoreError('STORE_FAILED', `${name} already exists in ${this.display}`, { cause: error });
      throw failure(error, `cannot write ${name} to ${this.display}`);
    }
  }

  async list(): Promise<StoredBackup[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.#folder);
    } catch (error) {
      // A store that was never written to is empty, not broken.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw failure(error, `cannot list ${this.display}`);
    }
    const found: StoredBackup[] = [];
    for (const name of names) {
      const parsed = parseBackupName(name);
      if (parsed === null) continue;
      const stat = await fs.lstat(path.join(this.#folder, name)).catch(() => null);
      // Only regular files: a link could point anywhere.
      if (stat?.isFile() === true) found.push({ ...parsed, size: stat.size });
    }
    return found.sort(newestFirst);
  }

  async stat(name: string): Promise<StoredBackup> {
    const file = this.#path(name);
    const stat = await fs.lstat(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new StoreError('BACKUP_NOT_FOUND', `${name} is not in ${this.display}`);
      throw failure(error, `cannot read ${name} in ${this.display}`);
    });
    if (!stat.isFile()) throw new StoreError('BACKUP_NOT_FOUND', `${name} in ${this.display} is not a regular file`);
    const parsed = parseBackupName(name);
    if (parsed === null) throw new StoreError('INVALID_BACKUP_NAME', `${name} is not a backup name`);
    return { ...parsed, size: stat.size };
  }

  async get(name: string): Promise<{ stream: Readable; size: number }> {
    const { size } = await this.stat(name);
    return { stream: createReadStream(this.#path(name)), size };
  }

  getRange(name: string, start: number, end: number): Readable {
    // createReadStream's end is inclusive.
    return createReadStream(this.#path(name), { start, end: end - 1 });
  }

  async delete(name: string): Promise<void> {
    await this.stat(name);
    await fs.rm(this.#path(name)).catch((error: unknown) => {
      throw failure(error, `cannot delete ${name} from ${this.display}`);
    });
  }

  close(): void {}
}
