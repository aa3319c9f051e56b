import fs from 'node:fs/promises';
import path from 'node:path';
import { StoreError } from '../errors.js';
import { parseBackupName } from '../store/names.js';

/** What `dbzip verify` was pointed at: a zip file, or a backup in a store (a named one, or the newest). */
export type VerifyTarget = { kind: 'file'; file: string } | { kind: 'stored'; url: string; name: string | undefined };

/**
 * `s3://bucket/prefix/dbzip-backup-20260101-030000.zip?endpoint=…` names one backup; `s3://bucket/prefix`
 * (or a folder) means the newest backup there; anything else is a zip file.
 */
export async function verifyTarget(arg: string, cwd: string): Promise<VerifyTarget> {
  if (/^(s3|file):/i.test(arg)) {
    const q = arg.indexOf('?');
    const base = (q === -1 ? arg : arg.slice(0, q)).replace(/\/+$/, '');
    const query = q === -1 ? '' : arg.slice(q);
    const slash = base.lastIndexOf('/');
    const last = base.slice(slash + 1);
    if (parseBackupName(last) !== null && slash > base.indexOf('//') + 1) return { kind: 'stored', url: `${base.slice(0, slash)}${query}`, name: last };
    return { kind: 'stored', url: arg, name: undefined };
  }
  const file = path.resolve(cwd, arg);
  const stat = await fs.stat(file).catch(() => null);
  if (stat?.isDirectory() === true) return { kind: 'stored', url: file, name: undefined };
  return { kind: 'file', file };
}

export function noBackups(display: string): StoreError {
  return new StoreError('BACKUP_NOT_FOUND', `${display} holds no backups`);
}
