import { ARRIVAL } from '@flowpilot/schema';
import { toSeries, windowRange } from './series.ts';
import type { SeriesInput, TimeWindow } from './series.ts';

/** The readings of W that arrived in a backfill array (SPEC section 4), counted apart from latency. */
export interface BackfilledResult {
  /** Readings in W with a `received_at` that arrived in a backfill array. */
  count: number;
  /** count / readings in W with a `received_at` (however they arrived), 0…1; null when there are none. */
  share: number | null;
  /** The longest received_at − ts among them, ms: how far back the meter's store reached; null when none. */
  maxMs: number | null;
}

export interface LatencyResult {
  /** Readings in W that arrived alone and carry a `received_at`: the percentiles are over these. */
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  backfilled: BackfilledResult;
  /** Readings in W with a `received_at` that were dead-letter replays, left out (their received_at is the replay's time). */
  replayed: number;
}

/**
 * Nearest-rank percentile of an ascending array: the value at rank ⌈p/100 · n⌉ (1-based), so
 * the result is always one of the observed values, never an interpolation. null when empty.
 */
export function nearestRank(sortedAscending: ArrayLike<number>, p: number): number | null {
  const n = sortedAscending.length;
  if (n === 0) return null;
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sortedAscending[rank - 1] as number;
}

/**
 * Rearranges values[lo, hi) so that values[k] holds the value a full ascending sort would put
 * there, everything before it ≤ and everything after it ≥ (Hoare's selection): the
 * percentiles in O(n) instead of sorting every latency.
 */
export function select(values: Float64Array, k: number, lo: number, hi: number): number {
  let left = lo;
  let right = hi - 1;
  while (right > left) {
    const pivot = values[(left + right) >>> 1] as number;
    let i = left;
    let j = right;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const swap = values[i] as number;
        values[i] = values[j] as number;
        values[j] = swap;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return values[k] as number;
}

/**
 * SPEC section 4 `latencyMs`: p50, p95, p99 and max of received_at − ts over the readings in
 * W that arrived one at a time, nearest-rank percentiles. Readings that arrived in a backfill
 * array are counted apart (`backfilled`): their delay is how long the meter kept them, not how
 * late the link was, and an hour-old array would otherwise make every meter's p95 an hour.
 * Dead-letter replays are left out and counted (`replayed`): their received_at is when the
 * operator replayed them. Readings without `received_at` are left out of everything. A negative
 * value (the meter's clock ahead of the ingest's) is kept as is: it is evidence of clock drift.
 */
export function computeLatency(input: SeriesInput, window: TimeWindow): LatencyResult {
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  const values = new Float64Array(hi - lo);
  let n = 0;
  let backfilled = 0;
  let backfilledMaxMs = -Infinity;
  let replayed = 0;
  for (let i = lo; i < hi; i++) {
    const received = series.receivedAtMs[i] as number;
    if (Number.isNaN(received)) continue;
    const delayMs = received - (series.tsMs[i] as number);
    const arrival = series.arrival[i] as number;
    if (arrival === ARRIVAL.backfill) {
      backfilled++;
      if (delayMs > backfilledMaxMs) backfilledMaxMs = delayMs;
    } else if (arrival === ARRIVAL.replay) replayed++;
    // Alone, and any code this version does not know (another tool's value): as if alone.
    else values[n++] = delayMs;
  }
  const stored = n + backfilled + replayed;
  const apart = {
    backfilled: { count: backfilled, share: stored === 0 ? null : backfilled / stored, maxMs: backfilled === 0 ? null : backfilledMaxMs },
    replayed,
  };
  if (n === 0) return { count: 0, p50: null, p95: null, p99: null, max: null, ...apart };
  // Ranks ascend, so each selection only searches to the right of the previous one.
  const rank = (p: number): number => Math.min(n, Math.max(1, Math.ceil((p / 100) * n))) - 1;
  const r50 = rank(50);
  const r95 = rank(95);
  const r99 = rank(99);
  const p50 = select(values, r50, 0, n);
  const p95 = select(values, r95, r50, n);
  const p99 = select(values, r99, r95, n);
  let max = p99;
  for (let i = r99; i < n; i++) if ((values[i] as number) > max) max = values[i] as number;
  return { count: n, p50, p95, p99, max, ...apart };
}
