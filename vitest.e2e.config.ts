import { defineConfig } from 'vitest/config';

/** The browser end-to-end tests (npm run test:e2e): Debian's Chromium driven by playwright-core. */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One browser and one server at a time: native addons in child processes, and the CI machine has 2 cores.
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
