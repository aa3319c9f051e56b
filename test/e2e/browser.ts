/** Debian's Chromium through playwright-core, and a guard that fails a test on any console or page error. */
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** CI must run the browser tests; a developer without Chromium gets a skip with the reason. */
export const IN_CI = /^(1|true|yes)$/i.test(process.env['CI'] ?? '');
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);

/** Never downloads a browser: Debian's, headless, with a fresh temporary profile that Playwright deletes on close. */
export function launchChromium(): Promise<Browser> {
  if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); .ci/run does`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Records every console error and uncaught page error. A step that provokes an error response on
 * purpose (a wrong key, a failed backup) names the one message it expects with `expectError`; any
 * other message fails the test in `assertClean`.
 */
export class ConsoleGuard {
  readonly #messages: string[] = [];

  constructor(page: Page) {
    page.on('console', (message) => {
      if (message.type() === 'error') this.#messages.push(`console.error: ${message.text()}`);
    });
    page.on('pageerror', (error) => this.#messages.push(`page error: ${error.message}`));
  }

  /** Waits (up to 5 s: the browser reports asynchronously) for one message matching `pattern`, and accepts it. */
  async expectError(pattern: RegExp): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const i = this.#messages.findIndex((m) => pattern.test(m));
      if (i !== -1) {
        this.#messages.splice(i, 1);
        return;
      }
      if (Date.now() > deadline) throw new Error(`expected a console error matching ${pattern}; got ${JSON.stringify(this.#messages)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Every message not expected so far. */
  get unexpected(): readonly string[] {
    return [...this.#messages];
  }
}
