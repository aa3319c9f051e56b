import { FILE_PREFIX_PATTERN } from '../../archive/file-name.js';
import { OptionsError, StoreError } from '../../errors.js';
import { openStore } from '../../store/open.js';
import { applyRetention, checkRetention, planRetention } from '../../store/retention.js';
import { wholeNumber } from '../backup-flags.js';
import { writeAll, type CliIo } from '../io.js';

export interface PruneFlags {
  keep?: string;
  keepDays?: string;
  prefix?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Deletes old backups of one prefix from a store: never the newest, never a name that is not a backup. */
export async function runPrune(url: string, flags: PruneFlags, io: CliIo): Promise<number> {
  if (flags.keep === undefined) throw new OptionsError('--keep <n> is required: how many of the newest backups to keep');
  const { keep, keepDays } = checkRetention(wholeNumber('--keep', flags.keep), wholeNumber('--keep-days', flags.keepDays));
  const prefix = flags.prefix ?? 'dbzip';
  if (!FILE_PREFIX_PATTERN.test(prefix)) throw new OptionsError(`--prefix must be 1 to 64 letters, digits, ".", "_" or "-", got ${JSON.stringify(prefix)}`);
  const store = await openStore({ url, env: io.env }, io.cwd);
  try {
    const options = { keep, keepDays, prefix };
    const result = flags.dryRun === true ? { ...planRetention(await store.list(), options), failed: [] } : await applyRetention(store, options);
    const removed = result.remove.map((b) => b.name).filter((n) => !result.failed.some((f) => f.name === n));
    if (flags.json) {
      await writeAll(io.stdout, `${JSON.stringify({ store: store.display, dryRun: flags.dryRun === true, removed, kept: result.keep.map((b) => b.name), failed: result.failed }, null, 2)}\n`);
    } else {
      const verb = flags.dryRun === true ? 'would delete' : 'deleted';
      const lines = [...removed.map((n) => `${verb} ${n}`), ...result.failed.map((f) => `FAILED to delete ${f.name}: ${f.reason}`)];
      lines.push(`${store.display}: kept ${result.keep.length}, ${verb} ${removed.length}`);
      await writeAll(io.stdout, `${lines.join('\n')}\n`);
    }
    if (result.failed.length > 0) throw new StoreError('STORE_FAILED', `could not delete ${result.failed.length} backup(s); first: ${result.failed[0]?.reason ?? ''}`);
    return 0;
  } finally {
    store.close();
  }
}
