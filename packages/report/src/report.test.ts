import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTranslator, loadLanguages } from '@flowpilot/i18n';
import { computeMeterMetrics, localDays } from '@flowpilot/metrics';
import type { MeterConfig } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { progressBar } from './create-report.ts';
import { kpiRows } from './kpi.ts';
import { renderReportPdf } from './pdf.ts';
import type { ReportData } from './types.ts';
import { metersFromMetricsJson } from './metrics-json.ts';
import { logTicks, niceTicks } from './svg-charts.ts';

describe('report helpers', () => {
  it('splits a period into local days of the pilot, cut to the window', () => {
    const fromMs = Date.parse('2026-11-10T00:00:00+05:00');
    const days = localDays({ fromMs: fromMs + 3_600_000, toMs: fromMs + 2 * 86_400_000 }, 'Asia/Almaty');
    expect(days.map((d) => d.date)).toEqual(['2026-11-10', '2026-11-11']);
    expect(days[0]?.window.fromMs).toBe(fromMs + 3_600_000);
    expect(days[1]?.window.fromMs).toBe(fromMs + 86_400_000);
  });

  it('reads the per-meter metrics out of the /api/v1/metrics envelope', () => {
    const meter = { meterId: 'A' };
    expect(metersFromMetricsJson({ pilotId: 'p', meters: [meter] })).toEqual([meter]);
    expect(metersFromMetricsJson([meter])).toEqual([meter]);
    expect(() => metersFromMetricsJson({ nothing: true })).toThrow(/per-meter metrics/);
  });

  it('picks round ticks', () => {
    expect(niceTicks(0, 100, 4)).toEqual([0, 50, 100]);
    expect(logTicks(0.4, 160)).toEqual([0.5, 1, 2, 5, 10, 20, 50, 100]);
  });

  it('draws a progress bar', () => {
    expect(progressBar({ done: 3, total: 6, stage: 'metrics' }, 10)).toBe('[█████░░░░░] 3/6 metrics');
  });
});

describe('unknown rejected counts and the night\'s reverse volume (SPEC section 4)', () => {
  const languages = loadLanguages();
  const en = languages.find((l) => l.code === 'en');
  const ru = languages.find((l) => l.code === 'ru');
  if (!en || !ru) throw new Error('no en or ru strings');
  const meter = { id: 'M1', site: 'S', role: 'monitor', intervalSec: 60 } as MeterConfig;
  const pilot = { timezone: 'Asia/Almaty', nightWindow: { start: '02:00', end: '04:00' } };
  // Local day 20 Nov 2026 in Almaty; its night 02:00-04:00 = 19 Nov 21:00-23:00Z, every minute:
  // +2 m³/h the first hour, −2 m³/h the second → forward mean 1, reverse 119/60 = 1.983 m³.
  const window = { fromMs: Date.UTC(2026, 10, 19, 19), toMs: Date.UTC(2026, 10, 20, 19) };
  const night = Date.UTC(2026, 10, 19, 21);
  const readings = Array.from({ length: 120 }, (_, i) => ({ tsMs: night + i * 60_000, seq: i, flowM3h: i < 60 ? 2 : -2, totalM3: i }));
  const metricsWith = (rejected: Record<string, number> | null) => ({ ...computeMeterMetrics(readings, meter, window, pilot, rejected), errorCurve: null });
  const row = (lang: typeof en, rejected: Record<string, number> | null, label: string) =>
    kpiRows(metricsWith(rejected), createTranslator(lang, en), lang.locale).find(([key]) => key === createTranslator(lang, en)(label))?.[1];

  it('prints n/a (en) and н/д (ru) for a null rejected count, 0 for a known none', () => {
    expect(row(en, null, 'kpi.rejected')).toBe('n/a');
    expect(row(ru, null, 'kpi.rejected')).toBe('н/д');
    expect(row(en, {}, 'kpi.rejected')).toBe('0');
    expect(row(en, { ERR_READING_SCHEMA: 2 }, 'kpi.rejected')).toBe('2 (ERR_READING_SCHEMA: 2)');
  });

  it('gives the minimum night flow with the night\'s reverse volume beside it', () => {
    expect(row(en, null, 'kpi.nightFlow')).toBe('1.000 (2026-11-20, reverse 1.983 m³); 1.000 (2026-11-20, reverse 1.983 m³)');
    expect(row(ru, null, 'kpi.nightFlow')).toBe('1,000 (2026-11-20, обратный объём 1,983 м³); 1,000 (2026-11-20, обратный объём 1,983 м³)');
  });

  it.runIf(hasPdftotext())('the PDF text shows n/a for the rejected count and says why', async () => {
    const data: ReportData = {
      pilot: { id: 'p', name: 'Pilot', ...pilot, meters: [meter] },
      window,
      meters: [metricsWith(null)],
      days: [{ date: '2026-11-20', window, meters: [metricsWith(null)] }],
      readAt: { startMs: window.toMs, endMs: window.toMs },
      intervalsSha256: {},
    };
    const pdf = await renderReportPdf(data, { language: en, baseLanguage: en, generatedAtMs: window.toMs, softwareVersion: 'test', commit: 'unknown', pilotFileSha256: null, dataSource: 'test' });
    const dir = mkdtempSync(join(tmpdir(), 'flowpilot-report-'));
    try {
      writeFileSync(join(dir, 'r.pdf'), pdf);
      const text = execFileSync('pdftotext', ['-enc', 'UTF-8', join(dir, 'r.pdf'), '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
      expect(text).toContain('Rejected n/a');
      expect(text).toContain('n/a: this API has no access to the store of rejected messages');
      expect(text).not.toContain('No message was rejected');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function hasPdftotext(): boolean {
  try {
    execFileSync('pdftotext', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
