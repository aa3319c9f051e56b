import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../options.js';
import type { DownloadProgress } from './download-progress.js';
import type { BackupSlots } from './limits.js';
import type { ResolvedAppOptions } from './options.js';
import type { Sessions } from './session.js';
import type { StoredBackups } from './stored-backups.js';

/** How a request ended, for the request log line. */
export type Outcome = 'ok' | 'rejected' | 'error' | 'aborted' | 'stalled' | 'failed';

/** What the backup route reports once the last byte left, or the transfer broke off. */
export interface DownloadResult {
  outcome: Extract<Outcome, 'ok' | 'aborted' | 'stalled' | 'failed'>;
  bytes: number;
  databases: number;
}

/** Values the middlewares share per request. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** The client's address (X-Forwarded-For only with trustProxy). */
    client: string | undefined;
    /** Set by the backup route: settles when the streamed body ends; the request line waits for it. */
    download: Promise<DownloadResult> | undefined;
  };
}

/** The Node.js request and response when running on @hono/node-server (also when a host app mounts us there). */
interface NodeBindings {
  incoming?: { socket?: { remoteAddress?: string } };
  outgoing?: { destroy(error?: Error): unknown; destroyed?: boolean; writableFinished?: boolean; once(event: 'close', listener: () => void): unknown };
}

export const nodeBindings = (c: Context): NodeBindings => (c.env ?? {}) as NodeBindings;

/** What every route group is registered with. */
export interface RouteDeps {
  options: ResolvedAppOptions;
  logger: Logger;
  slots: BackupSlots;
  /** Restores (dry runs included) running in this app: one at a time. */
  restoreSlots: BackupSlots;
  /** Rate limit, then the API key (or browser session) check: run before a protected route validates anything. */
  protect: MiddlewareHandler<AppEnv>[];
  /** The rate limit alone (empty without one): for the page and sign-in, which need no key. */
  limit: MiddlewareHandler<AppEnv>[];
  /** Browser sessions; undefined unless an API key is configured. */
  sessions: Sessions | undefined;
  /** The page's downloads by token (GET /api/backup?dl=), for GET /api/backup/progress. */
  downloads: DownloadProgress;
  /** Backups into the configured store (schedule, runs, status); undefined without a store. */
  storedBackups: StoredBackups | undefined;
}
