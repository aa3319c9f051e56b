import path from 'node:path';
import { formatBytes } from '../../format.js';
import { inspect, type Inspection } from '../../inspect.js';
import { IN_PROCESS_UP_TO_BYTES, toBackupOptions, type BackupFlags } from '../backup-flags.js';
import { writeAll, type CliIo } from '../io.js';

export interface ListFlags extends BackupFlags {
  json?: boolean;
  /** Every asset file instead of one line per folder. */
  files?: boolean;
}

/** One line per asset folder: an appliance's upload folder can hold thousands of files. */
function assetLines(result: Inspection, everyFile: boolean): string[] {
  const total = result.assets.reduce((n, a) => n + a.bytes, 0);
  const lines = [`assets: ${result.assets.length} file(s), ${formatBytes(total)}${result.assetFolders.length === 0 ? ' (no asset folder)' : ''}`];
  if (everyFile) {
    for (const asset of result.assets) lines.push(`  ${asset.path}  ${formatBytes(asset.bytes)}`);
    return lines;
  }
  for (const folder of result.assetFolders) {
    const files = result.assets.filter((a) => a.path.startsWith(`${folder}/`));
    lines.push(`  ${folder}/  ${files.length} file(s), ${formatBytes(files.reduce((n, a) => n + a.bytes, 0))}`);
  }
  if (result.assets.length > 0) lines.push('  (--files lists every file)');
  return lines;
}

/** What a backup would contain now and what it would skip, and why. */
export async function runList(dataDir: string, flags: ListFlags, io: CliIo): Promise<number> {
  const result = await inspect({ ...toBackupOptions(path.resolve(io.cwd, dataDir), flags, io.env), signal: io.signal }, { inProcessUpTo: IN_PROCESS_UP_TO_BYTES });
  if (flags.json) {
    // JSON is for programs: always every file.
    await writeAll(io.stdout, `${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  const lines = [`data dir: ${result.dataDir}`, `version:  ${result.version} (from ${result.versionSource})`, '', 'databases:'];
  if (result.databases.length === 0) lines.push('  (none)');
  for (const db of result.databases) lines.push(`  ${db.path}  ${formatBytes(db.bytes)}  ${db.journalMode}  user_version=${db.userVersion}`);
  lines.push('', ...assetLines(result, flags.files === true));
  if (result.skipped.length > 0) {
    lines.push('', 'skipped:');
    for (const skip of result.skipped) lines.push(`  ${skip.path}  ${skip.code}: ${skip.reason}`);
  }
  await writeAll(io.stdout, `${lines.join('\n')}\n`);
  return 0;
}
