import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTranslator, loadLanguages } from '@flowpilot/i18n';
import type { Language } from '@flowpilot/i18n';
import { NANUM_GOTHIC } from '@flowpilot/report';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, ensureDebianTool, launchBrowser, screenshot } from './helpers/browser.ts';
import type { TestBrowser } from './helpers/browser.ts';
import { startDashboardWorld } from './helpers/dashboard-world.ts';
import type { DashboardWorld } from './helpers/dashboard-world.ts';

// Issue 14: the dashboard in Kazakh and Korean at phone width (390 px), against the real API, and
// the first page of the Korean PDF, left in test-artifacts/ for a person to look at:
// dashboard-{kk,ko}-phone.png (live), dashboard-{kk,ko}-results-phone.png, report-ko-page1.png.
// What a screenshot shows is asserted too: the language's words, nothing wider than the screen.

const DAY_MS = 86_400_000;
const TZ_OFFSET_MS = 5 * 3_600_000; // Asia/Almaty, the dashboard pilot's zone
const localMidnight = (date: string): number => Date.parse(`${date}T00:00:00Z`) - TZ_OFFSET_MS;
const today = new Date(Date.now() + TZ_OFFSET_MS).toISOString().slice(0, 10);
const period = { from: new Date(Date.parse(`${today}T00:00:00Z`) - 3 * DAY_MS).toISOString().slice(0, 10), to: new Date(Date.parse(`${today}T00:00:00Z`) - 2 * DAY_MS).toISOString().slice(0, 10) };
const PHONE = { width: 390, height: 844 };

const languages = loadLanguages();
const en = languages.find((l) => l.code === 'en') as Language;

let world: DashboardWorld;
let browser: TestBrowser;
beforeAll(async () => {
  // Chromium draws Hangul with the system's fonts (fontconfig): NanumGothic, as the PDF does.
  ensureDebianTool(join(NANUM_GOTHIC.dirs[0] as string, NANUM_GOTHIC.files.regular), 'fonts-nanum');
  ensureDebianTool('pdftoppm', 'poppler-utils');
  browser = await launchBrowser();
  world = await startDashboardWorld({ fromMs: localMidnight(period.from), toMs: Date.now() - 60_000 });
});
afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** Nothing wider than the phone: a wide table scrolls in its own box, the page itself never does. */
async function fitsThePhone(page: Page): Promise<void> {
  expect(await page.locator('html').evaluate((html) => html.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
}

describe.each(['kk', 'ko'])('the dashboard in %s on a phone', (code) => {
  const language = languages.find((l) => l.code === code) as Language;
  const t = createTranslator(language, en);

  it('live page: chosen in the language menu, in the language\'s words, within the screen', async () => {
    const page = await browser.newPage(PHONE);
    await page.goto(`${world.baseUrl}/#/live`);
    await page.locator('tr[data-meter]').first().waitFor();
    // The menu names every language in itself.
    expect(await page.locator('[data-testid="language"] option').allTextContents()).toEqual(languages.map((l) => l.name));
    await page.locator('[data-testid="language"]').selectOption(code);
    await page.locator('nav [data-nav="results"]', { hasText: t('nav.results') }).waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe(code);
    const navs = await page.locator('nav [data-nav]').evaluateAll((links) => links.map((a) => [a.getAttribute('data-nav'), a.textContent]));
    expect(navs.length).toBeGreaterThanOrEqual(3);
    for (const [name, text] of navs) expect(text).toBe(t(`nav.${name}`));
    expect(await page.locator('#view h2').first().textContent()).toBe(t('live.title'));
    // At phone width each row is a card whose cells carry their column's name.
    expect(await page.locator('tr[data-meter="D-DUT1"] td[data-label]').first().getAttribute('data-label')).toBe(t('live.status'));
    expect(await page.locator('tr[data-meter="D-DUT1"] .badge').textContent()).toMatch(new RegExp(`^(${t('live.online')}|${t('live.offline')})$`));
    await page.locator('.spark canvas').first().waitFor();
    // The screenshot first: when the page does not fit, it shows what sticks out.
    await screenshot(page, `dashboard-${code}-phone`);
    await fitsThePhone(page);
    await page.close();
  });

  it('results page: verdicts and evidence in the language\'s words and numbers, within the screen', async () => {
    const page = await browser.newPage(PHONE);
    // The language chosen above is remembered (localStorage).
    await page.goto(`${world.baseUrl}/#/results?from=${period.from}&to=${period.to}`);
    await page.locator('.card[data-meter="D-DUT1"] [data-testid="bins-table"] tr[data-bin]').first().waitFor();
    await page.locator('.curve canvas').first().waitFor();
    await page.locator('.daily canvas').first().waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe(code);
    expect(await page.locator('[data-verdict="pass"]').first().textContent()).toBe(t('verdict.pass'));
    expect(await page.locator('.card[data-meter="D-DUT2"] tr[data-zone="upper"] [data-verdict]').textContent()).toBe(t('verdict.fail'));
    expect(await page.locator('[data-testid="intervals-csv"]').first().textContent()).toBe(t('results.downloadIntervals'));
    // The fixture's water is 12 °C: written with the locale's decimal mark, also where the
    // browser's ICU has no Kazakh (Chromium's formats kk-KZ as 12.0: format.ts formatLocale).
    expect(await page.locator('.card[data-meter="D-DUT1"] [data-testid="temperature-median"]').textContent()).toBe(code === 'kk' ? '12,0' : '12.0');
    // The screenshot first: when the page does not fit, it shows what sticks out.
    await screenshot(page, `dashboard-${code}-results-phone`);
    await fitsThePhone(page);
    await page.close();
  });
});

describe('the Korean PDF', () => {
  it('renders its first page to test-artifacts/report-ko-page1.png', async () => {
    const response = await fetch(`${world.baseUrl}/api/v1/reports/pilot.pdf?from=${localMidnight(period.from)}&to=${localMidnight(period.to) + DAY_MS}&lang=ko`);
    expect(response.status).toBe(200);
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    const file = join(ARTIFACTS_DIR, 'report-ko.pdf');
    writeFileSync(file, Buffer.from(await response.arrayBuffer()));
    execFileSync('pdftoppm', ['-png', '-r', '110', '-f', '1', '-l', '1', '-singlefile', file, join(ARTIFACTS_DIR, 'report-ko-page1')]);
    const text = execFileSync('pdftotext', ['-enc', 'UTF-8', '-f', '1', '-l', '1', file, '-'], { encoding: 'utf8' });
    const t = createTranslator(languages.find((l) => l.code === 'ko') as Language, en);
    expect(text).toContain(t('pdf.title'));
    expect(text).toContain(t('pdf.meters'));
  });
});
