import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { backupFileName, FILE_PREFIX_PATTERN } from '../../archive/file-name.js';
import { createBackup, type Backup } from '../../backup.js';
import { takeGarbageCollector } from '../../collect-garbage.js';
import { fsyncDir, writeBackAsWritten, WRITE_BUFFER_BYTES } from '../../durable.js';
import { DbzipError, OptionsError, OutputError } from '../../errors.js';
import { AGE_SUFFIX } from '../../archive/age.js';
import { formatBytes } from '../../format.js';
import { IN_PROCESS_UP_TO_BYTES, toBackupOptions, type BackupFlags } from '../backup-flags.js';
import { toEncryptOptions, type EncryptFlags } from '../encryption-flags.js';
import { toWritable, writeAll, type CliIo } from '../io.js';
import { partialName, removeStalePartials } from '../partial-files.js';

export interface BackupCommandFlags extends BackupFlags, EncryptFlags {
  output?: string;
  force?: boolean;
  quiet?: boolean;
  json?: boolean;
  to?: string;
  prefix?: string;
}

/**
 * The progress bar on a terminal. With the size known in advance: bytes written of the exact total.
 * Without it (a rollback-journal database that is not pinned, or deflate): database and asset bytes
 * read so far of the plan's input bytes, marked as an estimate ("~"), so there is still a percentage.
 */
async function progressTap(io: CliIo, backup: Backup, quiet: boolean): Promise<{ tap: Transform; stop(): void; written(): number }> {
  const show = io.stderr.isTTY === true && !quiet;
  const exact = backup.size;
  const total = exact ?? Math.max(1, backup.plan.inputBytes);
  // Loaded only for a terminal: scripts and pipes start without it.
  const cliProgress = show ? (await import('cli-progress')).default : undefined;
  const bar = cliProgress
    ? new cliProgress.SingleBar(
        {
          stream: io.stderr as unknown as NodeJS.WritableStream,
          format:
            exact === null
              ? ' [{bar}] ~{percentage}% | {done} read of ~{whole} (estimate) | ETA ~{eta_formatted}'
              : ' [{bar}] {percentage}% | {done} of {whole} | ETA {eta_formatted}',
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let written = 0;
  const position = () => (exact === null ? Math.min(backup.progress.inputBytes, total) : written);
  bar?.start(total, 0, { done: formatBytes(0), whole: formatBytes(total) });
  const tap = new Transform({
    highWaterMark: WRITE_BUFFER_BYTES,
    transform(chunk: Buffer, _enc, callback) {
      written += chunk.length;
      const at = position();
      bar?.update(at, { done: formatBytes(at) });
      callback(null, chunk);
    },
  });
  return { tap, stop: () => bar?.stop(), written: () => written };
}

/** Writes to a partial file, fsyncs, then renames: an interrupted run never leaves a file that looks complete. */
async function writeToFile(backup: Backup, target: string, tap: Transform): Promise<void> {
  const partial = partialName(target);
  try {
    // flush: fsync before close, so the rename never publishes data still in the page cache.
    const file = createWriteStream(partial, { mode: 0o600, flush: true, highWaterMark: WRITE_BUFFER_BYTES });
    await pipeline(backup.stream, tap, writeBackAsWritten(file), file);
  } catch (error) {
    await fs.rm(partial, { force: true });
    throw error;
  }
  await fs.rename(partial, target);
  await fsyncDir(path.dirname(target));
}

/** `--to <store>`: streamed into the store under `<prefix>-backup-<UTC time>.zip` (`.zip.age` when encrypted). */
async function runBackupToStore(dataDir: string, flags: BackupCommandFlags, io: CliIo): Promise<number> {
  if (flags.output !== undefined) throw new OptionsError('--to and --output (-o) exclude each other: a backup goes to a store or to a file');
  const prefix = flags.prefix ?? 'dbzip';
  if (!FILE_PREFIX_PATTERN.test(prefix)) throw new OptionsError(`--prefix must be 1 to 64 letters, digits, ".", "_" or "-", got ${JSON.stringify(prefix)}`);
  const { date: _date, ...options } = toBackupOptions(dataDir, flags, io.env);
  // Loaded only for --to: a backup to a file starts without the stores.
  const [{ openStore }, { backupToStore }] = await Promise.all([import('../../store/open.js'), import('../../store/backup-to-store.js')]);
  const store = await openStore({ url: flags.to ?? '', env: io.env }, io.cwd);
  try {
    // Asked once the store opened (credentials found): nobody should type a passphrase twice for nothing.
    const encrypt = await toEncryptOptions(flags, io);
    const backup = encrypt === undefined ? options : { ...options, encrypt };
    const result = await backupToStore({ backup, store, prefix, signal: io.signal, logger: cliLogger(io, flags.quiet === true) });
    if (flags.json) await writeAll(io.stdout, `${JSON.stringify(result, null, 2)}\n`);
    else if (!flags.quiet) {
      const sealed = result.encrypted ? ', age-encrypted' : '';
      await writeAll(io.stderr, `stored ${result.name} in ${result.store}: ${result.bytes} bytes${sealed}, ${result.databases} database(s)\n`);
    }
    return 0;
  } finally {
    store.close();
  }
}

export async function runBackup(dataDir: string, flags: BackupCommandFlags, io: CliIo): Promise<number> {
  if (flags.to !== undefined) return runBackupToStore(path.resolve(io.cwd, dataDir), flags, io);
  const options = toBackupOptions(path.resolve(io.cwd, dataDir), flags, io.env);
  const encrypting = flags.encryptTo !== undefined || flags.passphrase === true || flags.passphraseFile !== undefined;
  const toStdout = flags.output === '-';
  if (toStdout && io.stdout.isTTY === true) throw new OutputError('refusing to write a zip to a terminal: redirect stdout (-o - > backup.zip) or pass -o <file>');
  const defaultName = backupFileName('dbzip', options.date ?? new Date()) + (encrypting ? AGE_SUFFIX : '');
  const target = toStdout ? undefined : path.resolve(io.cwd, flags.output ?? defaultName);
  if (target !== undefined && !flags.force) {
    const exists = await fs.lstat(target).then(() => true, () => false);
    if (exists) throw new OutputError(`${target} already exists; pass --force to replace it`);
  }
  // Asked only once the output is known to be writable: nobody should type a passphrase twice for nothing.
  const encrypt = await toEncryptOptions(flags, io);
  if (encrypt !== undefined) options.encrypt = encrypt;
  if (target !== undefined) {
    for (const stale of await removeStalePartials(path.dirname(target))) {
      if (!flags.quiet) await writeAll(io.stderr, `dbzip: removed ${stale.file}, left by an interrupted dbzip run (process ${stale.pid} is gone)\n`);
    }
  }
  const backup = await createBackup({ ...options, signal: io.signal, logger: cliLogger(io, flags.quiet === true) }, { inProcessUpTo: IN_PROCESS_UP_TO_BYTES, collectGarbage: takeGarbageCollector() });
  const { tap, stop, written } = await progressTap(io, backup, flags.quiet === true);
  try {
    if (target === undefined) {
      // pipeline, not pipe(): a backup that fails mid-way must fail this command, not leave it waiting.
      await pipeline(backup.stream, tap, toWritable(io.stdout));
    } else {
      await writeToFile(backup, target, tap);
    }
  } catch (error) {
    backup.abort(error);
    if (error instanceof DbzipError) throw error;
    throw new OutputError(`cannot write ${target ?? 'stdout'}: ${(error as Error).message}`, { cause: error });
  } finally {
    stop();
  }
  const manifest = await backup.manifest;
  if (flags.json && target !== undefined) await writeAll(io.stdout, `${JSON.stringify({ file: target, manifest }, null, 2)}\n`);
  else if (!flags.quiet) {
    const where = target ?? 'stdout';
    const sealed = backup.encrypted ? ', age-encrypted' : '';
    await writeAll(io.stderr, `wrote ${where} (${formatBytes(written())}${sealed}): ${manifest.databases.length} database(s), ${manifest.assets.length} asset file(s), ${manifest.skipped.length} skipped\n`);
  }
  return 0;
}

/** Skips go to stderr, one line each; the final error is printed once by runCli. */
function cliLogger(io: CliIo, quiet: boolean) {
  const warn = (obj: object, msg?: string) => {
    if (quiet) return;
    const { path: file, reason } = obj as { path?: string; reason?: string };
    io.stderr.write(`dbzip: warning: ${msg ?? ''}${file ? ` ${file}` : ''}${reason ? `: ${reason}` : ''}\n`);
  };
  return { info: () => {}, warn, error: () => {} };
}
