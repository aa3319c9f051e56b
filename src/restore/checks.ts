/**
 * Checks a restore adds on top of `verifyArchive`: names that are valid in a zip but must never be
 * written into a data directory, and targets in the data directory that must not be written through.
 */
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { VERSION_NAME, type Manifest } from '../archive/manifest.js';
import { SIDECARS, STAGING_MARK } from './files.js';
import { PRIVATE_FOLDER } from './spool.js';

/** Problems with the paths the manifest would write; empty when every one is safe. */
export function archivePathProblems(manifest: Manifest): string[] {
  const problems: string[] = [];
  const all = [...manifest.databases.map((d) => ({ kind: 'database', path: d.path })), ...manifest.assets.map((a) => ({ kind: 'asset', path: a.path }))];
  const databases = new Set(manifest.databases.map((d) => d.path));
  const files = new Set(all.map((f) => f.path));
  for (const { kind, path: p } of all) {
    const label = `${kind} ${JSON.stringify(p)}`;
    const segments = p.split('/');
    if (segments[0] === PRIVATE_FOLDER) problems.push(`${label}: is inside dbzip's private folder ${PRIVATE_FOLDER}/, which a restore never writes`);
    if (segments.some((s) => s.includes(STAGING_MARK))) problems.push(`${label}: holds "${STAGING_MARK}", which restore reserves for its staged files`);
    if (kind === 'asset' && segments.length < 2) problems.push(`${label}: dbzip archives assets inside asset folders, never at the top level`);
    for (const suffix of SIDECARS) {
      if (p.endsWith(suffix) && databases.has(p.slice(0, -suffix.length))) {
        problems.push(`${label}: SQLite would take it for the ${suffix} file of database ${JSON.stringify(p.slice(0, -suffix.length))}`);
      }
    }
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/');
      if (files.has(folder)) problems.push(`${label}: needs ${JSON.stringify(folder)} to be a folder, but the archive also holds it as a file`);
    }
  }
  return problems;
}

/**
 * Problems with writing these targets (paths relative to `dataDir`, `/`-separated): a folder on
 * the way that is a link or a file, or a target that is a link, a folder or a special file.
 * A restore writes only regular files through real folders; it never follows or replaces a link.
 */
export async function targetProblems(dataDir: string, targets: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const cache = new Map<string, Promise<Stats | null>>();
  const lstat = (rel: string) => {
    let found = cache.get(rel);
    if (found === undefined) {
      found = fs.lstat(path.join(dataDir, ...rel.split('/'))).catch(() => null);
      cache.set(rel, found);
    }
    return found;
  };
  for (const target of targets) {
    const segments = target.split('/');
    let blocked = false;
    for (let i = 1; i < segments.length && !blocked; i++) {
      const folder = segments.slice(0, i).join('/');
      const stat = await lstat(folder);
      if (stat === null) break; // created by the restore
      if (stat.isSymbolicLink()) problems.push(`${JSON.stringify(target)}: folder ${JSON.stringify(folder)} in the data directory is a symbolic link; a restore never writes through links`);
      else if (!stat.isDirectory()) problems.push(`${JSON.stringify(target)}: ${JSON.stringify(folder)} in the data directory is a file where the archive needs a folder`);
      else continue;
      blocked = true;
    }
    if (blocked) continue;
    const stat = await lstat(target);
    if (stat === null || stat.isFile()) continue;
    if (stat.isSymbolicLink()) problems.push(`${JSON.stringify(target)}: is a symbolic link in the data directory; a restore never replaces or follows links`);
    else if (stat.isDirectory()) problems.push(`${JSON.stringify(target)}: is a folder in the data directory; the archive holds it as a file`);
    else problems.push(`${JSON.stringify(target)}: is a special file in the data directory`);
  }
  return problems;
}

/** Every path a restore of this manifest may write, `VERSION` included. */
export function targetsOf(manifest: Manifest): string[] {
  return [VERSION_NAME, ...manifest.databases.map((d) => d.path), ...manifest.assets.map((a) => a.path)];
}
