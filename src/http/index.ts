/** dbzip over HTTP: the app to mount, the server to start, and what they are configured with. */
export { createApp, closeApp } from './app.js';
export type { DbzipApp } from './app.js';
export { startServer } from './server.js';
export type { RunningServer } from './server.js';
export { HTTP_DEFAULTS } from './options.js';
export type { AppOptions, ServerOptions, AuthOption, RateLimitOption } from './options.js';
export type { ScheduleOption, StoredBackupsStatus, RunRecord } from './stored-backups.js';
export { ERROR_STATUS } from './error-status.js';
export type { ErrorBody, HttpErrorCode } from './error-status.js';
// Not exported: the logger factory and middlewares. Pass your own pino (or any info/warn/error) logger as `logger`.
