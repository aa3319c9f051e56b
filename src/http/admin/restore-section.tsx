import type { FC } from 'hono/jsx';

/**
 * The place for restore on the signed-in page. It is rendered only when createApp registers the
 * restore route (`AdminCapabilities.restore`), so the page never offers what the server cannot do.
 * The form posts to the relative `api/restore` with the session cookie, which the same
 * cross-site checks guard as every cookie-authenticated request (see requireAuth).
 */
export const RestoreSection: FC<{ base: string }> = ({ base }) => (
  <section class="card" aria-labelledby="restore-title">
    <h2 id="restore-title">Restore</h2>
    <p class="muted">Upload a dbzip backup to restore it into the data directory.</p>
    <form class="signin" method="post" action={`${base}api/restore`} enctype="multipart/form-data">
      <label for="restore-file">Backup zip</label>
      <input id="restore-file" name="file" type="file" accept=".zip,application/zip" required />
      <button class="button quiet" type="submit">
        Restore
      </button>
    </form>
  </section>
);
