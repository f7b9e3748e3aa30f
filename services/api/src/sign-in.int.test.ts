import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from '../../../test/helpers/browser.ts';
import type { TestBrowser } from '../../../test/helpers/browser.ts';
import { openApiTokenStore } from './api-tokens.ts';
import type { ApiTokenStore } from './api-tokens.ts';
import { createApi } from './app.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import { testPilot, idleInflux } from './test-pilot.ts';

// The dashboard's sign-in in a real headless Chromium, under the API's real CSP: the sign-in
// page, the dashboard after it and Swagger UI must all work with no CSP violation.

const influx = idleInflux;

let dir: string;
let store: ApiTokenStore;
let app: FastifyInstance;
let baseUrl: string;
let browser: TestBrowser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowpilot-signin-'));
  store = openApiTokenStore(join(dir, 'api-tokens.json'));
  browser = await launchBrowser();
  app = await createApi({ pilot: testPilot(), influx, liveFeed: createMemoryLiveFeed(), tokens: store });
  baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the page scripts below read (this file is type-checked without the DOM library). */
interface BrowserGlobals {
  document: { cookie: string; activeElement: { id: string } | null };
}

/** Console errors and CSP violations of a page, collected from its first request on. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 40[13]/.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return problems;
}

describe('sign-in in Chromium', () => {
  // Each test starts signed out (the browser context, and so its cookies, is shared).
  beforeEach(async () => {
    await browser.context.clearCookies();
  });

  it('shows the sign-in page, refuses a wrong token with an error on the field, signs in, and signs out', async () => {
    const evaluator = store.add('eve', 'evaluator');
    const page = await browser.newPage({ width: 390, height: 844 });
    const problems = watch(page);
    await page.goto(`${baseUrl}/#/live`);
    await page.getByLabel('Access token').waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.activeElement?.id)).toBe('token');
    await screenshot(page, 'sign-in-phone');

    await page.getByLabel('Access token').fill('fpt_wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/unknown or was revoked/);
    expect(await page.getByLabel('Access token').getAttribute('aria-invalid')).toBe('true');
    expect(await page.title()).toMatch(/^Error: Sign in/);
    await screenshot(page, 'sign-in-error');

    await page.getByLabel('Access token').fill(evaluator);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('tr[data-meter]').first().waitFor();
    expect(await page.locator('#who').textContent()).toBe('Signed in as eve (evaluator)');
    expect(await page.locator('nav [data-nav]').count()).toBe(3);
    // The cookie is out of reach of scripts.
    expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.cookie)).toBe('');
    await screenshot(page, 'sign-in-dashboard');

    await page.getByTestId('sign-out').click();
    await page.getByLabel('Access token').waitFor();
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a viewer the live views only', async () => {
    const viewer = store.add('vic', 'viewer');
    const page = await browser.newPage();
    await page.goto(`${baseUrl}/`);
    await page.getByLabel('Access token').fill(viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('tr[data-meter]').first().waitFor();
    expect(await page.locator('nav [data-nav]').evaluateAll((links) => links.map((a) => a.getAttribute('data-nav')))).toEqual(['live']);
    await page.close();
  });

  it('serves the sign-in page in Russian to a Russian browser', async () => {
    const context = await browser.context.browser()?.newContext({ locale: 'ru-RU' });
    const page = context ? await context.newPage() : await browser.newPage();
    if (!context) await page.setExtraHTTPHeaders({ 'accept-language': 'ru-RU,ru' });
    await page.goto(`${baseUrl}/`);
    await page.getByLabel('Токен доступа').waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe('ru');
    await page.close();
  });

  it('renders Swagger UI at /docs under the CSP, after signing in', async () => {
    const page = await browser.newPage();
    const problems = watch(page);
    await page.goto(`${baseUrl}/docs`);
    await page.getByLabel('Access token').fill(store.add('doc-reader', 'viewer'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/docs/);
    await page.locator('.swagger-ui .opblock').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('.swagger-ui .opblock').count()).toBeGreaterThan(10);
    await screenshot(page, 'docs-swagger-ui');
    expect(problems).toEqual([]);
    await page.close();
  });
});
