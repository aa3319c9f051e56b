import { ArchiveError } from '../../errors.js';
import type { DecryptOptions } from '../../options.js';
import { formatBytes } from '../../format.js';
import { openStore, storedArchive } from '../../store/open.js';
import { verifyArchive, type VerifyReport } from '../../verify/index.js';
import { toDecryptOptions, type DecryptFlags } from '../encryption-flags.js';
import { writeAll, type CliIo } from '../io.js';
import { noBackups, verifyTarget } from '../store-argument.js';

async function verifyStored(url: string, name: string | undefined, decrypt: DecryptOptions | undefined, io: CliIo): Promise<{ label: string; report: VerifyReport }> {
  const store = await openStore({ url, env: io.env }, io.cwd);
  try {
    const chosen = name ?? (await store.list())[0]?.name;
    if (chosen === undefined) throw noBackups(store.display);
    // Ranged reads: the central directory, then each entry; the zip is never downloaded to disk. A
    // .zip.age is first authenticated in one sequential read, then decrypted range by range.
    const source = await storedArchive(store, chosen);
    return { label: source.label, report: await verifyArchive(source, decrypt === undefined ? {} : { decrypt }) };
  } finally {
    store.close();
  }
}

/** Checks CRCs, manifest hashes and every database's integrity; any problem fails with exit code 6. */
export async function runVerify(arg: string, flags: { json?: boolean } & DecryptFlags, io: CliIo): Promise<number> {
  const target = await verifyTarget(arg, io.cwd);
  const decrypt = await toDecryptOptions(flags, io);
  const { label, report } = target.kind === 'file' ? { label: arg, report: await verifyArchive(target.file, decrypt === undefined ? {} : { decrypt }) } : await verifyStored(target.url, target.name, decrypt, io);
  if (flags.json) {
    await writeAll(io.stdout, `${JSON.stringify(target.kind === 'file' ? report : { archive: label, ...report }, null, 2)}\n`);
  } else {
    const lines = report.databases.map((db) => `  ${db.path}  ${formatBytes(db.bytes)}  integrity ${db.integrity}`);
    lines.unshift(`${label}: ${report.ok ? 'ok' : 'FAILED'}${report.encrypted ? ' (age-encrypted; every chunk authenticated)' : ''}`, `version: ${report.appVersion ?? '(missing)'}`, `databases: ${report.databases.length}`);
    const assetBytes = report.assets.reduce((n, a) => n + a.bytes, 0);
    lines.push(`assets: ${report.assets.length} file(s), ${formatBytes(assetBytes)}`);
    await writeAll(io.stdout, `${lines.join('\n')}\n`);
  }
  if (!report.ok) throw new ArchiveError(report.problems);
  return 0;
}
