// npm runs `prepare` after `npm install`/`npm ci` in a clone and when it installs dbzip from git
// (then with the dev dependencies), so both get a built dist/. A production install of a clone
// (`npm ci --omit=dev`) has no TypeScript: say how to build instead of failing the install.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.warn('dbzip: TypeScript is not installed (--omit=dev?), so dist/ was not built; run `npm install` and `npm run build`.');
  process.exit(0);
}
// The same two steps as `npm run build`: the Node code, then the admin page's browser script.
for (const project of ['tsconfig.json', 'tsconfig.browser.json']) {
  const result = spawnSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
