import { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { OptionsError } from '../errors.js';
import { silentLogger } from '../options.js';
import { registerAdminRoutes, registerPageAtTrailingSlash, securityHeaders } from './admin/index.js';
import { requireAuth } from './auth.js';
import { registerBackupRoute } from './backup-route.js';
import type { AppEnv, RouteDeps } from './context.js';
import { registerDatabasesRoute } from './databases-route.js';
import { DownloadProgress, registerDownloadProgressRoute } from './download-progress.js';
import { errorHandler, notFoundHandler } from './error-status.js';
import { registerHealthRoute } from './health-route.js';
import { BackupSlots, rateLimit } from './limits.js';
import { requestLog } from './logging.js';
import { registerOpenApiRoute } from './openapi.js';
import { registerPreRestoreRoutes } from './pre-restore-route.js';
import { registerRestoreRoute } from './restore-route.js';
import { StoredBackups } from './stored-backups.js';
import { registerStoredBackupsRoutes } from './stored-backups-route.js';
import { deferredStore } from '../store/deferred.js';
import { HTTP_DEFAULTS, resolveAppOptions, type AppOptions } from './options.js';
import { Sessions } from './session.js';

export type DbzipApp = OpenAPIHono<AppEnv>;

/** Sensitive by nature (a copy of every database, or a list of them): never cached. Hono has no middleware for a default Cache-Control. */
const noStore: MiddlewareHandler = async (c, next) => {
  await next();
  if (!c.res.headers.has('Cache-Control')) c.res.headers.set('Cache-Control', 'no-store');
};

/**
 * The dbzip HTTP API as a Hono app: every route, never listening. Serve it with `startServer`, or
 * mount it in your own app: `host.route('/admin/backup', createApp({ dataDir, auth: { apiKey } }))`.
 * Paths are relative, so it works under any prefix. Options are validated now (OptionsError).
 * Logs (one line per request, audit lines) go to `options.logger` only: without one it is silent.
 */
export function createApp(options: AppOptions): DbzipApp {
  const resolved = resolveAppOptions(options);
  // Embedded in a host app, dbzip logs only through the host's logger: nothing by default.
  const logger = resolved.logger ?? silentLogger;
  const app = new OpenAPIHono<AppEnv>({
    // Query validation failures become INVALID_OPTION, answered by the one error handler.
    defaultHook: (result) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
        throw new OptionsError(`invalid ${result.target}: ${issues.join('; ')}`);
      }
    },
  });
  app.onError(errorHandler(logger));
  app.notFound(notFoundHandler);
  app.use('*', requestLog(logger, resolved.trustProxy));
  app.use('*', noStore);
  app.use('*', securityHeaders());

  // Each protected route lists these itself, so a route added later cannot miss them by its position.
  const limit: MiddlewareHandler<AppEnv>[] = resolved.rateLimit === undefined ? [] : [rateLimit(resolved.rateLimit)];
  // Browser sessions exist only with a key: their signing key is derived from it (see Sessions).
  const sessions = resolved.auth.kind === 'key' ? new Sessions(resolved.auth.digest, resolved.sessionTtlMs) : undefined;
  const protect: MiddlewareHandler<AppEnv>[] = [...limit, requireAuth(resolved.auth, sessions, resolved.trustProxy)];
  const slots = new BackupSlots(resolved.maxConcurrent, HTTP_DEFAULTS.busyRetryAfterSeconds);
  const { stored } = resolved;
  const storedBackups =
    stored === undefined
      ? undefined
      : new StoredBackups({
          store: 'location' in stored.store ? deferredStore(stored.store) : stored.store,
          backup: resolved.backupOptions,
          prefix: resolved.filePrefix,
          retention: stored.retention,
          schedule: stored.schedule,
          // Scheduled and manual runs take the same slots as downloads.
          slots,
          logger,
        });
  const deps: RouteDeps = {
    options: resolved,
    logger,
    slots,
    // Restores have their own limit: one at a time. Backups may run meanwhile (SQLite locking keeps each consistent).
    restoreSlots: new BackupSlots(HTTP_DEFAULTS.maxConcurrentRestores, HTTP_DEFAULTS.busyRetryAfterSeconds, 'restore'),
    protect,
    limit,
    sessions,
    downloads: new DownloadProgress(),
    storedBackups,
  };

  // One function per route group.
  const page = registerAdminRoutes(app, deps, { restore: true });
  registerHealthRoute(app, protect, storedBackups);
  registerDatabasesRoute(app, deps);
  registerBackupRoute(app, deps);
  registerDownloadProgressRoute(app, deps);
  registerRestoreRoute(app, deps);
  registerPreRestoreRoutes(app, deps);
  registerStoredBackupsRoutes(app, deps);
  registerOpenApiRoute(app, protect);
  // Keep last: it only answers what no route above did.
  registerPageAtTrailingSlash(app, deps, page);
  if (storedBackups !== undefined) {
    RESOURCES.set(app, storedBackups);
    // The schedule starts with the app; its timer never keeps the process alive. closeApp() stops it.
    storedBackups.start();
  }
  return app;
}

const RESOURCES = new WeakMap<DbzipApp, StoredBackups>();

/**
 * Stops what `createApp` started: the backup schedule, and a stored backup that is running (its
 * upload is aborted, so nothing half-written is left in the store). `startServer`'s close() calls it.
 */
export async function closeApp(app: DbzipApp): Promise<void> {
  await RESOURCES.get(app)?.stop();
}
