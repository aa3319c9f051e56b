import { Command, CommanderError } from 'commander';
import { DbzipError } from '../errors.js';
import { DBZIP_VERSION } from '../version.js';
import { addBackupFlags } from './backup-flags.js';
import { EXIT_CODES, EXIT_OK, EXIT_UNEXPECTED } from './exit-codes.js';
import type { CliIo } from './io.js';

const EXAMPLES = `
Examples:
  dbzip backup ./data -o backup.zip      snapshot every .db in ./data into backup.zip
  dbzip backup ./data -o - > b.zip       stream the zip to stdout
  dbzip verify backup.zip                check CRCs, hashes and integrity of every database
  dbzip list ./data --json               what a backup would contain, as JSON
  dbzip restore b.zip --data-dir ./data  verify, back up the current state, then restore (asks first)
  dbzip serve --data-dir ./data          serve backups over HTTP (see docs/http.md)`;

const COMMANDS = ['backup', 'verify', 'list', 'restore', 'serve'] as const;

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
      program
        .command('backup')
        .description('write a zip of every SQLite database, the asset folders, VERSION and manifest.json')
        .argument('<data-dir>', 'folder holding the databases')
        .option('-o, --output <file>', 'zip to write ("-" for stdout; default dbzip-backup-<UTC time>.zip here)')
        .option('-f, --force', 'replace an existing output file')
        .option('-q, --quiet', 'no progress bar and no warnings')
        .option('--json', 'print the manifest as JSON on stdout when done')
        .addHelpText('after', '\nExample:\n  SOURCE_DATE_EPOCH=0 dbzip backup ./data -o same-bytes-every-time.zip'),
      { forBackup: true },
    ).action(async (dataDir: string, flags) => setCode(await (await import('./commands/backup.js')).runBackup(dataDir, flags, io)));
  }

  if (wanted('verify')) {
    program
      .command('verify')
      .description('check a dbzip archive: zip CRCs, manifest checksums, PRAGMA integrity_check of every database')
      .argument('<file>', 'the zip to check')
      .option('--json', 'print the report as JSON')
      .addHelpText('after', '\nExample:\n  dbzip verify dbzip-backup-20260101-120000.zip')
      .action(async (file: string, flags) => setCode(await (await import('./commands/verify.js')).runVerify(file, flags, io)));
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
