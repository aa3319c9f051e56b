export { assertArchiveValid, verifyArchive } from './verify-archive.js';
export type { VerifiedAsset, VerifiedDatabase, VerifyOptions, VerifyReport } from './verify-archive.js';
