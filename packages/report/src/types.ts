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
  /** When the data was read: the clock just before the first request for it and just after the last, epoch ms. */
  readAt: { startMs: number; endMs: number };
  /**
   * SHA-256 (hex) of each test meter's intervals.csv over `window`, by meter id: the bytes
   * GET /api/v1/meters/{id}/intervals.csv sends, so an evaluator can tell they recompute from the
   * same paired intervals the report was made from.
   */
  intervalsSha256: Record<string, string>;
}

/** What the report states about where it came from (its traceability page). */
export interface ReportProvenance {
  /** FlowPilot's version. */
  softwareVersion: string;
  /** The git commit of the software that made the report: FLOWPILOT_COMMIT, else `git rev-parse HEAD` where a .git exists, else `unknown` (the caller finds it). */
  commit: string;
  /** SHA-256 (hex) of the pilot file's bytes, as the caller read them; null when unknown (printed `n/a`). */
  pilotFileSha256: string | null;
  /** Where the data came from, e.g. "InfluxDB http://127.0.0.1:8086, database flowpilot". */
  dataSource: string;
}

export interface ReportProgress {
  /** Metric windows fetched so far (the whole period, then each day; the days come in one call). */
  done: number;
  total: number;
  /** What is being done now, for the progress line. */
  stage: 'metrics' | 'render' | 'write';
}
