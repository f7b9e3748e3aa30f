import type { AlarmName, MeterConfig } from '@flowpilot/schema';
import { computeAccuracy, computeErrorCurve } from './accuracy.ts';
import type { AccuracyOptions, AccuracyResult, ErrorCurveBin } from './accuracy.ts';
import { countAlarms } from './alarms.ts';
import { computeDelivery, computeGaps, expectedReadings } from './availability.ts';
import type { GapSummary } from './availability.ts';
import { computeLatency } from './latency.ts';
import type { LatencyResult } from './latency.ts';
import { computeMinNightFlow } from './night-flow.ts';
import type { MinNightFlowResult, NightPilot, ReverseTotals } from './night-flow.ts';
import { pairIntervals } from './pairing.ts';
import { toSeries, windowRange } from './series.ts';
import type { SeriesInput, TimeWindow } from './series.ts';
import { computeFlowStats, computeTotalizerConsistency, computeVolume } from './volume.ts';
import type { FlowStats, TotalizerConsistency } from './volume.ts';

export interface MeterMetricsOptions {
  /**
   * The reference meter's readings, for a `test` meter: accuracy and the error curve are
   * computed when this is given. Include readings up to 1.5Δ of the slower meter outside W, `to`
   * included, so the intervals at W's edges can be paired (see pairIntervals).
   */
  reference?: SeriesInput;
  /** The reference meter's pilot-file entry: its calibration uncertainty and register resolution enter U (SPEC section 4). */
  referenceMeter?: MeterConfig;
  /** Error-curve bins and the minimum intervals; the time zone of daily errors is the pilot's. */
  accuracy?: Partial<Omit<AccuracyOptions, 'timezone'>>;
  /** The meter's reverse totalizer: minNightFlow's reverse volume then comes from its steps, else from the reverse flow (see computeMinNightFlow). */
  reverseTotals?: ReverseTotals;
}

/** Every SPEC section 4 metric of one meter over one window; plain JSON (no NaN, no typed arrays). */
export interface MeterMetrics {
  meterId: string;
  window: TimeWindow;
  intervalSec: number;
  expected: number;
  received: number;
  completeness: number | null;
  delivery: number | null;
  seq: { distinct: number; produced: number; restarts: number };
  /** Input readings dropped as a second reading with the same timestamp. */
  duplicates: number;
  gaps: GapSummary;
  latencyMs: LatencyResult;
  volumeM3: number;
  totalizerResets: number;
  flow: FlowStats;
  minNightFlow: MinNightFlowResult;
  totalizerConsistency: TotalizerConsistency;
  alarms: Record<AlarmName, number>;
  /** Rejected messages per reason; null when unknown (no dead-letter store at hand), never 0 (SPEC section 4). */
  rejected: Record<string, number> | null;
  /** null unless the meter is a `test` meter and `options.reference` was given. */
  accuracy: AccuracyResult | null;
  errorCurve: ErrorCurveBin[] | null;
}

/**
 * All of SPEC section 4 for one meter over W = [from, to). The readings are sorted and
 * de-duplicated once (see toSeries) and may extend outside W: each metric takes the readings
 * of W itself. `rejectedByReason` (counted by the ingest, SPEC section 1) is passed through;
 * null or left out means unknown and stays null (SPEC section 4: an unknown count is never 0).
 */
export function computeMeterMetrics(
  readings: SeriesInput,
  meter: MeterConfig,
  window: TimeWindow,
  pilot: NightPilot,
  rejectedByReason: Record<string, number> | null = null,
  options: MeterMetricsOptions = {},
): MeterMetrics {
  const series = toSeries(readings);
  const { lo, hi } = windowRange(series, window);
  const { intervalSec } = meter;
  const expected = expectedReadings(intervalSec, window);
  const received = hi - lo;
  const delivery = computeDelivery(series, window);
  // Volume and totalizer consistency interpolate the totals at the edges of W from the readings
  // just outside it (up to 3Δ): the caller passes readings of [from − 3Δ, to + 3Δ] (SPEC section 4).
  const volume = computeVolume(series, intervalSec, window);
  let accuracy: AccuracyResult | null = null;
  let errorCurve: ErrorCurveBin[] | null = null;
  if (meter.role === 'test' && options.reference !== undefined) {
    const paired = pairIntervals(series, options.reference, meter, window, { referenceMeter: options.referenceMeter });
    const accuracyOptions = { ...options.accuracy, timezone: pilot.timezone };
    accuracy = computeAccuracy(paired, options.referenceMeter, accuracyOptions);
    errorCurve = computeErrorCurve(paired, accuracyOptions);
  }
  return {
    meterId: meter.id,
    window: { fromMs: window.fromMs, toMs: window.toMs },
    intervalSec,
    expected,
    received,
    completeness: expected === 0 ? null : Math.min(1, received / expected),
    delivery: delivery.delivery,
    seq: { distinct: delivery.distinctSeq, produced: delivery.producedSeq, restarts: delivery.seqRestarts },
    duplicates: series.duplicates,
    gaps: computeGaps(series, intervalSec, window),
    latencyMs: computeLatency(series, window),
    volumeM3: volume.volumeM3,
    totalizerResets: volume.resets,
    flow: computeFlowStats(series, window),
    minNightFlow: computeMinNightFlow(series, intervalSec, window, pilot, options.reverseTotals),
    totalizerConsistency: computeTotalizerConsistency(series, intervalSec, window),
    alarms: countAlarms(series, window),
    rejected: rejectedByReason === null ? null : { ...rejectedByReason },
    accuracy,
    errorCurve,
  };
}
