import { createRequire } from 'node:module';

/** dbzip's own version, read from package.json (one level above both src/ and dist/). */
export const DBZIP_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
