/**
 * Which stored backups to delete. A backup is kept when it is one of the `keep` newest, or (with
 * `keepDays`) younger than that many days: each rule only ever keeps more. Whatever the numbers,
 * the newest backup is kept, and only names of this prefix are ever considered, so another
 * server's backups and anything that is not a backup name are never touched.
 */
import { StoreError } from '../errors.js';
import { integer } from '../options.js';
import { newestFirst } from './names.js';
import type { BackupStore, StoredBackup } from './store.js';

export interface RetentionOptions {
  /** How many of the newest backups to keep; at least 1. */
  keep: number;
  /** Also keep every backup younger than this many days. Default: none. */
  keepDays?: number | undefined;
  /** Only backups named `<prefix>-backup-…` are considered. */
  prefix: string;
  /** Default: now. */
  now?: Date;
}

export interface RetentionPlan {
  keep: StoredBackup[];
  remove: StoredBackup[];
}

export function checkRetention(keep: unknown, keepDays: unknown): { keep: number; keepDays: number | undefined } {
  return {
    keep: integer('keep', keep, 1, 1, 100_000),
    keepDays: keepDays === undefined ? undefined : integer('keepDays', keepDays, 0, 1, 100_000),
  };
}

export function planRetention(backups: readonly StoredBackup[], options: RetentionOptions): RetentionPlan {
  const { keep, keepDays } = checkRetention(options.keep, options.keepDays);
  const now = (options.now ?? new Date()).getTime();
  const ours = backups.filter((b) => b.prefix === options.prefix).sort(newestFirst);
  const plan: RetentionPlan = { keep: [], remove: [] };
  ours.forEach((backup, index) => {
    const young = keepDays !== undefined && now - backup.time.getTime() < keepDays * 86_400_000;
    // index 0 is the newest: kept even if someone passed keep: 0 around the validation.
    if (index === 0 || index < keep || young) plan.keep.push(backup);
    else plan.remove.push(backup);
  });
  return plan;
}

export interface RetentionResult extends RetentionPlan {
  /** Deletions that failed; the rest went ahead. */
  failed: { name: string; reason: string }[];
}

/** Lists, plans and deletes, oldest first; a failed delete is recorded and the rest go ahead. */
export async function applyRetention(store: BackupStore, options: RetentionOptions): Promise<RetentionResult> {
  const plan = planRetention(await store.list(), options);
  const failed: RetentionResult['failed'] = [];
  for (const backup of [...plan.remove].reverse()) {
    try {
      await store.delete(backup.name);
    } catch (error) {
      // Gone already (another pruner): that is what we wanted.
      if (error instanceof StoreError && error.code === 'BACKUP_NOT_FOUND') continue;
      failed.push({ name: backup.name, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return { ...plan, failed };
}
