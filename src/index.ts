/** dbzip's public API: named re-exports only. */
export { createBackup } from './backup.js';
export type { Backup, BackupPlan } from './backup.js';
export { inspect } from './inspect.js';
export type { Inspection, InspectedDatabase } from './inspect.js';
export { verifyArchive, assertArchiveValid } from './verify/index.js';
export type { VerifyReport, VerifyOptions } from './verify/index.js';
export { DEFAULTS } from './options.js';
export type { BackupOptions, ScanOptions, PinMode, Logger } from './options.js';
export type { Manifest, DatabaseEntry, AssetEntry, SkippedEntry, SkipCode, PinInfo, JournalMode } from './archive/manifest.js';
export { backupFileName } from './archive/file-name.js';
export { runCli } from './cli/run-cli.js';
export type { CliIo } from './cli/io.js';
export * from './errors.js';
export { DBZIP_VERSION } from './version.js';
