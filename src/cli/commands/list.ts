import path from 'node:path';
import { inspect } from '../../inspect.js';
import { toBackupOptions, type BackupFlags } from '../backup-flags.js';
import { writeAll, type CliIo } from '../io.js';

const size = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`);

/** What a backup would contain now and what it would skip, and why. */
export async function runList(dataDir: string, flags: BackupFlags & { json?: boolean }, io: CliIo): Promise<number> {
  const result = await inspect({ ...toBackupOptions(path.resolve(io.cwd, dataDir), flags, io.env), signal: io.signal });
  if (flags.json) {
    await writeAll(io.stdout, `${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  const lines = [`data dir: ${result.dataDir}`, `version:  ${result.version} (from ${result.versionSource})`, '', 'databases:'];
  if (result.databases.length === 0) lines.push('  (none)');
  for (const db of result.databases) lines.push(`  ${db.path}  ${size(db.bytes)}  ${db.journalMode}  user_version=${db.userVersion}`);
  lines.push('', `assets: ${result.assets.length} file(s) in ${result.assetFolders.length === 0 ? '(no asset folder)' : result.assetFolders.join(', ')}`);
  for (const asset of result.assets) lines.push(`  ${asset.path}  ${size(asset.bytes)}`);
  if (result.skipped.length > 0) {
    lines.push('', 'skipped:');
    for (const skip of result.skipped) lines.push(`  ${skip.path}  ${skip.code}: ${skip.reason}`);
  }
  await writeAll(io.stdout, `${lines.join('\n')}\n`);
  return 0;
}
