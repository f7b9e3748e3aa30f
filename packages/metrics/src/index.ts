export { toSeries, windowRange } from './series.ts';
export type { MetricColumns, MetricReading, ReadingSeries, SeriesInput, TimeWindow } from './series.ts';
export { GAP_INTERVALS, computeCompleteness, computeDelivery, computeGaps, expectedReadings, findGaps, receivedReadings } from './availability.ts';
export type { DeliveryResult, Gap, GapSummary } from './availability.ts';
export { computeLatency, nearestRank } from './latency.ts';
export type { BackfilledResult, LatencyResult } from './latency.ts';
export { computeFlowStats, computeTotalizerConsistency, computeVolume } from './volume.ts';
export type { FlowStats, TotalizerConsistency, VolumeResult } from './volume.ts';
export { computeMinNightFlow, localNights, localToUtcMs, zoneOffsetMs } from './night-flow.ts';
export type { LocalNight, MinNightFlowResult, NightFlow, NightPilot, NightWindow } from './night-flow.ts';
export { addDays, localDate, localDays, localMidnightMs, parseWindowTime, WINDOW_TIME_HINT } from './local-days.ts';
export type { LocalDay } from './local-days.ts';
export { countAlarms } from './alarms.ts';
export { ABOVE_Q4, BELOW_Q1, binOfFlow, classifyFlow, flowRates, LOWER, maxPermissibleErrorPct, TEST_FLOW_BINS, testFlowBins, UPPER, WARM_WATER_ABOVE_C } from './flow-zones.ts';
export type { AccuracyClass, BinEdges, FlowClass, FlowRates, FlowZone, TestFlowBin } from './flow-zones.ts';
export {
  accuracyParameters,
  DISQUALIFYING_ALARMS,
  EXCLUSION_REASONS,
  exclusionReason,
  inferResolution,
  pairedIntervalRecord,
  pairIntervals,
  TEMPERATURE_SOURCES,
} from './pairing.ts';
export type { ExclusionCounts, ExclusionReason, PairedIntervalRecord, PairedIntervals, PairingOptions, RegisterResolution, TemperatureSource } from './pairing.ts';
export { decide, decideOverall, decideWithBins, expandedUncertainty, MIN_REPEATABILITY_DAYS, sampleStd, VERDICT_TOLERANCE_PCT } from './conformity.ts';
export type { Decision, DecisionRule, UncertaintyBudget, UncertaintyInputs, Verdict } from './conformity.ts';
export { computeAccuracy, computeErrorCurve, DEFAULT_ACCURACY_OPTIONS, ERROR_CONVENTION, errorCurveEdges, referenceCalibration } from './accuracy.ts';
export type { AccuracyEvidence, AccuracyOptions, AccuracyResult, BinAccuracy, ErrorCurveBin, ReferenceCalibration, TemperatureSummary, ZoneAccuracy } from './accuracy.ts';
export { computeMeterMetrics } from './meter-metrics.ts';
export type { MeterMetrics, MeterMetricsOptions } from './meter-metrics.ts';
