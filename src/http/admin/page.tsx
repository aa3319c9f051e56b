import type { FC } from 'hono/jsx';
import type { Inspection } from '../../inspect.js';
import { DBZIP_VERSION } from '../../version.js';
import { FORBIDDEN_MESSAGE } from '../auth.js';
import { exactBytes, formatBytes, formatTime, plural } from './format.js';
import { Document, DownloadIcon } from './layout.js';
import { RestoreSection } from './restore-section.js';
import type { SizeNote } from './size-note.js';
import { UndoSection } from './undo-section.js';
import { StoredBackupsSection } from './stored-backups-section.js';

/** What every variant of the page needs to know about where it is served. */
export interface PageContext {
  nonce: string;
  /** Prefix of every link: `./`, or `./<last segment>/` when the page's URL has no trailing slash. */
  base: string;
  /** The mount prefix as a cookie Path (`/` at the root). */
  cookiePath: string;
  sessionTtlMs: number;
  /** Render the restore section (the server has a restore route). */
  restore: boolean;
  /** A backup store is configured: the Stored backups card lists it (else it says how to configure one). */
  stored: boolean;
  /** Recipients every download is age-encrypted to (a server setting); 0 when downloads are plain zips. */
  encryptedTo: number;
}

export type PageState =
  | { kind: 'signin'; error?: string }
  | { kind: 'unconfigured' }
  | { kind: 'inventory'; canSignOut: boolean; inspection: Inspection; sizeNote?: SizeNote | undefined }
  | { kind: 'unavailable'; canSignOut: boolean; code: string; message: string };

const hours = (ms: number): string => (ms % 3_600_000 === 0 ? plural(ms / 3_600_000, 'hour') : plural(Math.round(ms / 60_000), 'minute'));

const SignOut: FC<{ base: string }> = ({ base }) => (
  <form method="post" action={`${base}signout`}>
    <button class="button quiet" type="submit">
      Sign out
    </button>
  </form>
);

const SignIn: FC<{ page: PageContext; error: string | undefined }> = ({ page, error }) => (
  <main class="narrow">
    <section class="card" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      <p class="muted">Enter this service's API key. This browser then stays signed in for {hours(page.sessionTtlMs)}, or until you sign out.</p>
      {error === undefined ? null : (
        <div class="alert" role="alert">
          <strong>Not signed in</strong>
          <span>{error}</span>
        </div>
      )}
      <form class="signin" method="post" action={`${page.base}signin`}>
        {/* Lets password managers file the key under a name; the server ignores it. */}
        <input type="text" name="username" value="dbzip" autocomplete="username" hidden readonly />
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="key"
          type="password"
          required
          autofocus
          autocomplete="current-password"
          autocapitalize="off"
          spellcheck={false}
          aria-describedby="api-key-hint"
          aria-invalid={error === undefined ? undefined : 'true'}
        />
        <p id="api-key-hint" class="hint">
          The key the server was started with. It is sent once; a signed cookie stands in for it afterwards.
        </p>
        <button class="button" type="submit">
          Sign in
        </button>
      </form>
    </section>
  </main>
);

const Unconfigured: FC = () => (
  <main class="narrow">
    <section class="card" aria-labelledby="unconfigured-title">
      <h1 id="unconfigured-title">Not configured</h1>
      <div class="alert" role="alert">
        <span>{FORBIDDEN_MESSAGE}</span>
      </div>
    </section>
  </main>
);

const journalLabel = (mode: string): string => (mode === 'wal' ? 'WAL' : 'rollback');

const list = (names: string[]): string => (names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`);

/** Says which setting or database makes the download's size unknown, and what to change. */
const SizeNoteText: FC<{ note: SizeNote }> = ({ note }) => (
  <p id="size-note" class="hint">
    Your browser will show no total for this download, so the size above is an estimate:{' '}
    {note.level !== null ? (
      <>
        the server compresses backups (level {note.level}), and a compressed size is known only at the end. Level 0 (
        <code>--level 0</code>) stores them with an exact size.
      </>
    ) : note.pinNone ? (
      <>
        pinning is off (<code>--pin none</code>), so no database's size is fixed in advance. The default, <code>--pin all</code>, fixes
        every WAL database's.
      </>
    ) : (
      <>
        {list(note.databases)} {note.databases.length === 1 ? 'uses' : 'use'} a rollback journal, so{' '}
        {note.databases.length === 1 ? 'its' : 'their'} size is known only once {note.databases.length === 1 ? 'it is' : 'they are'}{' '}
        read. For an exact size, switch {note.databases.length === 1 ? 'it' : 'them'} to WAL (<code>PRAGMA journal_mode=WAL</code>, once,
        by the application), or start dbzip with <code>--pin all-blocking</code> (their writers then wait while the backup runs).
      </>
    )}
  </p>
);

const DownloadCard: FC<{ page: PageContext; inspection: Inspection | undefined; note: SizeNote | undefined }> = ({ page, inspection, note }) => {
  const total = inspection === undefined ? 0 : [...inspection.databases, ...inspection.assets].reduce((sum, f) => sum + f.bytes, 0);
  return (
    <section class="card" aria-labelledby="download-title">
      <h2 id="download-title">Download a backup</h2>
      <p>
        One zip file with a consistent snapshot of every database, the asset folders, <code>VERSION</code> and <code>manifest.json</code>.
        Each snapshot is checked before it is sent, so a large database takes a moment before the download starts.
      </p>
      {page.encryptedTo === 0 ? null : (
        <p id="download-encrypted" class="hint">
          <strong>Encrypted:</strong> the server encrypts every download with age to {plural(page.encryptedTo, 'recipient')} it is configured with, so the file is
          a <code>.zip.age</code> that only a matching identity opens (<code>age -d -i key.txt</code>, or <code>dbzip restore --identity key.txt</code>).
        </p>
      )}
      <div class="download-row">
        <a id="download" class="button" href={`${page.base}api/backup`} data-cookie-path={page.cookiePath} data-progress={`${page.base}api/backup/progress`}>
          <DownloadIcon />
          Download backup
        </a>
        {inspection === undefined ? null : (
          <ul class="contents" aria-label="What the backup will hold">
            <li>{plural(inspection.databases.length, 'database')}</li>
            <li>{plural(inspection.assets.length, 'asset file')}</li>
            <li id="download-size" title={exactBytes(total)} data-bytes={String(total)} data-exact={note === undefined ? '1' : '0'}>
              about {formatBytes(total)}
              {note === undefined ? '' : ' (estimate)'}
            </li>
          </ul>
        )}
      </div>
      {note === undefined ? null : <SizeNoteText note={note} />}
      <p id="download-status" class="status" role="status" aria-live="polite"></p>
      <div id="download-error" class="alert" role="alert" hidden></div>
    </section>
  );
};

const Databases: FC<{ inspection: Inspection }> = ({ inspection }) => (
  <section class="card" aria-labelledby="databases-title">
    <div class="card-head">
      <h2 id="databases-title">Databases</h2>
      <span class="count">{inspection.databases.length}</span>
    </div>
    {inspection.databases.length === 0 ? (
      <p class="empty">No databases in the data directory.</p>
    ) : (
      <table class="stack" aria-labelledby="databases-title">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col" class="num">
              Size
            </th>
            <th scope="col">Journal</th>
            <th scope="col">Last modified</th>
          </tr>
        </thead>
        <tbody>
          {inspection.databases.map((db) => (
            <tr>
              <td class="name" data-label="Name">
                {db.path}
              </td>
              <td class="num" data-label="Size" title={exactBytes(db.bytes)}>
                {formatBytes(db.bytes)}
              </td>
              <td data-label="Journal">
                <span class="tag">{journalLabel(db.journalMode)}</span>
              </td>
              <td data-label="Last modified">
                <time datetime={db.mtime.toISOString()}>{formatTime(db.mtime)}</time>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </section>
);

const Assets: FC<{ inspection: Inspection }> = ({ inspection }) => (
  <section class="card" aria-labelledby="assets-title">
    <div class="card-head">
      <h2 id="assets-title">Asset folders</h2>
      <span class="count">{inspection.assetFolders.length}</span>
    </div>
    {inspection.assetFolders.length === 0 ? (
      <p class="empty">No asset folders.</p>
    ) : (
      <ul class="list">
        {inspection.assetFolders.map((folder) => {
          const files = inspection.assets.filter((a) => a.path.startsWith(`${folder}/`));
          const bytes = files.reduce((sum, f) => sum + f.bytes, 0);
          return (
            <li>
              <span class="name">{folder}/</span>
              <span class="muted" title={exactBytes(bytes)}>
                {plural(files.length, 'file')}, {formatBytes(bytes)}
              </span>
            </li>
          );
        })}
      </ul>
    )}
  </section>
);

const Skipped: FC<{ inspection: Inspection }> = ({ inspection }) => (
  <section class="card" aria-labelledby="skipped-title">
    <div class="card-head">
      <h2 id="skipped-title">Skipped files</h2>
      <span class="count">{inspection.skipped.length}</span>
    </div>
    {inspection.skipped.length === 0 ? (
      <p class="empty">Nothing is skipped.</p>
    ) : (
      <ul class="list">
        {inspection.skipped.map((s) => (
          <li class="skip">
            <span>
              <span class="name">{s.path}</span> <span class="tag">{s.code}</span>
            </span>
            <span class="why">{s.reason}</span>
          </li>
        ))}
      </ul>
    )}
  </section>
);

const Intro: FC<{ inspection: Inspection | undefined }> = ({ inspection }) => (
  <div class="intro">
    <h1>Backup</h1>
    <p class="muted">
      {inspection === undefined ? null : (
        <>
          App version <strong>{inspection.version}</strong>
          {inspection.versionSource === 'dbzip' ? ' (no VERSION file: dbzip\u2019s own)' : ''} ·{' '}
        </>
      )}
      dbzip {DBZIP_VERSION}
    </p>
  </div>
);

const Footer: FC<{ page: PageContext; canSignOut: boolean }> = ({ page, canSignOut }) => (
  <footer>
    {canSignOut ? `Signed in for up to ${hours(page.sessionTtlMs)} in this browser. ` : ''}
    Scripts and API clients send the key in the <code>X-API-Key</code> header instead; see the{' '}
    <a href={`${page.base}api/openapi.json`}>OpenAPI document</a>.
  </footer>
);

/** GET / in each of its states. */
export const AdminPage: FC<{ page: PageContext; state: PageState }> = ({ page, state }) => {
  if (state.kind === 'signin' || state.kind === 'unconfigured') {
    return (
      <Document title="Sign in · dbzip" nonce={page.nonce}>
        {state.kind === 'signin' ? <SignIn page={page} error={state.error} /> : <Unconfigured />}
      </Document>
    );
  }
  const inspection = state.kind === 'inventory' ? state.inspection : undefined;
  return (
    <Document title="Backup · dbzip" nonce={page.nonce} script actions={state.canSignOut ? <SignOut base={page.base} /> : null}>
      <main>
        <Intro inspection={inspection} />
        <DownloadCard page={page} inspection={inspection} note={state.kind === 'inventory' ? state.sizeNote : undefined} />
        {state.kind === 'unavailable' ? (
          <section class="card" aria-labelledby="unavailable-title">
            <h2 id="unavailable-title">The data directory cannot be listed</h2>
            <div class="alert" role="alert">
              <strong>{state.code}</strong>
              <span>{state.message}</span>
            </div>
          </section>
        ) : null}
        {inspection === undefined ? null : (
          <>
            <Databases inspection={inspection} />
            <div class="pair">
              <Assets inspection={inspection} />
              <Skipped inspection={inspection} />
            </div>
          </>
        )}
        {page.restore ? <RestoreSection base={page.base} /> : null}
        {page.restore ? <UndoSection base={page.base} /> : null}
        <StoredBackupsSection base={page.base} configured={page.stored} />
      </main>
      <Footer page={page} canSignOut={state.canSignOut} />
    </Document>
  );
};
