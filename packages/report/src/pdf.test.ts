import { createHash } from 'node:crypto';
import { createTranslator, formatErrorPct, formatMpePct, formatNumber, loadLanguages } from '@flowpilot/i18n';
import type { Language, Translate } from '@flowpilot/i18n';
import { EXCLUSION_REASONS } from '@flowpilot/metrics';
import type { AccuracyEvidence, ErrorCurveBin } from '@flowpilot/metrics';
import { describe, expect, it } from 'vitest';
import { collectReportData } from './collect.ts';
import { createHttpMetricsSource } from './metrics-source.ts';
import type { MetricsSource } from './metrics-source.ts';
import { renderReportPdf } from './pdf.ts';
import { errorCurveSvg, mpeEnvelope } from './svg-charts.ts';
import { FIXTURE_COMMIT, FIXTURE_INTERVALS_SHA256, FIXTURE_PILOT_SHA256, FIXTURE_WINDOW, fixturePilot, fixtureReportData, fold, hasPoppler, pdfText, poppler } from './test-support.ts';
import type { ReportData } from './types.ts';

// The evaluator's PDF (issue 11): the evidence behind each verdict, traceability and PDF/A-2b,
// read back with poppler's pdftotext, pdffonts and pdfinfo.

const languages = loadLanguages();
const byCode = (code: string): Language => {
  const language = languages.find((l) => l.code === code);
  if (!language) throw new Error(`no ${code} strings`);
  return language;
};
const en = byCode('en');
const GENERATED_MS = Date.parse('2026-11-23T01:00:00Z');

function render(data: ReportData, language: Language, commit = FIXTURE_COMMIT): Promise<Buffer> {
  return renderReportPdf(data, { language, baseLanguage: en, generatedAtMs: GENERATED_MS, softwareVersion: '0.1.0', commit, pilotFileSha256: FIXTURE_PILOT_SHA256, dataSource: 'fixture' });
}

/** The rule that decided a verdict as the PDF words it (rule.* strings). */
function ruleWords(t: Translate, e: AccuracyEvidence): string {
  if (e.rule === 'intervals') return t('rule.intervals', { n: e.minIntervals });
  if (e.rule === 'simple acceptance') return t('rule.simpleAcceptance');
  if (e.rule === 'guarded acceptance') return t('rule.guardedAcceptance');
  if (e.rule === 'zones') return t('rule.zones');
  return t('rule.bin', { bin: e.rule.replace(/^bin /, '') });
}

describe.runIf(hasPoppler())('the PDF report: evidence of every verdict (issue 11)', () => {
  const data = fixtureReportData(null);
  const tested = data.meters.filter((m) => m.accuracy !== null);

  it('the fixture holds every verdict and every rule', () => {
    const all = tested.flatMap((m) => {
      const acc = m.accuracy as NonNullable<typeof m.accuracy>;
      return [acc.lower, acc.upper, acc.overall, ...acc.bins];
    });
    expect(new Set(all.map((e) => e.verdict))).toEqual(new Set(['pass', 'fail', 'inconclusive', 'insufficient']));
    expect(new Set(all.map((e) => e.rule))).toEqual(new Set(['simple acceptance', 'guarded acceptance', 'intervals', 'zones', 'bin upper-2']));
  });

  it.each(['en', 'ru'])('prints each zone\'s and bin\'s intervals, V_ref, E, MPE, U, U/MPE, verdict, rule and temperature (%s)', async (code) => {
    const language = byCode(code);
    const t = createTranslator(language, en);
    const locale = language.locale;
    const text = pdfText(await render(data, language));
    for (const m of tested) {
      const acc = m.accuracy as NonNullable<typeof m.accuracy>;
      for (const [name, e] of [['lower', acc.lower], ['upper', acc.upper], ['overall', acc.overall], ...acc.bins.map((b) => [b.bin, b] as const)] as const) {
        const row = [
          String(e.intervals),
          formatNumber(locale, e.volumeRefM3, 3),
          formatErrorPct(locale, e.error),
          formatMpePct(locale, e.mpe),
          `${formatNumber(locale, e.uncertainty.expandedPct, 3)} %`,
          formatNumber(locale, e.uncertaintyToMpe, 2),
          // The verdict's first word: a long one ("СООТВЕТСТВИЕ НЕ УСТАНОВЛЕНО") wraps in its cell.
          t(`verdict.${e.verdict}`).split(' ')[0],
        ].join(' ');
        // The first line of the zone's or bin's row in the evidence table.
        expect(text, `${m.meterId} ${name}`).toContain(fold(row));
        expect(text, `${m.meterId} ${name}`).toContain(t(`verdict.${e.verdict}`));
        expect(text, `${m.meterId} ${name} rule`).toContain(ruleWords(t, e));
        // The budget: u_ref, u_res, u_rep and the days, then the temperature's source, min / median / max.
        const budget = [e.uncertainty.referencePct, e.uncertainty.resolutionPct, e.uncertainty.repeatabilityPct].map((u) => formatNumber(locale, u, 3)).join(' ');
        expect(text, `${m.meterId} ${name} budget`).toContain(fold(`${budget} ${e.uncertainty.days}`));
        const c = (v: number | null) => formatNumber(locale, v, 1);
        const temperature = e.temperature.medianC === null ? '—' : `${c(e.temperature.minC)} / ${c(e.temperature.medianC)} / ${c(e.temperature.maxC)}`;
        // Whose temperature, then min / median / max.
        expect(text, `${m.meterId} ${name} temperature`).toContain(fold(`${t(`pdf.tempSource.${e.temperature.source}`)} ${temperature}`));
      }
    }
    // Warm afternoons: the upper zone's median is 18 °C, some of its volume above 30 °C.
    expect(text).toContain(`${formatNumber(locale, 18, 1)} / ${formatNumber(locale, 18, 1)} / ${formatNumber(locale, 32, 1)}`);
    expect(text).toContain(t('pdf.tempSource.reference'));
    // upper-4 holds one day of data: its u_rep is counted as 0, and the PDF says so.
    expect(text).toContain(t('pdf.noteRepeatability', { min: 3, groups: 'upper-4 (1)' }));
    for (const verdict of ['pass', 'fail', 'inconclusive', 'insufficient']) expect(text).toContain(t(`verdict.${verdict}`));
  });

  it.each(['en', 'ru'])('counts the excluded intervals by reason, with the registers and the reference\'s calibration (%s)', async (code) => {
    const language = byCode(code);
    const t = createTranslator(language, en);
    const text = pdfText(await render(data, language));
    for (const m of tested) {
      const acc = m.accuracy as NonNullable<typeof m.accuracy>;
      for (const reason of EXCLUSION_REASONS) expect(text, `${m.meterId} ${reason}`).toContain(`${t(`exclusion.${reason}`)} ${reason} ${acc.excluded[reason]}`);
      expect(text).toContain(`${t('pdf.pairedIntervals')} ${acc.pairedIntervals}`);
    }
    expect(tested.map((m) => m.accuracy?.excluded.alarm)).toEqual([11, 0]);
    expect(tested.map((m) => m.accuracy?.excluded.reset)).toEqual([0, 1]);
    // F-DUT1's register is inferred from its data, F-DUT2's and the reference's come from the pilot file.
    const m3 = (value: number) => `${new Intl.NumberFormat(language.locale, { maximumSignificantDigits: 6 }).format(value)} ${t('pdf.unitM3')}`;
    expect(text).toContain(`${t('pdf.resolutionOf', { id: 'F-DUT1' })} ${m3(tested[0]?.accuracy?.resolution.test.m3 as number)} ${t('pdf.resolution.inferred')}`);
    expect(text).toContain(`${t('pdf.resolutionOf', { id: 'F-DUT2' })} ${m3(0.01)} ${t('pdf.resolution.pilotFile')}`);
    expect(text).toContain(`${t('pdf.resolutionOf', { id: 'F-REF' })} ${m3(0.001)} ${t('pdf.resolution.pilotFile')}`);
    expect(text).toContain(`${t('pdf.refSerial')} REF-0042`);
    expect(text).toContain(`${t('pdf.refCertificate')} CAL-2026-117`);
    expect(text).toContain(`${t('pdf.refCalibratedOn')} 2026-06-01`);
    expect(text).toContain(`${t('pdf.refUncertainty')} ${formatNumber(language.locale, 0.3, 2)} %`);
  });

  it('says "not given" for a reference without calibration, and that u_ref was counted as 0', async () => {
    const t = createTranslator(en, en);
    const bare: ReportData = {
      ...data,
      meters: data.meters.map((m) => (m.accuracy ? { ...m, accuracy: { ...m.accuracy, reference: { serial: null, certificate: null, calibratedOn: null, expandedUncertaintyPct: null } } } : m)),
    };
    const text = pdfText(await render(bare, en));
    expect(text).toContain(`${t('pdf.refSerial')} ${t('pdf.notGiven')}`);
    expect(text).toContain(`${t('pdf.refUncertainty')} ${t('pdf.notGiven')}`);
    expect(text).toContain(t('pdf.noteRefUncertainty'));
  });

  it.each(['en', 'ru'])('traces the report: commit, pilot file and intervals.csv SHA-256, the window in local time and UTC, n/a for unknown counts (%s)', async (code) => {
    const language = byCode(code);
    const t = createTranslator(language, en);
    const text = pdfText(await render(data, language));
    expect(text).toContain(`${t('trace.commit')} ${FIXTURE_COMMIT}`);
    expect(text).toContain(`${t('trace.pilotFile')} ${FIXTURE_PILOT_SHA256}`);
    for (const m of tested) expect(text).toContain(`${m.meterId} ${m.accuracy?.pairedIntervals} ${FIXTURE_INTERVALS_SHA256[m.meterId]}`);
    expect(text).toContain(`${t('trace.windowUtc')} 2026-11-19T19:00:00.000Z – 2026-11-22T19:00:00.000Z`);
    expect(text).toContain('Asia/Almaty (UTC+05:00)');
    expect(text).toContain('2026-11-22T19:00:03.000Z – 2026-11-22T19:00:05.500Z');
    expect(text).toContain(`from=${FIXTURE_WINDOW.fromMs}&to=${FIXTURE_WINDOW.toMs}`);
    // No dead-letter store: the rejected count is unknown, never 0 (SPEC section 4).
    expect(text).toContain(`${t('trace.rejected')} ${t('pdf.notApplicable')}`);
    expect(text).toContain(`${t('kpi.rejected')} ${t('kpi.unknown')}`);
    // Every rule of SPEC section 4 in words, in this language.
    for (const key of ['method.pairing', 'method.zones', 'method.bins', 'method.exclusions', 'method.mpe', 'method.uncertainty', 'method.verdict', 'method.volume', 'method.delivery', 'method.latency']) {
      expect(text).toContain(t(key).replace(/\s+/g, ' ').slice(0, 60));
    }
  });

  it('counts known rejections, and says the commit is unknown when the caller could not find it', async () => {
    const t = createTranslator(en, en);
    const text = pdfText(await render(fixtureReportData({ ERR_READING_SCHEMA: 2 }), en, 'unknown'));
    expect(text).toContain(`${t('trace.rejected')} 8`);
    expect(text).toContain(`${t('trace.commit')} ${t('trace.unknown')}`);
  });

  it('is PDF/A-2b: every font embedded and subset, the pdfaid part and conformance in its XMP', async () => {
    const pdf = await render({ ...data, pilot: { ...data.pilot, name: 'Water & sewer <Almaty>' } }, byCode('ru'));
    const fonts = poppler('pdffonts', pdf)
      .split('\n')
      .slice(2)
      .filter((line) => line.trim() !== '');
    expect(fonts.length).toBeGreaterThanOrEqual(2);
    for (const line of fonts) {
      // name, type (two words), encoding, then emb, sub, uni.
      const [name, , , , emb, sub] = line.trim().split(/\s+/);
      expect(name, line).toMatch(/^[A-Z]{6}\+DejaVuSans/);
      expect([emb, sub], line).toEqual(['yes', 'yes']);
    }
    const meta = poppler('pdfinfo', pdf, ['-meta']);
    expect(meta).toContain('<pdfaid:part>2</pdfaid:part>');
    expect(meta).toContain('<pdfaid:conformance>B</pdfaid:conformance>');
    // The pilot's name went into the XMP packet without breaking its XML.
    expect(meta).not.toMatch(/Water & sewer/);
    expect(meta).toContain('Water ＆ sewer ＜Almaty＞');
    expect(poppler('pdfinfo', pdf)).toMatch(/PDF version:\s+1\.7/);
    expect(pdf.includes('/OutputIntents')).toBe(true);
    // Cyrillic comes out as Cyrillic.
    const text = pdfText(pdf);
    expect(text).toContain('Прослеживаемость');
    expect(text).toContain('СООТВЕТСТВИЕ НЕ УСТАНОВЛЕНО');
  });
});

describe('the error curve\'s MPE envelope (SPEC section 4)', () => {
  const accuracy = fixtureReportData().meters.find((m) => m.meterId === 'F-DUT1')?.accuracy;
  if (!accuracy) throw new Error('fixture without accuracy');
  const bin = (qFromM3h: number, qToM3h: number, zone: 'lower' | 'upper', mpe: number): ErrorCurveBin => ({
    qFromM3h,
    qToM3h,
    qMidM3h: Math.sqrt(qFromM3h * qToM3h),
    zone,
    error: 1,
    intervals: 40,
    mpe,
    volumeTestM3: 1.01,
    volumeRefM3: 1,
  });
  const bins = [bin(0.1, 0.16, 'lower', 5), bin(0.16, 1, 'upper', 2), bin(1, 8, 'upper', 2.4), bin(8, 12.5, 'upper', 3)];

  it('is each bin\'s own MPE over its flow range, not one step at Q2', () => {
    expect(mpeEnvelope(bins, accuracy)).toEqual([
      { fromM3h: 0.1, toM3h: 0.16, mpe: 5 },
      { fromM3h: 0.16, toM3h: 1, mpe: 2 },
      { fromM3h: 1, toM3h: 8, mpe: 2.4 },
      { fromM3h: 8, toM3h: 12.5, mpe: 3 },
    ]);
    // Without a curve, the two zones' MPEs.
    expect(mpeEnvelope([], accuracy).map((s) => s.mpe)).toEqual([accuracy.lower.mpe, accuracy.upper.mpe]);
  });

  it('draws a band per bin and a stepped limit through every bin', () => {
    const svg = errorCurveSvg(bins, accuracy, { xAxis: 'q', yAxis: 'E', mpe: 'MPE', measured: 'E', number: (v, d) => v.toFixed(d) });
    expect(svg.match(/fill="#dcfce7"/g)).toHaveLength(bins.length);
    const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1] as string);
    expect(paths).toHaveLength(2);
    for (const path of paths) expect(path.match(/H/g)).toHaveLength(bins.length);
  });
});

describe('collectReportData', () => {
  it('reads the clock around the requests and hashes each test meter\'s intervals.csv over the window the figures are for', async () => {
    const data = fixtureReportData();
    const clamped = { fromMs: FIXTURE_WINDOW.fromMs, toMs: FIXTURE_WINDOW.toMs - 3_600_000 };
    const hashed: Array<[string, number, number]> = [];
    const source: MetricsSource = {
      metrics: async () => ({ window: clamped, meters: data.meters }),
      dailyMetrics: async () => ({ window: clamped, days: data.days }),
      errorCurve: async () => [],
      intervalsSha256: async (meterId, window) => {
        hashed.push([meterId, window.fromMs, window.toMs]);
        return `sha-of-${meterId}`;
      },
    };
    let now = 1_000;
    const result = await collectReportData({ pilot: fixturePilot, metrics: source, fromMs: FIXTURE_WINDOW.fromMs, toMs: FIXTURE_WINDOW.toMs, clock: () => (now += 500) });
    expect(hashed).toEqual([
      ['F-DUT1', clamped.fromMs, clamped.toMs],
      ['F-DUT2', clamped.fromMs, clamped.toMs],
    ]);
    expect(result.intervalsSha256).toEqual({ 'F-DUT1': 'sha-of-F-DUT1', 'F-DUT2': 'sha-of-F-DUT2' });
    expect(result.readAt).toEqual({ startMs: 1_500, endMs: 2_000 });
    expect(result.window).toEqual(clamped);
  });
});

describe('the HTTP MetricsSource\'s intervalsSha256', () => {
  const csv = 'meter,reference\r\nF-DUT1,F-REF\r\n'.repeat(50);
  const sha256 = createHash('sha256').update(csv).digest('hex');
  const window = { fromMs: 1_000, toMs: 2_000 };

  function fetchAnswering(body: string, init: ResponseInit, seen: string[] = []): typeof fetch {
    return (async (url: string | URL | Request, request?: RequestInit) => {
      seen.push(`${String(url)} ${JSON.stringify(request?.headers ?? {})}`);
      return new Response(body, init);
    }) as typeof fetch;
  }

  it('hashes the bytes of GET intervals.csv for the window, and checks them against X-Content-SHA256', async () => {
    const seen: string[] = [];
    const source = createHttpMetricsSource('http://api.test/', { token: 'fp_x', fetch: fetchAnswering(csv, { status: 200, headers: { 'x-content-sha256': sha256 } }, seen) });
    expect(await source.intervalsSha256('F DUT/1', window)).toBe(sha256);
    expect(seen[0]).toContain('http://api.test/api/v1/meters/F%20DUT%2F1/intervals.csv?from=1000&to=2000');
    expect(seen[0]).toContain('Bearer fp_x');
    // Without the header, the bytes' own hash.
    const plain = createHttpMetricsSource('http://api.test', { fetch: fetchAnswering(csv, { status: 200 }) });
    expect(await plain.intervalsSha256('F-DUT1', window)).toBe(sha256);
  });

  it('refuses bytes that do not match the header (a download cut short) as ERR_UNREACHABLE', async () => {
    const source = createHttpMetricsSource('http://api.test', { fetch: fetchAnswering(csv.slice(0, 100), { status: 200, headers: { 'x-content-sha256': sha256 } }) });
    await expect(source.intervalsSha256('F-DUT1', window)).rejects.toMatchObject({ code: 'ERR_UNREACHABLE', message: expect.stringContaining('X-Content-SHA256') });
  });

  it('passes the API\'s error on with its code', async () => {
    const body = JSON.stringify({ error: { code: 'ERR_VALIDATION', message: 'Meter "F-REF" is a reference meter; paired intervals need a test meter installed in series with a reference' } });
    const source = createHttpMetricsSource('http://api.test', { fetch: fetchAnswering(body, { status: 400, headers: { 'content-type': 'application/json' } }) });
    await expect(source.intervalsSha256('F-REF', window)).rejects.toMatchObject({ code: 'ERR_VALIDATION', message: expect.stringContaining('reference meter') });
  });
});
