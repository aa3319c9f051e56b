import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser end-to-end tests run separately (playwright), not in the unit run.
    exclude: ['test/e2e/**', '**/node_modules/**'],
    // The CLI, server and worker tests run dist/: refuse to start on a missing or stale build.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // better-sqlite3 is a native addon: child processes, not worker threads.
    pool: 'forks',
    // The CI machine has 2 cores; tests also spawn writer processes.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
