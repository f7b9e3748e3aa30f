import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTranslator, formatErrorPct, formatMpePct, formatNumber, loadLanguages } from '@flowpilot/i18n';
import type { Translate } from '@flowpilot/i18n';
import { EXCLUSION_REASONS } from '@flowpilot/metrics';
import type { AccuracyEvidence, MeterMetrics } from '@flowpilot/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, ensureDebianTool } from './helpers/browser.ts';
import { startDashboardWorld } from './helpers/dashboard-world.ts';
import type { DashboardWorld } from './helpers/dashboard-world.ts';

// The evaluator's PDF from the real API (influxd data → /api/v1/metrics → /api/v1/reports/pilot.pdf),
// turned into text with poppler's pdftotext: every meter, and for each meter under test the
// evidence of every zone's and bin's verdict exactly as /api/v1/metrics gives it, the exclusions,
// and the traceability page (the commit and pilot file SHA-256 the API was given, the SHA-256 of
// GET intervals.csv for the same window, n/a for the unknown rejected count), in each language;
// the file itself is PDF/A-2b with every font embedded.

const DAY_MS = 86_400_000;
const TZ_OFFSET_MS = 5 * 3_600_000; // Asia/Almaty
const today = new Date(Date.now() + TZ_OFFSET_MS).toISOString().slice(0, 10);
const fromMs = Date.parse(`${today}T00:00:00Z`) - TZ_OFFSET_MS - 3 * DAY_MS;
const toMs = fromMs + 2 * DAY_MS;
/** What apps/flowpilot passes in (loadPilotFile, softwareCommit); here stand-ins the PDF must repeat. */
const PILOT_FILE_SHA256 = createHash('sha256').update('the dashboard pilot file').digest('hex');
const COMMIT = 'c0ffee0123456789abcdef0123456789abcdef01';

let world: DashboardWorld;
beforeAll(async () => {
  ensureDebianTool('pdftotext', 'poppler-utils');
  world = await startDashboardWorld({ fromMs: fromMs - 60_000, toMs: toMs + 60_000 }, { provenance: { pilotFileSha256: PILOT_FILE_SHA256, commit: COMMIT } });
});
afterAll(async () => {
  await world?.close();
});

/** Writes the PDF to the test artifacts and runs a poppler tool on it. */
function poppler(tool: 'pdftotext' | 'pdffonts' | 'pdfinfo', pdf: Buffer, name: string, args: readonly string[] = []): string {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = join(ARTIFACTS_DIR, `${name}.pdf`);
  writeFileSync(file, pdf);
  return execFileSync(tool, tool === 'pdftotext' ? ['-enc', 'UTF-8', ...args, file, '-'] : [...args, file], { encoding: 'utf8' });
}

/** Runs of white space (with the no-break spaces of Russian thousands) as one space. */
const fold = (text: string): string => text.replace(/\s+/g, ' ');
/** pdftotext in physical layout, white space folded: each table row's first line reads as one string. */
const pdfText = (pdf: Buffer, name: string): string => fold(poppler('pdftotext', pdf, name, ['-layout']));

function ruleWords(t: Translate, e: AccuracyEvidence): string {
  if (e.rule === 'intervals') return t('rule.intervals', { n: e.minIntervals });
  if (e.rule === 'simple acceptance') return t('rule.simpleAcceptance');
  if (e.rule === 'guarded acceptance') return t('rule.guardedAcceptance');
  if (e.rule === 'zones') return t('rule.zones');
  return t('rule.bin', { bin: e.rule.replace(/^bin /, '') });
}

async function getPdf(lang: string): Promise<Buffer> {
  const response = await fetch(`${world.baseUrl}/api/v1/reports/pilot.pdf?from=${fromMs}&to=${toMs}&lang=${lang}`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/pdf');
  const pdf = Buffer.from(await response.arrayBuffer());
  expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
  return pdf;
}

describe('GET /api/v1/reports/pilot.pdf', () => {
  const languages = loadLanguages();
  const base = languages.find((l) => l.code === 'en');

  it.each(['en', 'ru'])('holds every meter and, per zone and test-flow bin, the verdict, U, rule, temperature and exclusions of /api/v1/metrics (%s)', async (lang) => {
    const language = languages.find((l) => l.code === lang);
    if (!language || !base) throw new Error(`no strings for ${lang}`);
    const t = createTranslator(language, base);
    const locale = language.locale;
    const metricsResponse = await fetch(`${world.baseUrl}/api/v1/metrics?from=${fromMs}&to=${toMs}`);
    expect(metricsResponse.status).toBe(200);
    const { meters } = (await metricsResponse.json()) as { meters: MeterMetrics[] };
    const text = pdfText(await getPdf(lang), `report-${lang}`);

    expect(text).toContain(t('pdf.title'));
    expect(text).toContain(world.pilot.pilot.name);
    expect(text).toContain('Asia/Almaty (UTC+05:00)');
    for (const meter of world.pilot.meters) expect(text).toContain(t('pdf.meterSection', { id: meter.id }));
    const tests = meters.filter((m) => m.accuracy);
    expect(tests).toHaveLength(2);
    for (const m of tests) {
      const acc = m.accuracy as NonNullable<MeterMetrics['accuracy']>;
      const groups: Array<[string, AccuracyEvidence]> = [['lower', acc.lower], ['upper', acc.upper], ['overall', acc.overall], ...acc.bins.map((b) => [b.bin, b] as [string, AccuracyEvidence])];
      for (const [name, e] of groups) {
        // The first line of the zone's or bin's row in the evidence table.
        const row = [
          String(e.intervals),
          formatNumber(locale, e.volumeRefM3, 3),
          formatErrorPct(locale, e.error),
          formatMpePct(locale, e.mpe),
          `${formatNumber(locale, e.uncertainty.expandedPct, 3)} %`,
          formatNumber(locale, e.uncertaintyToMpe, 2),
          t(`verdict.${e.verdict}`).split(' ')[0],
        ].join(' ');
        expect(text, `${m.meterId} ${name}`).toContain(fold(row));
        expect(text, `${m.meterId} ${name}`).toContain(t(`verdict.${e.verdict}`));
        expect(text, `${m.meterId} ${name} rule`).toContain(ruleWords(t, e));
        const budget = [e.uncertainty.referencePct, e.uncertainty.resolutionPct, e.uncertainty.repeatabilityPct].map((u) => formatNumber(locale, u, 3)).join(' ');
        expect(text, `${m.meterId} ${name} U budget`).toContain(fold(`${budget} ${e.uncertainty.days}`));
        const c = (v: number | null) => formatNumber(locale, v, 1);
        const temperature = e.temperature.medianC === null ? '—' : `${c(e.temperature.minC)} / ${c(e.temperature.medianC)} / ${c(e.temperature.maxC)}`;
        // Whose temperature, then min / median / max.
        expect(text, `${m.meterId} ${name} temperature`).toContain(fold(`${t(`pdf.tempSource.${e.temperature.source}`)} ${temperature}`));
      }
      for (const reason of EXCLUSION_REASONS) expect(text, `${m.meterId} ${reason}`).toContain(`${t(`exclusion.${reason}`)} ${reason} ${acc.excluded[reason]}`);
      expect(text).toContain(`${t('pdf.pairedIntervals')} ${acc.pairedIntervals}`);
    }
    // The fixture's water is at 12 °C; its pilot file gives no calibration and no resolution.
    expect(text).toContain(`${formatNumber(locale, 12, 1)} / ${formatNumber(locale, 12, 1)} / ${formatNumber(locale, 12, 1)}`);
    expect(text).toContain(t('pdf.noteRefUncertainty'));
    expect(text).toContain(`${t('pdf.refUncertainty')} ${t('pdf.notGiven')}`);
    expect(text).toContain(t('pdf.resolution.inferred'));
    expect(text).toContain(t('pdf.methodology'));
    // The error curve's points come from /error-curve: its legend is drawn only with the chart.
    expect(text).toContain(t('curve.measured'));
    expect(text).toContain(t('pdf.signature'));
  });

  it.each(['en', 'ru'])('traces the report: commit, pilot file SHA-256, the SHA-256 of GET intervals.csv for the window, n/a for unknown counts (%s)', async (lang) => {
    const language = languages.find((l) => l.code === lang);
    if (!language || !base) throw new Error(`no strings for ${lang}`);
    const t = createTranslator(language, base);
    const text = pdfText(await getPdf(lang), `report-trace-${lang}`);
    expect(text).toContain(`${t('trace.commit')} ${COMMIT}`);
    expect(text).toContain(`${t('trace.pilotFile')} ${PILOT_FILE_SHA256}`);
    for (const meter of world.pilot.meters.filter((m) => m.role === 'test')) {
      const response = await fetch(`${world.baseUrl}/api/v1/meters/${meter.id}/intervals.csv?from=${fromMs}&to=${toMs}`);
      expect(response.status).toBe(200);
      const bytes = Buffer.from(await response.arrayBuffer());
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      expect(response.headers.get('x-content-sha256')).toBe(sha256);
      // Rows of the CSV (less its header) beside the hash of its bytes.
      const rows = bytes.toString('utf8').split('\r\n').filter((line) => line !== '').length - 1;
      expect(text, meter.id).toContain(`${meter.id} ${rows} ${sha256}`);
    }
    expect(text).toContain(`${t('trace.windowUtc')} ${new Date(fromMs).toISOString()} – ${new Date(toMs).toISOString()}`);
    // This API has no dead-letter store: the rejected count is unknown, never 0 (SPEC section 4).
    expect(text).toContain(`${t('trace.rejected')} ${t('pdf.notApplicable')}`);
    expect(text).toContain(`${t('kpi.rejected')} ${t('kpi.unknown')}`);
  });

  it('is an archival PDF/A-2b: every font embedded and subset, pdfaid part 2 conformance B in the XMP metadata', async () => {
    ensureDebianTool('pdffonts', 'poppler-utils');
    const pdf = await getPdf('ru');
    const fonts = poppler('pdffonts', pdf, 'report-fonts')
      .split('\n')
      .slice(2)
      .filter((line) => line.trim() !== '');
    expect(fonts.length).toBeGreaterThan(0);
    for (const line of fonts) {
      const [, , , , emb, sub] = line.trim().split(/\s+/);
      expect([emb, sub], line).toEqual(['yes', 'yes']);
    }
    const meta = poppler('pdfinfo', pdf, 'report-fonts', ['-meta']);
    expect(meta).toContain('<pdfaid:part>2</pdfaid:part>');
    expect(meta).toContain('<pdfaid:conformance>B</pdfaid:conformance>');
  });

  it('answers a bad period with a 400 that says what to fix', async () => {
    const response = await fetch(`${world.baseUrl}/api/v1/reports/pilot.pdf?from=${toMs}&to=${fromMs}`);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.message).toMatch(/must be after/);
  });
});
