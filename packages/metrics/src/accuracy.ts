import { FlowPilotError } from '@flowpilot/schema';
import type { MeterConfig } from '@flowpilot/schema';
import { decide, decideOverall, decideWithBins, expandedUncertainty } from './conformity.ts';
import type { DecisionRule, UncertaintyBudget, Verdict } from './conformity.ts';
import { maxPermissibleErrorPct, TEST_FLOW_BINS, testFlowBins, WARM_WATER_ABOVE_C } from './flow-zones.ts';
import type { AccuracyClass, FlowRates, FlowZone, TestFlowBin } from './flow-zones.ts';
import { select } from './latency.ts';
import { localDays } from './local-days.ts';

import type { ExclusionCounts, PairedIntervals, RegisterResolution, TemperatureSource } from './pairing.ts';

/**
 * Accuracy of a test meter against the reference in series with it (SPEC section 4; OIML R49-1
 * clauses 4.1–4.2 for the flow rates and MPEs, OIML G 19 for the decision): the error, MPE,
 * expanded uncertainty and verdict of each zone and test-flow bin, from the paired intervals of
 * pairing.ts, with the evidence an evaluator signs.
 */

export const ERROR_CONVENTION = 'error = (indicated − reference) / reference × 100 %' as const;

export interface AccuracyOptions {
  /** Log-spaced bins of the error curve between Q1 and Q4 (at least 2: the curve splits at Q2). */
  bins: number;
  /** SPEC section 4: a zone or bin with fewer intervals is `insufficient`. */
  minIntervals: number;
  /** The pilot's IANA zone: daily errors (repeatability) are per local day. */
  timezone: string;
}

export const DEFAULT_ACCURACY_OPTIONS: Readonly<AccuracyOptions> = Object.freeze({ bins: 12, minIntervals: 30, timezone: 'UTC' });

export interface TemperatureSummary {
  /** Whose temperature the intervals used: one source, `mixed`, or `none` (the stricter MPE everywhere). */
  source: TemperatureSource | 'mixed';
  intervalsBySource: Record<TemperatureSource, number>;
  /** °C over the intervals with a known temperature; null when none. */
  minC: number | null;
  medianC: number | null;
  maxC: number | null;
  /** Share of Σ ΔV_ref in intervals warmer than 30 °C (0–1); null without volume. */
  volumeShareAbove30C: number | null;
}

/** What an evaluator needs to check one zone's, bin's or the overall verdict. */
export interface AccuracyEvidence {
  /** (ΣΔV_test − ΣΔV_ref) / ΣΔV_ref × 100, %; null without reference volume. */
  error: number | null;
  /** ± %, the ΔV_ref-weighted mean of the intervals' MPEs (each from its own temperature). */
  mpe: number;
  verdict: Verdict;
  rule: DecisionRule;
  intervals: number;
  minIntervals: number;
  volumeTestM3: number;
  volumeRefM3: number;
  uncertainty: UncertaintyBudget;
  /** U / MPE; the decision is simple acceptance at ≤ 1/3. */
  uncertaintyToMpe: number;
  /** The group's error per local day (days with reference volume in it), for repeatability. */
  dailyErrors: { date: string; error: number; intervals: number }[];
  temperature: TemperatureSummary;
}

export interface ZoneAccuracy extends AccuracyEvidence {
  zone: FlowZone;
}

export interface BinAccuracy extends AccuracyEvidence {
  bin: TestFlowBin;
  zone: FlowZone;
  qFromM3h: number;
  qToM3h: number;
}

export interface ReferenceCalibration {
  serial: string | null;
  certificate: string | null;
  calibratedOn: string | null;
  /** Expanded uncertainty (k = 2) of volume, %; null when the pilot file does not give it. */
  expandedUncertaintyPct: number | null;
}

export interface AccuracyResult extends FlowRates {
  convention: typeof ERROR_CONVENTION;
  meterId: string;
  referenceId: string;
  accuracyClass: AccuracyClass;
  grid: 'reference' | 'test';
  gridIntervalSec: number;
  minIntervals: number;
  /** Both zones together; informative, its verdict from the zones' (decideOverall). */
  overall: AccuracyEvidence;
  lower: ZoneAccuracy;
  upper: ZoneAccuracy;
  bins: BinAccuracy[];
  /** Rows of the paired-interval export, counted and excluded alike. */
  pairedIntervals: number;
  excluded: ExclusionCounts;
  resolution: { test: RegisterResolution; reference: RegisterResolution };
  reference: ReferenceCalibration;
}

export function referenceCalibration(referenceMeter: MeterConfig | undefined): ReferenceCalibration {
  const calibration = referenceMeter?.calibration;
  return {
    serial: referenceMeter?.serial ?? null,
    certificate: calibration?.certificate ?? null,
    calibratedOn: calibration?.calibratedOn ?? null,
    expandedUncertaintyPct: calibration?.uncertaintyPct ?? null,
  };
}

const OVERALL = 0;
const ZONE_GROUP = [1, 2] as const; // lower, upper
const FIRST_BIN_GROUP = 3;
const GROUPS = FIRST_BIN_GROUP + TEST_FLOW_BINS.length;

interface GroupSums {
  test: number;
  ref: number;
  n: number;
  /** Σ MPE·ΔV_ref and Σ MPE (the latter for a group whose volume sums to 0). */
  mpeWeighted: number;
  mpeSum: number;
  stretches: number;
  lastRow: number;
  /** The known temperatures of the group's intervals, the first `temperatureCount` of them. */
  temperatures: Float64Array;
  temperatureCount: number;
  bySource: [number, number, number];
  warmRefM3: number;
  dayTest: Float64Array;
  dayRef: Float64Array;
  dayN: Int32Array;
}

function errorPct(volumeTestM3: number, volumeRefM3: number): number | null {
  return volumeRefM3 > 0 ? ((volumeTestM3 - volumeRefM3) / volumeRefM3) * 100 : null;
}

/** Median by selection (O(n), no sort: a month of intervals per group); the mean of the two middle values for an even count. */
function median(values: Float64Array): number | null {
  const n = values.length;
  if (n === 0) return null;
  const upper = select(values, n >>> 1, 0, n);
  if (n % 2 === 1) return upper;
  // After selecting rank n/2, every value before it is ≤ it: the lower middle is their maximum.
  let lower = -Infinity;
  for (let i = 0; i < n >>> 1; i++) if ((values[i] as number) > lower) lower = values[i] as number;
  return (lower + upper) / 2;
}

function temperatureSummary(s: GroupSums): TemperatureSummary {
  const values = s.temperatures.subarray(0, s.temperatureCount);
  let minC = Infinity;
  let maxC = -Infinity;
  for (const t of values) {
    if (t < minC) minC = t;
    if (t > maxC) maxC = t;
  }
  const [none, reference, test] = s.bySource;
  const used = [reference > 0 ? 'reference' : null, test > 0 ? 'test' : null].filter((x) => x !== null);
  return {
    source: used.length === 2 ? 'mixed' : used.length === 1 ? (used[0] as TemperatureSource) : 'none',
    intervalsBySource: { none, reference, test },
    minC: values.length > 0 ? minC : null,
    medianC: median(values),
    maxC: values.length > 0 ? maxC : null,
    volumeShareAbove30C: s.ref > 0 ? s.warmRefM3 / s.ref : null,
  };
}

/**
 * SPEC section 4 accuracy from the paired intervals: per zone (lower, upper), per test-flow bin,
 * and overall, each with E = (Σ ΔV_test − Σ ΔV_ref) / Σ ΔV_ref × 100 over its counted
 * intervals, its MPE (ΔV_ref-weighted mean of the intervals' MPEs), its expanded uncertainty
 * (conformity.ts) and its verdict by the G 19 rule; a zone's verdict then takes its bins into
 * account (decideWithBins). Edge cases: a group whose intervals hold no reference volume
 * has error null (insufficient); a group with no intervals has the cold MPE of its zone (upper
 * for overall), the stricter one. Contiguous stretches (for u_res) are runs of a group's
 * intervals where each starts at the previous one's end reading.
 */
export function computeAccuracy(paired: PairedIntervals, referenceMeter?: MeterConfig, options: Partial<AccuracyOptions> = {}): AccuracyResult {
  const { minIntervals, timezone } = { ...DEFAULT_ACCURACY_OPTIONS, ...options };
  const days = localDays(paired.window, timezone);
  const sums: GroupSums[] = Array.from({ length: GROUPS }, () => ({
    test: 0,
    ref: 0,
    n: 0,
    mpeWeighted: 0,
    mpeSum: 0,
    stretches: 0,
    lastRow: -2,
    temperatures: new Float64Array(0),
    temperatureCount: 0,
    bySource: [0, 0, 0],
    warmRefM3: 0,
    dayTest: new Float64Array(days.length),
    dayRef: new Float64Array(days.length),
    dayN: new Int32Array(days.length),
  }));
  let day = 0;
  const { exclusion, startMs, endMs, volumeTestM3, volumeRefM3, mpePct, temperatureC, temperatureSource, zone: zones, bin: binOfRow } = paired;
  const add = (s: GroupSums, k: number, start: number, dvTest: number, dvRef: number, mpe: number, temperature: number, source: 0 | 1 | 2): void => {
    s.test += dvTest;
    s.ref += dvRef;
    s.n++;
    s.mpeWeighted += mpe * dvRef;
    s.mpeSum += mpe;
    if (!(s.lastRow === k - 1 && endMs[k - 1] === start)) s.stretches++;
    s.lastRow = k;
    if (temperature === temperature) s.temperatures[s.temperatureCount++] = temperature; // not NaN
    s.bySource[source]++;
    if (temperature > warmAboveC) s.warmRefM3 += dvRef;
    s.dayTest[day] = (s.dayTest[day] as number) + dvTest;
    s.dayRef[day] = (s.dayRef[day] as number) + dvRef;
    s.dayN[day] = (s.dayN[day] as number) + 1;
  };
  const dayEnds = days.map((d) => d.window.toMs);
  const warmAboveC = WARM_WATER_ABOVE_C;
  for (const s of sums) s.temperatures = new Float64Array(paired.length);
  for (let k = 0; k < paired.length; k++) {
    if (exclusion[k] !== 0) continue;
    const start = startMs[k] as number;
    while (day < dayEnds.length - 1 && start >= (dayEnds[day] as number)) day++;
    const dvTest = volumeTestM3[k] as number;
    const dvRef = volumeRefM3[k] as number;
    const mpe = mpePct[k] as number;
    const temperature = temperatureC[k] as number;
    const source = temperatureSource[k] as 0 | 1 | 2;
    const bin = binOfRow[k] as number;
    add(sums[OVERALL] as GroupSums, k, start, dvTest, dvRef, mpe, temperature, source);
    add(sums[ZONE_GROUP[zones[k] as 0 | 1]] as GroupSums, k, start, dvTest, dvRef, mpe, temperature, source);
    if (bin >= 0) add(sums[FIRST_BIN_GROUP + bin] as GroupSums, k, start, dvTest, dvRef, mpe, temperature, source);
  }

  const calibration = referenceCalibration(referenceMeter);
  const evidence = (g: number, emptyMpe: number): AccuracyEvidence => {
    const s = sums[g] as GroupSums;
    const error = s.n > 0 ? errorPct(s.test, s.ref) : null;
    const mpe = s.n === 0 ? emptyMpe : s.ref > 0 ? s.mpeWeighted / s.ref : s.mpeSum / s.n;
    const dailyErrors: AccuracyEvidence['dailyErrors'] = [];
    days.forEach((d, i) => {
      const e = errorPct(s.dayTest[i] as number, s.dayRef[i] as number);
      if (e !== null) dailyErrors.push({ date: d.date, error: e, intervals: s.dayN[i] as number });
    });
    const uncertainty = expandedUncertainty({
      referenceExpandedPct: calibration.expandedUncertaintyPct,
      resolutionRefM3: paired.resolution.reference.m3,
      resolutionTestM3: paired.resolution.test.m3,
      stretches: s.stretches,
      volumeRefM3: s.ref,
      dailyErrorsPct: dailyErrors.map((d) => d.error),
    });
    const decision = decide(error, uncertainty.expandedPct, mpe, s.n, minIntervals);
    return {
      error,
      mpe,
      verdict: decision.verdict,
      rule: decision.rule,
      intervals: s.n,
      minIntervals,
      volumeTestM3: s.test,
      volumeRefM3: s.ref,
      uncertainty,
      uncertaintyToMpe: uncertainty.expandedPct / mpe,
      dailyErrors,
      temperature: temperatureSummary(s),
    };
  };
  const cold = (zone: FlowZone) => maxPermissibleErrorPct(paired.accuracyClass, zone, null);
  const bins: BinAccuracy[] = testFlowBins(paired.rates).map((edges, i) => ({ ...evidence(FIRST_BIN_GROUP + i, cold(edges.zone)), ...edges }));
  const zoneResult = (zone: FlowZone, g: number): ZoneAccuracy => {
    const own = evidence(g, cold(zone));
    const decision = decideWithBins(
      { verdict: own.verdict, rule: own.rule },
      bins.filter((b) => b.zone === zone),
    );
    return { ...own, verdict: decision.verdict, rule: decision.rule, zone };
  };
  const lower = zoneResult('lower', ZONE_GROUP[0]);
  const upper = zoneResult('upper', ZONE_GROUP[1]);
  const overallOwn = evidence(OVERALL, cold('upper'));
  const overallDecision = decideOverall([lower.verdict, upper.verdict]);
  return {
    convention: ERROR_CONVENTION,
    meterId: paired.meterId,
    referenceId: paired.referenceId,
    accuracyClass: paired.accuracyClass,
    ...paired.rates,
    grid: paired.grid,
    gridIntervalSec: paired.gridIntervalSec,
    minIntervals,
    overall: { ...overallOwn, verdict: overallDecision.verdict, rule: overallDecision.rule },
    lower,
    upper,
    bins,
    pairedIntervals: paired.length,
    excluded: { ...paired.excluded },
    resolution: paired.resolution,
    reference: calibration,
  };
}

export interface ErrorCurveBin {
  qFromM3h: number;
  qToM3h: number;
  /** Geometric mid-point √(qFrom · qTo). */
  qMidM3h: number;
  zone: FlowZone;
  error: number | null;
  intervals: number;
  /** The MPE that applies: the ΔV_ref-weighted MPE of its intervals, or the zone's cold MPE when empty. */
  mpe: number;
  volumeTestM3: number;
  volumeRefM3: number;
}

/**
 * Edges of the error curve: log-spaced from Q1 to Q2 and from Q2 to Q4, the `bins` shared
 * between the two spans in proportion to their log widths, at least one each, so no bin
 * straddles Q2 (SPEC section 4; a bin across Q2 would draw a lower-zone error against the
 * upper zone's envelope). Q1 = 0.625, Q2 = 1, Q4 = 125 (R 160) and 12 bins: 1 lower, 11 upper.
 */
export function errorCurveEdges(rates: FlowRates, bins: number): { edges: number[]; lowerBins: number } {
  if (!Number.isInteger(bins) || bins < 2) throw new FlowPilotError('ERR_VALIDATION', `bins must be a whole number ≥ 2 (the curve splits at Q2), got ${bins}`);
  const { q1M3h, q2M3h, q4M3h } = rates;
  const share = Math.log(q2M3h / q1M3h) / Math.log(q4M3h / q1M3h);
  const lowerBins = Math.min(bins - 1, Math.max(1, Math.round(bins * share)));
  const upperBins = bins - lowerBins;
  const edges: number[] = [];
  for (let i = 0; i < lowerBins; i++) edges.push(q1M3h * (q2M3h / q1M3h) ** (i / lowerBins));
  for (let i = 0; i < upperBins; i++) edges.push(q2M3h * (q4M3h / q2M3h) ** (i / upperBins));
  edges.push(q4M3h);
  return { edges, lowerBins };
}

/**
 * SPEC section 4 error curve: the counted intervals binned by the reference's mean end flow
 * (both ends are in one zone, so the mean is too) into the bins of errorCurveEdges; bin i is
 * [edge_i, edge_i+1), the last closed at Q4. Each bin's error is volume-weighted like a zone's.
 */
export function computeErrorCurve(paired: PairedIntervals, options: Partial<AccuracyOptions> = {}): ErrorCurveBin[] {
  const { bins } = { ...DEFAULT_ACCURACY_OPTIONS, ...options };
  const { edges, lowerBins } = errorCurveEdges(paired.rates, bins);
  const test = new Float64Array(bins);
  const ref = new Float64Array(bins);
  const mpeWeighted = new Float64Array(bins);
  const mpeSum = new Float64Array(bins);
  const n = new Int32Array(bins);
  for (let k = 0; k < paired.length; k++) {
    if (paired.exclusion[k] !== 0) continue;
    const q = ((paired.refFlowStartM3h[k] as number) + (paired.refFlowEndM3h[k] as number)) / 2;
    // Bin b with edge_b ≤ q < edge_b+1, by binary search (q ≤ Q4 = the last edge).
    let lo = 0;
    let hi = bins - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (q >= (edges[mid] as number)) lo = mid;
      else hi = mid - 1;
    }
    const dvRef = paired.volumeRefM3[k] as number;
    test[lo] = (test[lo] as number) + (paired.volumeTestM3[k] as number);
    ref[lo] = (ref[lo] as number) + dvRef;
    mpeWeighted[lo] = (mpeWeighted[lo] as number) + (paired.mpePct[k] as number) * dvRef;
    mpeSum[lo] = (mpeSum[lo] as number) + (paired.mpePct[k] as number);
    n[lo] = (n[lo] as number) + 1;
  }
  return Array.from({ length: bins }, (_, b) => {
    const qFromM3h = edges[b] as number;
    const qToM3h = edges[b + 1] as number;
    const count = n[b] as number;
    const zone: FlowZone = b < lowerBins ? 'lower' : 'upper';
    const volumeRefM3 = ref[b] as number;
    const mpe = count === 0 ? maxPermissibleErrorPct(paired.accuracyClass, zone, null) : volumeRefM3 > 0 ? (mpeWeighted[b] as number) / volumeRefM3 : (mpeSum[b] as number) / count;
    return {
      qFromM3h,
      qToM3h,
      qMidM3h: Math.sqrt(qFromM3h * qToM3h),
      zone,
      error: count > 0 ? errorPct(test[b] as number, volumeRefM3) : null,
      intervals: count,
      mpe,
      volumeTestM3: test[b] as number,
      volumeRefM3,
    };
  });
}

export type { AccuracyClass, FlowRates, FlowZone, TestFlowBin } from './flow-zones.ts';
export type { DecisionRule, Verdict } from './conformity.ts';

