/**
 * Online mode (the application may keep running): each database that exists is rewritten in place
 * through SQLite (src/snapshot/apply-image.ts), one transaction per database, so connections see
 * the old or the new content and keep working. Files no connection can have open (new databases,
 * assets, VERSION) are staged beside and renamed, as offline.
 */
import { createHash } from 'node:crypto';
import { ArchiveError, RestoreError } from '../errors.js';
import { writeImageIntoLive } from '../snapshot/apply-image.js';
import { commitStaged, discardStaged, entryOf, listedOf, removeItems, stageItem, targetOf, writes, type ApplyContext, type Staged } from './apply-common.js';
import type { PlanItem } from './plan.js';

/** Rewritten in place: an existing database. Everything else is staged and renamed. */
const inPlace = (item: PlanItem): boolean => item.kind === 'database' && item.action === 'replaced';

/** SQLite cannot open what is there as a database: only then is it replaced as a plain file. */
function notADatabase(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  return code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT');
}

async function writeDatabase(ctx: ApplyContext, item: PlanItem): Promise<void> {
  const listed = listedOf(ctx, item);
  const image = await ctx.reader.readEntry(entryOf(ctx, item.path), ctx.maxDatabaseBytes);
  const sha256 = createHash('sha256').update(image).digest('hex');
  if (sha256 !== listed.sha256) throw new ArchiveError([`entry ${JSON.stringify(item.path)} changed since it was verified`]);
  const target = targetOf(ctx, item.path);
  try {
    const result = await writeImageIntoLive(target, image, { busyTimeoutMs: ctx.busyTimeoutMs, scratchDir: ctx.privateDir });
    if (result.pageSizeConverted) ctx.notes.push(`${item.path}: rebuilt with the live file's page size (a WAL database cannot change it); same rows, different bytes`);
  } catch (error) {
    if (!(item.uncaptured && notADatabase(error))) {
      const why = error instanceof Error ? error.message : String(error);
      throw new RestoreError('RESTORE_FAILED', `cannot write database ${JSON.stringify(item.path)} through SQLite: ${why}`, { cause: error });
    }
    // force, and what is there is not SQLite: no connection can be using it as a database.
    await commitStaged(ctx, [await stageItem(ctx, item, [])]);
    return;
  }
  ctx.changed.push(item.path);
  ctx.logger.info({ path: item.path, action: item.action }, 'restored');
}

export async function applyOnline(ctx: ApplyContext): Promise<void> {
  const staged: Staged[] = [];
  const createdDirs: string[] = [];
  try {
    for (const item of ctx.items) if (writes(item) && !inPlace(item)) staged.push(await stageItem(ctx, item, createdDirs));
  } catch (error) {
    await discardStaged(staged, createdDirs);
    throw error;
  }
  try {
    for (const item of ctx.items) if (inPlace(item)) await writeDatabase(ctx, item);
    await commitStaged(ctx, staged);
    await removeItems(ctx, true);
  } finally {
    await discardStaged(staged, ctx.changed.length === 0 ? createdDirs : []);
  }
}
