/**
 * Preloaded into the CLI process (`node --import <probe.js> dist/cli/bin.js backup …`) so the CLI
 * runs unchanged, as users run it, while the same measures as a bench child are taken in it.
 * Writes them, synchronously on exit, to the file named by BENCH_PROBE_OUT.
 */
import fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { startMeasuring } from './measure.js';

// --import also runs in worker threads, which inherit execArgv: measure the main thread only.
const out = process.env.BENCH_PROBE_OUT;
if (isMainThread && out !== undefined) {
  const measuring = startMeasuring();
  process.on('exit', (code) => {
    fs.writeFileSync(out, JSON.stringify({ code, measures: measuring.stop() }));
  });
}
