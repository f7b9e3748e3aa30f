import { localDays } from '@flowpilot/metrics';
import { describe, expect, it } from 'vitest';
import { progressBar } from './create-report.ts';
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
