import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeReport } from '@flowpilot/report';
import type { ReportProgress } from '@flowpilot/report';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureDebianTool } from './helpers/browser.ts';
import { dashboardPilot, dashboardReadings, localMetricsSource } from './helpers/pilot-data.ts';

// The core of `flowpilot report`: metrics for the period and each day, progress, the file.
// Metrics are computed in memory by @flowpilot/metrics over the fixture's readings.

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('writeReport', () => {
  it('writes a PDF in Russian with Cyrillic text, reporting progress per day', async () => {
    ensureDebianTool('pdftotext', 'poppler-utils');
    const pilot = dashboardPilot();
    const fromMs = Date.parse('2026-11-10T00:00:00+05:00');
    const toMs = fromMs + 3 * 86_400_000;
    const readings = dashboardReadings(pilot, { fromMs: fromMs - 120_000, toMs: toMs + 120_000 });
    const dir = mkdtempSync(join(tmpdir(), 'flowpilot-report-'));
    dirs.push(dir);
    const progress: ReportProgress[] = [];
    const out = join(dir, 'nested', 'report.pdf');
    const result = await writeReport({
      pilot: { ...pilot.pilot, meters: pilot.meters },
      metrics: localMetricsSource(pilot, readings),
      fromMs,
      toMs,
      lang: 'ru',
      format: 'pdf',
      out,
      softwareVersion: '0.1.0',
      dataSource: 'in-memory fixture',
      clock: () => toMs,
      onProgress: (p) => progress.push(p),
    });
    expect(result.bytes).toBe(readFileSync(out).byteLength);
    // The whole period and 3 days, then rendering and writing.
    expect(progress.filter((p) => p.stage === 'metrics').at(-1)).toEqual({ done: 4, total: 4, stage: 'metrics' });
    expect(progress.map((p) => p.stage).slice(-2)).toEqual(['render', 'write']);
    const text = execFileSync('pdftotext', ['-enc', 'UTF-8', out, '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
    expect(text).toContain('Сводка');
    expect(text).toContain('НЕ СООТВЕТСТВУЕТ');
    expect(text).toContain('Счётчик D-MON');
  });

  it('refuses an unknown language with the list of those there are', async () => {
    const pilot = dashboardPilot();
    await expect(
      writeReport({ pilot: { ...pilot.pilot, meters: pilot.meters }, metrics: localMetricsSource(pilot, []), fromMs: 0, toMs: 86_400_000, lang: 'xx', format: 'pdf', out: '/nonexistent/x.pdf', softwareVersion: '0', dataSource: '-' }),
    ).rejects.toThrow(/there are: en, kk, ko, ru/);
  });
});
