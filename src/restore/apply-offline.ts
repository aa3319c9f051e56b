/**
 * Offline mode (the application is stopped, or the data directory is new): every file is written
 * beside its target and fsynced first; only then are the databases to be replaced settled (their
 * WAL or hot journal folded into the main file) and every staged file renamed over its target.
 * A crash at any point leaves each file, and so each database, either fully old or fully new.
 */
import { RestoreError } from '../errors.js';
import { assertSettled, settleDatabase } from '../snapshot/apply-image.js';
import { commitStaged, discardStaged, removeItems, stageItem, targetOf, writes, type ApplyContext, type Staged } from './apply-common.js';

function inUse(path: string, error: unknown): RestoreError {
  const code = (error as { code?: string }).code ?? '';
  const why = error instanceof Error ? error.message : String(error);
  if (code === 'DBZIP_IN_USE' || code.startsWith('SQLITE_BUSY')) {
    return new RestoreError('RESTORE_REFUSED', `offline restore refused: database ${JSON.stringify(path)} is in use (${why}); stop the application or use online mode`, { cause: error });
  }
  return new RestoreError('RESTORE_FAILED', `cannot settle database ${JSON.stringify(path)} before replacing it: ${why}`, { cause: error });
}

/**
 * Settles every database the restore replaces or removes; throws RESTORE_REFUSED when one is in
 * use. Run once before the confirmation (so a refusal leaves no pre-restore backup behind) and
 * again right before the renames.
 */
export async function settleTargets(ctx: Pick<ApplyContext, 'dataDir' | 'items' | 'busyTimeoutMs'>): Promise<void> {
  for (const item of ctx.items) {
    // A file the pre-restore backup could not read as SQLite is replaced as a plain file (force).
    if (item.kind !== 'database' || item.uncaptured || (item.action !== 'replaced' && item.action !== 'removed')) continue;
    const target = targetOf(ctx, item.path);
    try {
      const { journalMode } = settleDatabase(target, ctx.busyTimeoutMs);
      await assertSettled(target, journalMode);
    } catch (error) {
      throw inUse(item.path, error);
    }
  }
}

export async function applyOffline(ctx: ApplyContext): Promise<void> {
  const staged: Staged[] = [];
  const createdDirs: string[] = [];
  try {
    for (const item of ctx.items) if (writes(item)) staged.push(await stageItem(ctx, item, createdDirs));
    await settleTargets(ctx);
  } catch (error) {
    await discardStaged(staged, createdDirs);
    throw error;
  }
  try {
    await commitStaged(ctx, staged);
    await removeItems(ctx, false);
  } finally {
    // Only left over when a rename failed part-way.
    await discardStaged(staged, []);
  }
}
