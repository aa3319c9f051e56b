/** dbzip's public API: named re-exports only. */
export { createBackup } from './backup.js';
export type { Backup, BackupPlan } from './backup.js';
export { inspect } from './inspect.js';
export type { Inspection, InspectedDatabase } from './inspect.js';
export { verifyArchive, assertArchiveValid } from './verify/index.js';
export type { VerifyReport, VerifyOptions } from './verify/index.js';
export { restore, createSpool, RESTORE_DEFAULTS, compareVersions, decideVersion, parseVersion } from './restore/index.js';
export type { RestoreOptions, RestoreReport, RestoreMode, RestorePlan, PlanItem, PlanAction, PlanKind, VersionDecision, VersionComparison } from './restore/index.js';
export { DEFAULTS } from './options.js';
export type { BackupOptions, ScanOptions, PinMode, Logger } from './options.js';
export type { Manifest, DatabaseEntry, AssetEntry, SkippedEntry, SkipCode, PinInfo, JournalMode } from './archive/manifest.js';
export { backupFileName } from './archive/file-name.js';
export { createApp, startServer, HTTP_DEFAULTS, ERROR_STATUS } from './http/index.js';
export type { DbzipApp, RunningServer, AppOptions, ServerOptions, AuthOption, RateLimitOption, ErrorBody, HttpErrorCode } from './http/index.js';
export { runCli } from './cli/run-cli.js';
export type { CliIo } from './cli/io.js';
export * from './errors.js';
export { DBZIP_VERSION } from './version.js';
