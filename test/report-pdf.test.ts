import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTranslator, formatErrorPct, loadLanguages } from '@flowpilot/i18n';
import type { MeterMetrics } from '@flowpilot/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, ensureDebianTool } from './helpers/browser.ts';
import { startDashboardWorld } from './helpers/dashboard-world.ts';
import type { DashboardWorld } from './helpers/dashboard-world.ts';

// The evaluator's PDF from the real API (influxd data → /api/v1/metrics → /api/v1/reports/pilot.pdf),
// turned into text with poppler's pdftotext: every meter, every verdict and every overall error
// exactly as /api/v1/metrics gives them, in each language.

const DAY_MS = 86_400_000;
const TZ_OFFSET_MS = 5 * 3_600_000; // Asia/Almaty
const today = new Date(Date.now() + TZ_OFFSET_MS).toISOString().slice(0, 10);
const fromMs = Date.parse(`${today}T00:00:00Z`) - TZ_OFFSET_MS - 3 * DAY_MS;
const toMs = fromMs + 2 * DAY_MS;

let world: DashboardWorld;
beforeAll(async () => {
  ensureDebianTool('pdftotext', 'poppler-utils');
  world = await startDashboardWorld({ fromMs: fromMs - 60_000, toMs: toMs + 60_000 });
});
afterAll(async () => {
  await world?.close();
});

/** pdftotext output with line breaks and runs of spaces folded, so a cell's text reads as one string. */
function pdfText(pdf: Buffer, name: string): string {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = join(ARTIFACTS_DIR, `${name}.pdf`);
  writeFileSync(file, pdf);
  return execFileSync('pdftotext', ['-enc', 'UTF-8', file, '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
}

describe('GET /api/v1/reports/pilot.pdf', () => {
  const languages = loadLanguages();
  const base = languages.find((l) => l.code === 'en');

  it.each(['en', 'ru'])('holds every meter, verdict and overall error of /api/v1/metrics (%s)', async (lang) => {
    const language = languages.find((l) => l.code === lang);
    if (!language || !base) throw new Error(`no strings for ${lang}`);
    const t = createTranslator(language, base);
    const metricsResponse = await fetch(`${world.baseUrl}/api/v1/metrics?from=${fromMs}&to=${toMs}`);
    expect(metricsResponse.status).toBe(200);
    const { meters } = (await metricsResponse.json()) as { meters: MeterMetrics[] };

    const response = await fetch(`${world.baseUrl}/api/v1/reports/pilot.pdf?from=${fromMs}&to=${toMs}&lang=${lang}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/pdf');
    const pdf = Buffer.from(await response.arrayBuffer());
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const text = pdfText(pdf, `report-${lang}`);

    expect(text).toContain(t('pdf.title'));
    expect(text).toContain(world.pilot.pilot.name);
    expect(text).toContain('Asia/Almaty (UTC+05:00)');
    for (const meter of world.pilot.meters) expect(text).toContain(t('pdf.meterSection', { id: meter.id }));
    const tests = meters.filter((m) => m.accuracy);
    expect(tests).toHaveLength(2);
    for (const m of tests) {
      const acc = m.accuracy as NonNullable<MeterMetrics['accuracy']>;
      expect(text, `${m.meterId} overall error`).toContain(formatErrorPct(language.locale, acc.overall.error));
      for (const zone of ['lower', 'upper', 'overall'] as const) {
        // The verdict with the error it was given for, as the section's zone table prints them in a row.
        expect(text, `${m.meterId} ${zone}`).toContain(`${t(`zone.${zone}`)} ${formatErrorPct(language.locale, acc[zone].error)}`);
        expect(text).toContain(t(`verdict.${acc[zone].verdict}`));
      }
    }
    expect(text).toContain(t('pdf.methodology'));
    // The error curve's points come from /error-curve: its legend is drawn only with the chart.
    expect(text).toContain(t('curve.measured'));
    expect(text).toContain(t('pdf.signature'));
  });

  it('answers a bad period with a 400 that says what to fix', async () => {
    const response = await fetch(`${world.baseUrl}/api/v1/reports/pilot.pdf?from=${toMs}&to=${fromMs}`);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.message).toMatch(/must be after/);
  });
});
