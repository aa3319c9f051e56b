export { scanDataDir, byPath } from './scan.js';
export { PRIVATE_FOLDER } from '../options.js';
export { checkDataDir, readVersionFile } from './data-dir.js';
export type { AssetFile, DatabaseCandidate, ScanResult } from './scan.js';
