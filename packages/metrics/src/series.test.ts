import { describe, expect, it } from 'vitest';
import { toSeries, windowRange } from './series.ts';
import { T0, MIN } from './test-support.ts';

describe('toSeries', () => {
  it('sorts readings that arrive out of order and keeps one per timestamp, the later one in the input', () => {
    // By hand: timestamps 2, 0, 1, 1 (minutes) → 0, 1, 2; the second reading at minute 1
    // (flow 9) was written later, so it replaces the first (flow 1), as InfluxDB would (SPEC 2).
    const series = toSeries([
      { tsMs: T0 + 2 * MIN, seq: 2, flowM3h: 2, totalM3: 2 },
      { tsMs: T0, seq: 0, flowM3h: 0, totalM3: 0 },
      { tsMs: T0 + MIN, seq: 1, flowM3h: 1, totalM3: 1 },
      { tsMs: T0 + MIN, seq: 1, flowM3h: 9, totalM3: 1, receivedAtMs: T0 + MIN + 5 },
      { tsMs: NaN, seq: 7, flowM3h: 7, totalM3: 7 },
    ]);
    expect(Array.from(series.tsMs)).toEqual([T0, T0 + MIN, T0 + 2 * MIN]);
    expect(Array.from(series.flowM3h)).toEqual([0, 9, 2]);
    expect(Array.from(series.receivedAtMs)).toEqual([NaN, T0 + MIN + 5, NaN]);
    expect(series.duplicates).toBe(1);
    expect(series.invalid).toBe(1);
  });

  it('takes columns, with null for absent optional fields, and keeps duplicates in sorted input out', () => {
    const series = toSeries({ tsMs: [T0, T0, T0 + MIN], seq: [0, 0, 1], flowM3h: [1, 2, 3], totalM3: [0, 0, 1], temperatureC: [null, 12, 13], alarmsMask: [0, null, 4] });
    expect(series.length).toBe(2);
    expect(Array.from(series.flowM3h)).toEqual([2, 3]);
    expect(Array.from(series.temperatureC)).toEqual([12, 13]);
    expect(Array.from(series.alarmsMask)).toEqual([0, 4]);
    expect(Array.from(series.receivedAtMs)).toEqual([NaN, NaN]);
    expect(Array.from(series.arrival)).toEqual([0, 0]);
  });

  it('reads how each reading arrived, 0 (alone) where the column or the value is absent or not a code', () => {
    const columns = { tsMs: [T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN], seq: [0, 1, 2, 3, 4], flowM3h: [0, 0, 0, 0, 0], totalM3: [0, 0, 0, 0, 0] };
    expect(Array.from(toSeries({ ...columns, arrival: [1, 2, null, 1.5, -1] }).arrival)).toEqual([1, 2, 0, 0, 0]);
    expect(Array.from(toSeries(columns).arrival)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(toSeries([{ tsMs: T0 + MIN, seq: 1, flowM3h: 0, totalM3: 0, arrival: 1 }, { tsMs: T0, seq: 0, flowM3h: 0, totalM3: 0 }]).arrival)).toEqual([0, 1]);
  });

  it('returns a series unchanged, and finds a half-open window [from, to)', () => {
    const series = toSeries([0, 1, 2, 3].map((m) => ({ tsMs: T0 + m * MIN, seq: m, flowM3h: 0, totalM3: 0 })));
    expect(toSeries(series)).toBe(series);
    // [T0 + 1 min, T0 + 3 min) holds minutes 1 and 2: indices 1..2.
    expect(windowRange(series, { fromMs: T0 + MIN, toMs: T0 + 3 * MIN })).toEqual({ lo: 1, hi: 3 });
  });

  it('rejects a window that ends before it starts', () => {
    expect(() => windowRange(toSeries([]), { fromMs: T0, toMs: T0 - 1 })).toThrow(/toMs ≥ fromMs/);
  });
});
