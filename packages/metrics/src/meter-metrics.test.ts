import { describe, expect, it } from 'vitest';
import { computeMeterMetrics } from './meter-metrics.ts';
import type { MetricReading } from './series.ts';
import { MIN, T0, atMinutes, monitor, testMeter } from './test-support.ts';

const pilot = { timezone: 'Asia/Almaty', nightWindow: { start: '02:00', end: '04:00' } };

describe('computeMeterMetrics', () => {
  it('computes every SPEC 4 metric in one JSON-serialisable object', () => {
    // Minutes 0,1,2,7,8,9 of W = [T0, T0 + 10 min) (T0 = 05:00 in Almaty: no night in W),
    // shuffled, minute 8 twice; flow 60, total = minute, latency (m + 1) s, a leak at minute 7.
    const readings = atMinutes([8, 0, 9, 2, 7, 1, 8], (m) => ({ receivedAtMs: T0 + m * MIN + (m + 1) * 1000, alarmsMask: m === 7 ? 0b100 : 0 }));
    const metrics = computeMeterMetrics(readings, monitor, { fromMs: T0, toMs: T0 + 10 * MIN }, pilot, { ERR_READING_SCHEMA: 2 });
    expect(metrics).toMatchObject({
      meterId: 'MON',
      expected: 10, // ⌊600 s / 60 s⌋
      received: 6, // distinct minutes 0,1,2,7,8,9
      completeness: 0.6,
      delivery: 0.6, // seq 0..9: 6 of 10
      seq: { distinct: 6, produced: 10, restarts: 0 },
      duplicates: 1,
      gaps: { count: 1, longestMs: 5 * MIN }, // minute 2 → 7
      // latencies 1,2,3,8,9,10 s: p50 rank 3 → 3 s; p95 rank ⌈5.7⌉ = 6 → 10 s; p99 rank 6.
      latencyMs: { count: 6, p50: 3000, p95: 10_000, p99: 10_000, max: 10_000 },
      volumeM3: 9, // 9 − 0, no reset
      totalizerResets: 0,
      flow: { count: 6, meanM3h: 60, minM3h: 60, maxM3h: 60 },
      minNightFlow: { minM3h: null, latestM3h: null, nights: 0, byNight: [] },
      // pairs 0-1, 1-2, 7-8, 8-9: ∫ = 1 m³ each = the steps; 2-7 skipped as a gap → 0 %.
      totalizerConsistency: { percent: 0, integralM3: 4, volumeM3: 4, pairs: 4, skippedPairs: { gap: 1, reset: 0 } },
      alarms: { leak: 1, reverse_flow: 0 },
      rejected: { ERR_READING_SCHEMA: 2 },
      accuracy: null,
      errorCurve: null,
    });
    expect(JSON.parse(JSON.stringify(metrics))).toEqual(metrics);
  });

  it('adds accuracy and the error curve for a test meter given its reference', () => {
    const readings = atMinutes([0, 1, 2], (m) => ({ totalM3: m * 0.8 }));
    const reference = atMinutes([0, 1, 2], (m) => ({ totalM3: m * 0.8 }));
    const metrics = computeMeterMetrics(readings, testMeter, { fromMs: T0, toMs: T0 + 2 * MIN }, pilot, undefined, { reference });
    // Two intervals at 0.8 m³/min = 48 m³/h, both upper, E = 0: too few for a verdict.
    expect(metrics.accuracy?.upper).toMatchObject({ error: 0, intervals: 2, verdict: 'insufficient' });
    expect(metrics.errorCurve).toHaveLength(12);
    expect(JSON.parse(JSON.stringify(metrics))).toEqual(metrics);
  });

  it('completes on 30 days of 1-minute readings with a reference (not timed)', () => {
    // 43 200 readings per meter; only checks that it finishes and counts everything.
    const n = 43_200;
    const test: MetricReading[] = [];
    const ref: MetricReading[] = [];
    let vTest = 0;
    let vRef = 0;
    for (let i = 0; i < n; i++) {
      const flowM3h = 20 + 30 * Math.sin(i / 200) ** 2;
      test.push({ tsMs: T0 + i * MIN, seq: i, flowM3h: flowM3h * 1.01, totalM3: vTest, receivedAtMs: T0 + i * MIN + 150 + (i % 97), alarmsMask: i % 1000 === 0 ? 1 : 0, temperatureC: 12 });
      ref.push({ tsMs: T0 + i * MIN, seq: i, flowM3h, totalM3: vRef });
      vTest += (flowM3h * 1.01) / 60;
      vRef += flowM3h / 60;
    }
    const metrics = computeMeterMetrics(test, testMeter, { fromMs: T0, toMs: T0 + n * MIN }, pilot, {}, { reference: ref });
    expect(metrics.received).toBe(n);
    // W = 25 Nov 05:00 to 25 Dec 05:00 Almaty time: nights 26 Nov … 25 Dec, 30 of them.
    expect(metrics.minNightFlow.nights).toBe(30);
    expect(metrics.accuracy?.upper.intervals).toBeGreaterThan(30_000);
  });
});
