/** Backup stores (a folder, an S3-compatible bucket), names, retention, and a backup into a store. */
export type { BackupStore, StoredBackup, PutOptions } from './store.js';
export { openStore, resolveStoreOptions, storedArchive, defaultStoreFolder, STORE_DEFAULTS } from './open.js';
export type { StoreOptions, StoreOption, ResolvedStoreOptions } from './open.js';
export type { S3Credentials } from './credentials.js';
export { parseStoreUrl, displayLocation } from './url.js';
export type { StoreLocation } from './url.js';
export { parseBackupName, checkBackupName } from './names.js';
export type { BackupName } from './names.js';
export { planRetention, applyRetention, checkRetention } from './retention.js';
export type { RetentionOptions, RetentionPlan, RetentionResult } from './retention.js';
export { backupToStore } from './backup-to-store.js';
export type { StoreRunOptions, StoreRunResult } from './backup-to-store.js';
export { writeFileAtomically } from './atomic-file.js';
