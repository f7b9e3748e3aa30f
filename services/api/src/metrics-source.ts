import type { MetricsSource } from '@flowpilot/report';
import { intervalsCsvSha256 } from './intervals-csv.ts';
import type { MetricsService } from './metrics-service.ts';
import { DEFAULT_ERROR_CURVE_BINS } from './metrics-schemas.ts';
import { windowFor } from './window.ts';
import type { WindowPolicy } from './window.ts';

/**
 * The API's metrics as a MetricsSource of @flowpilot/report, in process: the PDF report reads the
 * metrics service directly (no request to itself), with the window rules of the HTTP routes
 * (window.ts), so its figures are those of /api/v1/metrics. The API gives it a metrics service of
 * its own without the reading cache (app.ts): a report an evaluator signs is computed from
 * InfluxDB as it is when the report is made. Errors pass through as they are: a 503 of InfluxDB
 * stays a 503 with its code. The HTTP twin is @flowpilot/report's createHttpMetricsSource; both
 * run the same contract suite.
 */
export function createInProcessMetricsSource(service: MetricsService, windows: WindowPolicy): MetricsSource {
  const resolve = (window: { fromMs: number; toMs: number }) => {
    const { fromMs, toMs } = windowFor({ from: window.fromMs, to: window.toMs }, windows, 'metrics');
    return { fromMs, toMs };
  };
  return {
    async metrics(asked) {
      const window = resolve(asked);
      return { window, meters: await service.metrics(window) };
    },
    async dailyMetrics(asked) {
      const window = resolve(asked);
      return { window, days: await service.dailyMetrics(window) };
    },
    async errorCurve(meterId, asked, bins = DEFAULT_ERROR_CURVE_BINS) {
      return (await service.errorCurve(meterId, resolve(asked), bins)).bins;
    },
    async intervalsSha256(meterId, asked) {
      // The hash of the very bytes GET /api/v1/meters/{id}/intervals.csv streams for this window (intervals-csv.ts).
      return intervalsCsvSha256((await service.pairedIntervals(meterId, resolve(asked))).paired);
    },
  };
}
