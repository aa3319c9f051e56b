#!/usr/bin/env node
/** The only place that reads process.argv/env, handles signals and calls process.exit. */
import { runCli } from './run-cli.js';

// The AWS SDK warns on every run that its releases after January 2027 need Node 22; the pinned
// version works on Node 20 (docs/stores.md says so), so the warning would only be noise on stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const controller = new AbortController();
let signals = 0;
const onSignal = (name: NodeJS.Signals) => {
  signals += 1;
  if (signals > 1) process.exit(130); // second Ctrl-C: stop now
  controller.abort(new Error(`received ${name}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
});
process.exitCode = code;
// Let stdout drain, then exit even if a server or handle would keep the loop alive.
process.stdout.write('', () => process.exit(code));
