import type { FC } from 'hono/jsx';

/**
 * The "Stored backups" card. With a store, the page's script (browser/stored.ts) fills it from
 * `api/backups`: the schedule and next run, the last run's outcome, the backups newest first with
 * Download, Verify, Restore (dry run first) and Delete (after a confirmation), and "Back up now".
 * Without a store it says how to configure one.
 */
export const StoredBackupsSection: FC<{ base: string; configured: boolean }> = ({ base, configured }) => (
  <section class="card" id="stored" aria-labelledby="stored-title">
    <div class="card-head">
      <h2 id="stored-title">Stored backups</h2>
    </div>
    {configured ? (
      <>
        <p id="stored-where" class="muted" data-url={`${base}api/backups`}>
          Loading…
        </p>
        <p id="stored-last" class="muted"></p>
        <noscript>
          <p class="hint">
            This list needs JavaScript. Without it: <code>curl -fsS -H "X-API-Key: $KEY" "&lt;this address&gt;/api/backups"</code>
          </p>
        </noscript>
        <div class="actions">
          <button id="stored-run" class="button" type="button" hidden>
            Back up now
          </button>
        </div>
        <table id="stored-table" hidden aria-labelledby="stored-title">
          <thead>
            <tr>
              <th scope="col">Backup</th>
              <th scope="col" class="num">
                Size
              </th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody id="stored-list"></tbody>
        </table>
        <p id="stored-empty" class="empty" hidden>
          No stored backups yet.
        </p>
        <p id="stored-status" class="status" role="status" aria-live="polite"></p>
        <div id="stored-error" class="alert" role="alert" hidden></div>
        <div id="stored-result" class="result" hidden></div>
      </>
    ) : (
      <p class="muted" id="stored-unconfigured">
        No backup store is configured, so backups are only made when you download one. To back up every night into a folder or an
        S3-compatible bucket, start the server with, for example, <code>--schedule "0 3 * * *" --keep 7</code> (into{' '}
        <code>&lt;data-dir&gt;/.dbzip/backups/</code>) or add <code>--store s3://bucket/prefix</code>; see docs/stores.md.
      </p>
    )}
  </section>
);
