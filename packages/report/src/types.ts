import type { AccuracyResult, ErrorCurveBin, TimeWindow } from '@flowpilot/metrics';
import type { MeterConfig } from '@flowpilot/schema';
import type { SourceMeterMetrics } from './metrics-source.ts';

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
 * One meter's metrics over the report's period (SPEC section 4), with its error curve: null for
 * meters that are not under test.
 */
export type ReportMeterMetrics = SourceMeterMetrics & { errorCurve: ErrorCurveBin[] | null };
export type { AccuracyResult, ErrorCurveBin, TimeWindow };

/** A local day of the pilot (or the part of it inside the report's window) with every meter's metrics for it. */
export interface ReportDay {
  /** YYYY-MM-DD in the pilot's zone. */
  date: string;
  window: TimeWindow;
  meters: SourceMeterMetrics[];
}

/** Everything one report shows: fetched once, rendered to PDF (or read by a test). */
export interface ReportData {
  pilot: ReportPilot;
  window: TimeWindow;
  meters: ReportMeterMetrics[];
  days: ReportDay[];
}

export interface ReportProgress {
  /** Metric windows fetched so far (the whole period, then each day; the days come in one call). */
  done: number;
  total: number;
  /** What is being done now, for the progress line. */
  stage: 'metrics' | 'render' | 'write';
}
