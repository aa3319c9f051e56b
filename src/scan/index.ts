export { scanDataDir, byPath, PRIVATE_FOLDER } from './scan.js';
export type { AssetFile, DatabaseCandidate, ScanResult } from './scan.js';
