export { restore } from './restore.js';
export type { RestoreReport } from './restore.js';
export { RESTORE_DEFAULTS } from './options.js';
export type { RestoreMode, RestoreOptions } from './options.js';
export type { PlanAction, PlanItem, PlanKind, RestorePlan } from './plan.js';
export { compareVersions, decideVersion, parseVersion } from './version-policy.js';
export type { VersionComparison, VersionDecision } from './version-policy.js';
export { createSpool, PRIVATE_FOLDER } from './spool.js';
