import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect } from 'vitest';
import { test } from './helpers/tmp.js';

const root = path.resolve(import.meta.dirname, '..');
const hook = pathToFileURL(path.join(root, 'test/helpers/record-imports.mjs')).href;
const register = `import { register } from 'node:module'; register(${JSON.stringify(hook)});`;

/** Imports `specifier` by package name in a fresh node (from the package folder) and returns what it exported and which packages it loaded. */
function importInChild(specifier: string, logFile: string): { exports: string[]; packages: string[] } {
  const script = `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()));`;
  const out = execFileSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, DBZIP_IMPORT_LOG: logFile },
    encoding: 'utf8',
  });
  const urls = fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
  const packages = new Set(urls.flatMap((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []));
  return { exports: JSON.parse(out) as string[], packages: [...packages].sort() };
}

describe('entry points', () => {
  test('importing the library from the package root loads no HTTP or CLI package', ({ tmpDir }) => {
    const { exports, packages } = importInChild('dbzip', path.join(tmpDir, 'log'));
    expect(exports).toEqual(expect.arrayContaining(['createBackup', 'inspect', 'verifyArchive', 'restore', 'DbzipError']));
    expect(exports).not.toContain('createApp');
    expect(exports).toEqual(expect.arrayContaining(['openStore', 'backupToStore', 'storedArchive', 'planRetention']));
    // The AWS SDK is loaded only when an s3:// store is opened; croner only by a server with a schedule.
    for (const heavy of ['hono', '@hono/node-server', '@hono/zod-openapi', 'zod', 'pino', 'commander', 'cli-progress', '@aws-sdk/client-s3', 'croner']) expect(packages).not.toContain(heavy);
  });

  test('dbzip/http exports the app and the server, dbzip/cli the CLI as a function', ({ tmpDir }) => {
    expect(importInChild('dbzip/http', path.join(tmpDir, 'http')).exports).toEqual(expect.arrayContaining(['createApp', 'startServer', 'HTTP_DEFAULTS', 'ERROR_STATUS']));
    expect(importInChild('dbzip/cli', path.join(tmpDir, 'cli')).exports).toEqual(expect.arrayContaining(['runCli', 'EXIT_CODES']));
  });
});
