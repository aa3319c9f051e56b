import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { OptionsError } from '../errors.js';
import { CHECK_MODES, DEFAULTS, type BackupOptions, type CheckMode, type PinMode } from '../options.js';

/** Flags shared by `backup`, `list` and `serve`; their values map 1:1 onto BackupOptions. */
export interface BackupFlags {
  ext?: string[];
  recursive?: boolean;
  assets?: string[];
  appVersion?: string;
  db?: string[];
  strict?: boolean;
  level?: string;
  maxDbBytes?: string;
  busyTimeout?: string;
  pin?: PinMode;
  pinOrder?: string[];
  check?: CheckMode;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function addBackupFlags(command: Command, { forBackup }: { forBackup: boolean }): Command {
  command
    .option('--ext <ending>', 'also treat files with this ending as databases (repeatable), e.g. --ext .sqlite', collect)
    .option('-r, --recursive', 'look in subfolders too, keeping relative paths')
    .option('--assets <folder>', `asset folder inside the data dir (repeatable; default "${DEFAULTS.assetFolder}" when present)`, collect)
    .option('--app-version <version>', 'text for the VERSION entry (default: <data-dir>/VERSION, else dbzip\'s version)')
    .option('--db <name>', 'only this database, by its path in the zip (repeatable)', collect)
    .option('--busy-timeout <ms>', `wait this long for a writer's lock (default ${DEFAULTS.busyTimeoutMs})`);
  if (forBackup) {
    command
      .option('--strict', 'fail instead of skipping a database that cannot be archived')
      .option('-l, --level <0-9>', `0 stores, 1-9 deflate (default ${DEFAULTS.level})`)
      .option('--max-db-bytes <bytes>', `largest database held in memory (default ${DEFAULTS.maxDatabaseBytes})`)
      .addOption(new Option('--pin <mode>', `shared point in time (default ${DEFAULTS.pin})`).choices(['none', 'all', 'all-blocking']))
      .addOption(new Option('--check <mode>', `quick_check every snapshot, or none: ship unchecked, marked "skipped" in the manifest (default ${DEFAULTS.check})`).choices(CHECK_MODES))
      .option('--pin-order <name>', 'pin this database before the others (repeatable; pin the one your app writes LAST first)', collect);
  }
  return command;
}

/** A flag that must be a whole number (commander hands over the raw text). */
export function wholeNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new OptionsError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

/** SOURCE_DATE_EPOCH (seconds since 1970, the reproducible-builds convention) fixes every entry time. */
export function sourceDateEpoch(env: Readonly<Record<string, string | undefined>>): Date | undefined {
  const value = env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new OptionsError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got "${value}"`);
  return new Date(Number(value) * 1000);
}

/**
 * `dbzip backup` and `dbzip list` read a data dir whose databases' files total at most this on the main
 * thread, with no worker: a worker's start-up (about 100 ms on two cores) would be most of their time,
 * and a CLI's event loop has nothing else to serve. 8 MiB takes ~30 ms to serialize and check, and stays
 * below the size from which a database is checked by a second worker (16 MiB).
 */
export const IN_PROCESS_UP_TO_BYTES = 8 * 1024 * 1024;

/**
 * A guess, before the backup command's modules load, of whether it will need a snapshot worker (so it
 * can start while they load): the data dir's top-level database files total more than
 * IN_PROCESS_UP_TO_BYTES. The backup itself decides from its own scan.
 */
export function likelyNeedsWorker(dataDir: string, flags: BackupFlags): boolean {
  const extensions = flags.ext ?? DEFAULTS.extensions;
  let total = 0;
  try {
    for (const entry of fs.readdirSync(dataDir, { withFileTypes: true })) {
      if (entry.isFile() && extensions.some((ext) => entry.name.endsWith(ext))) total += fs.statSync(path.join(dataDir, entry.name)).size;
      if (total > IN_PROCESS_UP_TO_BYTES) return true;
    }
  } catch {
    // The backup reports an unreadable data dir itself.
  }
  return false;
}

export function toBackupOptions(dataDir: string, flags: BackupFlags, env: Readonly<Record<string, string | undefined>>): BackupOptions {
  const options: BackupOptions = { dataDir };
  if (flags.ext !== undefined) options.extensions = [...DEFAULTS.extensions, ...flags.ext];
  if (flags.recursive !== undefined) options.recursive = flags.recursive;
  if (flags.assets !== undefined) options.assets = flags.assets;
  if (flags.appVersion !== undefined) options.version = flags.appVersion;
  if (flags.db !== undefined) options.databases = flags.db;
  if (flags.strict !== undefined) options.strict = flags.strict;
  if (flags.pin !== undefined) options.pin = flags.pin;
  if (flags.pinOrder !== undefined) options.pinOrder = flags.pinOrder;
  if (flags.check !== undefined) options.check = flags.check;
  const level = wholeNumber('--level', flags.level);
  if (level !== undefined) options.level = level;
  const maxBytes = wholeNumber('--max-db-bytes', flags.maxDbBytes);
  if (maxBytes !== undefined) options.maxDatabaseBytes = maxBytes;
  const busy = wholeNumber('--busy-timeout', flags.busyTimeout);
  if (busy !== undefined) options.busyTimeoutMs = busy;
  const date = sourceDateEpoch(env);
  if (date !== undefined) options.date = date;
  return options;
}
