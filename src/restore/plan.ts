/**
 * Compares a verified archive with the data directory as it is now (the pre-restore backup's
 * manifest, so "now" is one consistent moment) and says what a restore will do to each file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { VERSION_NAME, type Manifest } from '../archive/manifest.js';
import { SIDECARS, STAGING_PATTERN } from './files.js';
import type { RestoreMode } from './options.js';
import type { VersionDecision } from './version-policy.js';

/**
 * added: not in the data dir now. replaced: there with other content. unchanged: same SHA-256 (for a
 * database: or the same content digest), not written. removed: not in the archive and `exact` is set. kept: not in the archive, left alone.
 */
export type PlanAction = 'added' | 'replaced' | 'unchanged' | 'removed' | 'kept';
export type PlanKind = 'database' | 'asset' | 'version';

export interface PlanItem {
  kind: PlanKind;
  /** Relative to the data directory, `/`-separated. */
  path: string;
  action: PlanAction;
  /** Size after the restore (added, replaced, unchanged) or now (removed, kept). */
  bytes: number;
  /** True when the file exists now but the pre-restore backup could not capture it (replaced only with `force`). */
  uncaptured?: true;
}

export interface RestorePlan {
  dataDir: string;
  archive: string;
  mode: RestoreMode;
  exact: boolean;
  dryRun: boolean;
  version: VersionDecision;
  /** Archive order (VERSION, databases, assets), then what is only in the data dir. */
  items: PlanItem[];
  /** Where the pre-restore backup is (or, before it is published, will be); null in a dry run. */
  preRestore: string | null;
  /** How many items of each action. */
  summary: Record<PlanAction, number>;
}

export interface PlanInput {
  dataDir: string;
  archive: Manifest;
  current: Manifest;
  /**
   * Content digests (src/archive/content-digest.ts) by database path, of the archive's images (from
   * verify) and of the current ones: equal digests make a database `unchanged` even when SQLite's
   * bookkeeping in the header (an online restore bumps it) makes the SHA-256 differ.
   */
  archiveContent?: ReadonlyMap<string, string>;
  currentContent?: ReadonlyMap<string, string>;
  /** `<dataDir>/VERSION` now, trimmed; null when absent. */
  currentVersionFile: string | null;
  exact: boolean;
  force: boolean;
}

export interface PlanOutcome {
  items: PlanItem[];
  /** Reasons to refuse the restore; empty when it may go ahead. */
  refusals: string[];
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(() => true, () => false);
}

export async function makePlan(input: PlanInput): Promise<PlanOutcome> {
  const { archive, current } = input;
  const refusals: string[] = [];
  const sameContent = (p: string): boolean => {
    const was = input.archiveContent?.get(p);
    return was !== undefined && was === input.currentContent?.get(p);
  };
  const now = new Map<string, { kind: PlanKind; sha256: string; bytes: number }>();
  for (const db of current.databases) now.set(db.path, { kind: 'database', sha256: db.sha256, bytes: db.bytes });
  for (const asset of current.assets) if (!STAGING_PATTERN.test(asset.path)) now.set(asset.path, { kind: 'asset', sha256: asset.sha256, bytes: asset.bytes });
  const skipped = new Map(current.skipped.map((s) => [s.path, s.reason]));

  const versionBytes = Buffer.byteLength(`${archive.appVersion}\n`);
  const items: PlanItem[] = [
    {
      kind: 'version',
      path: VERSION_NAME,
      action: input.currentVersionFile === null ? 'added' : input.currentVersionFile === archive.appVersion.trim() ? 'unchanged' : 'replaced',
      bytes: versionBytes,
    },
  ];
  const inArchive = new Set<string>();
  const wanted = [
    ...archive.databases.map((d) => ({ kind: 'database' as const, path: d.path, sha256: d.sha256, bytes: d.bytes })),
    ...archive.assets.map((a) => ({ kind: 'asset' as const, path: a.path, sha256: a.sha256, bytes: a.bytes })),
  ];
  for (const want of wanted) {
    inArchive.add(want.path);
    const there = now.get(want.path);
    if (there !== undefined) {
      const unchanged = there.sha256 === want.sha256 || (want.kind === 'database' && sameContent(want.path));
      items.push({ kind: want.kind, path: want.path, action: unchanged ? 'unchanged' : 'replaced', bytes: want.bytes });
      continue;
    }
    const reason = skipped.get(want.path) ?? ((await exists(path.join(input.dataDir, ...want.path.split('/')))) ? 'not a file a backup would archive' : undefined);
    if (reason === undefined) {
      items.push({ kind: want.kind, path: want.path, action: 'added', bytes: want.bytes });
      continue;
    }
    // Replacing what the pre-restore backup does not hold could not be undone.
    if (!input.force) refusals.push(`${JSON.stringify(want.path)} exists but the pre-restore backup cannot capture it (${reason}); pass force (--force) to replace it anyway`);
    items.push({ kind: want.kind, path: want.path, action: 'replaced', bytes: want.bytes, uncaptured: true });
  }

  // An archived file named like a live database's -wal/-shm/-journal would be read by SQLite as one.
  const liveDatabases = new Set(current.databases.map((d) => d.path));
  for (const want of wanted) {
    for (const suffix of SIDECARS) {
      const base = want.path.slice(0, -suffix.length);
      if (want.path.endsWith(suffix) && liveDatabases.has(base)) {
        refusals.push(`${JSON.stringify(want.path)} would become the ${suffix} file of database ${JSON.stringify(base)} in the data directory`);
      }
    }
  }

  for (const [p, there] of [...now].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (inArchive.has(p)) continue;
    items.push({ kind: there.kind, path: p, action: input.exact ? 'removed' : 'kept', bytes: there.bytes });
  }
  return { items, refusals };
}

export function summarize(items: readonly PlanItem[]): Record<PlanAction, number> {
  const summary: Record<PlanAction, number> = { added: 0, replaced: 0, unchanged: 0, removed: 0, kept: 0 };
  for (const item of items) summary[item.action] += 1;
  return summary;
}

/** True when applying the plan would change at least one file. */
export function hasChanges(items: readonly PlanItem[]): boolean {
  return items.some((i) => i.action === 'added' || i.action === 'replaced' || i.action === 'removed');
}
