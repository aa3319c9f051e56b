/**
 * dbzip's library: back up, inspect, verify and restore. Named re-exports only.
 * Not exported here, on purpose: the HTTP app (`dbzip/http`) and the CLI (`dbzip/cli`). They load
 * Hono, zod, pino and commander, which a harness that only backs up should not pay for at import.
 */
export { createBackup } from './backup.js';
export type { Backup, BackupPlan, BackupProgress } from './backup.js';
export { inspect } from './inspect.js';
export type { Inspection, InspectedDatabase } from './inspect.js';
export { verifyArchive, assertArchiveValid } from './verify/index.js';
export type { VerifyReport, VerifyOptions } from './verify/index.js';
export { restore, createSpool, RESTORE_DEFAULTS, compareVersions, decideVersion, parseVersion } from './restore/index.js';
export type { RestoreOptions, RestoreReport, RestoreMode, RestorePlan, PlanItem, PlanAction, PlanKind, VersionDecision, VersionComparison } from './restore/index.js';
export { DEFAULTS } from './options.js';
export type { BackupOptions, ScanOptions, PinMode, Logger, EncryptOptions, DecryptOptions } from './options.js';
export type { Manifest, DatabaseEntry, AssetEntry, SkippedEntry, SkipCode, PinInfo, JournalMode } from './archive/manifest.js';
export { backupFileName } from './archive/file-name.js';
export * from './errors.js';
export { DBZIP_VERSION } from './version.js';
export { openStore, storedArchive, defaultStoreFolder, STORE_DEFAULTS, backupToStore, planRetention, applyRetention, parseBackupName } from './store/index.js';
export type { BackupStore, StoredBackup, PutOptions, StoreOptions, StoreOption, S3Credentials, StoreRunOptions, StoreRunResult, RetentionOptions, RetentionPlan, BackupName } from './store/index.js';
