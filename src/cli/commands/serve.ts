import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { OptionsError } from '../../errors.js';
import { apiKeyWeakness } from '../../http/auth.js';
import { HTTP_DEFAULTS, isLoopbackHost, type AuthOption, type ServerOptions } from '../../http/options.js';
import { toBackupOptions, type BackupFlags } from '../backup-flags.js';
import { readIdentities, readRecipients } from '../encryption-flags.js';
import { writeAll, type CliIo } from '../io.js';

/**
 * One row per setting of `dbzip serve`: its flag (null: environment only, as for the key itself)
 * and its environment variable. A flag wins over its variable. `shared` rows are flags that
 * addBackupFlags defines for backup/list too; the others are defined here from this table.
 */
interface Setting {
  attr: string;
  flag: string | null;
  env: string;
  help: string;
  /** string: as given; list: comma-separated in the variable, repeatable flag; switch: 1/true/yes/on or 0/false/no/off. */
  kind: 'string' | 'number' | 'list' | 'switch';
  shared?: true;
  /** The attribute's value when a switch is on (`--no-auth` sets auth=false). */
  on?: unknown;
}

export const SERVE_SETTINGS: readonly Setting[] = [
  { attr: 'dataDir', flag: '--data-dir <dir>', env: 'DBZIP_DATA_DIR', kind: 'string', help: 'folder holding the databases (required)' },
  { attr: 'host', flag: '--host <host>', env: 'DBZIP_HOST', kind: 'string', help: `address to listen on (default ${HTTP_DEFAULTS.host})` },
  { attr: 'port', flag: '--port <port>', env: 'DBZIP_PORT', kind: 'number', help: `port; 0 picks a free one (default ${HTTP_DEFAULTS.port})` },
  { attr: 'apiKey', flag: null, env: 'DBZIP_API_KEY', kind: 'string', help: 'the API key itself (16+ characters); no flag, so it never shows in ps' },
  { attr: 'apiKeyFile', flag: '--api-key-file <file>', env: 'DBZIP_API_KEY_FILE', kind: 'string', help: 'file holding the API key (surrounding whitespace ignored)' },
  { attr: 'auth', flag: '--no-auth', env: 'DBZIP_NO_AUTH', kind: 'switch', on: false, help: 'serve without a key; refused unless --host is loopback' },
  { attr: 'demo', flag: '--demo', env: 'DBZIP_DEMO', kind: 'switch', on: true, help: 'generate a random key, print it once with ready-to-paste curl lines' },
  { attr: 'maxConcurrent', flag: '--max-concurrent <n>', env: 'DBZIP_MAX_CONCURRENT', kind: 'number', help: `backups at once; more get 429 (default ${HTTP_DEFAULTS.maxConcurrent})` },
  { attr: 'trustProxy', flag: '--trust-proxy [hops]', env: 'DBZIP_TRUST_PROXY', kind: 'string', help: 'believe X-Forwarded-For from this many proxies (flag alone or true: 1)' },
  { attr: 'filePrefix', flag: '--file-prefix <prefix>', env: 'DBZIP_FILE_PREFIX', kind: 'string', help: `download name <prefix>-backup-<UTC time>.zip (default ${HTTP_DEFAULTS.filePrefix})` },
  { attr: 'rateLimit', flag: '--rate-limit <max/seconds>', env: 'DBZIP_RATE_LIMIT', kind: 'string', help: 'per-client request limit, e.g. 30/60 (default: none)' },
  { attr: 'shutdownTimeout', flag: '--shutdown-timeout <ms>', env: 'DBZIP_SHUTDOWN_TIMEOUT', kind: 'number', help: `on SIGTERM/SIGINT, let downloads finish this long (default ${HTTP_DEFAULTS.shutdownTimeoutMs})` },
  { attr: 'stallTimeout', flag: '--stall-timeout <ms>', env: 'DBZIP_STALL_TIMEOUT', kind: 'number', help: `cut off a download the client stopped reading; 0 never (default ${HTTP_DEFAULTS.stallTimeoutMs})` },
  { attr: 'maxUploadBytes', flag: '--max-upload-bytes <n>', env: 'DBZIP_MAX_UPLOAD_BYTES', kind: 'number', help: `largest archive POST /api/restore accepts (default ${HTTP_DEFAULTS.maxUploadBytes})` },
  { attr: 'sessionTtl', flag: '--session-ttl <ms>', env: 'DBZIP_SESSION_TTL', kind: 'number', help: `browser sign-in lifetime (default ${HTTP_DEFAULTS.sessionTtlMs})` },
  { attr: 'store', flag: '--store <url>', env: 'DBZIP_STORE', kind: 'string', help: 'keep backups here: a folder or s3://bucket/prefix?endpoint=… (docs/stores.md)' },
  { attr: 'schedule', flag: '--schedule <cron>', env: 'DBZIP_SCHEDULE', kind: 'string', help: 'back up into the store on this cron schedule, e.g. "0 3 * * *" (store default <data-dir>/.dbzip/backups)' },
  { attr: 'scheduleTimezone', flag: '--schedule-timezone <zone>', env: 'DBZIP_SCHEDULE_TIMEZONE', kind: 'string', help: 'time zone of --schedule, e.g. Europe/Berlin (default UTC)' },
  { attr: 'keep', flag: '--keep <n>', env: 'DBZIP_KEEP', kind: 'number', help: 'after each stored backup, keep the n newest and delete older ones' },
  { attr: 'keepDays', flag: '--keep-days <d>', env: 'DBZIP_KEEP_DAYS', kind: 'number', help: 'with --keep: also keep every backup younger than d days' },
  { attr: 'encryptTo', flag: '--encrypt-to <recipient|file>', env: 'DBZIP_ENCRYPT_TO', kind: 'list', help: 'encrypt every download and stored backup with age to this public key (age1…) or every key in this file (repeatable)' },
  { attr: 'identity', flag: '--identity <file>', env: 'DBZIP_IDENTITY_FILE', kind: 'list', help: 'age identity file that restores and stored-backup verifies decrypt .zip.age backups with (repeatable)' },
  { attr: 'log', flag: '--log <stream>', env: 'DBZIP_LOG', kind: 'string', help: 'JSON log lines to stderr (default) or stdout; --demo logs only errors unless this is given' },
  { attr: 'ext', flag: '--ext <ending>', env: 'DBZIP_EXT', kind: 'list', shared: true, help: 'extra database endings, e.g. .sqlite' },
  { attr: 'recursive', flag: '-r, --recursive', env: 'DBZIP_RECURSIVE', kind: 'switch', on: true, shared: true, help: 'look in subfolders too' },
  { attr: 'assets', flag: '--assets <folder>', env: 'DBZIP_ASSETS', kind: 'list', shared: true, help: 'asset folders inside the data dir' },
  { attr: 'appVersion', flag: '--app-version <version>', env: 'DBZIP_APP_VERSION', kind: 'string', shared: true, help: 'text of the VERSION entry' },
  { attr: 'db', flag: '--db <name>', env: 'DBZIP_DB', kind: 'list', shared: true, help: 'only these databases unless a request names its own (?db=)' },
  { attr: 'busyTimeout', flag: '--busy-timeout <ms>', env: 'DBZIP_BUSY_TIMEOUT', kind: 'number', shared: true, help: 'wait this long for a writer\'s lock' },
  { attr: 'strict', flag: '--strict', env: 'DBZIP_STRICT', kind: 'switch', on: true, shared: true, help: 'fail instead of skipping a database' },
  { attr: 'level', flag: '-l, --level <0-9>', env: 'DBZIP_LEVEL', kind: 'number', shared: true, help: 'default compression; a request may pass ?level=' },
  { attr: 'maxDbBytes', flag: '--max-db-bytes <bytes>', env: 'DBZIP_MAX_DB_BYTES', kind: 'number', shared: true, help: 'largest database held in memory' },
  { attr: 'pin', flag: '--pin <mode>', env: 'DBZIP_PIN', kind: 'string', shared: true, help: 'none, all or all-blocking' },
  { attr: 'pinOrder', flag: '--pin-order <name>', env: 'DBZIP_PIN_ORDER', kind: 'list', shared: true, help: 'pin these databases first' },
  { attr: 'check', flag: '--check <mode>', env: 'DBZIP_CHECK', kind: 'string', shared: true, help: 'quick (default) or none: ship snapshots unchecked' },
];

/** The flag's long name for messages: "--port". */
const flagName = (s: Setting): string => (s.flag ?? s.env).replace(/^-\w, /, '').split(' ')[0] ?? s.env;

/**
 * Every route of the server, as `--help` lists it (a test compares this with the OpenAPI document).
 * `key`: the API key in X-API-Key or Authorization: Bearer, or the page's session cookie.
 */
export const SERVE_ROUTES: readonly { method: string; path: string; key: boolean; what: string }[] = [
  { method: 'GET', path: '/', key: false, what: 'the admin page: sign in with the key, download, restore' },
  { method: 'GET', path: '/api/backup', key: true, what: 'download a backup zip (?level=0-9, ?db=name)' },
  { method: 'POST', path: '/api/restore', key: true, what: 'restore from a zip sent as the body (?dryRun=1, ?mode=, ?exact=1, ?force=1)' },
  { method: 'GET', path: '/api/backup/progress', key: true, what: 'how far the page\'s download (?dl=token) has got' },
  { method: 'GET', path: '/api/pre-restore', key: true, what: 'the pre-restore backups (the state before each restore), newest first' },
  { method: 'GET', path: '/api/pre-restore/:name', key: true, what: 'download one' },
  { method: 'POST', path: '/api/pre-restore/:name/restore', key: true, what: 'restore one: undo that restore (same query as /api/restore)' },
  { method: 'GET', path: '/api/backups', key: true, what: 'the stored backups (--store), newest first' },
  { method: 'POST', path: '/api/backups', key: true, what: 'back up into the store now (202; 429 when busy)' },
  { method: 'GET', path: '/api/backups/:name', key: true, what: 'download a stored backup' },
  { method: 'DELETE', path: '/api/backups/:name', key: true, what: 'delete a stored backup' },
  { method: 'POST', path: '/api/backups/:name/verify', key: true, what: 'verify a stored backup in place (ranged reads)' },
  { method: 'POST', path: '/api/backups/:name/restore', key: true, what: 'restore from a stored backup (same query as /api/restore)' },
  { method: 'GET', path: '/api/databases', key: true, what: 'what a backup would contain now' },
  { method: 'GET', path: '/api/openapi.json', key: true, what: 'the OpenAPI document of these routes' },
  { method: 'GET', path: '/api/health', key: false, what: 'liveness; never touches the databases' },
];

const routeTable = (): string =>
  SERVE_ROUTES.map((r) => `  ${r.method.padEnd(6)} ${r.path.padEnd(31)} ${(r.key ? 'key' : 'no key').padEnd(7)} ${r.what}`).join('\n');

/** Registers the serve-only flags of the table (the shared ones come from addBackupFlags). */
export function addServeFlags(command: Command): Command {
  for (const s of SERVE_SETTINGS) {
    if (s.flag === null || s.shared) continue;
    const option = new Option(s.flag, `${s.help} [${s.env}]`);
    if (s.attr === 'log') option.choices(['stderr', 'stdout']);
    if (s.kind === 'list') option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    command.addOption(option);
  }
  return command.addHelpText('after', `\nRoutes ("key": X-API-Key or Authorization: Bearer, or the page's sign-in; none with --no-auth):\n${routeTable()}
\nEvery setting also comes from the environment (a flag wins):\n${SERVE_SETTINGS.map((s) => `  ${s.env.padEnd(24)} ${s.flag === null ? '(no flag)' : flagName(s)}`).join('\n')}
\nExamples:
  DBZIP_API_KEY_FILE=/run/secrets/dbzip dbzip serve --data-dir /var/lib/app --host 0.0.0.0
  dbzip serve --demo --data-dir fixtures/data
  curl -fSOJ -H "X-API-Key: $KEY" http://127.0.0.1:8080/api/backup
  curl -fsS -H "X-API-Key: $KEY" -H 'Content-Type: application/zip' --data-binary @b.zip 'http://127.0.0.1:8080/api/restore?dryRun=1'`);
}

interface Value {
  value: unknown;
  /** The flag or variable it came from, for messages. */
  from: string;
}

function fromEnv(s: Setting, raw: string): Value | undefined {
  const from = s.env;
  if (s.kind === 'list') return { value: raw.split(',').map((v) => v.trim()).filter((v) => v !== ''), from };
  if (s.kind === 'switch') {
    if (/^(1|true|yes|on)$/i.test(raw)) return { value: s.on, from };
    if (/^(0|false|no|off)$/i.test(raw)) return undefined;
    throw new OptionsError(`${from} must be true or false (1/0, yes/no, on/off), got "${raw}"`);
  }
  return { value: raw, from };
}

/** Flag, else environment variable, else nothing (the library default applies). */
function readSettings(command: Command, env: CliIo['env']): Map<string, Value> {
  const flags = command.opts();
  const values = new Map<string, Value>();
  for (const s of SERVE_SETTINGS) {
    let found: Value | undefined;
    if (s.flag !== null && command.getOptionValueSource(s.attr) === 'cli') found = { value: flags[s.attr], from: flagName(s) };
    else {
      const raw = env[s.env];
      if (raw !== undefined && raw !== '') found = fromEnv(s, raw);
    }
    if (found === undefined) continue;
    if (s.kind === 'number' && (typeof found.value !== 'string' || !/^\d+$/.test(found.value))) {
      throw new OptionsError(`${found.from} must be a whole number, got "${String(found.value)}"`);
    }
    values.set(s.attr, found);
  }
  return values;
}

const asNumber = (v: Value | undefined): number | undefined => (v === undefined ? undefined : Number(v.value));

function parseTrustProxy(v: Value | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v.value === true || /^(true|yes|on)$/i.test(String(v.value))) return 1;
  if (/^(false|no|off)$/i.test(String(v.value))) return 0;
  if (/^\d+$/.test(String(v.value))) return Number(v.value);
  throw new OptionsError(`${v.from} must be a number of proxies or true/false, got "${String(v.value)}"`);
}

function parseRateLimit(v: Value | undefined): ServerOptions['rateLimit'] {
  if (v === undefined) return undefined;
  const match = /^(\d+)\/(\d+)$/.exec(String(v.value));
  if (match === null || Number(match[1]) === 0 || Number(match[2]) === 0) {
    throw new OptionsError(`${v.from} must be <max requests>/<seconds>, e.g. 30/60, got "${String(v.value)}"`);
  }
  return { max: Number(match[1]), windowMs: Number(match[2]) * 1000 };
}

async function readKeyFile(v: Value, cwd: string): Promise<string> {
  const file = path.resolve(cwd, String(v.value));
  const text = await fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new OptionsError(`${v.from}: cannot read ${file}: ${error.code ?? error.message}`, { cause: error });
  });
  const key = text.trim();
  if (key === '') throw new OptionsError(`${v.from}: ${file} is empty`);
  return key;
}

interface AuthChoice {
  auth: AuthOption;
  /** Set in demo mode: the generated key, printed once. */
  demoKey?: string;
}

/** Exactly one source of truth for the key, or an explicit --no-auth on loopback, or --demo. */
async function chooseAuth(values: Map<string, Value>, host: string, io: CliIo): Promise<AuthChoice> {
  const keyEnv = values.get('apiKey');
  const keyFile = values.get('apiKeyFile');
  const noAuth = values.get('auth');
  const demo = values.get('demo');
  if (keyEnv !== undefined && keyFile !== undefined) throw new OptionsError(`both ${keyEnv.from} and ${keyFile.from} are set; keep one`);
  const configured = keyEnv ?? keyFile;
  if (demo !== undefined) {
    if (noAuth !== undefined) throw new OptionsError(`${demo.from} generates a key; it cannot be combined with ${noAuth.from}`);
    if (configured !== undefined) await writeAll(io.stderr, `dbzip: ${demo.from}: ignoring ${configured.from} and generating a fresh key\n`);
    // Hex: no '-' or '_', so a double-click selects all of it in a terminal.
    const demoKey = randomBytes(20).toString('hex');
    return { auth: { apiKey: demoKey }, demoKey };
  }
  if (noAuth !== undefined) {
    if (configured !== undefined) throw new OptionsError(`${noAuth.from} and ${configured.from} contradict each other; keep one`);
    if (!isLoopbackHost(host)) {
      throw new OptionsError(`${noAuth.from} is refused on host "${host}": without a key, serve on 127.0.0.1, ::1 or localhost only`);
    }
    return { auth: { none: true } };
  }
  if (configured === undefined) {
    throw new OptionsError('no API key: set DBZIP_API_KEY or DBZIP_API_KEY_FILE (--api-key-file <file>); to serve without one on a loopback host, pass --no-auth');
  }
  const key = configured === keyFile ? await readKeyFile(configured, io.cwd) : String(configured.value);
  const weakness = apiKeyWeakness(key);
  if (weakness !== undefined) throw new OptionsError(`the API key from ${configured.from} is too weak: ${weakness}`);
  return { auth: { apiKey: key } };
}

/** Printed last, after every start-up line, so the key is the last thing on the screen. */
function demoBanner(url: string, dataDir: string, key: string, logging: boolean): string {
  const auth = `-H "X-API-Key: ${key}"`;
  return `
dbzip demo: serving ${dataDir}
  on ${url}

API key (shown once, not stored anywhere): ${key}

In a browser: open ${url}/ and sign in with this key.

Download a backup (the name comes from Content-Disposition):
  curl -fSOJ ${auth} ${url}/api/backup
See what it would contain:
  curl -fsS ${auth} ${url}/api/databases
Check a backup against the data, changing nothing (drop dryRun=1 to restore it):
  curl -fsS ${auth} -H 'Content-Type: application/zip' --data-binary @backup.zip '${url}/api/restore?dryRun=1'
OpenAPI document (needs the key too):
  curl -fsS ${auth} ${url}/api/openapi.json
Health (no key): ${url}/api/health
${logging ? '' : '\nOnly errors are logged in demo mode, so this stays on screen; --log stderr logs every request.\n'}
Press Ctrl-C to stop.
`;
}

/** Serves until io.signal is aborted (SIGTERM/SIGINT), lets downloads finish, then returns 0. */
export async function runServe(command: Command, io: CliIo): Promise<number> {
  const values = readSettings(command, io.env);
  const dataDirValue = values.get('dataDir');
  if (dataDirValue === undefined) throw new OptionsError('--data-dir (or DBZIP_DATA_DIR) is required');
  const dataDir = path.resolve(io.cwd, String(dataDirValue.value));
  const host = String(values.get('host')?.value ?? HTTP_DEFAULTS.host);
  const { auth, demoKey } = await chooseAuth(values, host, io);

  // Backup flags given on the command line pass through as they are (so one added to addBackupFlags
  // works here at once); the table adds their environment variables.
  const backupFlags: Record<string, unknown> = {};
  const own = new Set(SERVE_SETTINGS.filter((s) => !s.shared).map((s) => s.attr));
  for (const [attr, value] of Object.entries(command.opts())) {
    if (!own.has(attr) && command.getOptionValueSource(attr) === 'cli') backupFlags[attr] = value;
  }
  for (const s of SERVE_SETTINGS) {
    const v = values.get(s.attr);
    if (s.shared && v !== undefined) backupFlags[s.attr] = v.value;
  }
  // A server stamps every download with its own time: SOURCE_DATE_EPOCH is for files, not for a service.
  const { date: _date, ...backupOptions } = toBackupOptions(dataDir, backupFlags as BackupFlags, {});
  const logTo = values.get('log');
  const out = logTo?.value === 'stdout' ? io.stdout : io.stderr;
  const jsonLines = (await import('../../http/logging.js')).createLogger({ write: (line: string) => void out.write(line) });
  // The demo's request lines (and the fixtures' deliberate skips, shown on the page anyway) would scroll
  // its one-time key away: only errors, unless --log asks for everything.
  const quietDemo = demoKey !== undefined && logTo === undefined;
  const options: ServerOptions = {
    ...backupOptions,
    auth,
    host,
    logger: quietDemo ? { info: () => {}, warn: () => {}, error: (o, m) => jsonLines.error(o, m) } : jsonLines,
  };
  const set = <K extends keyof ServerOptions>(key: K, value: ServerOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('port', asNumber(values.get('port')));
  set('maxConcurrent', asNumber(values.get('maxConcurrent')));
  set('trustProxy', parseTrustProxy(values.get('trustProxy')));
  set('filePrefix', values.get('filePrefix')?.value as string | undefined);
  set('rateLimit', parseRateLimit(values.get('rateLimit')));
  set('shutdownTimeoutMs', asNumber(values.get('shutdownTimeout')));
  set('stallTimeoutMs', asNumber(values.get('stallTimeout')));
  set('maxUploadBytes', asNumber(values.get('maxUploadBytes')));
  set('sessionTtlMs', asNumber(values.get('sessionTtl')));
  const encryptTo = values.get('encryptTo');
  if (encryptTo !== undefined) options.encrypt = { recipients: await readRecipients(encryptTo.value as string[], io.cwd, encryptTo.from) };
  const identity = values.get('identity');
  if (identity !== undefined) options.decrypt = { identities: await readIdentities(identity.value as string[], io.cwd, identity.from) };

  const storeUrl = values.get('store')?.value as string | undefined;
  const schedule = values.get('schedule')?.value as string | undefined;
  const timezone = values.get('scheduleTimezone')?.value as string | undefined;
  if (timezone !== undefined && schedule === undefined) throw new OptionsError('--schedule-timezone needs --schedule');
  if (storeUrl !== undefined || schedule !== undefined) {
    // Opened now, so missing credentials or a bad URL stop the server at start, not at 3 a.m.
    const { openStore, defaultStoreFolder } = await import('../../store/open.js');
    options.store = await openStore({ url: storeUrl ?? defaultStoreFolder(dataDir), env: io.env }, io.cwd);
  }
  if (schedule !== undefined) options.schedule = timezone === undefined ? schedule : { cron: schedule, timezone };
  set('keep', asNumber(values.get('keep')));
  set('keepDays', asNumber(values.get('keepDays')));

  // Loaded here, not at the top: every other command starts without hono, zod and pino (about 200 ms).
  const { startServer } = await import('../../http/server.js');
  const server = await startServer(options);
  if (demoKey !== undefined) await writeAll(io.stdout, demoBanner(server.url, dataDir, demoKey, !quietDemo));
  else await writeAll(io.stdout, `dbzip: serving ${dataDir} on ${server.url} (Ctrl-C to stop)\n`);
  if (options.encrypt !== undefined) {
    const count = 'recipients' in options.encrypt ? options.encrypt.recipients.length : 0;
    const where = options.store === undefined ? 'downloads are' : 'downloads and stored backups are';
    await writeAll(io.stdout, `dbzip: ${where} encrypted with age to ${count} recipient(s)\n`);
  }

  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await writeAll(io.stderr, 'dbzip: stopping; running downloads may finish first\n');
  await server.close();
  return 0;
}
