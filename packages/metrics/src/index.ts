export { toSeries, windowRange } from './series.ts';
export type { MetricColumns, MetricReading, ReadingSeries, SeriesInput, TimeWindow } from './series.ts';
export { GAP_INTERVALS, computeCompleteness, computeDelivery, computeGaps, expectedReadings, findGaps, receivedReadings } from './availability.ts';
export type { DeliveryResult, Gap, GapSummary } from './availability.ts';
export { computeLatency, nearestRank } from './latency.ts';
export type { LatencyResult } from './latency.ts';
export { computeFlowStats, computeTotalizerConsistency, computeVolume } from './volume.ts';
export type { FlowStats, TotalizerConsistency, VolumeResult } from './volume.ts';
export { computeMinNightFlow, localNights, localToUtcMs, zoneOffsetMs } from './night-flow.ts';
export type { LocalNight, MinNightFlowResult, NightFlow, NightPilot, NightWindow } from './night-flow.ts';
export { addDays, localDate, localDays, localMidnightMs, parseWindowTime, WINDOW_TIME_HINT } from './local-days.ts';
export type { LocalDay } from './local-days.ts';
export { countAlarms } from './alarms.ts';
export {
  DEFAULT_ACCURACY_OPTIONS,
  ERROR_CONVENTION,
  VERDICT_TOLERANCE_PCT,
  WARM_WATER_ABOVE_C,
  alignIntervals,
  computeAccuracy,
  computeErrorCurve,
  flowRates,
  maxPermissibleErrorPct,
} from './accuracy.ts';
export type { AccuracyClass, AccuracyOptions, AccuracyResult, AlignedIntervals, ErrorCurveBin, ExcludedIntervals, FlowRates, FlowZone, Verdict, ZoneAccuracy } from './accuracy.ts';
export { computeMeterMetrics } from './meter-metrics.ts';
export type { MeterMetrics, MeterMetricsOptions } from './meter-metrics.ts';
