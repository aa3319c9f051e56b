/**
 * The admin page's "Stored backups" card in a real browser (npm run test:e2e): Back up now, see the
 * backup listed, download it, verify it, dry-run and then really restore from it, delete it after
 * the confirmation dialog; and on a server without a store, the card says how to configure one.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateFixtures } from '../../fixtures/generate.js';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import type { ServerOptions } from '../../src/http/options.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { makeTmpDir, withTimeout, type TmpDir } from '../helpers/tmp.js';
import { captureLogger, newKey, unzip } from '../http-helpers.js';
import { ConsoleGuard, HAVE_CHROMIUM, IN_CI, launchChromium } from './browser.js';

const skip = !HAVE_CHROMIUM && !IN_CI;
const NAME = /^dbzip-backup-\d{8}-\d{6}\.zip$/;

let tmp: TmpDir;
let browser: Browser | undefined;
const servers: RunningServer[] = [];

beforeAll(async () => {
  if (skip) return;
  tmp = makeTmpDir('e2e-stored');
  browser = await launchChromium();
});

afterAll(async () => {
  try {
    await browser?.close();
  } finally {
    for (const server of servers) await server.close(0);
    await tmp?.cleanup();
  }
});

async function serve(name: string, store: string | undefined, extra: Partial<ServerOptions> = {}): Promise<{ url: string; key: string; dataDir: string }> {
  const dataDir = path.join(tmp.dir, name);
  await generateFixtures(dataDir);
  const key = newKey();
  const server = await startServer({ dataDir, auth: { apiKey: key }, port: 0, logger: captureLogger().logger, ...(store === undefined ? {} : { store }), ...extra });
  servers.push(server);
  return { url: server.url, key, dataDir };
}

async function signedIn(url: string, key: string): Promise<{ page: Page; guard: ConsoleGuard; close(): Promise<void> }> {
  const context = await browser!.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const guard = new ConsoleGuard(page);
  await page.goto(`${url}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('load');
  return { page, guard, close: () => context.close() };
}

describe.skipIf(skip)('Stored backups card', () => {
  test('back up now, see it listed, download, verify, dry-run then restore, delete', async () => {
    const storeDir = path.join(tmp.dir, 'store');
    const { url, key } = await serve('data', storeDir);
    const { page, guard, close } = await signedIn(url, key);
    try {
      const card = page.locator('#stored');
      await expect.poll(() => card.locator('#stored-where').textContent()).toContain(`Store: ${storeDir}`);
      await expect.poll(() => card.locator('#stored-empty').isVisible()).toBe(true);

      await card.getByRole('button', { name: 'Back up now' }).click();
      const row = card.locator('#stored-list tr');
      await expect.poll(() => row.count(), { timeout: 30_000 }).toBe(1);
      const name = (await row.getAttribute('data-name')) ?? '';
      expect(name).toMatch(NAME);
      await expect.poll(() => card.locator('#stored-last').textContent(), { timeout: 10_000 }).toContain(`ok, ${name}`);

      const started = page.waitForEvent('download', { timeout: 20_000 });
      await row.getByRole('link', { name: 'Download' }).click();
      const download = await started;
      expect(download.suggestedFilename()).toBe(name);
      const saved = path.join(tmp.dir, 'downloaded.zip');
      await download.saveAs(saved);
      expect(fs.readFileSync(saved)).toEqual(fs.readFileSync(path.join(storeDir, name)));
      expect([...(await unzip(fs.readFileSync(saved))).keys()]).toContain('manifest.json');

      await row.getByRole('button', { name: 'Verify' }).click();
      await expect.poll(() => card.locator('#stored-status').textContent(), { timeout: 30_000 }).toContain(`${name} is ok`);

      await row.getByRole('button', { name: 'Restore' }).click();
      await expect.poll(() => card.locator('#stored-result').textContent(), { timeout: 30_000 }).toContain(`Checked ${name}`);
      expect(await card.locator('#stored-status').textContent()).toContain('nothing has changed yet');
      await card.getByRole('button', { name: 'Restore now' }).click();
      await expect.poll(() => card.locator('#stored-status').textContent(), { timeout: 30_000 }).toBe('Restore finished.');
      expect(await card.locator('#stored-result').textContent()).toMatch(/Restored from|Nothing differed/);

      page.once('dialog', (dialog) => {
        expect(dialog.message()).toContain(`Delete ${name}`);
        void dialog.accept();
      });
      await row.getByRole('button', { name: 'Delete' }).click();
      await expect.poll(() => card.locator('#stored-list tr').count()).toBe(0);
      expect(fs.readdirSync(storeDir)).toEqual([]);
      expect(guard.unexpected).toEqual([]);
    } finally {
      await close();
    }
    // Five round trips through backup, verify and restore: generous for a loaded 2-core CI machine.
  }, 180_000);

  test('a dismissed confirmation deletes nothing', async () => {
    const storeDir = path.join(tmp.dir, 'store2');
    fs.mkdirSync(storeDir);
    fs.copyFileSync(path.join(tmp.dir, 'downloaded.zip'), path.join(storeDir, 'dbzip-backup-20260101-030000.zip'));
    const { url, key } = await serve('data2', storeDir);
    const { page, close } = await signedIn(url, key);
    try {
      const row = page.locator('#stored-list tr');
      await expect.poll(() => row.count()).toBe(1);
      page.once('dialog', (dialog) => void dialog.dismiss());
      await row.getByRole('button', { name: 'Delete' }).click();
      await new Promise((r) => setTimeout(r, 500));
      expect(fs.readdirSync(storeDir)).toEqual(['dbzip-backup-20260101-030000.zip']);
    } finally {
      await close();
    }
  });

  test('a server that encrypts lists .zip.age backups as encrypted and verifies them with its identity', async () => {
    const storeDir = path.join(tmp.dir, 'store-age');
    const identity = await generateX25519Identity();
    const { url, key } = await serve('data-age', storeDir, { encrypt: { recipients: [await identityToRecipient(identity)] }, decrypt: { identities: [identity] } });
    const { page, guard, close } = await signedIn(url, key);
    try {
      const card = page.locator('#stored');
      await expect.poll(() => card.locator('#stored-where').textContent()).toContain('New backups are encrypted with age');
      await card.getByRole('button', { name: 'Back up now' }).click();
      const row = card.locator('#stored-list tr');
      await expect.poll(() => row.count(), { timeout: 30_000 }).toBe(1);
      const name = (await row.getAttribute('data-name')) ?? '';
      expect(name).toMatch(/^dbzip-backup-\d{8}-\d{6}\.zip\.age$/);
      expect(await row.textContent()).toContain('encrypted (age)');
      await row.getByRole('button', { name: 'Verify' }).click();
      await expect.poll(() => card.locator('#stored-status').textContent(), { timeout: 30_000 }).toContain(`${name} is ok`);
      expect(guard.unexpected).toEqual([]);
    } finally {
      await close();
    }
  }, 120_000);

  test('without a store the card says how to configure one', async () => {
    const { url, key } = await serve('data3', undefined);
    const { page, close } = await signedIn(url, key);
    try {
      const text = await withTimeout(page.locator('#stored').textContent(), 10_000, 'the card');
      expect(text).toContain('No backup store is configured');
      expect(text).toContain('--schedule "0 3 * * *"');
      expect(await page.getByRole('button', { name: 'Back up now' }).count()).toBe(0);
    } finally {
      await close();
    }
  });
});
