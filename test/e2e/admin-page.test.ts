/**
 * The admin page in a real browser (npm run test:e2e): sign in, see what a backup holds, click
 * Download, and check the file Chromium saved. Also the failure paths a person meets: a wrong key,
 * a backup that fails before its first byte, restoring the downloaded zip through the page (plan,
 * confirm, report), signing out, another site, no JavaScript, and a host app that mounts dbzip under a prefix.
 */
import fs from 'node:fs';
import path from 'node:path';
import { serve } from '@hono/node-server';
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import type { Browser, BrowserContext, Download, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateFixtures } from '../../fixtures/generate.js';
import { createApp } from '../../src/http/app.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { verifyArchive } from '../../src/verify/index.js';
import { makeTmpDir, withTimeout, type TmpDir } from '../helpers/tmp.js';
import { captureLogger, newKey, unzip, type LogLine } from '../http-helpers.js';
import { ConsoleGuard, HAVE_CHROMIUM, IN_CI, launchChromium } from './browser.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');
const FILE_NAME = /^dbzip-backup-\d{8}-\d{6}\.zip$/;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const skip = !HAVE_CHROMIUM && !IN_CI;
if (skip) console.warn('test:e2e skipped: /usr/bin/chromium is missing (apt-get install chromium). In CI (CI=true) this fails instead.');

let tmp: TmpDir;
let dataDir: string;
let key: string;
let lines: LogLine[];
let server: RunningServer | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  if (skip) return;
  tmp = makeTmpDir('e2e');
  dataDir = path.join(tmp.dir, 'data');
  await generateFixtures(dataDir);
  key = newKey();
  const captured = captureLogger();
  lines = captured.lines;
  server = await startServer({ dataDir, auth: { apiKey: key }, host: '127.0.0.1', port: 0, logger: captured.logger });
  browser = await launchChromium();
});

afterAll(async () => {
  try {
    await browser?.close();
  } finally {
    try {
      await server?.close(0);
    } finally {
      await tmp?.cleanup();
    }
  }
});

/** A fresh browser context (its own cookies), closed by the test's `finally`. */
async function newPage(options: { javaScriptEnabled?: boolean } = {}): Promise<{ context: BrowserContext; page: Page; guard: ConsoleGuard }> {
  const context = await browser!.newContext({ acceptDownloads: true, viewport: DESKTOP, ...options });
  const page = await context.newPage();
  return { context, page, guard: new ConsoleGuard(page) };
}

async function signIn(page: Page, withKey: string): Promise<void> {
  await page.getByLabel('API key').fill(withKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('load');
}

/** Clicks Download and returns the download Chromium started. */
async function download(page: Page): Promise<Download> {
  const started = page.waitForEvent('download', { timeout: 20_000 });
  await page.getByRole('link', { name: 'Download backup' }).click();
  return started;
}

/** Saves the download, opens it with yauzl and verifies it with the library; returns the database names. */
async function checkZip(saved: Download, name: string): Promise<string[]> {
  expect(saved.suggestedFilename()).toMatch(FILE_NAME);
  const file = path.join(tmp.dir, name);
  await withTimeout(saved.saveAs(file), 20_000, 'saving the download');
  const entries = await unzip(fs.readFileSync(file));
  expect([...entries.keys()][0]).toBe('VERSION');
  expect([...entries.keys()].at(-1)).toBe('manifest.json');
  const report = await verifyArchive(file);
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
  for (const db of report.databases) expect(db.integrity, db.path).toBe('ok');
  return report.databases.map((db) => db.path);
}

async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}

/** Just the restore card: a full phone-width page is too tall to look at. */
async function screenshotRestore(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.locator('#restore').screenshot({ path: path.join(ARTIFACTS, name) });
}

/** True when the page is no wider than the window (nothing to scroll sideways on a phone). */
const fitsWidth = (page: Page) => page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');

describe.skipIf(skip)('the admin page in Chromium', () => {
  test('a wrong key shows an error; the right key shows the databases; Download saves a zip under the server\'s name whose every database verifies', async () => {
    const { context, page, guard } = await newPage();
    try {
      await page.goto(`${server!.url}/`);
      await expect.poll(() => page.title()).toBe('Sign in · dbzip');
      await screenshot(page, 'signin-desktop.png');

      await signIn(page, newKey());
      await guard.expectError(/status of 401/);
      expect(await page.getByRole('alert').innerText()).toMatch(/not the API key/);
      expect(await page.getByLabel('API key').getAttribute('aria-invalid')).toBe('true');
      await page.setViewportSize(PHONE);
      await screenshot(page, 'signin-error-phone.png');
      await page.setViewportSize(DESKTOP);

      // A pasted key often brings a line break along.
      await signIn(page, `${key}\n`);
      await expect.poll(() => page.title()).toBe('Backup · dbzip');
      const session = (await context.cookies()).find((c) => c.name === 'dbzip_session');
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
      expect(session!.expires * 1000 - Date.now()).toBeGreaterThan(11.9 * 3_600_000);
      expect(session!.expires * 1000 - Date.now()).toBeLessThanOrEqual(12 * 3_600_000);

      const names = await page.locator('table[aria-labelledby="databases-title"] tbody td.name').allInnerTexts();
      expect(names).toEqual(['app.db', 'settings.db']);
      const body = await page.locator('main').innerText();
      expect(body).toMatch(/App version\s+1\.4\.2/);
      expect(body).toMatch(/WAL/);
      expect(body).toMatch(/rollback/);
      expect(body).toContain('assets/');
      expect(body).toMatch(/empty\.db\s+NOT_SQLITE/);
      expect(body).toMatch(/junk\.db\s+NOT_SQLITE/);
      await screenshot(page, 'admin-desktop.png');
      await page.setViewportSize(PHONE);
      expect(await fitsWidth(page)).toBe(true);
      await screenshot(page, 'admin-phone.png');
      await page.setViewportSize(DESKTOP);

      // Hold the answer back a moment, as a big snapshot would, to see the page say so.
      await page.route('**/api/backup?dl=*', async (route) => {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await route.continue();
      });
      const status = page.locator('#download-status');
      const started = download(page);
      await expect.poll(() => status.innerText(), { timeout: 5_000 }).toMatch(/^Preparing the backup/);
      expect(await page.getByRole('link', { name: 'Download backup' }).getAttribute('aria-disabled')).toBe('true');
      await screenshot(page, 'admin-preparing-desktop.png');
      const saved = await started;
      // settings.db is a rollback-journal database: the page said why the browser shows no total, and what to change.
      expect(await page.locator('#size-note').innerText()).toMatch(/settings\.db uses a rollback journal.*PRAGMA journal_mode=WAL.*--pin all-blocking/s);
      expect(await page.locator('#download-size').innerText()).toMatch(/^about [\d.]+ KiB \(estimate\)$/);
      // When the last byte has left, "Downloading" gives way to what happened (the page asks the server).
      await expect.poll(() => status.innerText(), { timeout: 10_000 }).toMatch(/^Download finished: [\d.]+ KiB sent\. Your browser has saved it \(see its downloads\)\.$/);
      await page.setViewportSize(PHONE);
      await screenshot(page, 'admin-downloaded-phone.png');
      await page.setViewportSize(DESKTOP);
      await page.unroute('**/api/backup?dl=*');
      expect(await checkZip(saved, 'root.zip')).toEqual(names);
      // The page removed its download cookie once it had seen it.
      expect((await context.cookies()).filter((c) => c.name.startsWith('dbzip_dl_'))).toEqual([]);

      // An error before the first byte is shown on the page, not as a raw JSON page.
      fs.renameSync(dataDir, `${dataDir}.away`);
      try {
        await page.getByRole('link', { name: 'Download backup' }).click();
        const alert = page.locator('#download-error');
        await alert.waitFor({ state: 'visible', timeout: 10_000 });
        await guard.expectError(/status of 503/);
        expect(await alert.innerText()).toMatch(/^The backup could not be made\s+data directory \S+ does not exist$/);
        expect(await status.innerText()).toBe('');
        expect(await page.getByRole('link', { name: 'Download backup' }).getAttribute('aria-disabled')).toBeNull();
        await screenshot(page, 'admin-download-error-desktop.png');
      } finally {
        fs.renameSync(`${dataDir}.away`, dataDir);
      }

      // Restore through the page: change a database, upload the zip saved above, see the plan, confirm, see the report.
      const changed = new Database(path.join(dataDir, 'app.db'));
      try {
        changed.exec("CREATE TABLE later (x TEXT); INSERT INTO later VALUES ('written after the backup')");
      } finally {
        changed.close();
      }
      await page.reload();
      const restoreCard = page.locator('#restore');
      await restoreCard.scrollIntoViewIfNeeded();
      await page.getByLabel('Backup zip').setInputFiles(path.join(tmp.dir, 'root.zip'));
      await page.getByLabel('Mode').selectOption('online');
      expect(await page.getByLabel('Exact').isChecked()).toBe(false);
      await page.getByRole('button', { name: 'Check backup' }).click();
      const result = page.locator('#restore-result');
      await expect.poll(() => result.isVisible(), { timeout: 30_000 }).toBe(true);
      expect(await result.locator('h3').innerText()).toBe('The backup passed every check');
      expect(await result.innerText()).toMatch(/Version: .*1\.4\.2/);
      const planRow = (file: string) => result.locator('tbody tr', { has: page.locator('td.name', { hasText: new RegExp(`^${file}$`) }) });
      expect(await planRow('app.db').locator('.tag').innerText()).toBe('replaced');
      expect(await planRow('settings.db').locator('.tag').innerText()).toBe('unchanged');
      expect(fs.readdirSync(path.join(dataDir, '.dbzip')).filter((n) => n.startsWith('pre-restore-')), 'a dry run changes nothing').toEqual([]);
      await screenshot(page, 'restore-plan-desktop.png');
      await page.setViewportSize(PHONE);
      expect(await fitsWidth(page)).toBe(true);
      await screenshotRestore(page, 'restore-plan-phone.png');
      await page.setViewportSize(DESKTOP);

      await page.getByRole('button', { name: 'Restore now' }).click();
      await expect.poll(() => result.locator('h3').innerText(), { timeout: 30_000 }).toBe('Restored');
      expect(await page.locator('#restore-status').innerText()).toBe('Restore complete.');
      const report = await result.innerText();
      const preRestore = /(\.dbzip\/pre-restore-\d{8}-\d{6}(?:-\d+)?\.zip)/.exec(report)?.[1];
      expect(preRestore, report).toBeDefined();
      expect(fs.existsSync(path.join(dataDir, preRestore!))).toBe(true);
      expect(await planRow('app.db').locator('.tag').innerText()).toBe('replaced');
      const restored = new Database(path.join(dataDir, 'app.db'), { readonly: true });
      try {
        expect(restored.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'later'").pluck().get()).toBe(0);
      } finally {
        restored.close();
      }
      await screenshot(page, 'restore-report-desktop.png');
      await page.setViewportSize(PHONE);
      expect(await fitsWidth(page)).toBe(true);
      await screenshotRestore(page, 'restore-report-phone.png');
      await page.setViewportSize(DESKTOP);
      expect(lines.filter((l) => l['audit'] === 'restore').map((l) => l['outcome'])).toEqual(['dry-run', 'ok']);

      // Undo from the page: the pre-restore backup is listed with Download and Restore.
      await page.reload();
      const undo = page.locator('#undo');
      const undoRows = undo.locator('#undo-list tbody tr');
      await expect.poll(() => undoRows.count(), { timeout: 10_000 }).toBe(1);
      const undoName = path.basename(preRestore!);
      expect(await undoRows.first().locator('td.name').innerText()).toBe(undoName);
      const undoDownload = page.waitForEvent('download', { timeout: 20_000 });
      await undo.getByRole('link', { name: 'Download' }).click();
      const undoSaved = await undoDownload;
      expect(undoSaved.suggestedFilename()).toBe(undoName);
      await undoSaved.saveAs(path.join(tmp.dir, 'undo.zip'));
      expect(fs.readFileSync(path.join(tmp.dir, 'undo.zip')).equals(fs.readFileSync(path.join(dataDir, preRestore!)))).toBe(true);
      await undo.getByRole('button', { name: 'Restore\u2026' }).click();
      const undoResult = undo.locator('#undo-result');
      await expect.poll(() => undoResult.isVisible(), { timeout: 30_000 }).toBe(true);
      expect(await undoResult.innerText()).toMatch(/replaced app\.db/);
      await page.locator('#undo').scrollIntoViewIfNeeded();
      await screenshot(page, 'undo-plan-desktop.png');
      await undo.getByRole('button', { name: 'Restore now' }).click();
      await expect.poll(() => undoResult.locator('h3').innerText(), { timeout: 30_000 }).toBe(`Restored ${undoName}`);
      const undone = new Database(path.join(dataDir, 'app.db'), { readonly: true });
      try {
        expect(undone.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'later'").pluck().get(), 'the change made before the restore is back').toBe(1);
      } finally {
        undone.close();
      }
      // The state before the undo was saved too, so the list now has two, newest first.
      await expect.poll(() => undoRows.count(), { timeout: 10_000 }).toBe(2);
      expect(await undoRows.nth(1).locator('td.name').innerText()).toBe(undoName);
      await page.setViewportSize(PHONE);
      expect(await fitsWidth(page)).toBe(true);
      await page.locator('#undo').screenshot({ path: path.join(ARTIFACTS, 'undo-phone.png') });
      await page.setViewportSize(DESKTOP);

      const log = JSON.stringify(lines);
      expect(log).not.toContain(key);
      expect(lines.filter((l) => l['audit'] === 'signin').map((l) => l['outcome'])).toEqual(['rejected', 'ok']);
      expect(guard.unexpected).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('signing out clears the session: the download link then answers 401 with a readable page', async () => {
    const { context, page, guard } = await newPage();
    try {
      await page.goto(`${server!.url}/`);
      await signIn(page, key);
      expect((await context.request.get(`${server!.url}/api/backup?db=settings.db`)).status()).toBe(200);
      const href = await page.getByRole('link', { name: 'Download backup' }).getAttribute('href');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await expect.poll(() => page.title()).toBe('Sign in · dbzip');
      expect((await context.cookies()).map((c) => c.name)).not.toContain('dbzip_session');

      const answer = await page.goto(new URL(href!, page.url()).href);
      await guard.expectError(/status of 401/);
      expect(answer?.status()).toBe(401);
      expect(await page.locator('h1').innerText()).toBe('Sign in first');
      await page.getByRole('link', { name: 'Back to the backup page' }).click();
      await expect.poll(() => page.title()).toBe('Sign in · dbzip');
      expect((await context.request.get(`${server!.url}/api/backup`)).status()).toBe(401);
      expect(guard.unexpected).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('without JavaScript the button is a plain link, and the download still works', async () => {
    const { context, page, guard } = await newPage({ javaScriptEnabled: false });
    try {
      await page.goto(`${server!.url}/`);
      await signIn(page, key);
      expect(await checkZip(await download(page), 'nojs.zip')).toEqual(['app.db', 'settings.db']);
      expect(guard.unexpected).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('mounted under /admin/backup in a host app: same flow, and the cookie stays on the prefix; another site cannot use it', async () => {
    const host = new Hono();
    host.get('/', (c) => c.text('host home'));
    // The host's own plain-text pages have no icon link: answer the browser's favicon request.
    host.get('/favicon.ico', (c) => c.body(null, 204));
    host.get('/other', (c) => c.text(`cookies: ${c.req.header('cookie') ?? ''}`));
    host.get('/evil', (c) => c.html(`<!DOCTYPE html><title>evil</title><link rel="icon" href="data:,"><a id="steal" href="${server!.url}/api/backup">free stuff</a>`));
    host.route('/admin/backup', createApp({ dataDir, auth: { apiKey: key }, logger: captureLogger().logger }));
    let listening!: () => void;
    const ready = new Promise<void>((resolve) => {
      listening = resolve;
    });
    const hostServer = serve({ fetch: host.fetch, hostname: '127.0.0.1', port: 0 }, () => listening());
    const { context, page, guard } = await newPage();
    try {
      await withTimeout(ready, 5_000, 'host server listening');
      const port = (hostServer.address() as { port: number }).port;
      const base = `http://127.0.0.1:${port}`;

      await page.goto(`${base}/admin/backup`);
      await signIn(page, key);
      expect(new URL(page.url()).pathname).toBe('/admin/backup');
      expect(await page.locator('table[aria-labelledby="databases-title"] tbody td.name').allInnerTexts()).toEqual(['app.db', 'settings.db']);
      const session = (await context.cookies()).find((c) => c.name === 'dbzip_session');
      expect(session?.path).toBe('/admin/backup');
      expect(await checkZip(await download(page), 'mounted.zip')).toEqual(['app.db', 'settings.db']);
      await expect.poll(() => page.locator('#download-status').innerText(), { timeout: 10_000 }).toMatch(/^Download finished/);

      // The mount path with a trailing slash is the same page (the host's strict routing would 404 it).
      await page.goto(`${base}/admin/backup/`);
      expect(await page.locator('table[aria-labelledby="databases-title"] tbody td.name').allInnerTexts()).toEqual(['app.db', 'settings.db']);
      expect(await checkZip(await download(page), 'mounted-slash.zip')).toEqual(['app.db', 'settings.db']);
      await expect.poll(() => page.locator('#download-status').innerText(), { timeout: 10_000 }).toMatch(/^Download finished/);

      await page.goto(`${base}/other`);
      expect((await page.locator('body').innerText()).trim()).toBe('cookies:');

      // Signed in on 127.0.0.1, lured to a page on another site (localhost): the link lands without the cookie.
      await page.goto(`${server!.url}/`);
      await signIn(page, key);
      await page.goto(`http://localhost:${port}/evil`);
      await page.locator('#steal').click();
      await page.waitForLoadState('load');
      await guard.expectError(/status of 401/);
      expect(await page.locator('h1').innerText()).toBe('Sign in first');

      await page.goto(`${base}/admin/backup`);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await expect.poll(() => page.title()).toBe('Sign in · dbzip');
      expect(new URL(page.url()).pathname).toBe('/admin/backup');
      expect(guard.unexpected).toEqual([]);
    } finally {
      await context.close();
      await new Promise<void>((resolve) => {
        hostServer.close(() => resolve());
        (hostServer as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    }
  });
});
