import { assertInterval, assertWindow, toSeries, windowRange } from './series.ts';
import type { SeriesInput, TimeWindow } from './series.ts';

/** A stretch is a gap when it is longer than this many reporting intervals (SPEC section 4: 3Δ). */
export const GAP_INTERVALS = 3;

/** SPEC section 4 `expected`: ⌊|W| / Δ⌋. */
export function expectedReadings(intervalSec: number, window: TimeWindow): number {
  assertWindow(window);
  assertInterval(intervalSec);
  return Math.floor((window.toMs - window.fromMs) / (intervalSec * 1000));
}

/** SPEC section 4 `received`: distinct reading timestamps in W (duplicates count once). */
export function receivedReadings(input: SeriesInput, window: TimeWindow): number {
  const { lo, hi } = windowRange(toSeries(input), window);
  return hi - lo;
}

/**
 * SPEC section 4 `completeness`: min(1, received / expected). null when expected is 0 (a window
 * shorter than one interval): a share of nothing is undefined, not 0 % or 100 %.
 */
export function computeCompleteness(input: SeriesInput, intervalSec: number, window: TimeWindow): number | null {
  const expected = expectedReadings(intervalSec, window);
  if (expected === 0) return null;
  return Math.min(1, receivedReadings(input, window) / expected);
}

export interface DeliveryResult {
  /** distinct seq received / seq the meter produced; null when W holds no reading. */
  delivery: number | null;
  distinctSeq: number;
  /** Σ over seq runs of (max seq − min seq + 1). */
  producedSeq: number;
  /** Times seq fell in arrival order: the meter restarted its counter. */
  seqRestarts: number;
  /** Readings of W without `received_at`, placed in arrival order at their `ts` (see computeDelivery). */
  withoutReceivedAt: number;
}

/**
 * SPEC section 4 `delivery`: Σ over runs of distinct seq received / Σ over runs of (max seq −
 * min seq + 1), over the readings in W (W selects by `ts`, like every metric).
 * - Runs are cut in the order the readings ARRIVED (`received_at`, ties by seq), not by `ts`:
 *   a meter whose clock steps back keeps counting seq up, so in arrival order seq does not
 *   fall and one run covers it (by `ts`, the readings after the step interleave with those
 *   before it and every interleaving looked like a restart).
 * - A run restarts when seq falls in arrival order to or below the lowest seq of the current
 *   run (SPEC section 1: seq grows by 1 per reading, so a meter that restarts its counter
 *   comes back at or below where the run began, typically 0). A seq that falls but stays
 *   above the run's lowest is a late arrival (a backfill array or a dead-letter replay
 *   delivered after newer readings) and fills its place in the current run; a seq already
 *   counted in the run counts once (a duplicate).
 * - A reading without `received_at` (stored before the field existed) is placed at its `ts`:
 *   a live reading arrives a few seconds after its ts, so this is its arrival order to within
 *   the latency; when no reading has `received_at` this is the plain `ts` order.
 * Without restarts and late arrivals this is exactly the table's distinct / (max − min + 1).
 */
export function computeDelivery(input: SeriesInput, window: TimeWindow): DeliveryResult {
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  if (hi === lo) return { delivery: null, distinctSeq: 0, producedSeq: 0, seqRestarts: 0, withoutReceivedAt: 0 };
  const { seq, receivedAtMs, tsMs } = series;
  const n = hi - lo;
  let withoutReceivedAt = 0;
  const arrivedAt = new Float64Array(n);
  // Already in arrival order (live readings, and backfill arrays that arrived before them, are)?
  // Then no sort: this runs over every reading of every meter.
  let inOrder = true;
  for (let i = lo; i < hi; i++) {
    const received = receivedAtMs[i] as number;
    if (Number.isNaN(received)) withoutReceivedAt++;
    const at = Number.isNaN(received) ? (tsMs[i] as number) : received;
    arrivedAt[i - lo] = at;
    if (i > lo && (at < (arrivedAt[i - lo - 1] as number) || (at === arrivedAt[i - lo - 1] && (seq[i] as number) < (seq[i - 1] as number)))) inOrder = false;
  }
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[k] = lo + k;
  if (!inOrder) {
    const sorted = Array.from(order).sort((a, b) => (arrivedAt[a - lo] as number) - (arrivedAt[b - lo] as number) || (seq[a] as number) - (seq[b] as number));
    order.set(sorted);
  }
  // Each run's seqs are gathered, then sorted numerically (a typed-array sort) to count the
  // distinct ones: no Set of every seq.
  const runSeqs = new Float64Array(n);
  let runLength = 0;
  const distinctInRun = (): number => {
    const run = runSeqs.subarray(0, runLength).sort();
    let count = 0;
    for (let k = 0; k < runLength; k++) if (k === 0 || run[k] !== run[k - 1]) count++;
    return count;
  };
  let distinct = 0;
  let produced = 0;
  let restarts = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let k = 0; k < n; k++) {
    const s = seq[order[k] as number] as number;
    if (!Number.isFinite(s)) continue; // a reading without seq says nothing about delivery
    if (s <= min && s < max) {
      // seq fell below the whole current run: the meter restarted its counter.
      distinct += distinctInRun();
      produced += max - min + 1;
      restarts++;
      runLength = 0;
      min = Infinity;
      max = -Infinity;
    }
    runSeqs[runLength++] = s;
    if (s < min) min = s;
    if (s > max) max = s;
  }
  if (runLength > 0) {
    distinct += distinctInRun();
    produced += max - min + 1;
  }
  return { delivery: produced > 0 ? distinct / produced : null, distinctSeq: distinct, producedSeq: produced, seqRestarts: restarts, withoutReceivedAt };
}

export interface Gap {
  fromMs: number;
  toMs: number;
  durationMs: number;
}

/**
 * SPEC section 4 `gaps`: stretches longer than 3Δ (strictly) without a reading, inside W.
 * The stretches are: from the window start to the first reading in W, between consecutive
 * readings, and from the last reading in W to the window end. The window edges bound a
 * stretch like a reading would, so a gap is clipped to W (a meter silent since before W
 * shows a gap starting at `from`; a window that starts mid-interval counts only the part
 * inside W). No reading in W is one stretch of |W|, a gap when |W| > 3Δ. Readings outside W
 * are ignored. Pass `to` ≤ now: the metric has no clock and counts the future as silence.
 */
export function findGaps(input: SeriesInput, intervalSec: number, window: TimeWindow): Gap[] {
  assertInterval(intervalSec);
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  const thresholdMs = GAP_INTERVALS * intervalSec * 1000;
  const gaps: Gap[] = [];
  let previous = window.fromMs;
  const consider = (t: number): void => {
    if (t - previous > thresholdMs) gaps.push({ fromMs: previous, toMs: t, durationMs: t - previous });
    previous = t;
  };
  for (let i = lo; i < hi; i++) consider(series.tsMs[i] as number);
  consider(window.toMs);
  return gaps;
}

export interface GapSummary {
  count: number;
  longestMs: number;
  totalMs: number;
  /** 3Δ: a stretch must be longer than this to be a gap. */
  thresholdMs: number;
  /** The first of the longest gaps, or null when there is none. */
  longest: { fromMs: number; toMs: number } | null;
}

/** Count, longest and total duration of the gaps found by `findGaps` (SPEC section 4). */
export function computeGaps(input: SeriesInput, intervalSec: number, window: TimeWindow): GapSummary {
  const gaps = findGaps(input, intervalSec, window);
  let longest: Gap | null = null;
  let totalMs = 0;
  for (const gap of gaps) {
    totalMs += gap.durationMs;
    if (!longest || gap.durationMs > longest.durationMs) longest = gap;
  }
  return {
    count: gaps.length,
    longestMs: longest ? longest.durationMs : 0,
    totalMs,
    thresholdMs: GAP_INTERVALS * intervalSec * 1000,
    longest: longest ? { fromMs: longest.fromMs, toMs: longest.toMs } : null,
  };
}
