import type { FC } from 'hono/jsx';

/**
 * "Undo a restore": the pre-restore backups in `<data-dir>/.dbzip/`, newest first, each with Download
 * and Restore (a dry run first, then Restore now, as in the restore card). The list is loaded by the
 * page's script from `api/pre-restore` (browser/undo.ts), so it is current after a restore on this page.
 * It sits beside the restore card; stored backups (another card) are a separate list.
 */
export const UndoSection: FC<{ base: string }> = ({ base }) => (
  <section class="card" id="undo" aria-labelledby="undo-title">
    <h2 id="undo-title">Undo a restore</h2>
    <p class="muted">
      Before each restore the data is saved as a pre-restore backup in <code>.dbzip/</code>. Restoring one puts the data back as it was
      before that restore (the current data is saved first, so this can be undone too).
    </p>
    <noscript>
      <p class="hint">
        This list needs JavaScript. Without it: <code>curl -fsS -H "X-API-Key: $KEY" "&lt;this address&gt;/api/pre-restore"</code>, then{' '}
        <code>curl -fsS -X POST -H "X-API-Key: $KEY" "&lt;this address&gt;/api/pre-restore/&lt;name&gt;/restore?dryRun=1"</code>.
      </p>
    </noscript>
    <div id="undo-list" data-url={`${base}api/pre-restore`} hidden></div>
    <div class="check" id="undo-force-row" hidden>
      <input id="undo-force" type="checkbox" aria-describedby="undo-force-hint" />
      <div>
        <label for="undo-force">Allow a newer version</label>
        <p id="undo-force-hint" class="hint">
          Restoring an older backup wrote its older <code>VERSION</code>, so undoing it restores a newer one: the version check refuses that
          unless this is on.
        </p>
      </div>
    </div>
    <p id="undo-status" class="status" role="status" aria-live="polite"></p>
    <div id="undo-error" class="alert" role="alert" hidden></div>
    <div id="undo-result" class="result" hidden></div>
  </section>
);
