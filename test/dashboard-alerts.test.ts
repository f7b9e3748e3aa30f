import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDateTime } from '@flowpilot/i18n/format';
import { toWireReading } from '@flowpilot/schema';
import type { AlarmName } from '@flowpilot/schema';
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../services/api/src/alerts/types.ts';
import { launchBrowser, screenshot } from './helpers/browser.ts';
import type { TestBrowser } from './helpers/browser.ts';
import { startDashboardWorld } from './helpers/dashboard-world.ts';
import type { DashboardWorld } from './helpers/dashboard-world.ts';
import { eventually } from './helpers/wait.ts';

// Issue 13 in a real headless Chromium against the real API and its alert engine (SPEC section 9):
// meters publish readings with alarms and a low battery over MQTT, the engine raises and resolves
// alerts, and the dashboard shows them in the banner (a polite live region), as badges on the
// Live page's meter rows, and on the Alerts page with their history, in English and Russian.

const TZ = 'Asia/Almaty'; // the dashboard pilot's zone
const LOCALE = 'en-GB'; // the browser's (helpers/browser.ts)
/** The banner polls every 15 s and sooner on a live reading: a wait, never an assertion on time. */
const WAIT_MS = 45_000;

let world: DashboardWorld;
let browser: TestBrowser;
let dataDir: string;
let meters: MqttClient;
let seq = 1_000_000;

async function publish(meterId: string, reading: { alarms?: AlarmName[]; batteryPct?: number }): Promise<void> {
  const wire = toWireReading({ meterId, seq: seq++, tsMs: Date.now(), flowM3h: 12.5, totalM3: 5000 + seq / 1000, alarms: reading.alarms ?? [], batteryPct: reading.batteryPct ?? 90 });
  await meters.publishAsync(`meters/${meterId}/readings`, JSON.stringify(wire), { qos: 1 });
}

async function alertsOf(state: 'firing' | 'resolved' | 'all'): Promise<Alert[]> {
  const response = await fetch(`${world.baseUrl}/api/v1/alerts?state=${state}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { alerts: Alert[] }).alerts;
}

/** Waits until the API lists an alert of this rule and meter in this state, and answers it. */
async function alertFor(rule: Alert['rule'], meterId: string, state: Alert['state']): Promise<Alert> {
  const alerts = await eventually(() => alertsOf('all'), (list) => list.some((a) => a.rule === rule && a.meterId === meterId && a.state === state), WAIT_MS, `a ${state} ${rule} alert of ${meterId}`);
  return alerts.find((a) => a.rule === rule && a.meterId === meterId && a.state === state) as Alert;
}

const bannerIds = (page: Page): Promise<Array<string | null>> => page.locator('#alerts-banner li').evaluateAll((items) => items.map((li) => li.getAttribute('data-alert-id')));

/** The banner shows exactly the API's firing alerts, newest first (both are polled until they agree). */
async function bannerMatchesApi(page: Page): Promise<Alert[]> {
  let firing: Alert[] = [];
  await eventually(
    async () => {
      firing = await alertsOf('firing');
      return { want: firing.map((a) => a.id), got: await bannerIds(page) };
    },
    ({ want, got }) => JSON.stringify(want) === JSON.stringify(got),
    WAIT_MS,
    ({ want, got }) => `the banner lists ${JSON.stringify(got)}, the API ${JSON.stringify(want)}`,
    500,
  );
  return firing;
}

beforeAll(async () => {
  browser = await launchBrowser();
  dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-alerts-'));
  // A short history: the alerts here come from live readings (SPEC section 9's live rules).
  world = await startDashboardWorld({ fromMs: Date.now() - 3 * 3_600_000, toMs: Date.now() - 60_000 }, { alerts: { dataDir } });
  meters = await connectAsync(world.mqttUrl, { protocolVersion: 4, clientId: 'alerts-test-meters', reconnectPeriod: 0 });
});

afterAll(async () => {
  await meters?.endAsync(true);
  await browser?.close();
  await world?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('alerts in the dashboard', () => {
  let emptyPipe: Alert;
  let lowBattery: Alert;
  let reverseFlow: Alert;

  it('lists the firing alerts in a polite live region above the page, newest first, and badges each meter row', async () => {
    // D-MON: reverse flow, then a clean reading (resolved); D-DUT1: an empty pipe and a low battery (firing).
    await publish('D-MON', { alarms: ['reverse_flow'] });
    await alertFor('alarm', 'D-MON', 'firing');
    await publish('D-MON', {});
    reverseFlow = await alertFor('alarm', 'D-MON', 'resolved');
    await publish('D-DUT1', { alarms: ['empty_pipe'], batteryPct: 12 });
    emptyPipe = await alertFor('alarm', 'D-DUT1', 'firing');
    lowBattery = await alertFor('low_battery', 'D-DUT1', 'firing');

    const page = await browser.newPage();
    await page.goto(`${world.baseUrl}/#/live`);
    await page.locator('tr[data-meter="D-DUT1"]').waitFor();
    const banner = page.locator('#alerts-banner');
    // Announced politely: the list is an aria-live region, and the banner is named by its heading.
    expect(await banner.locator('ul').getAttribute('aria-live')).toBe('polite');
    const firing = await bannerMatchesApi(page);
    expect(firing.map((a) => a.id)).toEqual(expect.arrayContaining([emptyPipe.id, lowBattery.id]));
    expect(firing.map((a) => a.id)).not.toContain(reverseFlow.id);
    expect(await banner.getAttribute('aria-labelledby')).toBe('alerts-banner-title');
    expect(await banner.locator('#alerts-banner-title').textContent()).toBe(`Firing alerts: ${firing.length}`);
    // Each alert: its rule in words, its meter, since when (in the pilot's zone).
    const item = banner.locator(`li[data-alert-id="${emptyPipe.id}"]`);
    expect(await item.textContent()).toBe(`Meter alarm: empty pipe · D-DUT1 · since ${formatDateTime(LOCALE, TZ, Date.parse(emptyPipe.since))}`);
    expect(await banner.locator(`li[data-alert-id="${lowBattery.id}"] .rule`).textContent()).toBe('Low battery');
    expect(await page.locator('#tz').textContent()).toContain('Times in Asia/Almaty (UTC+05:00)');

    // The badge of each meter row: its count of firing alerts, their rules in its label.
    for (const meter of world.pilot.meters) {
      const own = firing.filter((a) => a.meterId === meter.id);
      const badge = page.locator(`tr[data-meter="${meter.id}"] [data-testid="alert-badge"]`);
      expect(await badge.count(), meter.id).toBe(own.length > 0 ? 1 : 0);
      if (own.length === 0) continue;
      expect(await badge.getAttribute('data-count')).toBe(String(own.length));
      expect(await badge.textContent()).toBe(`⚠ ${own.length}`);
    }
    const label = (await page.locator('tr[data-meter="D-DUT1"] [data-testid="alert-badge"]').getAttribute('aria-label')) as string;
    expect(label).toMatch(/^Firing alerts: \d+ — /);
    expect(label).toContain('Meter alarm: empty pipe');
    expect(label).toContain('Low battery');
    expect(await page.locator('tr[data-meter="D-DUT1"] [data-testid="alert-badge"]').getAttribute('title')).toBe(label);
    await screenshot(page, 'dashboard-alerts-live-desktop');

    // A new alert joins the list first, without the others being replaced (they are not announced again).
    await banner.locator('li').evaluateAll((items) => items.forEach((li) => li.setAttribute('data-test-mark', 'seen')));
    await publish('D-REF1', { alarms: ['tamper'] });
    const tamper = await alertFor('alarm', 'D-REF1', 'firing');
    const after = await bannerMatchesApi(page);
    expect(after[0]?.id).toBe(tamper.id);
    expect(await banner.locator(`li[data-alert-id="${tamper.id}"]`).getAttribute('data-test-mark')).toBeNull();
    for (const alert of firing) {
      if (after.some((a) => a.id === alert.id)) expect(await banner.locator(`li[data-alert-id="${alert.id}"]`).getAttribute('data-test-mark'), alert.rule).toBe('seen');
    }
    await page.close();
  });

  it('lists the history of the period on the Alerts page, firing and resolved, with times in the pilot\'s zone', async () => {
    const page = await browser.newPage();
    await page.goto(`${world.baseUrl}/#/alerts`);
    const table = page.locator('[data-testid="alerts-table"]');
    await table.waitFor();
    expect(await page.locator('nav [data-nav="alerts"]').getAttribute('class')).toBe('current');
    const all = await alertsOf('all');
    const rows = table.locator('tbody tr');
    await eventually(() => rows.count(), (n) => n === all.length, WAIT_MS, `${all.length} rows`);
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-alert-id')))).toEqual(all.map((a) => a.id));
    expect(await table.locator('th').allTextContents()).toEqual(['State', 'Alert', 'Meter', 'Since', 'Until', 'Duration', 'Details']);

    const resolved = table.locator(`tr[data-alert-id="${reverseFlow.id}"]`);
    expect(await resolved.getAttribute('data-state')).toBe('resolved');
    expect(await resolved.locator('td.state').textContent()).toBe('resolved');
    expect(await resolved.locator('td.rule').textContent()).toBe('Meter alarm: reverse flow');
    expect(await resolved.locator('td.meter').textContent()).toBe('D-MON');
    expect(await resolved.locator('td.since').textContent()).toBe(formatDateTime(LOCALE, TZ, Date.parse(reverseFlow.since)));
    expect(await resolved.locator('td.until').textContent()).toBe(formatDateTime(LOCALE, TZ, Date.parse(reverseFlow.until as string)));
    expect(await resolved.locator('td.details').textContent()).toBe('The meter\'s newest reading carries: reverse flow');
    const firing = table.locator(`tr[data-alert-id="${lowBattery.id}"]`);
    expect(await firing.locator('td.state').textContent()).toBe('firing');
    expect(await firing.locator('td.until').textContent()).toBe('—');
    expect(await firing.locator('td.duration').textContent()).toMatch(/, ongoing$/);
    expect(await firing.locator('td.details').textContent()).toBe('Battery 12 % (alert below 20 %)');

    // Filtered by state: the resolved ones only (the API's own filter).
    await page.locator('[data-testid="alerts-state"]').selectOption('resolved');
    await page.waitForURL(/state=resolved/);
    const resolvedIds = (await alertsOf('resolved')).map((a) => a.id);
    await eventually(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-alert-id'))), (ids) => JSON.stringify(ids) === JSON.stringify(resolvedIds), WAIT_MS, 'the resolved alerts only');
    expect(resolvedIds).toContain(reverseFlow.id);
    await screenshot(page, 'dashboard-alerts-page-desktop');
    await page.close();
  });

  it('fits a phone: the banner, the badges and the Alerts page as cards', async () => {
    const page = await browser.newPage({ width: 390, height: 844 });
    await page.goto(`${world.baseUrl}/#/live`);
    await page.locator('tr[data-meter="D-DUT1"] [data-testid="alert-badge"]').waitFor();
    await bannerMatchesApi(page);
    expect(await page.locator('html').evaluate((html) => html.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, 'dashboard-alerts-live-phone');
    // A meter's own page names its firing alerts.
    await page.goto(`${world.baseUrl}/#/meter/D-DUT1`);
    const own = page.locator('[data-testid="meter-alerts"]');
    await own.locator('.bad-text').waitFor();
    expect(await own.textContent()).toMatch(/^(?=.*Meter alarm: empty pipe)(?=.*Low battery).* · All alerts$/);
    await page.goto(`${world.baseUrl}/#/alerts`);
    await page.locator(`[data-testid="alerts-table"] tr[data-alert-id="${reverseFlow.id}"]`).waitFor();
    expect(await page.locator('[data-testid="alerts-table"] thead').isVisible()).toBe(false);
    expect(await page.locator('html').evaluate((html) => html.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, 'dashboard-alerts-page-phone');
    await page.close();
  });

  it('speaks Russian', async () => {
    const page = await browser.newPage();
    await page.goto(`${world.baseUrl}/#/live`);
    await page.locator(`#alerts-banner li[data-alert-id="${emptyPipe.id}"]`).waitFor();
    await page.locator('[data-testid="language"]').selectOption('ru');
    await page.locator('nav [data-nav="alerts"]', { hasText: 'Оповещения' }).waitFor();
    const firing = await bannerMatchesApi(page);
    expect(await page.locator('#alerts-banner-title').textContent()).toBe(`Активные оповещения: ${firing.length}`);
    expect(await page.locator(`#alerts-banner li[data-alert-id="${emptyPipe.id}"]`).textContent()).toBe(`Сигнал тревоги от счётчика: пустая труба · D-DUT1 · с ${formatDateTime('ru-RU', TZ, Date.parse(emptyPipe.since))}`);
    expect(await page.locator('tr[data-meter="D-DUT1"] [data-testid="alert-badge"]').getAttribute('aria-label')).toContain('Батарея разряжается');
    await page.goto(`${world.baseUrl}/#/alerts`);
    const row = page.locator(`[data-testid="alerts-table"] tr[data-alert-id="${reverseFlow.id}"]`);
    await row.waitFor();
    expect(await page.locator('[data-testid="alerts-table"] th').allTextContents()).toEqual(['Состояние', 'Оповещение', 'Счётчик', 'Начало', 'Окончание', 'Длительность', 'Подробности']);
    expect(await row.locator('td.state').textContent()).toBe('устранено');
    expect(await row.locator('td.since').textContent()).toBe(formatDateTime('ru-RU', TZ, Date.parse(reverseFlow.since)));
    expect(await page.locator(`[data-testid="alerts-table"] tr[data-alert-id="${lowBattery.id}"] td.details`).textContent()).toBe('Заряд батареи 12 % (порог 20 %)');
    await screenshot(page, 'dashboard-alerts-page-ru');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, 'dashboard-alerts-page-ru-phone');
    await page.close();
  });

  it('empties the banner when the alerts resolve', async () => {
    const page = await browser.newPage();
    await page.goto(`${world.baseUrl}/#/live`);
    await page.locator(`#alerts-banner li[data-alert-id="${emptyPipe.id}"]`).waitFor();
    // Clean readings resolve the alarms and the low battery of the meters that raised them.
    for (const meterId of ['D-DUT1', 'D-REF1']) await publish(meterId, {});
    await alertFor('low_battery', 'D-DUT1', 'resolved');
    await alertFor('alarm', 'D-REF1', 'resolved');
    const firing = await bannerMatchesApi(page);
    expect(firing.filter((a) => a.meterId === 'D-DUT1' || a.meterId === 'D-REF1')).toEqual([]);
    expect(await page.locator('tr[data-meter="D-DUT1"] [data-testid="alert-badge"]').count()).toBe(0);
    // With nothing firing, nothing shows (the empty list stays in the page as the live region).
    if (firing.length === 0) {
      expect(await page.locator('#alerts-banner').getAttribute('class')).toContain('none');
      expect((await page.locator('#alerts-banner').boundingBox())?.height ?? 0).toBe(0);
    }
    await page.close();
  });
});
