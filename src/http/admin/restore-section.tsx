import type { FC } from 'hono/jsx';

/**
 * The restore card on the signed-in page. It is rendered only when createApp registers the restore
 * route (`AdminCapabilities.restore`), so the page never offers what the server cannot do.
 *
 * Two steps, both by the page's script (browser/restore.ts), which posts the chosen file itself as
 * the body of `api/restore` (streamed by the browser; no multipart form): first with `dryRun=1`,
 * showing what would change and the version comparison; then, after "Restore now", the same file
 * again for real, showing the report. The session cookie authenticates it, under the same
 * cross-site checks as every cookie-authenticated request (see requireAuth). Without JavaScript the
 * form stays hidden and a note says how to restore with curl.
 */
export const RestoreSection: FC<{ base: string }> = ({ base }) => (
  <section class="card" id="restore" aria-labelledby="restore-title">
    <h2 id="restore-title">Restore</h2>
    <p class="muted">
      Upload a dbzip backup. It is checked completely first and you see what would change; nothing changes until you confirm. Before
      restoring, the current data is saved as a pre-restore backup, so the restore can be undone.
    </p>
    <noscript>
      <p class="hint">
        Restoring from this page needs JavaScript. Without it, send the zip with curl:{' '}
        <code>curl -fsS -H "X-API-Key: $KEY" -H "Content-Type: application/zip" --data-binary @backup.zip "&lt;this address&gt;/api/restore"</code>
      </p>
    </noscript>
    <form id="restore-form" class="restore-form" data-url={`${base}api/restore`} hidden>
      <div class="field">
        <label for="restore-file">Backup zip</label>
        <input id="restore-file" name="file" type="file" accept=".zip,.age,application/zip" required aria-describedby="restore-file-hint" />
        <p id="restore-file-hint" class="hint">
          A zip made by Download backup or <code>dbzip backup</code>.
        </p>
      </div>
      <div class="options">
        <div class="field">
          <label for="restore-mode">Mode</label>
          <select id="restore-mode" name="mode" aria-describedby="restore-mode-hint">
            <option value="online" selected>
              Online: app keeps running
            </option>
            <option value="offline">Offline: app is stopped</option>
          </select>
          <p id="restore-mode-hint" class="hint">
            Online rewrites each database through SQLite; offline renames files into place and needs the application stopped.
          </p>
        </div>
        <div class="check">
          <input id="restore-exact" name="exact" type="checkbox" aria-describedby="restore-exact-hint" />
          <div>
            <label for="restore-exact">Exact</label>
            <p id="restore-exact-hint" class="hint">
              Also remove databases and assets that the backup does not hold. Off: they are kept.
            </p>
          </div>
        </div>
      </div>
      <div class="actions">
        <button id="restore-check" class="button" type="submit">
          Check backup
        </button>
      </div>
    </form>
    <p id="restore-status" class="status" role="status" aria-live="polite"></p>
    <div id="restore-error" class="alert" role="alert" hidden></div>
    <div id="restore-result" class="result" hidden></div>
  </section>
);
