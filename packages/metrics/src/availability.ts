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
  /** Times seq went down in time order: the meter restarted its counter. */
  seqRestarts: number;
}

/**
 * SPEC section 4 `delivery`: distinct seq / (max seq − min seq + 1) over the readings in W.
 * SPEC section 1 has seq grow by 1 per reading; a meter that restarts and counts from 0
 * again would make max − min meaningless, so a seq that goes DOWN in time order starts a
 * new run and delivery = Σ distinct / Σ (max − min + 1) over the runs. Without a restart
 * this is exactly the SPEC formula.
 */
export function computeDelivery(input: SeriesInput, window: TimeWindow): DeliveryResult {
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  if (hi === lo) return { delivery: null, distinctSeq: 0, producedSeq: 0, seqRestarts: 0 };
  const seq = series.seq;
  let distinct = 1;
  let produced = 0;
  let restarts = 0;
  let runStart = seq[lo] as number;
  for (let i = lo + 1; i < hi; i++) {
    const s = seq[i] as number;
    const before = seq[i - 1] as number;
    if (s > before) distinct++;
    else if (s < before) {
      produced += before - runStart + 1;
      runStart = s;
      restarts++;
      distinct++;
    }
    // s === before: the same seq at two timestamps counts once.
  }
  produced += (seq[hi - 1] as number) - runStart + 1;
  return { delivery: distinct / produced, distinctSeq: distinct, producedSeq: produced, seqRestarts: restarts };
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
