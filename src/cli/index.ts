/** dbzip's CLI as a function (`dbzip/cli`): run it with your own argv and streams; it returns the exit code. */
export { runCli } from './run-cli.js';
export type { CliIo } from './io.js';
export { EXIT_CODES } from './exit-codes.js';
