import path from 'node:path';
import { ArchiveError } from '../../errors.js';
import { formatBytes } from '../../format.js';
import { verifyArchive } from '../../verify/index.js';
import { writeAll, type CliIo } from '../io.js';

/** Checks CRCs, manifest hashes and every database's integrity; any problem fails with exit code 6. */
export async function runVerify(file: string, flags: { json?: boolean }, io: CliIo): Promise<number> {
  const report = await verifyArchive(path.resolve(io.cwd, file));
  if (flags.json) {
    await writeAll(io.stdout, `${JSON.stringify(report, null, 2)}\n`);
  } else {
    const lines = report.databases.map((db) => `  ${db.path}  ${formatBytes(db.bytes)}  integrity ${db.integrity}`);
    lines.unshift(`${file}: ${report.ok ? 'ok' : 'FAILED'}`, `version: ${report.appVersion ?? '(missing)'}`, `databases: ${report.databases.length}`);
    const assetBytes = report.assets.reduce((n, a) => n + a.bytes, 0);
    lines.push(`assets: ${report.assets.length} file(s), ${formatBytes(assetBytes)}`);
    await writeAll(io.stdout, `${lines.join('\n')}\n`);
  }
  if (!report.ok) throw new ArchiveError(report.problems);
  return 0;
}
