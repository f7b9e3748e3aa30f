import { localDays } from '@flowpilot/metrics';
import type { MetricsSource } from './metrics-source.ts';
import type { ReportData, ReportMeterMetrics, ReportPilot, ReportProgress } from './types.ts';

export interface CollectOptions {
  pilot: ReportPilot;
  metrics: MetricsSource;
  fromMs: number;
  toMs: number;
  onProgress?: (progress: ReportProgress) => void;
  /** Epoch ms now, read before the first request and after the last: when the data was read (STYLE habit 7). */
  clock?: () => number;
}

/**
 * The whole period's metrics with each test meter's error curve and the SHA-256 of its
 * intervals.csv, then every local day's in one call (for the daily completeness and volume
 * charts), all from the same MetricsSource, so a daily figure in the PDF is the figure the API
 * gives for that day. The clock is read before the first request and after the last: the report
 * says when its data was read.
 */
export async function collectReportData(options: CollectOptions): Promise<ReportData> {
  const { pilot, metrics: source, fromMs, toMs, onProgress } = options;
  const clock = options.clock ?? Date.now;
  if (!(toMs > fromMs)) throw new Error(`The report's end (${new Date(toMs).toISOString()}) must be after its start (${new Date(fromMs).toISOString()})`);
  // Progress counts windows as before: the period, then each day (the days now arrive together).
  const total = 1 + localDays({ fromMs, toMs }, pilot.timezone).length;
  const tick = (done: number): void => onProgress?.({ done, total, stage: 'metrics' });
  tick(0);
  const startMs = clock();
  const period = await source.metrics({ fromMs, toMs });
  const meters: ReportMeterMetrics[] = [];
  const intervalsSha256: Record<string, string> = {};
  for (const m of period.meters) {
    meters.push({ ...m, errorCurve: m.accuracy ? await source.errorCurve(m.meterId, period.window) : null });
    // The window the figures are for (`to` clamped to now), so the hash is of the same intervals.
    if (m.accuracy) intervalsSha256[m.meterId] = await source.intervalsSha256(m.meterId, period.window);
  }
  tick(1);
  const daily = await source.dailyMetrics(period.window);
  const endMs = clock();
  tick(total);
  return { pilot, window: period.window, meters, days: daily.days, readAt: { startMs, endMs }, intervalsSha256 };
}
