import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { DbzipError } from '../errors.js';
import { DBZIP_VERSION } from '../version.js';
import { addBackupFlags, likelyNeedsWorker } from './backup-flags.js';
import { addDecryptFlags, addEncryptFlags } from './encryption-flags.js';
import { EXIT_CODES, EXIT_OK, EXIT_UNEXPECTED } from './exit-codes.js';
import type { CliIo } from './io.js';

const EXAMPLES = `
Examples:
  dbzip backup ./data -o backup.zip      snapshot every .db in ./data into backup.zip
  dbzip backup ./data -o - > b.zip       stream the zip to stdout
  dbzip verify backup.zip                check CRCs, hashes and integrity of every database
  dbzip backup ./data --to s3://bkt/app  stream a backup into a bucket (credentials: AWS_* variables)
  dbzip prune s3://bkt/app --keep 7      delete all but the 7 newest backups there
  dbzip backup ./data --encrypt-to age1…  encrypt with age as it streams (docs/encryption.md)
  dbzip list ./data --json               what a backup would contain, as JSON
  dbzip restore b.zip --data-dir ./data  verify, back up the current state, then restore (asks first)
  dbzip serve --data-dir ./data          serve backups over HTTP (see docs/http.md)`;

const COMMANDS = ['backup', 'verify', 'prune', 'list', 'restore', 'serve'] as const;

/*
 * Only the command being run is defined, and each command's implementation is imported when it runs:
 * a backup of a small data dir is mostly start-up, and it need not load the verifier, the restorer or
 * the HTTP server. With no known command first (`dbzip --help`, a typo) every command is defined, so
 * the help lists them all and commander can suggest one.
 */
async function buildProgram(argv: readonly string[], io: CliIo, setCode: (code: number) => void): Promise<Command> {
  const program = new Command('dbzip')
    .description('Consistent zip backups of live SQLite databases')
    .version(DBZIP_VERSION, '-v, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .addHelpText('after', EXAMPLES);
  const named = COMMANDS.find((c) => c === argv[0]);
  const wanted = (command: (typeof COMMANDS)[number]) => named === undefined || named === command;

  if (wanted('backup')) {
    addBackupFlags(
      addEncryptFlags(program.command('backup'))
        .description('write a zip of every SQLite database, the asset folders, VERSION and manifest.json')
        .argument('<data-dir>', 'folder holding the databases')
        .option('-o, --output <file>', 'zip to write ("-" for stdout; default dbzip-backup-<UTC time>.zip here)')
        .option('-f, --force', 'replace an existing output file')
        .option('-q, --quiet', 'no progress bar and no warnings')
        .option('--json', 'print the manifest as JSON on stdout when done')
        .option('--to <store-url>', 'stream into a backup store instead: s3://bucket/prefix?endpoint=… or a folder (docs/stores.md)')
        .option('--prefix <prefix>', 'with --to: the name is <prefix>-backup-<UTC time>.zip, .zip.age when encrypted (default dbzip)')
        .addHelpText(
          'after',
          '\nExamples:\n  SOURCE_DATE_EPOCH=0 dbzip backup ./data -o same-bytes-every-time.zip\n  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… dbzip backup ./data --to s3://my-bucket/app' +
            '\n  dbzip backup ./data --encrypt-to ~/.config/dbzip/recipients.txt   writes dbzip-backup-<time>.zip.age' +
            '\n  dbzip backup ./data --to s3://my-bucket/app --encrypt-to age1…       stores dbzip-backup-<time>.zip.age',
        ),
      { forBackup: true },
    ).action(async (dataDir: string, flags) => {
      // A worker's start-up (about 100 ms) then overlaps the loading of the backup command. A store
      // upload (--to) always reads in a worker.
      if (flags.to !== undefined || likelyNeedsWorker(path.resolve(io.cwd, dataDir), flags)) (await import('../snapshot/worker-pool.js')).prestartWorker();
      setCode(await (await import('./commands/backup.js')).runBackup(dataDir, flags, io));
    });
  }

  if (wanted('verify')) {
    addDecryptFlags(program.command('verify'))
      .description('check a dbzip archive: zip CRCs, manifest checksums, PRAGMA integrity_check of every database')
      .argument('<file-or-store-url>', 'the zip to check; or a stored backup (s3://bucket/prefix/<name>, read with ranged requests); or a store (its newest backup)')
      .option('--json', 'print the report as JSON')
      .addHelpText(
        'after',
        '\nExamples:\n  dbzip verify dbzip-backup-20260101-120000.zip\n  dbzip verify s3://my-bucket/app/dbzip-backup-20260101-030000.zip\n  dbzip verify s3://my-bucket/app          the newest backup there\n  dbzip verify backup.zip.age --identity key.txt\n  dbzip verify s3://my-bucket/app --identity key.txt   the newest, decrypted in place',
      )
      .action(async (file: string, flags) => setCode(await (await import('./commands/verify.js')).runVerify(file, flags, io)));
  }

  if (wanted('prune')) {
    program
      .command('prune')
      .description('delete old backups from a store: keeps the N newest (and those younger than D days), never the newest, never other files')
      .argument('<store-url>', 's3://bucket/prefix?endpoint=… or a folder')
      .option('--keep <n>', 'keep this many of the newest backups (required, at least 1)')
      .option('--keep-days <d>', 'also keep every backup younger than this many days')
      .option('--prefix <prefix>', 'only backups named <prefix>-backup-… (default dbzip)')
      .option('--dry-run', 'only say what would be deleted')
      .option('--json', 'print the result as JSON')
      .addHelpText('after', '\nExample:\n  dbzip prune s3://my-bucket/app --keep 7 --keep-days 30')
      .action(async (url: string, flags) => setCode(await (await import('./commands/prune.js')).runPrune(url, flags, io)));
  }

  if (wanted('list')) {
    addBackupFlags(
      program
        .command('list')
        .description('show what a backup would contain and what it would skip, and why')
        .argument('<data-dir>', 'folder holding the databases')
        .option('--json', 'print as JSON (every asset file)')
        .option('--files', 'list every asset file, not one line per folder')
        .addHelpText('after', '\nExamples:\n  dbzip list ./data --ext .sqlite\n  dbzip list ./data --files'),
      { forBackup: false },
    ).action(async (dataDir: string, flags) => setCode(await (await import('./commands/list.js')).runList(dataDir, flags, io)));
  }

  if (wanted('restore')) (await import('./commands/restore.js')).addRestoreCommand(program, io, setCode);

  if (wanted('serve')) {
    const { addServeFlags, runServe } = await import('./commands/serve.js');
    addBackupFlags(
      addServeFlags(
        program
          .command('serve')
          .description('serve the admin page and the backup, restore, databases, OpenAPI (key needed) and health routes over HTTP'),
      ),
      { forBackup: true },
    ).action(async (_flags: unknown, command: Command) => setCode(await runServe(command, io)));
  }

  return program;
}

/** Runs one dbzip command and returns its exit code; prints a one-line reason on failure. Never exits. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code = EXIT_OK;
  try {
    const program = await buildProgram(argv, io, (c) => {
      code = c;
    });
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_CODES.INVALID_OPTION;
    if (error instanceof DbzipError) {
      io.stderr.write(`dbzip: ${error.message}\n`);
      return EXIT_CODES[error.code];
    }
    io.stderr.write(`dbzip: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_UNEXPECTED;
  }
}
