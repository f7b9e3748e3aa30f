import { metersFromMetricsJson } from './metrics-json.ts';
import { localDays } from './period.ts';
import type { ErrorCurveBin, FetchErrorCurve, FetchMetrics, ReportData, ReportPilot, ReportProgress } from './types.ts';

export interface CollectOptions {
  pilot: ReportPilot;
  fetchMetrics: FetchMetrics;
  /** For test meters whose metrics come without `errorCurve` (GET /api/v1/metrics leaves it to its own route). */
  fetchErrorCurve?: FetchErrorCurve;
  fromMs: number;
  toMs: number;
  onProgress?: (progress: ReportProgress) => void;
  /** Day windows fetched at once: enough to overlap InfluxDB round trips, few enough not to crowd a shared server. */
  concurrency?: number;
}

/**
 * The whole period's metrics, then each local day's (for the daily completeness and volume
 * charts), each through the same `GET /api/v1/metrics` computation the dashboard shows, so a
 * daily figure in the PDF is the figure the API gives for that day.
 */
export async function collectReportData(options: CollectOptions): Promise<ReportData> {
  const { pilot, fetchMetrics, fromMs, toMs, onProgress } = options;
  if (!(toMs > fromMs)) throw new Error(`The report's end (${new Date(toMs).toISOString()}) must be after its start (${new Date(fromMs).toISOString()})`);
  const window = { fromMs, toMs };
  const dayWindows = localDays(window, pilot.timezone);
  const total = 1 + dayWindows.length;
  let done = 0;
  const tick = (): void => onProgress?.({ done, total, stage: 'metrics' });
  tick();
  const meters = metersFromMetricsJson(await fetchMetrics(window));
  const { fetchErrorCurve } = options;
  if (fetchErrorCurve) {
    for (const m of meters) {
      if (!m.accuracy || Array.isArray(m.errorCurve)) continue;
      const body = (await fetchErrorCurve(m.meterId, window)) as { bins?: ErrorCurveBin[] } | ErrorCurveBin[];
      m.errorCurve = Array.isArray(body) ? body : (body.bins ?? null);
    }
  }
  done++;
  tick();

  const days: ReportData['days'] = new Array(dayWindows.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < dayWindows.length) {
      const index = next++;
      const day = dayWindows[index] as (typeof dayWindows)[number];
      days[index] = { date: day.date, window: day.window, meters: metersFromMetricsJson(await fetchMetrics(day.window)) };
      done++;
      tick();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 3, dayWindows.length)) }, worker));
  return { pilot, window, meters, days };
}
