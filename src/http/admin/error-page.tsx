import type { FC } from 'hono/jsx';
import type { Context } from 'hono';
import { mountPrefix, pageHref } from '../session.js';
import { htmlResponse, pageNonce } from './html.js';
import { Document } from './layout.js';

interface ErrorPageProps {
  nonce: string;
  status: number;
  code: string;
  title: string;
  message: string;
  /** Relative link back to the page, when the request's place under the mount is known. */
  back: string | undefined;
}

/**
 * What a browser navigation gets instead of a JSON error body. The page's script reads
 * `[data-dbzip-error]`, its `h1` and `.message` from the download iframe and shows them.
 */
const ErrorPage: FC<ErrorPageProps> = ({ nonce, status, code, title, message, back }) => (
  <Document title={`${title} · dbzip`} nonce={nonce}>
    <main class="narrow" data-dbzip-error={code} data-status={String(status)}>
      <section class="card" aria-labelledby="error-title">
        <h1 id="error-title">{title}</h1>
        <div class="alert" role="alert">
          <span class="message">{message}</span>
        </div>
        <p class="hint">
          Error code {code} (HTTP {status})
        </p>
        {back === undefined ? null : (
          <p>
            <a href={back}>Back to the backup page</a>
          </p>
        )}
      </section>
    </main>
  </Document>
);

/** The routes whose place under the mount is known: `<prefix>/api/<name>`, `<prefix>/signin`, `<prefix>/signout`. */
const KNOWN_ROUTE = /(\/api\/[^/]+|\/signin|\/signout)$/;

function titleFor(status: number, isBackup: boolean): string {
  if (status === 401) return 'Sign in first';
  if (status === 403) return 'Refused';
  if (status === 429) return 'Busy: try again shortly';
  if (isBackup) return 'The backup could not be made';
  if (status === 404) return 'Not found';
  return 'The request failed';
}

/** The error as a small HTML page, with the status and headers the JSON answer would have had. */
export function htmlError(c: Context, status: number, code: string, message: string, headers: Record<string, string>): Response {
  const path = new URL(c.req.url).pathname;
  const route = KNOWN_ROUTE.exec(path)?.[1];
  const back = route === undefined ? undefined : pageHref(c, mountPrefix(c, route));
  // A browser shows this to a person: a missing session deserves directions, not the API's header advice.
  const shown = status === 401 ? 'You are not signed in, or your sign-in has expired. Sign in on the backup page, then try again.' : message;
  const page = <ErrorPage nonce={pageNonce(c)} status={status} code={code} title={titleFor(status, route === '/api/backup')} message={shown} back={back} />;
  return htmlResponse(page, status, headers);
}
