import { ALARMS, FlowPilotError } from '@flowpilot/schema';
import type { AlarmName, MeterConfig } from '@flowpilot/schema';
import { ABOVE_Q4, binOfFlow, classifyFlow, flowRates, LOWER, maxPermissibleErrorPct, TEST_FLOW_BINS, UPPER } from './flow-zones.ts';
import type { AccuracyClass, FlowRates } from './flow-zones.ts';
import { assertWindow, lowerBound, toSeries } from './series.ts';
import type { ReadingSeries, SeriesInput, TimeWindow } from './series.ts';

/**
 * SPEC section 4 pairing: a test meter's readings against its reference's, cut into paired
 * intervals, each classified (zone, test-flow bin, MPE) or excluded with its reason. The
 * result is the evidence every accuracy figure is computed from, and what
 * `GET /api/v1/meters/{id}/intervals.csv` exports row by row.
 */

/** Why a paired interval does not count (SPEC section 4), in the order they are tested. */
export const EXCLUSION_REASONS = ['gap', 'missing', 'reset', 'alarm', 'reverse', 'belowQ1', 'overload', 'unstable'] as const;
export type ExclusionReason = (typeof EXCLUSION_REASONS)[number];
export type ExclusionCounts = Record<ExclusionReason, number>;

/** Alarms that make a reading unfit to judge accuracy by (SPEC section 4 `alarm`). */
export const DISQUALIFYING_ALARMS: readonly AlarmName[] = ['empty_pipe', 'sensor_fault', 'overload', 'reverse_flow'];
const DISQUALIFYING_MASK = DISQUALIFYING_ALARMS.reduce((mask, name) => mask | (1 << ALARMS.indexOf(name)), 0);

/** Where an interval's temperature came from: 0 none, 1 the reference, 2 the test meter. */
export const TEMPERATURE_SOURCES = ['none', 'reference', 'test'] as const;
export type TemperatureSource = (typeof TEMPERATURE_SOURCES)[number];

/** How a meter's register resolution was found (SPEC section 4). */
export interface RegisterResolution {
  /** m³; null when neither given nor inferable (no positive step of `total` in W). */
  m3: number | null;
  source: 'pilot file' | 'inferred from data' | 'unknown';
}

/**
 * The paired intervals as columns, one row per interval between two consecutive grid readings
 * inside W (start ≥ from, end ≤ to), in time order. Totals and volumes are NaN where unknown;
 * `exclusion` is 0 for a counted interval, else 1 + the index of its reason in EXCLUSION_REASONS.
 */
export interface PairedIntervals {
  meterId: string;
  referenceId: string;
  accuracyClass: AccuracyClass;
  rates: FlowRates;
  /** Whose readings make the grid: the meter with the longer interval, the reference on a tie. */
  grid: 'reference' | 'test';
  gridIntervalSec: number;
  window: TimeWindow;
  length: number;
  startMs: Float64Array;
  endMs: Float64Array;
  testStartM3: Float64Array;
  testEndM3: Float64Array;
  refStartM3: Float64Array;
  refEndM3: Float64Array;
  volumeTestM3: Float64Array;
  volumeRefM3: Float64Array;
  /** The reference's reported flow at the interval's two ends, m³/h. */
  refFlowStartM3h: Float64Array;
  refFlowEndM3h: Float64Array;
  /** °C, NaN when unknown. */
  temperatureC: Float64Array;
  /** Index into TEMPERATURE_SOURCES. */
  temperatureSource: Uint8Array;
  /** 0 lower, 1 upper, -1 none (excluded). */
  zone: Int8Array;
  /** Index into TEST_FLOW_BINS; -1 when excluded or its ends are in different bins of one zone. */
  bin: Int8Array;
  /** The MPE that applies to the interval, ± %; NaN when excluded. */
  mpePct: Float64Array;
  exclusion: Uint8Array;
  excluded: ExclusionCounts;
  resolution: { test: RegisterResolution; reference: RegisterResolution };
}

export function exclusionReason(code: number): ExclusionReason | null {
  return code === 0 ? null : (EXCLUSION_REASONS[code - 1] as ExclusionReason);
}

const code = (reason: ExclusionReason): number => EXCLUSION_REASONS.indexOf(reason) + 1;
const GAP = code('gap');
const MISSING = code('missing');
const RESET = code('reset');
const ALARM = code('alarm');
const REVERSE = code('reverse');
const BELOW_Q1_CODE = code('belowQ1');
const OVERLOAD = code('overload');
const UNSTABLE = code('unstable');

export function accuracyParameters(meter: MeterConfig): { q3: number; r: number; accuracyClass: AccuracyClass } {
  const missing = (['q3', 'r', 'accuracyClass'] as const).filter((field) => meter[field] === undefined);
  if (missing.length > 0 || meter.q3 === undefined || meter.r === undefined || meter.accuracyClass === undefined) {
    throw new FlowPilotError('ERR_PILOT_CONFIG', `meter "${meter.id}" has no ${missing.join(', ')}: accuracy needs q3, r and accuracyClass (OIML R49)`);
  }
  return { q3: meter.q3, r: meter.r, accuracyClass: meter.accuracyClass };
}

/**
 * The readings of a meter that carry a `total`, compacted (SPEC section 4: "a reading without
 * `total` counts as missing", so interpolation skips it and bridges to its neighbours when they
 * are close enough), with a running count of resets (steps where the total goes down).
 */
interface UsableReadings {
  n: number;
  tsMs: Float64Array;
  totalM3: Float64Array;
  flowM3h: Float64Array;
  temperatureC: Float64Array;
  alarmsMask: Uint32Array;
  /** resetsUpTo[k]: steps k' ≤ k with total[k'] < total[k' − 1]. */
  resetsUpTo: Int32Array;
}

function usableReadings(series: ReadingSeries): UsableReadings {
  let n = 0;
  for (let i = 0; i < series.length; i++) if (Number.isFinite(series.totalM3[i])) n++;
  const out: UsableReadings = {
    n,
    tsMs: new Float64Array(n),
    totalM3: new Float64Array(n),
    flowM3h: new Float64Array(n),
    temperatureC: new Float64Array(n),
    alarmsMask: new Uint32Array(n),
    resetsUpTo: new Int32Array(n),
  };
  let k = 0;
  for (let i = 0; i < series.length; i++) {
    const total = series.totalM3[i] as number;
    if (!Number.isFinite(total)) continue;
    out.tsMs[k] = series.tsMs[i] as number;
    out.totalM3[k] = total;
    out.flowM3h[k] = series.flowM3h[i] as number;
    out.temperatureC[k] = series.temperatureC[i] as number;
    out.alarmsMask[k] = series.alarmsMask[i] as number;
    out.resetsUpTo[k] = (k > 0 ? (out.resetsUpTo[k - 1] as number) : 0) + (k > 0 && total < (out.totalM3[k - 1] as number) ? 1 : 0);
    k++;
  }
  return out;
}

/** Index of the first value ≥ t in an ascending column (binary search). */
function searchFrom(times: Float64Array, t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A meter's value at one instant, read from its usable readings. */
interface PointValue {
  ok: boolean;
  totalM3: number;
  flowM3h: number;
  temperatureC: number;
  alarmsMask: number;
  /** The usable readings the value came from (lo = hi for a reading exactly at t). */
  lo: number;
  hi: number;
  /** The two readings around t have a falling total between them. */
  reset: boolean;
}

/** Linear interpolation at weight w ∈ [0, 1]. Module-level, not a closure: it runs once per grid reading. */
function lerp(a: number, b: number, w: number): number {
  return a + (b - a) * w;
}

/** The mean of two values, or the one that is known (NaN = unknown). */
function meanOfKnown(x: number, y: number): number {
  return Number.isNaN(x) ? y : Number.isNaN(y) ? x : (x + y) / 2;
}

const blankPoint = (): PointValue => ({ ok: false, totalM3: NaN, flowM3h: NaN, temperatureC: NaN, alarmsMask: 0, lo: 0, hi: 0, reset: false });

/**
 * The value at t: a reading exactly at t, or linear interpolation between the last usable
 * reading before t and the first after it when they are at most `maxSpanMs` apart (SPEC section
 * 4: 1.5 of that meter's Δ). Edge cases: no reading on one side, or the two too far apart: not
 * ok (the interval is `missing`); the total falling between them: `reset`. Temperature is
 * interpolated when both readings carry one, else whichever does; alarms are those of either
 * reading (either could describe the instant).
 */
function valueAt(u: UsableReadings, t: number, maxSpanMs: number, out: PointValue, cursor: { j: number }): void {
  out.ok = false;
  out.reset = false;
  // Grid times ascend, so the search walks on from where the last one stopped (amortized O(1)).
  let j = cursor.j;
  if (j > 0 && (u.tsMs[j - 1] as number) >= t) j = searchFrom(u.tsMs, t);
  while (j < u.n && (u.tsMs[j] as number) < t) j++;
  cursor.j = j;
  if (j < u.n && u.tsMs[j] === t) {
    out.ok = true;
    out.totalM3 = u.totalM3[j] as number;
    out.flowM3h = u.flowM3h[j] as number;
    out.temperatureC = u.temperatureC[j] as number;
    out.alarmsMask = u.alarmsMask[j] as number;
    out.lo = j;
    out.hi = j;
    return;
  }
  if (j === 0 || j === u.n) return;
  const t0 = u.tsMs[j - 1] as number;
  const t1 = u.tsMs[j] as number;
  if (t1 - t0 > maxSpanMs) return;
  const w = (t - t0) / (t1 - t0);
  const v0 = u.totalM3[j - 1] as number;
  const v1 = u.totalM3[j] as number;
  out.ok = true;
  out.lo = j - 1;
  out.hi = j;
  out.reset = v1 < v0;
  out.totalM3 = lerp(v0, v1, w);
  out.flowM3h = lerp(u.flowM3h[j - 1] as number, u.flowM3h[j] as number, w);
  const c0 = u.temperatureC[j - 1] as number;
  const c1 = u.temperatureC[j] as number;
  out.temperatureC = Number.isNaN(c0) ? c1 : Number.isNaN(c1) ? c0 : lerp(c0, c1, w);
  out.alarmsMask = (u.alarmsMask[j - 1] as number) | (u.alarmsMask[j] as number);
}

/**
 * The smallest positive step of `total` between consecutive usable readings in W: the register
 * resolution when the pilot file does not give it (SPEC section 4). A meter that reported no
 * positive step has none to infer. Edge case: a meter whose flow never makes a single-resolution
 * step overestimates its resolution (a multiple of it), which only widens U: conservative.
 */
export function inferResolution(input: SeriesInput, window: TimeWindow): number | null {
  const { tsMs, totalM3, length } = toSeries(input);
  let smallest = Infinity;
  let previous = -1; // the last reading with a total
  for (let i = 0; i < length; i++) {
    const total = totalM3[i] as number;
    if (total - total !== 0) continue; // NaN: no total
    if (previous >= 0 && (tsMs[previous] as number) >= window.fromMs && (tsMs[i] as number) <= window.toMs) {
      // Float noise of a decimal register (0.1 + 0.2) is not a resolution: round to 1e-9 m³ (1 µL).
      const step = Math.round((total - (totalM3[previous] as number)) * 1e9) / 1e9;
      if (step > 0 && step < smallest) smallest = step;
    }
    previous = i;
  }
  return Number.isFinite(smallest) ? smallest : null;
}

function resolutionOf(meter: MeterConfig | undefined, series: ReadingSeries, window: TimeWindow): RegisterResolution {
  if (meter?.resolution !== undefined) return { m3: meter.resolution, source: 'pilot file' };
  const inferred = inferResolution(series, window);
  return inferred === null ? { m3: null, source: 'unknown' } : { m3: inferred, source: 'inferred from data' };
}

function allocate(n: number) {
  return {
    startMs: new Float64Array(n),
    endMs: new Float64Array(n),
    testStartM3: new Float64Array(n),
    testEndM3: new Float64Array(n),
    refStartM3: new Float64Array(n),
    refEndM3: new Float64Array(n),
    volumeTestM3: new Float64Array(n),
    volumeRefM3: new Float64Array(n),
    refFlowStartM3h: new Float64Array(n),
    refFlowEndM3h: new Float64Array(n),
    temperatureC: new Float64Array(n),
    temperatureSource: new Uint8Array(n),
    zone: new Int8Array(n),
    bin: new Int8Array(n),
    mpePct: new Float64Array(n),
    exclusion: new Uint8Array(n),
  };
}

export interface PairingOptions {
  /** The reference's pilot-file entry: its `resolution` (otherwise inferred). */
  referenceMeter?: MeterConfig;
}

/**
 * SPEC section 4 pairing, rule by rule:
 * - **Grid.** The readings of the meter with the longer Δ (the reference on a tie) are the grid,
 *   including readings without `total` (an interval ending at one is `missing`). Interval k runs
 *   from grid reading k to k + 1; rows are the intervals with start ≥ from and end ≤ to, so the
 *   intervals of consecutive windows (days of a week) never overlap nor leave one out when a
 *   grid reading falls on the window's edge.
 * - **Other meter.** Its total (and, for the reference, flow and temperature) at each grid
 *   timestamp: exact, or interpolated from its usable readings on both sides at most 1.5 of its Δ
 *   apart (see valueAt). So a reference reporting every 300 s pairs with a test meter reporting
 *   every 60 s, and one lost reading of the faster meter is bridged.
 * - **Exclusions, first match wins:** `gap` grid readings more than 1.5Δ_grid apart; `missing`
 *   a total or the reference's flow unknown at either end; `reset` a falling total anywhere
 *   from the start's readings to the end's (the volume across it is unknown); `alarm` either
 *   meter reports empty_pipe, sensor_fault, overload or reverse_flow at either end; `reverse`
 *   the reference's flow < 0 at either end; then the zone.
 * - **Zone and bin** from the reference's reported flow at both ends, never from ΔV_ref (that is
 *   register-quantized and the error's denominator, so selecting by it biases the error):
 *   both ends in one zone → that zone; both below Q1 → `belowQ1`; both above Q4 → `overload`;
 *   anything else (ends in different zones, or one inside and one outside) → `unstable`.
 *   The bin likewise; ends in one zone but different bins count for the zone and no bin.
 * - **Temperature** of an interval: the mean of the reference's temperature at its two ends (one
 *   end when only one has it); the test meter's when the reference has none; else unknown. Its
 *   MPE follows (maxPermissibleErrorPct: unknown is the stricter limit).
 */
export function pairIntervals(test: SeriesInput, reference: SeriesInput, testMeter: MeterConfig, window: TimeWindow, options: PairingOptions = {}): PairedIntervals {
  assertWindow(window);
  const { q3, r, accuracyClass } = accuracyParameters(testMeter);
  const rates = flowRates(q3, r);
  const testSeries = toSeries(test);
  const refSeries = toSeries(reference);
  const refIntervalSec = options.referenceMeter?.intervalSec ?? testMeter.intervalSec;
  const grid: 'reference' | 'test' = testMeter.intervalSec > refIntervalSec ? 'test' : 'reference';
  const gridSeries = grid === 'reference' ? refSeries : testSeries;
  const otherUsable = usableReadings(grid === 'reference' ? testSeries : refSeries);
  const gridIntervalSec = grid === 'reference' ? refIntervalSec : testMeter.intervalSec;
  const otherMaxSpanMs = 1.5 * (grid === 'reference' ? testMeter.intervalSec : refIntervalSec) * 1000;
  const gridMaxSpanMs = 1.5 * gridIntervalSec * 1000;

  // Imported functions as locals: the loop below runs once per grid reading (43,200 a month at 1 min).
  const classify = classifyFlow;
  const binOf = binOfFlow;
  const mpeOf = maxPermissibleErrorPct;
  const [lowerZone, upperZone, aboveQ4] = [LOWER, UPPER, ABOVE_Q4];
  const first = lowerBound(gridSeries.tsMs, window.fromMs);
  let last = first;
  while (last < gridSeries.length && (gridSeries.tsMs[last] as number) <= window.toMs) last++;
  const n = Math.max(0, last - first - 1);
  const rows = allocate(n);
  const excluded = Object.fromEntries(EXCLUSION_REASONS.map((reason) => [reason, 0])) as ExclusionCounts;

  // The grid meter's and the other meter's values at each grid reading; index 0 = start, 1 = end.
  const other = [blankPoint(), blankPoint()] as [PointValue, PointValue];
  const gridIndex = (k: number) => first + k;
  const cursor = { j: 0 };
  if (n > 0) valueAt(otherUsable, gridSeries.tsMs[gridIndex(0)] as number, otherMaxSpanMs, other[0], cursor);
  for (let k = 0; k < n; k++) {
    const a = gridIndex(k);
    const b = a + 1;
    const tA = gridSeries.tsMs[a] as number;
    const tB = gridSeries.tsMs[b] as number;
    const otherA = k % 2 === 0 ? other[0] : other[1];
    const otherB = k % 2 === 0 ? other[1] : other[0];
    valueAt(otherUsable, tB, otherMaxSpanMs, otherB, cursor);
    rows.startMs[k] = tA;
    rows.endMs[k] = tB;
    const gridTotalA = gridSeries.totalM3[a] as number;
    const gridTotalB = gridSeries.totalM3[b] as number;
    const otherTotalA = otherA.ok ? otherA.totalM3 : NaN;
    const otherTotalB = otherB.ok ? otherB.totalM3 : NaN;
    const refGrid = grid === 'reference';
    const testA = refGrid ? otherTotalA : gridTotalA;
    const testB = refGrid ? otherTotalB : gridTotalB;
    const refA = refGrid ? gridTotalA : otherTotalA;
    const refB = refGrid ? gridTotalB : otherTotalB;
    const flowA = refGrid ? (gridSeries.flowM3h[a] as number) : otherA.ok ? otherA.flowM3h : NaN;
    const flowB = refGrid ? (gridSeries.flowM3h[b] as number) : otherB.ok ? otherB.flowM3h : NaN;
    rows.testStartM3[k] = testA;
    rows.testEndM3[k] = testB;
    rows.refStartM3[k] = refA;
    rows.refEndM3[k] = refB;
    rows.volumeTestM3[k] = testB - testA;
    rows.volumeRefM3[k] = refB - refA;
    rows.refFlowStartM3h[k] = flowA;
    rows.refFlowEndM3h[k] = flowB;

    // Temperature: the reference's at the ends, else the test meter's.
    const refTempA = refGrid ? (gridSeries.temperatureC[a] as number) : otherA.ok ? otherA.temperatureC : NaN;
    const refTempB = refGrid ? (gridSeries.temperatureC[b] as number) : otherB.ok ? otherB.temperatureC : NaN;
    const testTempA = refGrid ? (otherA.ok ? otherA.temperatureC : NaN) : (gridSeries.temperatureC[a] as number);
    const testTempB = refGrid ? (otherB.ok ? otherB.temperatureC : NaN) : (gridSeries.temperatureC[b] as number);
    const refTemp = meanOfKnown(refTempA, refTempB);
    const testTemp = meanOfKnown(testTempA, testTempB);
    rows.temperatureC[k] = Number.isNaN(refTemp) ? testTemp : refTemp;
    rows.temperatureSource[k] = !Number.isNaN(refTemp) ? 1 : !Number.isNaN(testTemp) ? 2 : 0;
    rows.zone[k] = -1;
    rows.bin[k] = -1;
    rows.mpePct[k] = NaN;

    let reason = 0;
    if (tB - tA > gridMaxSpanMs) reason = GAP;
    else if (!Number.isFinite(testA) || !Number.isFinite(testB) || !Number.isFinite(refA) || !Number.isFinite(refB) || !Number.isFinite(flowA) || !Number.isFinite(flowB)) {
      reason = MISSING;
    } else if (
      gridTotalB < gridTotalA ||
      otherA.reset ||
      otherB.reset ||
      (otherUsable.resetsUpTo[otherB.hi] as number) - (otherUsable.resetsUpTo[otherA.lo] as number) > 0
    ) {
      reason = RESET;
    } else if (((gridSeries.alarmsMask[a] as number) | (gridSeries.alarmsMask[b] as number) | otherA.alarmsMask | otherB.alarmsMask) & DISQUALIFYING_MASK) {
      reason = ALARM;
    } else if (flowA < 0 || flowB < 0) {
      reason = REVERSE;
    } else {
      const zoneA = classify(flowA, rates);
      const zoneB = classify(flowB, rates);
      if (zoneA !== zoneB) reason = UNSTABLE;
      else if (zoneA === lowerZone || zoneA === upperZone) {
        rows.zone[k] = zoneA;
        const binA = binOf(flowA, rates);
        rows.bin[k] = binA === binOf(flowB, rates) ? binA : -1;
        const temperature = rows.temperatureC[k] as number;
        rows.mpePct[k] = mpeOf(accuracyClass, zoneA === lowerZone ? 'lower' : 'upper', Number.isNaN(temperature) ? null : temperature);
      } else reason = zoneA === aboveQ4 ? OVERLOAD : BELOW_Q1_CODE;
    }
    rows.exclusion[k] = reason;
    if (reason !== 0) excluded[EXCLUSION_REASONS[reason - 1] as ExclusionReason]++;
  }
  return {
    meterId: testMeter.id,
    referenceId: testMeter.reference ?? options.referenceMeter?.id ?? '',
    accuracyClass,
    rates,
    grid,
    gridIntervalSec,
    window: { fromMs: window.fromMs, toMs: window.toMs },
    length: n,
    ...rows,
    excluded,
    resolution: { test: resolutionOf(testMeter, testSeries, window), reference: resolutionOf(options.referenceMeter, refSeries, window) },
  };
}

/** One paired interval as a plain record: a row of `intervals.csv` (SPEC section 5), every field an evaluator recomputes from. */
export interface PairedIntervalRecord {
  startMs: number;
  endMs: number;
  testStartM3: number | null;
  testEndM3: number | null;
  refStartM3: number | null;
  refEndM3: number | null;
  volumeTestM3: number | null;
  volumeRefM3: number | null;
  refFlowStartM3h: number | null;
  refFlowEndM3h: number | null;
  temperatureC: number | null;
  temperatureSource: TemperatureSource;
  zone: 'lower' | 'upper' | null;
  bin: string | null;
  mpePct: number | null;
  excluded: ExclusionReason | null;
}

const orNull = (value: number): number | null => (Number.isFinite(value) ? value : null);

export function pairedIntervalRecord(paired: PairedIntervals, k: number): PairedIntervalRecord {
  const zone = paired.zone[k] as number;
  const bin = paired.bin[k] as number;
  return {
    startMs: paired.startMs[k] as number,
    endMs: paired.endMs[k] as number,
    testStartM3: orNull(paired.testStartM3[k] as number),
    testEndM3: orNull(paired.testEndM3[k] as number),
    refStartM3: orNull(paired.refStartM3[k] as number),
    refEndM3: orNull(paired.refEndM3[k] as number),
    volumeTestM3: orNull(paired.volumeTestM3[k] as number),
    volumeRefM3: orNull(paired.volumeRefM3[k] as number),
    refFlowStartM3h: orNull(paired.refFlowStartM3h[k] as number),
    refFlowEndM3h: orNull(paired.refFlowEndM3h[k] as number),
    temperatureC: orNull(paired.temperatureC[k] as number),
    temperatureSource: TEMPERATURE_SOURCES[paired.temperatureSource[k] as number] as TemperatureSource,
    zone: zone === 0 ? 'lower' : zone === 1 ? 'upper' : null,
    bin: bin >= 0 ? (TEST_FLOW_BINS[bin] as string) : null,
    mpePct: orNull(paired.mpePct[k] as number),
    excluded: exclusionReason(paired.exclusion[k] as number),
  };
}
