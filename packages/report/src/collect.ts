import { localDays } from '@flowpilot/metrics';
import type { MetricsSource } from './metrics-source.ts';
import type { ReportData, ReportMeterMetrics, ReportPilot, ReportProgress } from './types.ts';

export interface CollectOptions {
  pilot: ReportPilot;
  metrics: MetricsSource;
  fromMs: number;
  toMs: number;
  onProgress?: (progress: ReportProgress) => void;
}

/**
 * The whole period's metrics with each test meter's error curve, then every local day's in one
 * call (for the daily completeness and volume charts), all from the same MetricsSource, so a
 * daily figure in the PDF is the figure the API gives for that day.
 */
export async function collectReportData(options: CollectOptions): Promise<ReportData> {
  const { pilot, metrics: source, fromMs, toMs, onProgress } = options;
  if (!(toMs > fromMs)) throw new Error(`The report's end (${new Date(toMs).toISOString()}) must be after its start (${new Date(fromMs).toISOString()})`);
  // Progress counts windows as before: the period, then each day (the days now arrive together).
  const total = 1 + localDays({ fromMs, toMs }, pilot.timezone).length;
  const tick = (done: number): void => onProgress?.({ done, total, stage: 'metrics' });
  tick(0);
  const period = await source.metrics({ fromMs, toMs });
  const meters: ReportMeterMetrics[] = [];
  for (const m of period.meters) meters.push({ ...m, errorCurve: m.accuracy ? await source.errorCurve(m.meterId, period.window) : null });
  tick(1);
  const daily = await source.dailyMetrics(period.window);
  tick(total);
  return { pilot, window: period.window, meters, days: daily.days };
}
