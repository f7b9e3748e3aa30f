import { describe, expect, it } from 'vitest';
import { ARRIVAL } from '@flowpilot/schema';
import { computeLatency, nearestRank } from './latency.ts';
import { T0, MIN, HOUR, atMinutes, range } from './test-support.ts';

/** Nothing of `stored` readings with a received_at arrived in a backfill array nor as a replay. */
const noneApart = (stored: number) => ({ backfilled: { count: 0, share: stored === 0 ? null : 0, maxMs: null }, replayed: 0 });

describe('latencyMs (SPEC 4, nearest-rank percentiles)', () => {
  it('takes the value at rank ⌈p/100 · n⌉', () => {
    // 20 readings with latencies 100, 200, …, 2000 ms, in shuffled order.
    // p50: rank ⌈10⌉ = 10 → 1000; p95: ⌈19⌉ = 19 → 1900; p99: ⌈19.8⌉ = 20 → 2000; max 2000.
    const order = [7, 3, 19, 0, 12, 5, 16, 1, 9, 14, 2, 18, 6, 11, 4, 17, 8, 13, 10, 15];
    const readings = atMinutes(range(0, 20), (m) => ({ receivedAtMs: T0 + m * MIN + ((order[m] as number) + 1) * 100 }));
    expect(computeLatency(readings, { fromMs: T0, toMs: T0 + 20 * MIN })).toEqual({ count: 20, p50: 1000, p95: 1900, p99: 2000, max: 2000, ...noneApart(20) });
  });

  it('leaves out readings without received_at, keeps a negative latency (meter clock ahead)', () => {
    // Latencies −500 and 300 (minute 2 has none): n = 2; p50 rank 1 → −500; p95, p99 rank 2 → 300.
    const readings = atMinutes([0, 1, 2], (m) => (m === 2 ? {} : { receivedAtMs: T0 + m * MIN + (m === 0 ? -500 : 300) }));
    expect(computeLatency(readings, { fromMs: T0, toMs: T0 + 3 * MIN })).toEqual({ count: 2, p50: -500, p95: 300, p99: 300, max: 300, ...noneApart(2) });
  });

  it('selects the same values as nearest rank over a full sort, with ties and any size', () => {
    // Cross-check of the O(n) selection against the definition, on deterministic pseudo-random data.
    let state = 12345;
    const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
    for (const n of [1, 2, 3, 7, 20, 99, 100, 101, 1000, 4321]) {
      const readings = range(0, n).map((m) => ({ tsMs: T0 + m * MIN, seq: m, flowM3h: 0, totalM3: 0, receivedAtMs: T0 + m * MIN + (next() % 50) * 10 }));
      const sorted = readings.map((r) => (r.receivedAtMs as number) - r.tsMs).sort((a, b) => a - b);
      const expected = { count: n, p50: nearestRank(sorted, 50), p95: nearestRank(sorted, 95), p99: nearestRank(sorted, 99), max: sorted[n - 1], ...noneApart(n) };
      expect(computeLatency(readings, { fromMs: T0, toMs: T0 + n * MIN })).toEqual(expected);
    }
  });

  it('is null without data', () => {
    expect(computeLatency([], { fromMs: T0, toMs: T0 + MIN })).toEqual({ count: 0, p50: null, p95: null, p99: null, max: null, ...noneApart(0) });
    expect(nearestRank([42], 99)).toBe(42);
  });
});

describe('latencyMs by arrival (SPEC 4: one at a time; backfill arrays apart; replays left out)', () => {
  it('takes the percentiles over the readings that arrived alone, counts a backfill array and a replay apart', () => {
    // Minutes 0–5 arrived alone, latencies 100, 200, …, 600 ms.
    // Minutes 6–8 arrived in one array at T0 + 66 min: delays 60, 59, 58 min.
    // Minute 9 was a dead letter replayed 2 days later. Minute 10 has no received_at: in nothing.
    const readings = atMinutes(range(0, 11), (m) => {
      if (m <= 5) return { receivedAtMs: T0 + m * MIN + (m + 1) * 100 };
      if (m <= 8) return { receivedAtMs: T0 + 66 * MIN, arrival: ARRIVAL.backfill };
      if (m === 9) return { receivedAtMs: T0 + 9 * MIN + 48 * HOUR, arrival: ARRIVAL.replay };
      return { arrival: ARRIVAL.backfill };
    });
    // Alone n = 6: p50 rank 3 → 300; p95 rank ⌈5.7⌉ = 6 → 600; p99 rank 6 → 600; max 600.
    // Backfilled 3 of the 10 readings with a received_at (6 + 3 + 1): share 0.3; the longest delay 60 min.
    expect(computeLatency(readings, { fromMs: T0, toMs: T0 + 11 * MIN })).toEqual({
      count: 6,
      p50: 300,
      p95: 600,
      p99: 600,
      max: 600,
      backfilled: { count: 3, share: 0.3, maxMs: 60 * MIN },
      replayed: 1,
    });
  });

  it('gives no percentiles when every reading came in a backfill array, and says how many did', () => {
    // A meter that only forwarded its store: 4 readings an hour old, in one array at T0 + 63 min.
    const readings = atMinutes(range(0, 4), () => ({ receivedAtMs: T0 + 63 * MIN, arrival: ARRIVAL.backfill }));
    expect(computeLatency(readings, { fromMs: T0, toMs: T0 + 4 * MIN })).toEqual({
      count: 0,
      p50: null,
      p95: null,
      p99: null,
      max: null,
      backfilled: { count: 4, share: 1, maxMs: 63 * MIN },
      replayed: 0,
    });
  });

  it('counts a point without the field, or with a code it does not know, as arrived alone; only W counts', () => {
    // Columns as InfluxDB answers them: minute 0 has no arrival (older data), minute 1 a code
    // of another tool (7), minute 2 backfilled, minute 3 outside W = [T0, T0 + 3 min).
    // Alone: latencies 1000 and 2000 → p50 rank 1 → 1000; p95 rank 2 → 2000. Backfilled 1 of 3.
    const columns = {
      tsMs: [T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN],
      seq: [0, 1, 2, 3],
      flowM3h: [0, 0, 0, 0],
      totalM3: [0, 0, 0, 0],
      receivedAtMs: [T0 + 1000, T0 + MIN + 2000, T0 + 2 * MIN + 3000, T0 + 3 * MIN + 4000],
      arrival: [null, 7, ARRIVAL.backfill, ARRIVAL.replay],
    };
    expect(computeLatency(columns, { fromMs: T0, toMs: T0 + 3 * MIN })).toEqual({
      count: 2,
      p50: 1000,
      p95: 2000,
      p99: 2000,
      max: 2000,
      backfilled: { count: 1, share: 1 / 3, maxMs: 3000 },
      replayed: 0,
    });
  });
});
