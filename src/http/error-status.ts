import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ArchiveError, BusyError, DbzipError, type ErrorCode } from '../errors.js';
import type { Logger } from '../options.js';
import { htmlError } from './admin/error-page.js';
import { wantsHtml } from './admin/html.js';

/**
 * The one table from error codes to HTTP statuses. Only errors raised before the first byte
 * of a response reach it; after that the connection is cut instead (see backup-route.ts).
 */
export const ERROR_STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  INVALID_OPTION: 400,
  UNKNOWN_DATABASE: 400,
  ARCHIVE_INVALID: 400,
  INVALID_STORE_URL: 400,
  INVALID_BACKUP_NAME: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  RESTORE_REFUSED: 409,
  BACKUP_NOT_FOUND: 404,
  // The routes exist but this server has nowhere to keep backups: the page says how to configure one.
  STORE_NOT_CONFIGURED: 404,
  // An encrypted upload the server's identity cannot open, or that does not authenticate: the body is
  // well-formed HTTP but unusable, and retrying the same bytes cannot succeed.
  DECRYPTION_FAILED: 422,
  // The request carried no body: this is about an upload (restore) that is too big.
  PAYLOAD_TOO_LARGE: 413,
  BUSY: 429,
  SKIPPED_IN_STRICT_MODE: 500,
  SNAPSHOT_FAILED: 500,
  SNAPSHOT_CORRUPT: 500,
  ASSET_CHANGED: 500,
  ASSET_UNREADABLE: 500,
  RESTORE_FAILED: 500,
  OUTPUT_FAILED: 500,
  // The bucket (or folder) behind us failed or refused our credentials: an upstream fault, not ours or the client's.
  STORE_DENIED: 502,
  STORE_FAILED: 502,
  // The data directory is missing or unreadable: the service cannot serve until the operator mounts or
  // fixes it. Not a bug (500) and nothing the client did (4xx); 503 tells monitors "not ready, try later".
  DATA_DIR_NOT_FOUND: 503,
  DATA_DIR_UNREADABLE: 503,
  // Cancelled (client gone, server stopping): the work was not done; retrying may succeed.
  ABORTED: 503,
  // A database is larger than the server's memory budget. 413 would blame the request's (empty) body;
  // 507 says the server cannot hold what it needs to answer, which is what happened.
  DATABASE_TOO_LARGE: 507,
};

/** Codes of errors that are not DbzipErrors. */
export type HttpErrorCode = ErrorCode | 'NOT_FOUND' | 'HTTP_ERROR' | 'INTERNAL';

export interface ErrorBody {
  /** `problems`: every problem an archive failed verification with (ARCHIVE_INVALID only). */
  error: { code: HttpErrorCode; message: string; problems?: readonly string[] };
}

export const errorBody = (code: HttpErrorCode, message: string, problems?: readonly string[]): ErrorBody => ({
  error: problems === undefined ? { code, message } : { code, message, problems },
});

/** Extra headers some statuses need: how to authenticate, when to come back. */
function errorHeaders(error: unknown, status: number): Record<string, string> {
  const headers: Record<string, string> = {};
  if (status === 401) headers['WWW-Authenticate'] = 'Bearer realm="dbzip"';
  if (error instanceof BusyError) headers['Retry-After'] = String(error.retryAfterSeconds);
  return headers;
}

/**
 * The answer itself: `{ error: { code, message } }`, or for a browser navigation (a link, a form, the
 * page's download iframe) the same status as a small HTML page, never a raw JSON page.
 */
function respond(
  c: Context,
  code: HttpErrorCode,
  message: string,
  status: ContentfulStatusCode,
  headers: Record<string, string> = {},
  problems?: readonly string[],
): Response {
  if (wantsHtml(c)) return htmlError(c, status, code, message, headers);
  return c.json(errorBody(code, message, problems), status, headers);
}

/** The one error handler: `{ error: { code, message } }` (plus `problems` for an ArchiveError) with the status from ERROR_STATUS (HTML for navigations). */
export function errorHandler(logger: Logger): ErrorHandler {
  return (error: unknown, c: Context) => {
    if (error instanceof DbzipError) {
      const status = ERROR_STATUS[error.code];
      // A cancelled request (client gone, server stopping) is in the request line; it is no server fault.
      if (status >= 500 && error.code !== 'ABORTED') logger.error({ reqId: c.get('requestId'), code: error.code, err: error.message }, 'request failed');
      const problems = error instanceof ArchiveError ? error.problems : undefined;
      return respond(c, error.code, error.message, status, errorHeaders(error, status), problems);
    }
    if (error instanceof HTTPException) {
      const status = error.status as ContentfulStatusCode;
      return respond(c, 'HTTP_ERROR', error.message || 'request failed', status, errorHeaders(error, status));
    }
    // Anything else is a bug: log it whole, tell the client nothing about internals.
    logger.error({ reqId: c.get('requestId'), err: error instanceof Error ? (error.stack ?? error.message) : String(error) }, 'unexpected error');
    return respond(c, 'INTERNAL', 'internal error', 500);
  };
}

export const notFoundHandler: NotFoundHandler = (c) => respond(c, 'NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`, 404);
