/**
 * restore(): verify everything -> take a pre-restore backup -> plan -> confirm -> apply -> prune.
 * Nothing in the data directory changes until the whole archive has verified, the version policy
 * allows it, every target is safe to write and the pre-restore backup is on disk.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { withZipReader } from '../archive/zip-reader.js';
import { AbortedError, ArchiveError, DbzipError, errorMessage, OptionsError, RestoreError } from '../errors.js';
import { checkDataDir, readVersionFile } from '../scan/data-dir.js';
import { verifyArchive, type VerifyReport } from '../verify/index.js';
import type { ApplyContext } from './apply-common.js';
import { applyOffline, settleTargets } from './apply-offline.js';
import { applyOnline } from './apply-online.js';
import { archivePathProblems, targetProblems, targetsOf } from './checks.js';
import { removeStaleStaging } from './files.js';
import { resolveRestoreOptions, type ResolvedRestoreOptions, type RestoreMode, type RestoreOptions } from './options.js';
import { hasChanges, makePlan, summarize, type PlanItem, type RestorePlan } from './plan.js';
import type { BackupOptions } from '../options.js';
import { currentStateOptions, prunePreRestore, publishPreRestore, removeStalePartials, scanCurrentState, writePreRestore, type PreRestoreBackup } from './pre-restore.js';
import { ensurePrivateDir, isInPrivateDir, lockDataDir } from './spool.js';
import { decideVersion, type VersionDecision } from './version-policy.js';

export interface RestoreReport {
  archive: string;
  dataDir: string;
  mode: RestoreMode;
  dryRun: boolean;
  exact: boolean;
  /** True when the data directory was changed (never in a dry run). */
  applied: boolean;
  /** The full verification of the archive (ok here: a failed one throws ArchiveError). */
  verify: VerifyReport;
  version: VersionDecision;
  plan: RestorePlan;
  /** The pre-restore backup, restorable like any dbzip archive; null in a dry run or when nothing changed. */
  preRestore: string | null;
  /** Older pre-restore backups removed to keep `keepPreRestore`. */
  prunedPreRestore: string[];
  /** Stale staged files of an earlier, interrupted restore that were removed. */
  removedLeftovers: string[];
  /** True when `removeArchive` deleted the archive. */
  archiveRemoved: boolean;
  notes: string[];
  durationMs: number;
}

function refused(reasons: readonly string[]): RestoreError {
  const message = reasons.length === 1 ? `restore refused: ${reasons[0]}` : `restore refused (${reasons.length} problems):\n- ${reasons.join('\n- ')}`;
  return new RestoreError('RESTORE_REFUSED', message);
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('the restore was cancelled; nothing in the data directory was changed', { cause: signal.reason });
}

/** Names what changed before the failure and how to undo it. */
function applyFailure(error: unknown, changed: readonly string[], preRestore: string, dataDir: string): DbzipError {
  if (changed.length === 0) {
    if (error instanceof DbzipError && error.code === 'RESTORE_REFUSED') return error;
    const code = error instanceof ArchiveError ? 'ARCHIVE_INVALID' : 'RESTORE_FAILED';
    const message = `restore failed before anything in the data directory changed: ${errorMessage(error)}`;
    return code === 'ARCHIVE_INVALID' ? new ArchiveError([message], { cause: error }) : new RestoreError('RESTORE_FAILED', message, { cause: error });
  }
  const list = changed.length > 10 ? `${changed.slice(0, 10).join(', ')} and ${changed.length - 10} more` : changed.join(', ');
  return new RestoreError(
    'RESTORE_FAILED',
    `restore failed after changing ${changed.length} file(s) (${list}): ${errorMessage(error)}. ` +
      `Each database is whole (old or new). To go back: dbzip restore ${JSON.stringify(preRestore)} --data-dir ${JSON.stringify(dataDir)}`,
    { cause: error },
  );
}

interface Verified {
  verify: VerifyReport;
  version: VersionDecision;
  currentVersionFile: string | null;
}

/** Everything checked before anything is written; throws ArchiveError / RestoreError listing every problem. */
async function verifyAll(opts: ResolvedRestoreOptions, dataDir: string): Promise<Verified> {
  const verify = await verifyArchive(opts.archive, { ...opts.limits, maxDatabaseBytes: opts.maxDatabaseBytes, ...(opts.decrypt === undefined ? {} : { decrypt: opts.decrypt }) });
  const problems = [...verify.problems];
  if (verify.manifest !== null) problems.push(...archivePathProblems(verify.manifest));
  const targets = verify.manifest === null ? [] : await targetProblems(dataDir, targetsOf(verify.manifest));
  const currentVersionFile = await readVersionFile(dataDir);
  const current = opts.appVersion ?? currentVersionFile;
  const source = opts.appVersion !== undefined ? 'option' : currentVersionFile !== null ? 'data-dir' : 'none';
  const version = decideVersion(verify.appVersion ?? '', current, source, opts.force);
  const versionProblems = verify.appVersion === null || version.allowed ? [] : [version.reason];
  if (problems.length > 0 || verify.manifest === null) {
    throw new ArchiveError([...(problems.length > 0 ? problems : ['the manifest could not be read']), ...targets, ...versionProblems]);
  }
  if (targets.length > 0 || versionProblems.length > 0) throw refused([...targets, ...versionProblems]);
  opts.logger.info({ archive: opts.archive, databases: verify.databases.length, assets: verify.assets.length }, 'archive verified');
  return { verify, version, currentVersionFile };
}

function planOf(opts: ResolvedRestoreOptions, dataDir: string, version: VersionDecision, items: PlanItem[], preRestore: string | null): RestorePlan {
  return { dataDir, archive: opts.archive, mode: opts.mode, exact: opts.exact, dryRun: opts.dryRun, version, items, preRestore, summary: summarize(items) };
}

/** What every step of one restore shares once the archive has verified. */
interface RestoreRun {
  opts: ResolvedRestoreOptions;
  started: number;
  dataDir: string;
  version: VersionDecision;
  archive: NonNullable<VerifyReport['manifest']>;
  /** How the current state is backed up and scanned: the archive's scan settings unless the caller set them. */
  backupOptions: BackupOptions;
  /** makePlan()'s input but for the current state. */
  planBase: Omit<Parameters<typeof makePlan>[0], 'current' | 'currentContent'>;
  report: (plan: RestorePlan, extra: Partial<RestoreReport>) => RestoreReport;
}

/** Checks the data directory and verifies the archive: nothing is written yet. */
async function prepareRun(opts: ResolvedRestoreOptions, started: number): Promise<RestoreRun> {
  const dataDir = await checkDataDir(opts.dataDir);
  checkAborted(opts.signal);
  const { verify, version, currentVersionFile } = await verifyAll(opts, dataDir);
  const archive = verify.manifest as NonNullable<VerifyReport['manifest']>;
  const backupOptions = await currentStateOptions({ ...opts, dataDir }, archive);
  const report = (plan: RestorePlan, extra: Partial<RestoreReport>): RestoreReport => ({
    archive: opts.archive,
    dataDir,
    mode: opts.mode,
    dryRun: opts.dryRun,
    exact: opts.exact,
    applied: false,
    verify,
    version,
    plan,
    preRestore: null,
    prunedPreRestore: [],
    removedLeftovers: [],
    archiveRemoved: false,
    notes: [],
    durationMs: 0,
    ...extra,
  });
  const archiveContent = new Map(verify.databases.flatMap((db) => (db.contentSha256 === undefined ? [] : [[db.path, db.contentSha256] as const])));
  const planBase = { dataDir, archive, currentVersionFile, exact: opts.exact, force: opts.force, archiveContent };
  return { opts, started, dataDir, version, archive, backupOptions, planBase, report };
}

/** A dry run: the plan against a fresh scan of the current state; nothing is written. */
async function planOnly(run: RestoreRun): Promise<RestoreReport> {
  const { opts, dataDir, version } = run;
  const current = await scanCurrentState(run.backupOptions);
  const { items, refusals } = await makePlan({ ...run.planBase, current: current.manifest, currentContent: current.contentDigests });
  if (refusals.length > 0) throw refused(refusals);
  return run.report(planOf(opts, dataDir, version, items, null), { durationMs: performance.now() - run.started });
}

/**
 * Writes the pre-restore backup, plans against it, and asks for confirmation; publishes the backup
 * only when the restore goes ahead. Returns the plan, or the report when there is nothing to change.
 */
async function stagePreRestore(run: RestoreRun, privateDir: string, removedLeftovers: string[]): Promise<{ plan: RestorePlan; pre: PreRestoreBackup } | RestoreReport> {
  const { opts, dataDir, version } = run;
  const pre = await writePreRestore(privateDir, run.backupOptions);
  let published = false;
  try {
    opts.logger.info({ path: pre.partial }, 'pre-restore backup written');
    const { items, refusals } = await makePlan({ ...run.planBase, current: pre.manifest, currentContent: pre.contentDigests });
    if (refusals.length > 0) throw refused(refusals);
    const plan = planOf(opts, dataDir, version, items, pre.path);
    if (!hasChanges(items)) {
      return run.report({ ...plan, preRestore: null }, { removedLeftovers, durationMs: performance.now() - run.started });
    }
    if (opts.mode === 'offline') await settleTargets({ dataDir, items, busyTimeoutMs: opts.busyTimeoutMs });
    if (opts.confirm !== undefined && !(await opts.confirm(plan))) {
      throw new RestoreError('RESTORE_REFUSED', 'restore cancelled: not confirmed; nothing in the data directory was changed');
    }
    checkAborted(opts.signal);
    await publishPreRestore(pre);
    published = true;
    return { plan, pre };
  } finally {
    if (!published) await fs.rm(pre.partial, { force: true });
  }
}

/** Holding the data directory's lock: clear leftovers, stage the pre-restore backup, apply, prune. */
async function applyLocked(run: RestoreRun, privateDir: string): Promise<RestoreReport> {
  const { opts, dataDir, archive } = run;
  await removeStalePartials(privateDir);
  const targetDirs = [dataDir, ...targetsOf(archive).map((t) => path.dirname(path.join(dataDir, ...t.split('/'))))];
  const removedLeftovers = await removeStaleStaging(targetDirs);
  checkAborted(opts.signal);
  const staged = await stagePreRestore(run, privateDir, removedLeftovers);
  if (!('pre' in staged)) return staged;
  const { plan, pre } = staged;

  const notes: string[] = [];
  const changed: string[] = [];
  try {
    await withZipReader(opts.archive, opts.limits, async (reader) => {
      const ctx: ApplyContext = {
        dataDir,
        privateDir,
        reader,
        archive,
        items: plan.items,
        busyTimeoutMs: opts.busyTimeoutMs,
        maxDatabaseBytes: opts.maxDatabaseBytes,
        logger: opts.logger,
        changed,
        notes,
      };
      await (opts.mode === 'online' ? applyOnline(ctx) : applyOffline(ctx));
    }, opts.decrypt);
  } catch (error) {
    throw applyFailure(error, changed, pre.path, dataDir);
  }
  const prunedPreRestore = await prunePreRestore(privateDir, opts.keepPreRestore);
  return run.report(plan, { applied: true, preRestore: pre.path, prunedPreRestore, removedLeftovers, notes, durationMs: performance.now() - run.started });
}

async function run(opts: ResolvedRestoreOptions, started: number): Promise<RestoreReport> {
  const prepared = await prepareRun(opts, started);
  if (opts.dryRun) return planOnly(prepared);
  const privateDir = await ensurePrivateDir(prepared.dataDir);
  const unlock = await lockDataDir(privateDir);
  try {
    return await applyLocked(prepared, privateDir);
  } finally {
    await unlock();
  }
}

/**
 * Restores a dbzip archive into a data directory; see docs/restore.md. Throws OptionsError for
 * bad options, DataDirError when the data directory is missing, ArchiveError listing every problem
 * when the archive fails verification, RestoreError (RESTORE_REFUSED) when the version policy, an
 * unsafe target, the confirmation or offline mode's in-use check says no - in all of these the data
 * directory is unchanged - and RestoreError (RESTORE_FAILED) when applying fails part-way, naming
 * what changed and the pre-restore backup that undoes it.
 */
export async function restore(options: RestoreOptions): Promise<RestoreReport> {
  let opts: ResolvedRestoreOptions;
  try {
    opts = resolveRestoreOptions(options);
  } catch (error) {
    // A spooled upload goes whatever the outcome, bad options included (it is only ever ours).
    const { archive, dataDir, removeArchive } = (options ?? {}) as Partial<RestoreOptions>;
    if (removeArchive === true && typeof archive === 'string' && typeof dataDir === 'string' && (await isInPrivateDir(dataDir, archive))) {
      await fs.rm(archive, { force: true }).catch(() => {});
    }
    throw error;
  }
  const started = performance.now();
  if (opts.removeArchive && !(await isInPrivateDir(opts.dataDir, opts.archive))) {
    throw new OptionsError('option "removeArchive" is only allowed for an archive inside <dataDir>/.dbzip/ (see createSpool)');
  }
  let archiveRemoved = false;
  try {
    const result = await run(opts, started);
    if (opts.removeArchive) {
      await fs.rm(opts.archive, { force: true });
      archiveRemoved = true;
    }
    return { ...result, archiveRemoved };
  } finally {
    if (opts.removeArchive && !archiveRemoved) await fs.rm(opts.archive, { force: true }).catch(() => {});
  }
}
