import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { RestoreError } from '../../errors.js';
import { DEFAULTS } from '../../options.js';
import { formatBytes } from '../../format.js';
import { RESTORE_DEFAULTS, type RestoreMode, type RestoreOptions } from '../../restore/options.js';
import type { RestorePlan, RestoreReport } from '../../restore/index.js';
import { createSpool } from '../../restore/spool.js';
import { checkDataDir } from '../../scan/index.js';
import { openStore } from '../../store/open.js';
import { wholeNumber } from '../backup-flags.js';
import { addDecryptFlags, toDecryptOptions, type DecryptFlags } from '../encryption-flags.js';
import { writeAll, type CliIo } from '../io.js';
import { noBackups, verifyTarget } from '../store-argument.js';

export interface RestoreFlags extends DecryptFlags {
  dataDir: string;
  mode?: RestoreMode;
  dryRun?: boolean;
  yes?: boolean;
  exact?: boolean;
  force?: boolean;
  appVersion?: string;
  keepPreRestore?: string;
  busyTimeout?: string;
  maxDbBytes?: string;
  ext?: string[];
  recursive?: boolean;
  assets?: string[];
  json?: boolean;
}

const EXAMPLES = `
Examples:
  dbzip restore backup.zip --data-dir ./data --dry-run        verify and show what would change
  dbzip restore backup.zip --data-dir ./data                  ask, then restore while the app runs
  dbzip restore backup.zip --data-dir ./data --mode offline --yes --exact
  dbzip restore ./data/.dbzip/pre-restore-20260101-120000.zip --data-dir ./data   undo the last restore
  dbzip restore backup.zip.age --identity ~/.config/dbzip/key.txt --data-dir ./data   an encrypted backup
  dbzip restore s3://my-bucket/app --identity key.txt --data-dir ./data --dry-run      the newest stored backup`;

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Adds `dbzip restore` to the program; `setCode` receives the exit code. */
export function addRestoreCommand(program: Command, io: CliIo, setCode: (code: number) => void): void {
  addDecryptFlags(program
    .command('restore'))
    .description('verify a dbzip archive, back up the current state, then restore the archive into a data directory')
    .argument('<file-or-store-url>', 'the zip (or .zip.age) to restore; or a stored backup (s3://bucket/prefix/<name>), or a store (its newest backup)')
    .requiredOption('--data-dir <dir>', 'the data directory to restore into (must exist; may be empty)')
    .addOption(new Option('--mode <mode>', `online: write databases through SQLite while the app runs; offline: app stopped, files renamed into place (default ${RESTORE_DEFAULTS.mode})`).choices(['online', 'offline']))
    .option('--dry-run', 'verify and show the plan; change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--exact', 'also remove databases and assets the archive does not hold (never .dbzip/)')
    .option('--force', 'restore an archive from a newer application version, or replace files the pre-restore backup cannot capture')
    .option('--app-version <version>', 'the running application version for the version policy (default: <data-dir>/VERSION)')
    .option('--keep-pre-restore <n>', `pre-restore backups to keep in <data-dir>/.dbzip (default ${RESTORE_DEFAULTS.keepPreRestore})`)
    .option('--busy-timeout <ms>', `wait this long for other connections' locks (default ${DEFAULTS.busyTimeoutMs})`)
    .option('--max-db-bytes <bytes>', `largest database held in memory (default ${DEFAULTS.maxDatabaseBytes})`)
    .option('--ext <ending>', 'also treat files with this ending as databases in the data dir (repeatable)', collect)
    .option('-r, --recursive', 'look for databases in subfolders of the data dir')
    .option('--assets <folder>', 'asset folder in the data dir (repeatable; default: assets plus the archive\'s folders)', collect)
    .option('--json', 'print the report as JSON')
    .addHelpText('after', EXAMPLES)
    .action(async (file: string, flags: RestoreFlags) => setCode(await runRestore(file, flags, io)));
}

export function formatPlan(plan: RestorePlan): string {
  const lines = [
    `archive:  ${plan.archive}`,
    `data dir: ${plan.dataDir}`,
    `version:  ${plan.version.reason}`,
    `mode:     ${plan.mode}${plan.exact ? ', exact' : ''}${plan.dryRun ? ', dry run' : ''}`,
    '',
  ];
  const width = Math.max(0, ...plan.items.map((i) => i.path.length));
  for (const item of plan.items) {
    const note =
      item.action === 'kept'
        ? '  (not in the archive; --exact would remove it)'
        : item.uncaptured
          ? '  (not in the pre-restore backup: --force)'
          : '';
    lines.push(`  ${item.action.padEnd(9)}  ${item.kind.padEnd(8)}  ${item.path.padEnd(width)}  ${formatBytes(item.bytes)}${note}`);
  }
  const s = plan.summary;
  lines.push('', `${s.added} added, ${s.replaced} replaced, ${s.unchanged} unchanged, ${s.removed} removed, ${s.kept} kept`);
  if (plan.preRestore !== null) lines.push(`pre-restore backup: ${plan.preRestore}`);
  return `${lines.join('\n')}\n`;
}

/** Reads one line from stdin; Ctrl-C (the CLI's abort signal) or end of input counts as no. */
async function askYes(io: CliIo, question: string): Promise<boolean> {
  await writeAll(io.stderr, question);
  const lines = createInterface({ input: io.stdin, terminal: false, crlfDelay: Infinity });
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<boolean>((resolve) => {
      onAbort = () => resolve(false);
      io.signal.addEventListener('abort', onAbort, { once: true });
      lines.once('line', (line) => resolve(/^\s*y(es)?\s*$/i.test(line)));
      lines.once('close', () => resolve(false));
    });
  } finally {
    if (onAbort !== undefined) io.signal.removeEventListener('abort', onAbort);
    lines.close();
  }
}

function toOptions(file: string, flags: RestoreFlags, io: CliIo): RestoreOptions {
  const options: RestoreOptions = { archive: path.resolve(io.cwd, file), dataDir: path.resolve(io.cwd, flags.dataDir), signal: io.signal };
  if (flags.mode !== undefined) options.mode = flags.mode;
  if (flags.dryRun !== undefined) options.dryRun = flags.dryRun;
  if (flags.exact !== undefined) options.exact = flags.exact;
  if (flags.force !== undefined) options.force = flags.force;
  if (flags.appVersion !== undefined) options.appVersion = flags.appVersion;
  if (flags.ext !== undefined) options.extensions = [...DEFAULTS.extensions, ...flags.ext];
  if (flags.recursive !== undefined) options.recursive = flags.recursive;
  if (flags.assets !== undefined) options.assets = flags.assets;
  const keep = wholeNumber('--keep-pre-restore', flags.keepPreRestore);
  if (keep !== undefined) options.keepPreRestore = keep;
  const busy = wholeNumber('--busy-timeout', flags.busyTimeout);
  if (busy !== undefined) options.busyTimeoutMs = busy;
  const maxBytes = wholeNumber('--max-db-bytes', flags.maxDbBytes);
  if (maxBytes !== undefined) options.maxDatabaseBytes = maxBytes;
  return options;
}

function outcome(report: RestoreReport): string {
  if (report.dryRun) return 'dry run: the archive verified and nothing was changed\n';
  if (!report.applied) return 'nothing to do: the data directory already matches the archive\n';
  const lines = [`restored in ${Math.round(report.durationMs)} ms (${report.mode} mode)`];
  lines.push(...report.notes.map((n) => `note: ${n}`));
  if (report.removedLeftovers.length > 0) lines.push(`removed ${report.removedLeftovers.length} leftover file(s) of an interrupted restore`);
  if (report.preRestore !== null) lines.push(`undo with: dbzip restore ${report.preRestore} --data-dir ${report.dataDir}`);
  return `${lines.join('\n')}\n`;
}

/**
 * A stored backup is copied, as stored (a .zip.age stays encrypted), to a spool file in
 * `<dataDir>/.dbzip/` (the data's own file system, never /tmp) and restored from there, as
 * `POST /api/backups/{name}/restore` does: restore() needs random access to a whole local file.
 */
async function spoolStored(url: string, name: string | undefined, options: RestoreOptions, io: CliIo): Promise<{ label: string }> {
  await checkDataDir(options.dataDir);
  const store = await openStore({ url, env: io.env }, io.cwd);
  try {
    const chosen = name ?? (await store.list())[0]?.name;
    if (chosen === undefined) throw noBackups(store.display);
    const { stream } = await store.get(chosen, io.signal);
    const spool = await createSpool(options.dataDir);
    options.archive = spool;
    options.removeArchive = true;
    await pipeline(stream, createWriteStream(spool, { flags: 'wx', mode: 0o600 }));
    return { label: `${store.display}/${chosen}` };
  } finally {
    store.close();
  }
}

/** Verifies, shows the plan, asks (unless --yes), restores. Refusals exit with RESTORE_REFUSED. */
export async function runRestore(file: string, flags: RestoreFlags, io: CliIo): Promise<number> {
  const options = toOptions(file, flags, io);
  const decrypt = await toDecryptOptions(flags, io);
  if (decrypt !== undefined) options.decrypt = decrypt;
  const ask = options.dryRun !== true && flags.yes !== true;
  // Refuse before any work: the question could never be answered.
  if (ask && io.stdin.isTTY !== true) {
    throw new RestoreError('RESTORE_REFUSED', 'restore needs confirmation but stdin is not a terminal; pass --yes to restore without asking, or --dry-run to see the plan');
  }
  // Loaded only when restoring, so the other commands start without it (see run-cli.ts).
  const { restore } = await import('../../restore/index.js');
  const target = await verifyTarget(file, io.cwd);
  let label = options.archive;
  if (target.kind === 'stored') {
    ({ label } = await spoolStored(target.url, target.name, options, io));
    if (!flags.json) await writeAll(io.stderr, `dbzip: copied ${label} as stored into ${options.archive} (removed when the restore ends)\n`);
  }
  let shown = false;
  options.confirm = async (plan) => {
    shown = true;
    if (!flags.json) await writeAll(io.stdout, formatPlan(plan));
    return ask ? askYes(io, `\nRestore ${label} into ${plan.dataDir}? [y/N] `) : true;
  };
  let report: RestoreReport;
  try {
    report = await restore(options);
  } finally {
    // restore() removes its spool whatever the outcome; this covers a failure before it got to run.
    if (options.removeArchive === true) await fs.rm(options.archive, { force: true });
  }
  if (flags.json) {
    const { verify, ...rest } = report;
    await writeAll(io.stdout, `${JSON.stringify({ ...rest, verify: { ok: verify.ok, problems: verify.problems, databases: verify.databases } }, null, 2)}\n`);
  } else {
    if (!shown) await writeAll(io.stdout, formatPlan(report.plan));
    await writeAll(io.stdout, outcome(report));
  }
  return 0;
}
