// A module-resolution hook (node --import) that appends every resolved URL to $DBZIP_IMPORT_LOG,
// so a test can tell which packages an entry point really loads.
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.DBZIP_IMPORT_LOG, `${result.url}\n`);
  return result;
}
