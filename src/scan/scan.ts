import fs from 'node:fs/promises';
import path from 'node:path';
import { DataDirError, OptionsError } from '../errors.js';
import { checkDataDir, readVersionFile } from './data-dir.js';
import type { SkippedEntry } from '../archive/manifest.js';
import { PRIVATE_FOLDER, type ResolvedScanOptions } from '../options.js';
import { DBZIP_VERSION } from '../version.js';

/**
 * The scan only lists and stats files; it never opens a database file.
 * Closing any descriptor of a file drops every POSIX lock this process holds on it,
 * including the locks of SQLite connections (ours, or the host application's when
 * dbzip is embedded). So database content is only ever read through SQLite
 * (src/snapshot/), which keeps its descriptors open while it holds locks.
 */

/** A file that may hold a SQLite database; the snapshot layer confirms it by its header. */
export interface DatabaseCandidate {
  /** Relative to the data directory, `/`-separated: the entry name in the zip. */
  path: string;
  absPath: string;
  bytes: number;
  mtime: Date;
}

export interface AssetFile {
  /** The entry name in the zip: the asset folder's name, then the path inside it. */
  path: string;
  absPath: string;
  bytes: number;
  mtime: Date;
}

export interface ScanResult {
  dataDir: string;
  candidates: DatabaseCandidate[];
  assetFolders: string[];
  assets: AssetFile[];
  skipped: SkippedEntry[];
  version: string;
  versionSource: 'option' | 'data-dir' | 'dbzip';
}


/** Code-unit order: the same on every machine and locale. */
export const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Names that would be unsafe or ambiguous inside a zip. */
function badNameReason(name: string): string | undefined {
  if (name.includes('\uFFFD')) return 'file name is not valid UTF-8';
  if (name.includes('\\')) return 'file name holds a backslash, which zip readers may treat as a folder separator';
  return undefined;
}

async function readDir(absDir: string, relDir: string, skipped: SkippedEntry[]) {
  try {
    return await fs.readdir(absDir, { withFileTypes: true });
  } catch (error) {
    if (relDir === '') throw new DataDirError('DATA_DIR_UNREADABLE', absDir, `data directory ${absDir} cannot be listed: ${(error as Error).message}`, { cause: error });
    skipped.push({ path: relDir, code: 'UNREADABLE', reason: `folder cannot be listed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    return [];
  }
}

async function findCandidates(opts: ResolvedScanOptions, excluded: ReadonlySet<string>, skipped: SkippedEntry[]): Promise<DatabaseCandidate[]> {
  const found: DatabaseCandidate[] = [];
  const walk = async (relDir: string): Promise<void> => {
    const absDir = path.join(opts.dataDir, relDir);
    for (const dirent of await readDir(absDir, relDir, skipped)) {
      const rel = relDir === '' ? dirent.name : `${relDir}/${dirent.name}`;
      const abs = path.join(absDir, dirent.name);
      const lower = dirent.name.toLowerCase();
      if (dirent.isDirectory()) {
        if (opts.recursive && !excluded.has(rel) && dirent.name !== PRIVATE_FOLDER) await walk(rel);
        continue;
      }
      if (!opts.extensions.some((ext) => lower.endsWith(ext) && lower.length > ext.length)) continue;
      const badName = badNameReason(rel);
      if (badName !== undefined) {
        skipped.push({ path: rel, code: 'BAD_NAME', reason: badName });
      } else if (dirent.isSymbolicLink()) {
        skipped.push({ path: rel, code: 'SYMLINK', reason: 'symbolic links are never followed' });
      } else if (!dirent.isFile()) {
        skipped.push({ path: rel, code: 'NOT_REGULAR_FILE', reason: 'not a regular file' });
      } else {
        try {
          const stat = await fs.lstat(abs);
          if (stat.size === 0) skipped.push({ path: rel, code: 'NOT_SQLITE', reason: 'empty file, no SQLite header' });
          else found.push({ path: rel, absPath: abs, bytes: stat.size, mtime: stat.mtime });
        } catch (error) {
          skipped.push({ path: rel, code: 'UNREADABLE', reason: `cannot stat: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
        }
      }
    }
  };
  await walk('');
  return found.sort(byPath);
}

async function findAssets(dataDir: string, folder: string, skipped: SkippedEntry[]): Promise<AssetFile[]> {
  const files: AssetFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const dirent of await readDir(path.join(dataDir, rel), rel, skipped)) {
      const childRel = `${rel}/${dirent.name}`;
      const badName = badNameReason(childRel);
      if (badName !== undefined) {
        skipped.push({ path: childRel, code: 'BAD_NAME', reason: badName });
      } else if (dirent.isSymbolicLink()) {
        skipped.push({ path: childRel, code: 'SYMLINK', reason: 'symbolic links are never followed' });
      } else if (dirent.isDirectory()) {
        await walk(childRel);
      } else if (dirent.isFile()) {
        const stat = await fs.lstat(path.join(dataDir, childRel));
        files.push({ path: childRel, absPath: path.join(dataDir, childRel), bytes: stat.size, mtime: stat.mtime });
      } else {
        skipped.push({ path: childRel, code: 'NOT_REGULAR_FILE', reason: 'not a regular file' });
      }
    }
  };
  await walk(folder);
  return files;
}

/** Explicit asset folders must exist; the default `assets` is used only when it does. */
async function resolveAssetFolders(opts: ResolvedScanOptions): Promise<string[]> {
  const folders = opts.assets ?? ['assets'];
  const existing: string[] = [];
  for (const folder of folders) {
    let stat;
    try {
      stat = await fs.lstat(path.join(opts.dataDir, folder));
    } catch {
      if (opts.assets === undefined) continue;
      throw new OptionsError(`option "assets": folder "${folder}" does not exist in ${opts.dataDir}`);
    }
    if (stat.isSymbolicLink()) throw new OptionsError(`option "assets": "${folder}" is a symbolic link, which is never followed`);
    if (!stat.isDirectory()) throw new OptionsError(`option "assets": "${folder}" is not a folder`);
    existing.push(folder);
  }
  // A folder inside another would be archived twice.
  for (const a of existing) {
    for (const b of existing) {
      if (a !== b && b.startsWith(`${a}/`)) throw new OptionsError(`option "assets": "${b}" is inside "${a}"`);
    }
  }
  return [...new Set(existing)].sort();
}

async function resolveVersion(opts: ResolvedScanOptions): Promise<Pick<ScanResult, 'version' | 'versionSource'>> {
  if (opts.version !== undefined) return { version: opts.version, versionSource: 'option' };
  const file = await readVersionFile(opts.dataDir);
  return file === null ? { version: DBZIP_VERSION, versionSource: 'dbzip' } : { version: file, versionSource: 'data-dir' };
}

/** Lists what a backup of `opts.dataDir` would read, without opening any database. */
export async function scanDataDir(opts: ResolvedScanOptions): Promise<ScanResult> {
  await checkDataDir(opts.dataDir);
  const skipped: SkippedEntry[] = [];
  const assetFolders = await resolveAssetFolders(opts);
  const candidates = await findCandidates(opts, new Set(assetFolders), skipped);
  const assets: AssetFile[] = [];
  for (const folder of assetFolders) assets.push(...(await findAssets(opts.dataDir, folder, skipped)));
  return {
    dataDir: opts.dataDir,
    candidates,
    assetFolders,
    assets: assets.sort(byPath),
    skipped: skipped.sort(byPath),
    ...(await resolveVersion(opts)),
  };
}
