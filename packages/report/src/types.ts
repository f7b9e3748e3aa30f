import type { AccuracyResult, ErrorCurveBin, MeterMetrics, TimeWindow } from '@flowpilot/metrics';
import type { MeterConfig } from '@flowpilot/schema';

/**
 * The pilot as the report needs it: `GET /api/v1/pilot`'s body and `{ ...config.pilot, meters:
 * config.meters }` both fit (extra fields such as live status are ignored).
 */
export interface ReportPilot {
  id: string;
  name: string;
  timezone: string;
  nightWindow: { start: string; end: string };
  meters: readonly MeterConfig[];
}

/**
 * One meter's entry of `GET /api/v1/metrics`: `computeMeterMetrics`'s result (SPEC section 4).
 * `accuracy` and `errorCurve` are null for meters that are not under test.
 */
export type ReportMeterMetrics = MeterMetrics;
export type { AccuracyResult, ErrorCurveBin, TimeWindow };

/** Returns the body of `GET /api/v1/metrics?from&to` for a window (any of the shapes `metersFromMetricsJson` reads). */
export type FetchMetrics = (window: TimeWindow) => Promise<unknown>;

/**
 * Returns the body of `GET /api/v1/meters/{id}/error-curve?from&to` (`{ bins: ErrorCurveBin[] }`):
 * the API serves the error curve on its own route, not inside /metrics.
 */
export type FetchErrorCurve = (meterId: string, window: TimeWindow) => Promise<unknown>;

/** A local day of the pilot (or the part of it inside the report's window) with every meter's metrics for it. */
export interface ReportDay {
  /** YYYY-MM-DD in the pilot's zone. */
  date: string;
  window: TimeWindow;
  meters: ReportMeterMetrics[];
}

/** Everything one report shows: fetched once, rendered to PDF (or read by a test). */
export interface ReportData {
  pilot: ReportPilot;
  window: TimeWindow;
  meters: ReportMeterMetrics[];
  days: ReportDay[];
}

export interface ReportProgress {
  /** Metric windows fetched so far (the whole period, then each day). */
  done: number;
  total: number;
  /** What is being done now, for the progress line. */
  stage: 'metrics' | 'render' | 'write';
}
