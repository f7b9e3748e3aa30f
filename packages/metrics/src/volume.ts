import { GAP_INTERVALS } from './availability.ts';
import { assertInterval, toSeries, windowRange } from './series.ts';
import type { ReadingSeries, SeriesInput, TimeWindow } from './series.ts';

const MS_PER_HOUR = 3_600_000;

/**
 * A reading outside W that the caller holds apart from the series: `before` is the last reading
 * before `from`, `after` the first at or after `to`. A reading in the series itself serves the
 * same purpose; of the two, the nearer to W is used.
 */
export interface EdgeNeighbour {
  tsMs: number;
  totalM3: number;
  flowM3h?: number;
}

export interface EdgeNeighbours {
  before?: EdgeNeighbour | null;
  after?: EdgeNeighbour | null;
}

/**
 * How the total at an edge of W was taken: `reading` a reading exactly at the edge;
 * `interpolated` between the nearest readings on both sides; `inside` the first (last) reading
 * inside W, because no reading on the other side lies within 3Δ; `reset` likewise, because the
 * total fell between the two readings around the edge; `none` no reading with `total` in W.
 */
export type VolumeEdge = 'reading' | 'interpolated' | 'inside' | 'reset' | 'none';

export interface VolumeResult {
  /** Forward volume in W, m³: total(to) − total(from) without the negative steps of resets. */
  volumeM3: number;
  /** Steps where `total` went down (a totalizer reset or a replaced meter), counted in the window of the lower reading. */
  resets: number;
  edges: { from: VolumeEdge; to: VolumeEdge };
}

/**
 * The readings of W with a usable value, plus the nearest such reading on each side of W (from
 * the series or `neighbours`, whichever is nearer), in time order, as typed columns of `length`
 * points. A reading is usable when its `total` is known (a reading without one counts as
 * missing) and, with `needsFlow`, its `flow` too.
 */
interface EdgePoints {
  length: number;
  tsMs: Float64Array;
  totalM3: Float64Array;
  flowM3h: Float64Array;
}

function edgePoints(series: ReadingSeries, window: TimeWindow, neighbours: EdgeNeighbours, needsFlow: boolean): EdgePoints {
  const { lo, hi } = windowRange(series, window);
  const { tsMs, totalM3, flowM3h } = series;
  // A plain loop, no callback per reading: this runs over every reading of every meter.
  const usable = (i: number): boolean => Number.isFinite(totalM3[i]) && (!needsFlow || Number.isFinite(flowM3h[i]));
  const usableNeighbour = (n: EdgeNeighbour): boolean => Number.isFinite(n.tsMs) && Number.isFinite(n.totalM3) && (!needsFlow || Number.isFinite(n.flowM3h));
  const fromSeries = (i: number): EdgeNeighbour => ({ tsMs: tsMs[i] as number, totalM3: totalM3[i] as number, flowM3h: flowM3h[i] as number });
  let before: EdgeNeighbour | null = null;
  for (let i = lo - 1; i >= 0; i--) {
    if (usable(i)) {
      before = fromSeries(i);
      break;
    }
  }
  const given = neighbours.before;
  if (given && usableNeighbour(given) && given.tsMs < window.fromMs && (!before || given.tsMs > before.tsMs)) before = given;
  let after: EdgeNeighbour | null = null;
  for (let i = hi; i < series.length; i++) {
    if (usable(i)) {
      after = fromSeries(i);
      break;
    }
  }
  const givenAfter = neighbours.after;
  if (givenAfter && usableNeighbour(givenAfter) && givenAfter.tsMs >= window.toMs && (!after || givenAfter.tsMs < after.tsMs)) after = givenAfter;
  const capacity = hi - lo + 2;
  const points: EdgePoints = { length: 0, tsMs: new Float64Array(capacity), totalM3: new Float64Array(capacity), flowM3h: new Float64Array(capacity) };
  let n = 0;
  if (before) {
    points.tsMs[n] = before.tsMs;
    points.totalM3[n] = before.totalM3;
    points.flowM3h[n++] = before.flowM3h ?? NaN;
  }
  for (let i = lo; i < hi; i++) {
    const total = totalM3[i] as number;
    const flow = flowM3h[i] as number;
    if (total - total !== 0 || (needsFlow && flow - flow !== 0)) continue; // NaN or ±Infinity: not usable
    points.tsMs[n] = tsMs[i] as number;
    points.totalM3[n] = total;
    points.flowM3h[n++] = flow;
  }
  if (after) {
    points.tsMs[n] = after.tsMs;
    points.totalM3[n] = after.totalM3;
    points.flowM3h[n++] = after.flowM3h ?? NaN;
  }
  return { length: n, tsMs: points.tsMs.subarray(0, n), totalM3: points.totalM3.subarray(0, n), flowM3h: points.flowM3h.subarray(0, n) };
}

/** Linear interpolation of y between (t0, y0) and (t1, y1) at t; exact at both ends. */
function interpolate(t0: number, y0: number, t1: number, y1: number, t: number): number {
  if (t <= t0) return y0;
  if (t >= t1) return y1;
  return y0 + ((y1 - y0) * (t - t0)) / (t1 - t0);
}

/**
 * SPEC section 4 `volume` (as refined below the table): total(to) − total(from), each total
 * interpolated linearly at the edge of W between the nearest readings on both sides when they
 * are at most 3Δ apart (otherwise the first or last reading inside W), minus the negative
 * steps of resets. Computed as the sum, over consecutive readings with a `total`, of each
 * step's part inside W:
 * - a step between two readings in [from, to] counts whole, however long (the totalizer
 *   measured it). A reading exactly at `to` is not in W but its total is total(to).
 * - a step across an edge counts for the part of it inside W, the total interpolated at the
 *   edge, when its readings are at most 3Δ apart (the same rule as `gaps`); a longer one counts
 *   0 (the edge falls back to the first or last reading inside W, and that stretch's volume
 *   belongs to no window). The SAME interpolated total closes one window and opens the next,
 *   so the volumes of adjacent windows (the days of a week) add up to the whole exactly.
 * - a step where `total` went down (a reset or a replaced meter) counts 0, neither negative nor
 *   "the new total from 0": we cannot tell a counter restarted at 0 from a replaced meter with
 *   its own reading. Across an edge we do not interpolate it either (the stretch counts 0).
 *   `resets` counts it in the window that holds the lower (later) reading, when the earlier
 *   one is in W or within 3Δ of it.
 * - a reading without `total` (NaN) counts as missing: the steps join the readings around it.
 * - a window with no reading inside counts the part of the one step that spans it when that
 *   step is at most 3Δ long (a window shorter than Δ), else 0.
 * The neighbours outside W come from the series (readings up to 3Δ before `from` and 3Δ after
 * `to`; more is harmless, the nearest is taken) or from `neighbours`. Without them the edges
 * fall back to the readings inside W, and a day read hourly loses its last hour: `edges` says
 * which rule each edge used.
 */
export function computeVolume(input: SeriesInput, intervalSec: number, window: TimeWindow, neighbours: EdgeNeighbours = {}): VolumeResult {
  assertInterval(intervalSec);
  const series = toSeries(input);
  const points = edgePoints(series, window, neighbours, false);
  const { tsMs, totalM3 } = points;
  const { fromMs, toMs } = window;
  const maxStepMs = GAP_INTERVALS * intervalSec * 1000;
  let volumeM3 = 0;
  let resets = 0;
  let hasInside = false;
  let fromEdge: VolumeEdge = 'inside';
  let toEdge: VolumeEdge = 'inside';
  for (let k = 0; k < points.length; k++) {
    const t0 = tsMs[k - 1] ?? -Infinity;
    const t1 = tsMs[k] as number;
    if (t1 >= fromMs && t1 < toMs) hasInside = true;
    if (k === 0) continue;
    const y0 = totalM3[k - 1] as number;
    const y1 = totalM3[k] as number;
    const step = y1 - y0;
    const longStep = t1 - t0 > maxStepMs;
    if (step < 0 && t1 >= fromMs && t1 < toMs && (t0 >= fromMs || !longStep)) resets++;
    if (t1 <= fromMs || t0 >= toMs) continue; // the step lies outside W
    const crossesFrom = t0 < fromMs;
    const crossesTo = t1 > toMs;
    if (!crossesFrom && !crossesTo) {
      if (step > 0) volumeM3 += step;
      continue;
    }
    const edge: VolumeEdge = longStep ? 'inside' : step < 0 ? 'reset' : 'interpolated';
    if (crossesFrom) fromEdge = edge;
    if (crossesTo) toEdge = edge;
    if (edge !== 'interpolated') continue;
    const a = crossesFrom ? interpolate(t0, y0, t1, y1, fromMs) : y0;
    const b = crossesTo ? interpolate(t0, y0, t1, y1, toMs) : y1;
    volumeM3 += b - a;
  }
  if (tsMs.includes(fromMs)) fromEdge = 'reading';
  if (tsMs.includes(toMs)) toEdge = 'reading';
  const orNone = (edge: VolumeEdge): VolumeEdge => (hasInside || edge === 'interpolated' || edge === 'reading' ? edge : 'none');
  return { volumeM3, resets, edges: { from: orNone(fromEdge), to: orNone(toEdge) } };
}

export interface FlowStats {
  count: number;
  meanM3h: number | null;
  minM3h: number | null;
  maxM3h: number | null;
}

/**
 * SPEC section 4 `flow`: mean, min and max of `flow` over the readings in W. The mean is the
 * plain mean of the readings (each reading weighs the same; with a steady Δ that is the time
 * mean). Reverse flow (negative) is included as reported. null when W holds no reading.
 */
export function computeFlowStats(input: SeriesInput, window: TimeWindow): FlowStats {
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  if (hi === lo) return { count: 0, meanM3h: null, minM3h: null, maxM3h: null };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = lo; i < hi; i++) {
    const f = series.flowM3h[i] as number;
    sum += f;
    if (f < min) min = f;
    if (f > max) max = f;
  }
  return { count: hi - lo, meanM3h: sum / (hi - lo), minM3h: min, maxM3h: max };
}

export interface TotalizerConsistency {
  /** (∫flow dt − volume) / volume × 100; null when the volume over the used pairs is 0. */
  percent: number | null;
  integralM3: number;
  volumeM3: number;
  /** Pairs of consecutive readings used (a pair across an edge of W counts in both windows, each for its part). */
  pairs: number;
  skippedPairs: { gap: number; reset: number };
}

/**
 * SPEC section 4 `totalizerConsistency`: (∫flow dt − volume) / volume × 100, the integral by
 * the trapezoidal rule in m³ (flow in m³/h, dt in hours). Both sides are taken over the SAME
 * pairs of consecutive readings (with both `flow` and `total`; one without either counts as
 * missing), each clipped to W as `computeVolume` clips it: a pair across an edge counts for
 * its part inside W, total and flow interpolated linearly at the edge, so without gaps and
 * resets `volumeM3` here is `computeVolume`'s volume and the days of a week add up.
 * - a pair more than 3Δ apart (a gap, as in `gaps`) is skipped on both sides: we do not
 *   guess the flow across a gap, and the totalizer's step across it would be unmatched;
 * - a pair across a reset (total decreasing) is skipped on both sides;
 * - flow below 0 counts as 0 in the integral, because `total` is the forward totalizer
 *   (SPEC section 1) and does not move for reverse flow.
 * The neighbours outside W come from the series or `neighbours`, as for `computeVolume`.
 */
export function computeTotalizerConsistency(input: SeriesInput, intervalSec: number, window: TimeWindow, neighbours: EdgeNeighbours = {}): TotalizerConsistency {
  assertInterval(intervalSec);
  const series = toSeries(input);
  const points = edgePoints(series, window, neighbours, true);
  const { tsMs, flowM3h, totalM3 } = points;
  const { fromMs, toMs } = window;
  const maxStepMs = GAP_INTERVALS * intervalSec * 1000;
  let integralM3 = 0;
  let volumeM3 = 0;
  let pairs = 0;
  let gap = 0;
  let reset = 0;
  for (let k = 1; k < points.length; k++) {
    const t0 = tsMs[k - 1] as number;
    const t1 = tsMs[k] as number;
    if (t1 <= fromMs || t0 >= toMs) continue; // the pair lies outside W
    const y0 = totalM3[k - 1] as number;
    const y1 = totalM3[k] as number;
    if (t1 - t0 > maxStepMs) {
      gap++;
      continue;
    }
    if (y1 < y0) {
      reset++;
      continue;
    }
    const f0 = Math.max(0, flowM3h[k - 1] as number);
    const f1 = Math.max(0, flowM3h[k] as number);
    const a = Math.max(t0, fromMs);
    const b = Math.min(t1, toMs);
    const fa = interpolate(t0, f0, t1, f1, a);
    const fb = interpolate(t0, f0, t1, f1, b);
    integralM3 += ((fa + fb) / 2) * ((b - a) / MS_PER_HOUR);
    volumeM3 += interpolate(t0, y0, t1, y1, b) - interpolate(t0, y0, t1, y1, a);
    pairs++;
  }
  return { percent: volumeM3 > 0 ? ((integralM3 - volumeM3) / volumeM3) * 100 : null, integralM3, volumeM3, pairs, skippedPairs: { gap, reset } };
}
