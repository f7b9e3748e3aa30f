import { GAP_INTERVALS } from './availability.ts';
import { assertInterval, toSeries, windowRange } from './series.ts';
import type { SeriesInput, TimeWindow } from './series.ts';

const MS_PER_HOUR = 3_600_000;

export interface VolumeResult {
  /** Forward volume in W, m³: the sum of the positive steps of `total`. */
  volumeM3: number;
  /** Steps where `total` went down (a totalizer reset or a replaced meter). */
  resets: number;
}

/**
 * SPEC section 4 `volume`: the sum of the positive steps of `total` between consecutive
 * readings in W, in time order. Rules:
 * - a reset (total decreasing) counts 0 for its step, neither negative nor "the new total
 *   from 0": after a reset we cannot tell a counter restarted at 0 from a replaced meter with
 *   its own reading, and counting the new total could add a whole meter's history. The cost
 *   is at most the volume of the one interval spanning the reset; `resets` tells how often.
 * - only readings in W count: the volume between `from` and the first reading in W is not
 *   included, so two adjacent windows add up to the whole minus one step at the seam.
 */
export function computeVolume(input: SeriesInput, window: TimeWindow): VolumeResult {
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  const total = series.totalM3;
  let volumeM3 = 0;
  let resets = 0;
  for (let i = lo + 1; i < hi; i++) {
    const step = (total[i] as number) - (total[i - 1] as number);
    if (step > 0) volumeM3 += step;
    else if (step < 0) resets++;
  }
  return { volumeM3, resets };
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
  /** Pairs of consecutive readings used. */
  pairs: number;
  skippedPairs: { gap: number; reset: number };
}

/**
 * SPEC section 4 `totalizerConsistency`: (∫flow dt − volume) / volume × 100, the integral by
 * the trapezoidal rule in m³ (flow in m³/h, dt in hours). Both sides are taken over the SAME
 * pairs of consecutive readings in W:
 * - a pair more than 3Δ apart (a gap, as in `gaps`) is skipped on both sides: we do not
 *   guess the flow across a gap, and the totalizer's step across it would be unmatched;
 * - a pair across a reset (total decreasing) is skipped on both sides;
 * - flow below 0 counts as 0 in the integral, because `total` is the forward totalizer
 *   (SPEC section 1) and does not move for reverse flow.
 */
export function computeTotalizerConsistency(input: SeriesInput, intervalSec: number, window: TimeWindow): TotalizerConsistency {
  assertInterval(intervalSec);
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  const maxStepMs = GAP_INTERVALS * intervalSec * 1000;
  const { tsMs, flowM3h, totalM3 } = series;
  let integralM3 = 0;
  let volumeM3 = 0;
  let pairs = 0;
  let gap = 0;
  let reset = 0;
  for (let i = lo + 1; i < hi; i++) {
    const dtMs = (tsMs[i] as number) - (tsMs[i - 1] as number);
    const step = (totalM3[i] as number) - (totalM3[i - 1] as number);
    if (dtMs > maxStepMs) {
      gap++;
      continue;
    }
    if (step < 0) {
      reset++;
      continue;
    }
    const f0 = Math.max(0, flowM3h[i - 1] as number);
    const f1 = Math.max(0, flowM3h[i] as number);
    integralM3 += ((f0 + f1) / 2) * (dtMs / MS_PER_HOUR);
    volumeM3 += step;
    pairs++;
  }
  return { percent: volumeM3 > 0 ? ((integralM3 - volumeM3) / volumeM3) * 100 : null, integralM3, volumeM3, pairs, skippedPairs: { gap, reset } };
}
