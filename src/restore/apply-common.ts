/** Steps both apply modes share: stage beside, commit by rename, remove with `exact`. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { AssetEntry, DatabaseEntry, Manifest } from '../archive/manifest.js';
import type { ZipEntry, ZipReader } from '../archive/zip-reader.js';
import { ArchiveError } from '../errors.js';
import type { Logger } from '../options.js';
import { checkpointQuietly } from '../snapshot/apply-image.js';
import { fsyncDirs } from '../durable.js';
import { makeParents, removeEmptyDirs, removeSidecars, stageBuffer, stageEntry } from './files.js';
import type { PlanItem } from './plan.js';

export interface ApplyContext {
  dataDir: string;
  privateDir: string;
  /** Open on the verified archive for the whole apply. */
  reader: ZipReader;
  archive: Manifest;
  items: readonly PlanItem[];
  busyTimeoutMs: number;
  maxDatabaseBytes: number;
  logger: Logger;
  /** Paths changed so far, in order; named in the error if a later step fails. */
  changed: string[];
  /** Things worth telling, such as a page size conversion. */
  notes: string[];
}

export interface Staged {
  item: PlanItem;
  target: string;
  staged: string;
}

export function targetOf(ctx: Pick<ApplyContext, 'dataDir'>, rel: string): string {
  return path.join(ctx.dataDir, ...rel.split('/'));
}

export function entryOf(ctx: ApplyContext, rel: string): ZipEntry {
  const entry = ctx.reader.entries.find((e) => e.name === rel);
  if (entry === undefined) throw new ArchiveError([`entry ${JSON.stringify(rel)} is no longer in the archive`]);
  return entry;
}

export function listedOf(ctx: ApplyContext, item: PlanItem): DatabaseEntry | AssetEntry {
  const listed = item.kind === 'database' ? ctx.archive.databases.find((d) => d.path === item.path) : ctx.archive.assets.find((a) => a.path === item.path);
  if (listed === undefined) throw new Error(`${item.path} is not in the manifest`);
  return listed;
}

/** Items that bring content from the archive. */
export const writes = (item: PlanItem): boolean => item.action === 'added' || item.action === 'replaced';

/** Writes one item's new content beside its target; the live file is untouched. */
export async function stageItem(ctx: ApplyContext, item: PlanItem, createdDirs: string[]): Promise<Staged> {
  const target = targetOf(ctx, item.path);
  createdDirs.push(...(await makeParents(ctx.dataDir, target)));
  const staged =
    item.kind === 'version'
      ? await stageBuffer(target, Buffer.from(`${ctx.archive.appVersion.trim()}\n`, 'utf8'))
      : await stageEntry(ctx.reader, entryOf(ctx, item.path), listedOf(ctx, item), target);
  return { item, target, staged };
}

/** Undoes staging after a failure: nothing live was touched yet. */
export async function discardStaged(staged: readonly Staged[], createdDirs: readonly string[]): Promise<void> {
  for (const s of staged) await fs.rm(s.staged, { force: true });
  await removeEmptyDirs(createdDirs);
}

/**
 * Renames every staged file over its target, then fsyncs the folders. For a database, stray
 * -wal/-shm/-journal files are removed first: the target is settled or absent, so they hold
 * nothing, and SQLite would otherwise apply a stale WAL to the new file.
 */
export async function commitStaged(ctx: ApplyContext, staged: Staged[]): Promise<void> {
  const dirs: string[] = [];
  while (staged.length > 0) {
    const next = staged[0] as Staged;
    if (next.item.kind === 'database') await removeSidecars(next.target);
    await fs.rename(next.staged, next.target);
    staged.shift();
    ctx.changed.push(next.item.path);
    dirs.push(path.dirname(next.target));
    ctx.logger.info({ path: next.item.path, action: next.item.action }, 'restored');
  }
  await fsyncDirs(dirs);
}

/**
 * `exact`: removes what the archive does not hold. A database goes main file first, so no new
 * connection can open it without its WAL; its sidecars follow.
 */
export async function removeItems(ctx: ApplyContext, online: boolean): Promise<void> {
  const dirs: string[] = [];
  for (const item of ctx.items) {
    if (item.action !== 'removed') continue;
    const target = targetOf(ctx, item.path);
    if (item.kind === 'database' && online) checkpointQuietly(target, ctx.busyTimeoutMs);
    await fs.rm(target, { force: true });
    if (item.kind === 'database') await removeSidecars(target);
    ctx.changed.push(item.path);
    dirs.push(path.dirname(target));
    ctx.logger.info({ path: item.path, action: 'removed' }, 'restored');
  }
  await fsyncDirs(dirs);
}
