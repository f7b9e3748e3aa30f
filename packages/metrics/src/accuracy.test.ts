import { FlowPilotError } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { alignIntervals, computeAccuracy, computeErrorCurve, flowRates, maxPermissibleErrorPct } from './accuracy.ts';
import type { MetricReading, TimeWindow } from './series.ts';
import { HOUR, MIN, T0, testMeter } from './test-support.ts';

/** A stretch of `count` intervals at reference flow `qM3h`, the test meter reading `errorPct` high. */
interface Block {
  count: number;
  qM3h: number;
  errorPct: number;
}

/**
 * Readings of both meters on the interval grid from T0: ref total grows by q·Δt per interval,
 * the test total by q·Δt·(1 + error/100); both start at 1000 m³.
 */
function pair(blocks: readonly Block[], intervalSec = 60, extra: (k: number) => Partial<MetricReading> = () => ({})) {
  const hours = intervalSec / 3600;
  const test: MetricReading[] = [];
  const ref: MetricReading[] = [];
  let vTest = 1000;
  let vRef = 1000;
  let k = 0;
  const push = () => {
    test.push({ tsMs: T0 + k * intervalSec * 1000, seq: k, flowM3h: 0, totalM3: vTest, ...extra(k) });
    ref.push({ tsMs: T0 + k * intervalSec * 1000, seq: k, flowM3h: 0, totalM3: vRef });
  };
  for (const block of blocks) {
    for (let i = 0; i < block.count; i++, k++) {
      push();
      vRef += block.qM3h * hours;
      vTest += block.qM3h * hours * (1 + block.errorPct / 100);
    }
  }
  push();
  const window: TimeWindow = { fromMs: T0, toMs: T0 + k * intervalSec * 1000 };
  return { test, ref, window };
}

// Q3 = 100, R = 160 (test-support's testMeter): Q1 = 0.625, Q2 = 1, Q4 = 125 m³/h.
const MIXED: Block[] = [
  { count: 40, qM3h: 50, errorPct: 0.8 }, // upper zone
  { count: 5, qM3h: 0.3, errorPct: 0 }, // below Q1
  { count: 40, qM3h: 0.8, errorPct: 3.5 }, // lower zone
  { count: 3, qM3h: 130, errorPct: 0 }, // overload
];

describe('flow rates and MPE (OIML R49-1 3.1, 3.2)', () => {
  it('derives Q1, Q2, Q4 from Q3 and R', () => {
    // 100 / 160 = 0.625; 1.6 · 0.625 = 1; 1.25 · 100 = 125.
    expect(flowRates(100, 160)).toEqual({ q1M3h: 0.625, q2M3h: 1, q3M3h: 100, q4M3h: 125 });
  });

  it('has the class 1 and class 2 limits, warm water above 30 °C', () => {
    expect([maxPermissibleErrorPct(2, 'lower', 20), maxPermissibleErrorPct(2, 'upper', 30), maxPermissibleErrorPct(2, 'upper', 30.1)]).toEqual([5, 2, 3]);
    expect([maxPermissibleErrorPct(1, 'lower', 50), maxPermissibleErrorPct(1, 'upper', null), maxPermissibleErrorPct(1, 'upper', 31)]).toEqual([3, 1, 2]);
  });
});

describe('accuracy (SPEC 4)', () => {
  it('gives +0.8 % upper and +3.5 % lower to 1e-9, both pass; excludes below-Q1 and overload', () => {
    // By hand: upper ΣV_ref = 40 · 50/60 = 33.333… m³, test × 1.008 → E = 0.8 %, MPE 2 → pass.
    // Lower ΣV_ref = 40 · 0.8/60 = 0.5333… m³, test × 1.035 → E = 3.5 %, MPE 5 → pass.
    // Overall: ref 33.8667, test 33.6 + 0.552 = 34.152 → E = 0.285333/33.866667 = 0.842520 %;
    // MPE (5 · 0.53333 + 2 · 33.33333) / 33.86667 = 69.33333/33.86667 = 2.047244 → pass.
    const { test, ref, window } = pair(MIXED);
    const result = computeAccuracy(alignIntervals(test, ref, testMeter, window));
    expect(result.convention).toBe('error = (indicated − reference) / reference × 100 %');
    expect(result.upper.error).toBeCloseTo(0.8, 9);
    expect(result.upper).toMatchObject({ mpe: 2, verdict: 'pass', intervals: 40 });
    expect(result.upper.volumeRefM3).toBeCloseTo(100 / 3, 9);
    expect(result.lower.error).toBeCloseTo(3.5, 9);
    expect(result.lower).toMatchObject({ mpe: 5, verdict: 'pass', intervals: 40 });
    expect(result.overall.error).toBeCloseTo((0.285333333333 / 33.866666666667) * 100, 6);
    expect(result.overall.mpe).toBeCloseTo(69.333333333333 / 33.866666666667, 9);
    expect(result.overall).toMatchObject({ verdict: 'pass', intervals: 80 });
    expect(result.excluded).toEqual({ belowQ1: 5, overload: 3, missing: 0, reset: 0 });
    expect(result).toMatchObject({ q1M3h: 0.625, q2M3h: 1, q3M3h: 100, q4M3h: 125, totalIntervals: 88, waterTemperatureC: null, temperatureSource: 'none' });
  });

  it('fails +2.5 % in the upper zone of a class 2 meter', () => {
    // 2.5 > 2 → fail; overall (33.3333 · 1.025 + 0.5333 · 1.035) / 33.8667 − 1 = 2.5157 % > 2.0472 → fail.
    const { test, ref, window } = pair([{ count: 40, qM3h: 50, errorPct: 2.5 }, { count: 40, qM3h: 0.8, errorPct: 3.5 }]);
    const result = computeAccuracy(alignIntervals(test, ref, testMeter, window));
    expect(result.upper.error).toBeCloseTo(2.5, 9);
    expect(result.upper.verdict).toBe('fail');
    expect(result.lower.verdict).toBe('pass');
    expect(result.overall.verdict).toBe('fail');
  });

  it('applies the class 1 limits: upper ±1 %, lower ±3 %', () => {
    // +0.8 ≤ 1 → pass; +3.5 > 3 → fail.
    const { test, ref, window } = pair(MIXED);
    const result = computeAccuracy(alignIntervals(test, ref, { ...testMeter, accuracyClass: 1 }, window));
    expect(result.upper).toMatchObject({ mpe: 1, verdict: 'pass' });
    expect(result.lower).toMatchObject({ mpe: 3, verdict: 'fail' });
  });

  it('takes the mean water temperature of the test meter: above 30 °C widens the upper MPE', () => {
    // Temperatures alternate 28 and 34 °C → mean 31 > 30: class 2 upper MPE 3, +2.5 % passes;
    // class 1 upper MPE 2. The lower zone MPE does not depend on temperature.
    const blocks = [{ count: 40, qM3h: 50, errorPct: 2.5 }];
    const { test, ref, window } = pair(blocks, 60, (k) => ({ temperatureC: k % 2 === 0 ? 28 : 34 }));
    const warm = computeAccuracy(alignIntervals(test, ref, testMeter, window));
    expect(warm).toMatchObject({ waterTemperatureC: 31, temperatureSource: 'test' });
    expect(warm.upper).toMatchObject({ mpe: 3, verdict: 'pass' });
    expect(warm.lower.mpe).toBe(5);
    expect(computeAccuracy(alignIntervals(test, ref, { ...testMeter, accuracyClass: 1 }, window)).upper.mpe).toBe(2);
    // Falls back to the reference's temperature (same water, in series); an option overrides.
    const plain = pair(blocks);
    const refWarm = plain.ref.map((r) => ({ ...r, temperatureC: 40 }));
    expect(computeAccuracy(alignIntervals(plain.test, refWarm, testMeter, plain.window))).toMatchObject({ waterTemperatureC: 40, temperatureSource: 'reference', upper: { mpe: 3 } });
    expect(computeAccuracy(alignIntervals(plain.test, plain.ref, testMeter, plain.window), { waterTemperatureC: 45 })).toMatchObject({ temperatureSource: 'option', upper: { mpe: 3 } });
  });

  it('is insufficient without reference data, and with fewer than 30 intervals in a zone', () => {
    const { test, window } = pair(MIXED);
    const none = computeAccuracy(alignIntervals(test, [], testMeter, window));
    expect(none.excluded).toEqual({ belowQ1: 0, overload: 0, missing: 88, reset: 0 });
    for (const zone of [none.overall, none.lower, none.upper]) expect(zone).toMatchObject({ error: null, verdict: 'insufficient', intervals: 0 });
    // 29 upper intervals at +0.8 %: the error is reported, the verdict is insufficient.
    const few = pair([{ count: 29, qM3h: 50, errorPct: 0.8 }]);
    const result = computeAccuracy(alignIntervals(few.test, few.ref, testMeter, few.window));
    expect(result.upper.error).toBeCloseTo(0.8, 9);
    expect(result.upper).toMatchObject({ intervals: 29, verdict: 'insufficient' });
  });

  it('skips intervals whose boundary a meter misses, and intervals across a totalizer reset', () => {
    // Reference readings 10 and 11 lost: boundary 10 has its neighbour after at 12 (2Δ away) and
    // boundary 11 its neighbour before at 9 (2Δ away): both missing, so intervals 9, 10, 11 are
    // skipped. A single lost reading (20) is bridged: boundary 20 is interpolated from 19 and 21.
    // Test meter reset at reading 30 (total − 1000): interval 29 = [29, 30] is skipped.
    const { test, ref, window } = pair([{ count: 60, qM3h: 50, errorPct: 1 }]);
    const lossy = ref.filter((_, k) => k !== 10 && k !== 11 && k !== 20);
    const reset = test.map((r, k) => (k >= 30 ? { ...r, totalM3: r.totalM3 - 1000 } : r));
    const result = computeAccuracy(alignIntervals(reset, lossy, testMeter, window));
    expect(result.excluded).toEqual({ belowQ1: 0, overload: 0, missing: 3, reset: 1 });
    expect(result.upper.intervals).toBe(56);
    expect(result.upper.error).toBeCloseTo(1, 9);
  });

  it('aligns meters whose clocks report at different seconds, and a window that starts mid-interval', () => {
    // Constant 50 m³/h, test +0.8 %. Reference readings at :30 of each minute from T0 − 30 s
    // (a reading outside W lets the first boundary be interpolated); test readings on the
    // minute. W = [T0 + 30 s, T0 + 60 min + 30 s): every test boundary is interpolated too.
    // Totals are linear in time, so every interval is exact: 60 intervals, E = 0.8 %.
    const test: MetricReading[] = [];
    const ref: MetricReading[] = [];
    for (let m = -1; m <= 62; m++) {
      test.push({ tsMs: T0 + m * MIN, seq: m + 1, flowM3h: 50.4, totalM3: 1000 + (50 * 1.008 * m) / 60 });
      ref.push({ tsMs: T0 + m * MIN + 30_000, seq: m + 1, flowM3h: 50, totalM3: 500 + (50 * (m + 0.5)) / 60 });
    }
    const window = { fromMs: T0 + 30_000, toMs: T0 + HOUR + 30_000 };
    const result = computeAccuracy(alignIntervals(test, ref, testMeter, window));
    expect(result.upper.intervals).toBe(60);
    expect(result.upper.error).toBeCloseTo(0.8, 9);
    expect(result.excluded.missing).toBe(0);
  });

  it('puts Q1 and Q2 in their zones inclusively and Q4 in the upper zone', () => {
    // Δ = 225 s = 0.0625 h so that the volumes are exact binary fractions: q = 0.625 (= Q1) is
    // lower, q = 1 (= Q2) upper, q = 125 (= Q4) upper; q = 125.0625 overload.
    const meter = { ...testMeter, intervalSec: 225 };
    const { test, ref, window } = pair(
      [
        { count: 1, qM3h: 0.625, errorPct: 0 },
        { count: 1, qM3h: 1, errorPct: 0 },
        { count: 1, qM3h: 125, errorPct: 0 },
        { count: 1, qM3h: 125.0625, errorPct: 0 },
      ],
      225,
    );
    const aligned = alignIntervals(test, ref, meter, window);
    expect(Array.from(aligned.qM3h)).toEqual([0.625, 1, 125]);
    expect(Array.from(aligned.zone)).toEqual([0, 1, 1]);
    expect(aligned.excluded.overload).toBe(1);
  });

  it('needs q3, r and accuracyClass', () => {
    const { test, ref, window } = pair(MIXED);
    expect(() => alignIntervals(test, ref, { id: 'X', site: 'S', role: 'test', intervalSec: 60 }, window)).toThrow(FlowPilotError);
  });
});

describe('error curve (SPEC 4)', () => {
  it('bins q_k log-spaced from Q1 to Q4 with the MPE at each bin mid-point', () => {
    // Edges 0.625 · 200^(i/12). q = 0.8: 12 · ln(1.28)/ln(200) = 0.559 → bin 0 [0.625, 0.97186),
    // mid √(0.625 · 0.97186) = 0.7794 < Q2 → MPE 5, error 3.5. q = 50: 12 · ln(80)/ln(200) = 9.925
    // → bin 9 [33.24, 51.69), MPE 2, error 0.8. Bin 1 [0.97186, 1.51121) holds Q2 = 1; its
    // mid 1.2119 ≥ Q2 → MPE 2. Other bins: no interval, error null.
    const { test, ref, window } = pair(MIXED);
    const curve = computeErrorCurve(alignIntervals(test, ref, testMeter, window));
    expect(curve).toHaveLength(12);
    expect(curve[0]?.qFromM3h).toBeCloseTo(0.625, 12);
    expect(curve[11]?.qToM3h).toBe(125);
    expect(curve[0]).toMatchObject({ intervals: 40, mpe: 5 });
    expect(curve[0]?.qToM3h).toBeCloseTo(0.625 * 200 ** (1 / 12), 9);
    expect(curve[0]?.qMidM3h).toBeCloseTo(Math.sqrt(0.625 * 0.625 * 200 ** (1 / 12)), 9);
    expect(curve[0]?.error).toBeCloseTo(3.5, 9);
    expect(curve[1]).toMatchObject({ intervals: 0, error: null, mpe: 2 });
    expect(curve[9]).toMatchObject({ intervals: 40, mpe: 2 });
    expect(curve[9]?.error).toBeCloseTo(0.8, 9);
    expect(curve.reduce((n, bin) => n + bin.intervals, 0)).toBe(80);
    expect(computeErrorCurve(alignIntervals(test, ref, testMeter, window), { bins: 4 })).toHaveLength(4);
  });
});
