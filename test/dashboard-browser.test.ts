import type { MeterMetrics } from '@flowpilot/metrics';
import { toWireReading } from '@flowpilot/schema';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from './helpers/browser.ts';
import type { TestBrowser } from './helpers/browser.ts';
import { startDashboardWorld } from './helpers/dashboard-world.ts';
import type { DashboardWorld } from './helpers/dashboard-world.ts';

// The dashboard in a real headless Chromium against the real API (influxd, Aedes, the MQTT live
// feed). Each test leaves a screenshot in test-artifacts/ for a person to look at.

const DAY_MS = 86_400_000;
const TZ_OFFSET_MS = 5 * 3_600_000; // Asia/Almaty, the dashboard pilot's zone (no DST)
const localDay = (ms: number): string => new Date(ms + TZ_OFFSET_MS).toISOString().slice(0, 10);
const localMidnight = (date: string): number => Date.parse(`${date}T00:00:00Z`) - TZ_OFFSET_MS;

let world: DashboardWorld;
let browser: TestBrowser;
const today = localDay(Date.now());
/** Two full past local days: the results period, so its window does not depend on "now". */
const period = { from: new Date(Date.parse(`${today}T00:00:00Z`) - 3 * DAY_MS).toISOString().slice(0, 10), to: new Date(Date.parse(`${today}T00:00:00Z`) - 2 * DAY_MS).toISOString().slice(0, 10) };

beforeAll(async () => {
  browser = await launchBrowser();
  world = await startDashboardWorld({ fromMs: localMidnight(period.from), toMs: Date.now() - 60_000 });
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

describe('dashboard in Chromium', () => {
  it('lists every meter on the live page, at phone width too', async () => {
    for (const [name, viewport] of [['desktop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]] as const) {
      const page = await browser.newPage(viewport);
      await page.goto(`${world.baseUrl}/#/live`);
      for (const meter of world.pilot.meters) await page.locator(`tr[data-meter="${meter.id}"]`).waitFor();
      expect(await page.locator('tr[data-meter]').count()).toBe(world.pilot.meters.length);
      await page.locator('.spark canvas').first().waitFor();
      await screenshot(page, `dashboard-live-${name}`);
      await page.close();
    }
  });

  it('shows a reading published over MQTT within 5 s', async () => {
    const page = await browser.newPage();
    await page.goto(`${world.baseUrl}/#/live`);
    await page.locator('#feed.up').waitFor();
    const meter = await connectAsync(world.mqttUrl, { protocolVersion: 4, clientId: 'meter-D-MON', reconnectPeriod: 0 });
    try {
      const reading = { meterId: 'D-MON', seq: 999_999, tsMs: Date.now(), flowM3h: 123.45, totalM3: 999_999, alarms: [] };
      const publishedAt = Date.now();
      await meter.publishAsync('meters/D-MON/readings', JSON.stringify(toWireReading(reading)), { qos: 1 });
      await page.locator('tr[data-meter="D-MON"] td.flow', { hasText: '123.45' }).waitFor({ timeout: 5000 });
      expect(Date.now() - publishedAt).toBeLessThan(5000);
      await screenshot(page, 'dashboard-live-reading');

      const meterPage = await browser.newPage({ width: 390, height: 844 });
      await meterPage.goto(`${world.baseUrl}/#/meter/D-MON`);
      await meterPage.locator('[data-testid="raw-reading"]').waitFor({ state: 'attached' });
      await meterPage.locator('[data-testid="meter-chart"] canvas').waitFor();
      await screenshot(meterPage, 'dashboard-meter-phone');
      await meterPage.close();
    } finally {
      await meter.endAsync(true);
      await page.close();
    }
  });

  it('shows on the results page the verdicts the API returns', async () => {
    const window = { fromMs: localMidnight(period.from), toMs: localMidnight(period.to) + DAY_MS };
    const response = await fetch(`${world.baseUrl}/api/v1/metrics?from=${window.fromMs}&to=${window.toMs}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { meters: MeterMetrics[] };
    const page = await browser.newPage();
    await page.goto(`${world.baseUrl}/#/results?from=${period.from}&to=${period.to}`);
    await page.locator('[data-testid="kpi-table"]').waitFor();
    const tests = body.meters.filter((m) => m.accuracy);
    expect(tests.map((m) => m.meterId).sort()).toEqual(['D-DUT1', 'D-DUT2']);
    for (const m of tests) {
      for (const zone of ['lower', 'upper', 'overall'] as const) {
        const verdict = page.locator(`.card[data-meter="${m.meterId}"] tr[data-zone="${zone}"] [data-verdict]`);
        expect(await verdict.getAttribute('data-verdict'), `${m.meterId} ${zone}`).toBe(m.accuracy?.[zone].verdict);
      }
    }
    // The fixture's meters: +1 % passes both zones, +3.5 % fails the upper zone's ±2 %.
    expect(await page.locator('.card[data-meter="D-DUT2"] tr[data-zone="upper"] [data-verdict]').getAttribute('data-verdict')).toBe('fail');
    await page.locator('.daily canvas').first().waitFor();
    await screenshot(page, 'dashboard-results-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'dashboard-results-phone');
    await page.close();
  });

  it('switches to Russian, and remembers it', async () => {
    const page = await browser.newPage();
    await page.goto(`${world.baseUrl}/#/live`);
    await page.locator('tr[data-meter]').first().waitFor();
    expect(await page.locator('nav [data-nav="results"]').textContent()).toBe('Results');
    await page.locator('[data-testid="language"]').selectOption('ru');
    await page.locator('nav [data-nav="results"]', { hasText: 'Результаты' }).waitFor();
    expect(await page.locator('table.live th').first().textContent()).toBe('Счётчик');
    await page.reload();
    await page.locator('nav [data-nav="results"]', { hasText: 'Результаты' }).waitFor();
    await page.goto(`${world.baseUrl}/#/results?from=${period.from}&to=${period.to}`);
    await page.locator('[data-verdict]').first().waitFor();
    expect(await page.locator('[data-verdict="pass"]').first().textContent()).toBe('СООТВЕТСТВУЕТ');
    await page.locator('.daily canvas').first().waitFor();
    await screenshot(page, 'dashboard-results-ru');
    await page.goto(`${world.baseUrl}/#/reports?from=${period.from}&to=${period.to}`);
    await page.locator('[data-testid="pdf-link"]').waitFor();
    await screenshot(page, 'dashboard-reports-ru');
    await page.close();
  });
});
