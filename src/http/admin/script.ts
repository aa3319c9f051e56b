import { readFileSync } from 'node:fs';
import { formatBytes } from '../../format.js';

/**
 * The page's only script, inlined with the CSP nonce. Its source is ./browser/*.ts: plain scripts
 * type-checked against the DOM and compiled into one file by tsconfig.browser.json (part of
 * `npm run build`). Each card's part does nothing on a page without that card; without JavaScript the
 * Download button is a plain link and still works.
 */
function compiledScript(): string {
  // Next to this module in dist/; from src/ (vitest, tsx) the one the build put in <root>/dist/.
  for (const candidate of ['./page-script.js', '../../../dist/http/admin/page-script.js']) {
    try {
      return readFileSync(new URL(candidate, import.meta.url), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw new Error('dist/http/admin/page-script.js is missing: run `npm run build` (it compiles src/http/admin/browser/ with tsconfig.browser.json)');
}

/** Read once, when the HTTP layer is first imported. */
const COMPILED = compiledScript();
if (/<\/script/i.test(COMPILED)) throw new Error('the page script must not contain "</script"');

/**
 * One function scope, so the cards' helpers stay off `window`; formatBytes (src/format.ts, self-contained
 * on purpose) is appended as a hoisted function declaration, so the page formats sizes as the CLI does.
 */
export const SCRIPT = `(() => {\n${COMPILED}\n${formatBytes.toString()}\n})();\n`;
