import { formatLatencyMs, formatRatioPct } from '@flowpilot/i18n/format';
import { addDays } from '@flowpilot/metrics';
import type { AccuracyResult, BinAccuracy, MeterMetrics } from '@flowpilot/metrics';
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

  it('shows on the results page the verdicts, rules and evidence the API returns', async () => {
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
      const acc = m.accuracy as AccuracyResult;
      const card = page.locator(`.card[data-meter="${m.meterId}"]`);
      for (const zone of ['lower', 'upper', 'overall'] as const) {
        const row = card.locator(`[data-testid="zone-table"] tr[data-zone="${zone}"]`);
        expect(await row.locator('[data-verdict]').getAttribute('data-verdict'), `${m.meterId} ${zone}`).toBe(acc[zone].verdict);
        expect(await row.locator('[data-rule]').getAttribute('data-rule'), `${m.meterId} ${zone}`).toBe(acc[zone].rule);
        expect((await row.locator('[data-rule]').textContent())?.length, `${m.meterId} ${zone}: the rule in words`).toBeGreaterThan(0);
      }
      // One row per R49 test-flow bin, each with its own verdict.
      const bins = card.locator('[data-testid="bins-table"] tbody tr');
      expect(await bins.count()).toBe(acc.bins.length);
      expect(await bins.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-bin')))).toEqual(acc.bins.map((b) => b.bin));
      for (const bin of acc.bins) expect(await card.locator(`tr[data-bin="${bin.bin}"] [data-verdict]`).getAttribute('data-verdict'), `${m.meterId} ${bin.bin}`).toBe(bin.verdict);
      // The fixture's water is 12 °C throughout, reported by the reference.
      expect(acc.overall.temperature.medianC).toBe(12);
      expect(await card.locator('[data-testid="temperature-median"]').getAttribute('data-value')).toBe(String(acc.overall.temperature.medianC));
      expect(await card.locator('[data-testid="temperature-median"]').textContent()).toBe('12.0');
      for (const [reason, n] of Object.entries(acc.excluded)) expect(await card.locator(`[data-testid="excluded-table"] tr[data-reason="${reason}"] td`).textContent(), `${m.meterId} ${reason}`).toBe(String(n));
      // The fixture's pilot file gives no calibration: said so, and counted as 0 in U.
      expect(await card.locator('[data-testid="calibration"] .not-given').count()).toBe(4);
      expect(await card.locator('[data-testid="uncertainty-notes"]').textContent()).toContain('calibration uncertainty is not in the pilot file');
    }
    // The fixture's meters: +1 % passes both zones, +3.5 % fails the upper zone's ±2 %.
    expect(await page.locator('.card[data-meter="D-DUT2"] tr[data-zone="upper"] [data-verdict]').getAttribute('data-verdict')).toBe('fail');
    // Latency over the readings that arrived one at a time; backfilled ones counted apart.
    for (const m of body.meters) {
      const row = page.locator(`[data-testid="kpi-table"] tr[data-meter="${m.meterId}"]`);
      expect(await row.locator('td.latency').textContent()).toBe(formatLatencyMs('en-GB', m.latencyMs.p95));
      expect(await row.locator('td.backfilled').textContent()).toBe(`${m.latencyMs.backfilled.count} (${formatRatioPct('en-GB', m.latencyMs.backfilled.share, 1)})`);
    }

    // The paired intervals of the page's window, with the page's credentials: a CSV download.
    const link = page.locator('.card[data-meter="D-DUT1"] [data-testid="intervals-csv"]');
    const href = (await link.getAttribute('href')) as string;
    expect(href).toBe(`/api/v1/meters/D-DUT1/intervals.csv?from=${period.from}&to=${addDays(period.to, 1)}`);
    const csv = await page.request.get(new URL(href, world.baseUrl).href);
    expect(csv.status()).toBe(200);
    expect(csv.headers()['content-type']).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trim().split(/\r?\n/);
    expect(lines.length - 1).toBe(tests.find((m) => m.meterId === 'D-DUT1')?.accuracy?.pairedIntervals);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    expect(download.suggestedFilename()).toMatch(/^D-DUT1_intervals_.*\.csv$/);
    expect(await download.failure()).toBeNull();

    await page.locator('.daily canvas').first().waitFor();
    await screenshot(page, 'dashboard-results-desktop');
    await page.close();
  });

  it('keeps the results page usable at phone width', async () => {
    const page = await browser.newPage({ width: 390, height: 844 });
    await page.goto(`${world.baseUrl}/#/results?from=${period.from}&to=${period.to}`);
    await page.locator('.card[data-meter="D-DUT1"] [data-testid="bins-table"] tr[data-bin]').first().waitFor();
    await page.locator('.curve canvas').first().waitFor();
    await page.locator('.daily canvas').first().waitFor();
    // Nothing wider than the screen: wide tables scroll inside their own box, the accuracy tables stack.
    expect(await page.locator('html').evaluate((html) => html.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await page.locator('[data-testid="zone-table"] thead').first().isVisible()).toBe(false);
    await screenshot(page, 'dashboard-results-phone');
    await page.close();
  });

  it('marks an inconclusive verdict apart, and reads metrics without backfill figures', async () => {
    // The fixture's meters pass or fail plainly: turn one zone and one bin inconclusive (G 19's
    // guarded acceptance), and answer as an API without `latencyMs.backfilled` would.
    const page = await browser.newPage();
    await page.route(/\/api\/v1\/metrics\?(?!.*per=day)/, async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { meters: MeterMetrics[] };
      for (const m of body.meters) {
        delete (m.latencyMs as Partial<MeterMetrics['latencyMs']>).backfilled;
        if (m.meterId !== 'D-DUT1' || !m.accuracy) continue;
        m.accuracy.upper = { ...m.accuracy.upper, verdict: 'inconclusive', rule: 'bin upper-2' };
        m.accuracy.overall = { ...m.accuracy.overall, verdict: 'inconclusive', rule: 'zones' };
        const bin = m.accuracy.bins.find((b) => b.bin === 'upper-2') as BinAccuracy;
        Object.assign(bin, { verdict: 'inconclusive', rule: 'guarded acceptance' });
      }
      await route.fulfill({ response, json: body });
    });
    await page.goto(`${world.baseUrl}/#/results?from=${period.from}&to=${period.to}`);
    const card = page.locator('.card[data-meter="D-DUT1"]');
    const badge = card.locator('tr[data-zone="upper"] [data-verdict]');
    await badge.waitFor();
    expect(await badge.getAttribute('data-verdict')).toBe('inconclusive');
    expect(await badge.textContent()).toBe('INCONCLUSIVE');
    expect(await card.locator('tr[data-zone="upper"] [data-rule]').textContent()).toBe('decided by test-flow bin upper-2');
    expect(await card.locator('tr[data-bin="upper-2"] [data-verdict]').getAttribute('data-verdict')).toBe('inconclusive');
    // Its own look (not the colour alone: a dashed edge), and what it means said in words.
    // (The root tsconfig has no DOM library: the page's own window computes the style.)
    const style = (selector: string, property: string) => card.locator(selector).first().evaluate((el, p) => el.ownerDocument.defaultView.getComputedStyle(el).getPropertyValue(p), property);
    const look = async (selector: string) => `${await style(selector, 'background-color')} ${await style(selector, 'outline-style')}`;
    expect(await look('[data-verdict="inconclusive"]')).not.toBe(await look('[data-verdict="pass"]'));
    expect(await style('[data-verdict="inconclusive"]', 'outline-style')).toBe('dashed');
    expect(await card.locator('[data-testid="inconclusive-note"]').textContent()).toMatch(/^Inconclusive: /);
    expect(await page.locator('.card[data-meter="D-DUT2"] [data-testid="inconclusive-note"]').count()).toBe(0);
    // Without `backfilled`, the latency column still shows p95 and the backfill column says "—".
    const kpi = page.locator('[data-testid="kpi-table"] tr[data-meter="D-DUT1"]');
    expect(await kpi.locator('td.backfilled').textContent()).toBe('—');
    expect(await kpi.locator('td.latency').textContent()).toBe('800 ms');
    await screenshot(page, 'dashboard-results-inconclusive');
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
    expect(await page.locator('[data-testid="intervals-csv"]').first().textContent()).toBe('Скачать парные интервалы (CSV)');
    expect(await page.locator('.card[data-meter="D-DUT2"] tr[data-zone="overall"] [data-rule]').textContent()).toBe('по обоим диапазонам');
    await page.locator('.daily canvas').first().waitFor();
    await screenshot(page, 'dashboard-results-ru');
    await page.goto(`${world.baseUrl}/#/reports?from=${period.from}&to=${period.to}`);
    await page.locator('[data-testid="pdf-link"]').waitFor();
    await screenshot(page, 'dashboard-reports-ru');
    await page.close();
  });
});
