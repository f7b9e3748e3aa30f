import { describe, expect, it } from 'vitest';
import { computeLatency, nearestRank } from './latency.ts';
import { T0, MIN, atMinutes, range } from './test-support.ts';

describe('latencyMs (SPEC 4, nearest-rank percentiles)', () => {
  it('takes the value at rank ⌈p/100 · n⌉', () => {
    // 20 readings with latencies 100, 200, …, 2000 ms, in shuffled order.
    // p50: rank ⌈10⌉ = 10 → 1000; p95: ⌈19⌉ = 19 → 1900; p99: ⌈19.8⌉ = 20 → 2000; max 2000.
    const order = [7, 3, 19, 0, 12, 5, 16, 1, 9, 14, 2, 18, 6, 11, 4, 17, 8, 13, 10, 15];
    const readings = atMinutes(range(0, 20), (m) => ({ receivedAtMs: T0 + m * MIN + ((order[m] as number) + 1) * 100 }));
    expect(computeLatency(readings, { fromMs: T0, toMs: T0 + 20 * MIN })).toEqual({ count: 20, p50: 1000, p95: 1900, p99: 2000, max: 2000 });
  });

  it('leaves out readings without received_at, keeps a negative latency (meter clock ahead)', () => {
    // Latencies −500 and 300 (minute 2 has none): n = 2; p50 rank 1 → −500; p95, p99 rank 2 → 300.
    const readings = atMinutes([0, 1, 2], (m) => (m === 2 ? {} : { receivedAtMs: T0 + m * MIN + (m === 0 ? -500 : 300) }));
    expect(computeLatency(readings, { fromMs: T0, toMs: T0 + 3 * MIN })).toEqual({ count: 2, p50: -500, p95: 300, p99: 300, max: 300 });
  });

  it('selects the same values as nearest rank over a full sort, with ties and any size', () => {
    // Cross-check of the O(n) selection against the definition, on deterministic pseudo-random data.
    let state = 12345;
    const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
    for (const n of [1, 2, 3, 7, 20, 99, 100, 101, 1000, 4321]) {
      const readings = range(0, n).map((m) => ({ tsMs: T0 + m * MIN, seq: m, flowM3h: 0, totalM3: 0, receivedAtMs: T0 + m * MIN + (next() % 50) * 10 }));
      const sorted = readings.map((r) => (r.receivedAtMs as number) - r.tsMs).sort((a, b) => a - b);
      const expected = { count: n, p50: nearestRank(sorted, 50), p95: nearestRank(sorted, 95), p99: nearestRank(sorted, 99), max: sorted[n - 1] };
      expect(computeLatency(readings, { fromMs: T0, toMs: T0 + n * MIN })).toEqual(expected);
    }
  });

  it('is null without data', () => {
    expect(computeLatency([], { fromMs: T0, toMs: T0 + MIN })).toEqual({ count: 0, p50: null, p95: null, p99: null, max: null });
    expect(nearestRank([42], 99)).toBe(42);
  });
});
