import { FlowPilotError } from '@flowpilot/schema';
import type { MeterConfig } from '@flowpilot/schema';
import { assertWindow, toSeries, windowRange } from './series.ts';
import type { ReadingSeries, SeriesInput, TimeWindow } from './series.ts';

/**
 * Accuracy of a test meter against the reference meter in series with it (SPEC section 4,
 * OIML R49-1:2006 clause 3.1 "Values of Q1, Q2, Q3 and Q4" and clause 3.2 "Accuracy class
 * and maximum permissible error"; ISO 4064-1 states the same requirements).
 */

export const ERROR_CONVENTION = 'error = (indicated − reference) / reference × 100 %' as const;

export type AccuracyClass = 1 | 2;
export type FlowZone = 'lower' | 'upper';
export type Verdict = 'pass' | 'fail' | 'insufficient';

/**
 * Water temperature above which the upper zone's wider MPE applies (R49-1 3.2: the ±2 %
 * (class 2) / ±1 % (class 1) limits are for water up to 30 °C).
 */
export const WARM_WATER_ABOVE_C = 30;

/** |E| ≤ MPE is judged with this slack (percentage points) so that float noise in an error of exactly the limit does not flip a pass. */
export const VERDICT_TOLERANCE_PCT = 1e-9;

export interface AccuracyOptions {
  /** Log-spaced bins of the error curve between Q1 and Q4. */
  bins: number;
  /** SPEC section 4: a zone with fewer intervals is `insufficient`. */
  minIntervals: number;
  /**
   * Overrides the water temperature that selects the upper-zone MPE (e.g. a temperature the
   * evaluator measured); otherwise the mean of the meters' `temperatureC` (see alignIntervals).
   */
  waterTemperatureC?: number;
}

export const DEFAULT_ACCURACY_OPTIONS: Readonly<AccuracyOptions> = Object.freeze({ bins: 12, minIntervals: 30 });

export interface FlowRates {
  q1M3h: number;
  q2M3h: number;
  q3M3h: number;
  q4M3h: number;
}

/** R49-1 3.1: Q1 = Q3 / R, Q2 = 1.6 · Q1 (Q2/Q1 = 1.6), Q4 = 1.25 · Q3 (Q4/Q3 = 1.25). */
export function flowRates(q3M3h: number, r: number): FlowRates {
  const q1M3h = q3M3h / r;
  return { q1M3h, q2M3h: 1.6 * q1M3h, q3M3h, q4M3h: 1.25 * q3M3h };
}

/**
 * R49-1 3.2 maximum permissible error, in %:
 * class 2: lower zone (Q1 ≤ Q < Q2) ±5 %, upper zone (Q2 ≤ Q ≤ Q4) ±2 % for water ≤ 30 °C,
 * ±3 % above; class 1: lower ±3 %, upper ±1 % (≤ 30 °C) or ±2 % (> 30 °C).
 * An unknown temperature (null) takes the ≤ 30 °C limit, the stricter one: a meter never
 * passes on an assumed warm water.
 */
export function maxPermissibleErrorPct(accuracyClass: AccuracyClass, zone: FlowZone, waterTemperatureC: number | null): number {
  const warm = waterTemperatureC !== null && waterTemperatureC > WARM_WATER_ABOVE_C;
  if (accuracyClass === 1) return zone === 'lower' ? 3 : warm ? 2 : 1;
  return zone === 'lower' ? 5 : warm ? 3 : 2;
}

export interface ExcludedIntervals {
  /** q_k < Q1 (includes no flow at all). */
  belowQ1: number;
  /** q_k > Q4. */
  overload: number;
  /** A meter had no total at one of the interval's boundaries. */
  missing: number;
  /** A meter's total went down inside the interval or at one of its boundaries. */
  reset: number;
}

/** The intervals of W that fall in the lower or upper zone, as columns. */
export interface AlignedIntervals {
  meterId: string;
  intervalSec: number;
  accuracyClass: AccuracyClass;
  rates: FlowRates;
  /** ⌊|W| / Δ⌋ intervals considered. */
  totalIntervals: number;
  /** How many intervals are in the columns below. */
  count: number;
  /** q_k = ΔV_ref,k / Δt, m³/h. */
  qM3h: Float64Array;
  volumeTestM3: Float64Array;
  volumeRefM3: Float64Array;
  /** 0 = lower, 1 = upper. */
  zone: Uint8Array;
  excluded: ExcludedIntervals;
  /** Mean water temperature in W, °C, or null when neither meter reports one. */
  waterTemperatureC: number | null;
  temperatureSource: 'test' | 'reference' | 'none';
}

const MISSING = 1;
const RESET = 2;

/**
 * Walks one meter's readings boundary by boundary (b_k = from + kΔ, ascending), so that the
 * alignment allocates nothing per boundary. After `boundaryAt(t)`: `status` 0 and `totalM3`
 * the meter's total at t, with `lo`..`hi` the readings it came from; or MISSING / RESET.
 */
interface BoundaryCursor {
  totalM3: number;
  status: number;
  lo: number;
  hi: number;
  boundaryAt(t: number): void;
  /** Whether the total goes down at any step of the readings lo+1 … hi (lo non-decreasing across calls). */
  resetBetween(lo: number, hi: number): boolean;
}

/**
 * A reading exactly at b_k gives the total directly; otherwise it is interpolated linearly
 * between the last reading before b_k and the first after it, both within Δ of b_k. So two
 * meters whose clocks report at different seconds are still compared over the same span of
 * time, and one lost reading is bridged (its neighbours' volume is split linearly in time).
 * Neither reading within Δ: MISSING; the total going down between them: RESET. Readings
 * outside W may be used (within Δ of `from` or `to`): pass readings of [from − Δ, to + Δ] to
 * keep the edge intervals.
 */
function boundaryCursor(series: ReadingSeries, intervalMs: number): BoundaryCursor {
  const { tsMs, totalM3: readingTotal, length: n } = series;
  // Indices i where total[i] < total[i − 1]: rare, so a short list rather than a prefix array.
  const resetSteps: number[] = [];
  for (let i = 1; i < n; i++) if ((readingTotal[i] as number) < (readingTotal[i - 1] as number)) resetSteps.push(i);
  let j = 0;
  let nextReset = 0;
  const cursor: BoundaryCursor = {
    totalM3: 0,
    status: 0,
    lo: 0,
    hi: 0,
    boundaryAt(t: number): void {
      while (j < n && (tsMs[j] as number) < t) j++;
      if (j < n && tsMs[j] === t) {
        cursor.status = 0;
        cursor.totalM3 = readingTotal[j] as number;
        cursor.lo = j;
        cursor.hi = j;
        return;
      }
      if (j === 0 || j === n) {
        cursor.status = MISSING;
        return;
      }
      const t0 = tsMs[j - 1] as number;
      const t1 = tsMs[j] as number;
      if (t - t0 > intervalMs || t1 - t > intervalMs) {
        cursor.status = MISSING;
        return;
      }
      const v0 = readingTotal[j - 1] as number;
      const v1 = readingTotal[j] as number;
      if (v1 < v0) {
        cursor.status = RESET;
        return;
      }
      cursor.status = 0;
      cursor.totalM3 = v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
      cursor.lo = j - 1;
      cursor.hi = j;
    },
    resetBetween(lo: number, hi: number): boolean {
      while (nextReset < resetSteps.length && (resetSteps[nextReset] as number) <= lo) nextReset++;
      return nextReset < resetSteps.length && (resetSteps[nextReset] as number) <= hi;
    },
  };
  return cursor;
}

function meanTemperature(series: ReadingSeries, window: TimeWindow): number | null {
  const { lo, hi } = windowRange(series, window);
  let sum = 0;
  let n = 0;
  for (let i = lo; i < hi; i++) {
    const t = series.temperatureC[i] as number;
    if (!Number.isNaN(t)) {
      sum += t;
      n++;
    }
  }
  return n > 0 ? sum / n : null;
}

function accuracyParameters(meter: MeterConfig): { q3: number; r: number; accuracyClass: AccuracyClass } {
  const missing = (['q3', 'r', 'accuracyClass'] as const).filter((field) => meter[field] === undefined);
  if (missing.length > 0 || meter.q3 === undefined || meter.r === undefined || meter.accuracyClass === undefined) {
    throw new FlowPilotError('ERR_PILOT_CONFIG', `meter "${meter.id}" has no ${missing.join(', ')}: accuracy needs q3, r and accuracyClass (OIML R49)`);
  }
  return { q3: meter.q3, r: meter.r, accuracyClass: meter.accuracyClass };
}

/**
 * SPEC section 4 alignment: W is cut into intervals of the test meter's Δ, interval k =
 * [from + kΔ, from + (k+1)Δ), k = 0..⌊|W|/Δ⌋ − 1 (a last partial interval is dropped). For each:
 * - ΔV_test,k and ΔV_ref,k = total at the interval's end boundary − total at its start
 *   boundary (see boundaryCursor: exact or interpolated between readings within Δ);
 * - `missing` when either meter lacks a boundary total; then `reset` when either meter's
 *   total goes down anywhere from the readings used at the start boundary to those used at
 *   the end boundary (the volume across a reset is unknown);
 * - q_k = ΔV_ref,k / Δt in m³/h; zone by R49-1 3.1/3.2: lower if Q1 ≤ q_k < Q2, upper if
 *   Q2 ≤ q_k ≤ Q4, else excluded as `belowQ1` or `overload`.
 * The water temperature is the mean `temperatureC` of the test meter's readings in W, or of
 * the reference's when the test meter reports none (they are in series: the same water).
 */
export function alignIntervals(test: SeriesInput, reference: SeriesInput, testMeter: MeterConfig, window: TimeWindow): AlignedIntervals {
  assertWindow(window);
  const { q3, r, accuracyClass } = accuracyParameters(testMeter);
  const rates = flowRates(q3, r);
  const testSeries = toSeries(test);
  const refSeries = toSeries(reference);
  const intervalMs = testMeter.intervalSec * 1000;
  const hours = testMeter.intervalSec / 3600;
  const k = Math.floor((window.toMs - window.fromMs) / intervalMs);
  const tc = boundaryCursor(testSeries, intervalMs);
  const rc = boundaryCursor(refSeries, intervalMs);
  const qM3h = new Float64Array(k);
  const volumeTestM3 = new Float64Array(k);
  const volumeRefM3 = new Float64Array(k);
  const zone = new Uint8Array(k);
  const excluded: ExcludedIntervals = { belowQ1: 0, overload: 0, missing: 0, reset: 0 };
  const { q1M3h, q2M3h, q4M3h } = rates;
  tc.boundaryAt(window.fromMs);
  rc.boundaryAt(window.fromMs);
  let count = 0;
  for (let i = 0; i < k; i++) {
    // The start boundary of interval i is the end boundary of interval i − 1.
    const startState = tc.status | rc.status;
    const testStart = tc.totalM3;
    const refStart = rc.totalM3;
    const testLo = tc.lo;
    const refLo = rc.lo;
    const t = window.fromMs + (i + 1) * intervalMs;
    tc.boundaryAt(t);
    rc.boundaryAt(t);
    const state = startState | tc.status | rc.status;
    if (state & MISSING) {
      excluded.missing++;
      continue;
    }
    // A reset among the readings from the start boundary's to the end boundary's.
    if (state & RESET || tc.resetBetween(testLo, tc.hi) || rc.resetBetween(refLo, rc.hi)) {
      excluded.reset++;
      continue;
    }
    const dvRef = rc.totalM3 - refStart;
    const q = dvRef / hours;
    if (q < q1M3h) {
      excluded.belowQ1++;
      continue;
    }
    if (q > q4M3h) {
      excluded.overload++;
      continue;
    }
    qM3h[count] = q;
    volumeRefM3[count] = dvRef;
    volumeTestM3[count] = tc.totalM3 - testStart;
    zone[count] = q < q2M3h ? 0 : 1;
    count++;
  }
  const testTemperature = meanTemperature(testSeries, window);
  const refTemperature = testTemperature === null ? meanTemperature(refSeries, window) : null;
  return {
    meterId: testMeter.id,
    intervalSec: testMeter.intervalSec,
    accuracyClass,
    rates,
    totalIntervals: k,
    count,
    qM3h: qM3h.subarray(0, count),
    volumeTestM3: volumeTestM3.subarray(0, count),
    volumeRefM3: volumeRefM3.subarray(0, count),
    zone: zone.subarray(0, count),
    excluded,
    waterTemperatureC: testTemperature ?? refTemperature,
    temperatureSource: testTemperature !== null ? 'test' : refTemperature !== null ? 'reference' : 'none',
  };
}

export interface ZoneAccuracy {
  /** (ΣΔV_test − ΣΔV_ref) / ΣΔV_ref × 100, %; null without intervals. */
  error: number | null;
  /** Maximum permissible error, ± %. */
  mpe: number;
  verdict: Verdict;
  intervals: number;
  volumeTestM3: number;
  volumeRefM3: number;
}

export interface AccuracyResult extends FlowRates {
  convention: typeof ERROR_CONVENTION;
  meterId: string;
  accuracyClass: AccuracyClass;
  intervalSec: number;
  /** The temperature that chose the upper-zone MPE, °C; null = unknown, ≤ 30 °C limits used. */
  waterTemperatureC: number | null;
  temperatureSource: 'test' | 'reference' | 'none' | 'option';
  minIntervals: number;
  /** Lower and upper zones together; its MPE is the volume-weighted MPE of the two zones. */
  overall: ZoneAccuracy;
  lower: ZoneAccuracy;
  upper: ZoneAccuracy;
  totalIntervals: number;
  excluded: ExcludedIntervals;
}

interface ZoneSums {
  test: number;
  ref: number;
  n: number;
}

function verdict(error: number | null, mpe: number, intervals: number, minIntervals: number): Verdict {
  if (error === null || intervals < minIntervals) return 'insufficient';
  return Math.abs(error) <= mpe + VERDICT_TOLERANCE_PCT ? 'pass' : 'fail';
}

function errorPct(volumeTestM3: number, volumeRefM3: number): number | null {
  return volumeRefM3 > 0 ? ((volumeTestM3 - volumeRefM3) / volumeRefM3) * 100 : null;
}

/**
 * SPEC section 4 accuracy per zone and overall, E = (ΣΔV_test − ΣΔV_ref) / ΣΔV_ref × 100
 * over the zone's intervals (a volume-weighted error, as in a R49 test where the error is
 * the indicated volume against the reference volume). Verdict: `pass` if |E| ≤ MPE, `fail`
 * if not, `insufficient` with fewer than `minIntervals` (30) intervals, which includes a
 * reference with no data (every interval `missing`).
 *
 * Overall MPE: R49 sets limits per zone only. The overall error mixes both zones' volumes, so
 * its limit is the zones' MPEs weighted by their reference volumes,
 * (MPE_lower · V_ref,lower + MPE_upper · V_ref,upper) / (V_ref,lower + V_ref,upper): the
 * bound the overall error keeps when every interval keeps its own zone's limit. With no
 * volume it is the upper-zone MPE. The overall verdict is informative; the zone verdicts
 * are the R49 ones.
 */
export function computeAccuracy(aligned: AlignedIntervals, options: Partial<AccuracyOptions> = {}): AccuracyResult {
  const { minIntervals, waterTemperatureC: override } = { ...DEFAULT_ACCURACY_OPTIONS, ...options };
  const waterTemperatureC = override ?? aligned.waterTemperatureC;
  const sums: [ZoneSums, ZoneSums] = [
    { test: 0, ref: 0, n: 0 },
    { test: 0, ref: 0, n: 0 },
  ];
  for (let i = 0; i < aligned.count; i++) {
    const s = sums[aligned.zone[i] as 0 | 1];
    s.test += aligned.volumeTestM3[i] as number;
    s.ref += aligned.volumeRefM3[i] as number;
    s.n++;
  }
  const zone = (z: FlowZone, s: ZoneSums): ZoneAccuracy => {
    const mpe = maxPermissibleErrorPct(aligned.accuracyClass, z, waterTemperatureC);
    const error = s.n > 0 ? errorPct(s.test, s.ref) : null;
    return { error, mpe, verdict: verdict(error, mpe, s.n, minIntervals), intervals: s.n, volumeTestM3: s.test, volumeRefM3: s.ref };
  };
  const lower = zone('lower', sums[0]);
  const upper = zone('upper', sums[1]);
  const refM3 = lower.volumeRefM3 + upper.volumeRefM3;
  const testM3 = lower.volumeTestM3 + upper.volumeTestM3;
  const intervals = lower.intervals + upper.intervals;
  const overallMpe = refM3 > 0 ? (lower.mpe * lower.volumeRefM3 + upper.mpe * upper.volumeRefM3) / refM3 : upper.mpe;
  const overallError = intervals > 0 ? errorPct(testM3, refM3) : null;
  return {
    convention: ERROR_CONVENTION,
    meterId: aligned.meterId,
    accuracyClass: aligned.accuracyClass,
    intervalSec: aligned.intervalSec,
    ...aligned.rates,
    waterTemperatureC,
    temperatureSource: override !== undefined ? 'option' : aligned.temperatureSource,
    minIntervals,
    overall: { error: overallError, mpe: overallMpe, verdict: verdict(overallError, overallMpe, intervals, minIntervals), intervals, volumeTestM3: testM3, volumeRefM3: refM3 },
    lower,
    upper,
    totalIntervals: aligned.totalIntervals,
    excluded: { ...aligned.excluded },
  };
}

export interface ErrorCurveBin {
  qFromM3h: number;
  qToM3h: number;
  /** Geometric mid-point √(qFrom · qTo). */
  qMidM3h: number;
  error: number | null;
  intervals: number;
  /** The MPE at qMid: the lower-zone MPE below Q2, the upper-zone MPE from Q2. */
  mpe: number;
  volumeTestM3: number;
  volumeRefM3: number;
}

/**
 * SPEC section 4 error curve: the lower- and upper-zone intervals binned by q_k into N
 * log-spaced bins from Q1 to Q4 (edges Q1 · (Q4/Q1)^(i/N)); bin i is [edge_i, edge_i+1), the
 * last one closed at Q4. Each bin's error is volume-weighted like a zone's. The bin holding
 * Q2 mixes both zones; its MPE is taken at its geometric mid-point.
 */
export function computeErrorCurve(aligned: AlignedIntervals, options: Partial<AccuracyOptions> = {}): ErrorCurveBin[] {
  const { bins, waterTemperatureC: override } = { ...DEFAULT_ACCURACY_OPTIONS, ...options };
  if (!Number.isInteger(bins) || bins < 1) throw new FlowPilotError('ERR_VALIDATION', `bins must be a whole number ≥ 1, got ${bins}`);
  const waterTemperatureC = override ?? aligned.waterTemperatureC;
  const { q1M3h, q2M3h, q4M3h } = aligned.rates;
  const logSpan = Math.log(q4M3h / q1M3h);
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? q4M3h : q1M3h * Math.exp((logSpan * i) / bins)));
  const test = new Float64Array(bins);
  const ref = new Float64Array(bins);
  const n = new Int32Array(bins);
  for (let i = 0; i < aligned.count; i++) {
    const q = aligned.qM3h[i] as number;
    // Bin b with edge_b ≤ q < edge_b+1, by binary search over the edges (q ≤ Q4 = last edge).
    let lo = 0;
    let hi = bins - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (q >= (edges[mid] as number)) lo = mid;
      else hi = mid - 1;
    }
    const b = lo;
    test[b] = (test[b] as number) + (aligned.volumeTestM3[i] as number);
    ref[b] = (ref[b] as number) + (aligned.volumeRefM3[i] as number);
    n[b] = (n[b] as number) + 1;
  }
  return Array.from({ length: bins }, (_, b) => {
    const qFromM3h = edges[b] as number;
    const qToM3h = edges[b + 1] as number;
    const qMidM3h = Math.sqrt(qFromM3h * qToM3h);
    const count = n[b] as number;
    return {
      qFromM3h,
      qToM3h,
      qMidM3h,
      error: count > 0 ? errorPct(test[b] as number, ref[b] as number) : null,
      intervals: count,
      mpe: maxPermissibleErrorPct(aligned.accuracyClass, qMidM3h < q2M3h ? 'lower' : 'upper', waterTemperatureC),
      volumeTestM3: test[b] as number,
      volumeRefM3: ref[b] as number,
    };
  });
}
