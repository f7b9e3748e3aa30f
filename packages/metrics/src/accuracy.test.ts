import { FlowPilotError } from '@flowpilot/schema';
import type { MeterConfig } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { computeAccuracy, computeErrorCurve, errorCurveEdges } from './accuracy.ts';
import { flowRates } from './flow-zones.ts';
import { pairedIntervalRecord, pairIntervals } from './pairing.ts';
import type { MetricReading, TimeWindow } from './series.ts';
import { HOUR, MIN, T0, testMeter } from './test-support.ts';

const bareReference: MeterConfig = { id: 'REF', site: 'S', role: 'reference', intervalSec: 60 };
/** Register resolution 1 L, as test-support's testMeter: U then rests on the data, not on an inferred resolution. */
const referenceMeter: MeterConfig = { ...bareReference, resolution: 0.001 };

/** A stretch of `count` intervals at reference flow `qM3h`, the test meter reading `errorPct` high. */
interface Block {
  count: number;
  qM3h: number;
  errorPct: number;
}

/**
 * Readings of both meters every `intervalSec` from T0: the reference's total grows by q·Δt per
 * interval, the test's by q·Δt·(1 + error/100), both from 1000 m³. Each reading reports the flow
 * of the interval it starts (so the interval where one block ends has the next block's flow at
 * its end), the last reading the last block's.
 */
function pair(blocks: readonly Block[], intervalSec = 60, extra: (k: number) => { test?: Partial<MetricReading>; ref?: Partial<MetricReading> } = () => ({})) {
  const hours = intervalSec / 3600;
  const test: MetricReading[] = [];
  const ref: MetricReading[] = [];
  let vTest = 1000;
  let vRef = 1000;
  let k = 0;
  const push = (q: number, e: number) => {
    const more = extra(k);
    test.push({ tsMs: T0 + k * intervalSec * 1000, seq: k, flowM3h: q * (1 + e / 100), totalM3: vTest, ...more.test });
    ref.push({ tsMs: T0 + k * intervalSec * 1000, seq: k, flowM3h: q, totalM3: vRef, ...more.ref });
  };
  for (const block of blocks) {
    for (let i = 0; i < block.count; i++, k++) {
      push(block.qM3h, block.errorPct);
      vRef += block.qM3h * hours;
      vTest += block.qM3h * hours * (1 + block.errorPct / 100);
    }
  }
  const lastBlock = blocks[blocks.length - 1] as Block;
  push(lastBlock.qM3h, lastBlock.errorPct);
  const window: TimeWindow = { fromMs: T0, toMs: T0 + k * intervalSec * 1000 };
  return { test, ref, window };
}

const accuracyOf = (p: ReturnType<typeof pair>, meter: MeterConfig = testMeter, reference: MeterConfig = referenceMeter) =>
  computeAccuracy(pairIntervals(p.test, p.ref, meter, p.window, { referenceMeter: reference }), reference);

/** A register that shows whole multiples of `resolutionM3` (it truncates, like a counter). */
const register = (resolutionM3: number) => (totalM3: number) => Math.floor(totalM3 / resolutionM3 + 1e-9) * resolutionM3;

// Q3 = 100, R = 160 (test-support's testMeter): Q1 = 0.625, Q2 = 1, Q4 = 125 m³/h;
// bins: lower [0.625, 1), upper-1 [1, 35.35), upper-2 [35.35, 70.7), upper-3 [70.7, 100], upper-4 (100, 125].

describe('pairing (SPEC 4)', () => {
  it('pairs on the reference grid and counts each exclusion by its reason, first match wins', () => {
    // 12 intervals at 50 m³/h, test +1 %. Then, by interval:
    //   0: the test meter reports empty_pipe at reading 1 (end of 0, start of 1) → alarm (0 and 1)
    //   3: the reference's flow is −2 at reading 4 → reverse (3 and 4)
    //   6: reference reading 7 lost → the grid runs 6 → 8, 2Δ > 1.5Δ → gap (one row, 6–8)
    //   8 (row of 8→9): the test total is missing at 9 → missing (8→9 and 9→10)
    //  10→11: the test total falls at 11 (meter replaced) → reset (10→11 only: 11→12 steps up again)
    const { test, ref, window } = pair([{ count: 12, qM3h: 50, errorPct: 1 }], 60, (k) => ({
      test: k === 1 ? { alarmsMask: 1 << 1 } : k === 9 ? { totalM3: NaN } : {},
      ref: k === 4 ? { flowM3h: -2 } : {},
    }));
    test[11] = { ...(test[11] as MetricReading), totalM3: 5 };
    test[12] = { ...(test[12] as MetricReading), totalM3: 5 + 50 / 60 * 1.01 };
    const paired = pairIntervals(test, ref.filter((_, k) => k !== 7), testMeter, window, { referenceMeter });
    expect(paired.grid).toBe('reference');
    expect(paired.length).toBe(11);
    const reasons = Array.from({ length: paired.length }, (_, k) => pairedIntervalRecord(paired, k).excluded);
    expect(reasons).toEqual(['alarm', 'alarm', null, 'reverse', 'reverse', null, 'gap', 'missing', 'missing', 'reset', null]);
    expect(paired.excluded).toEqual({ gap: 1, missing: 2, reset: 1, alarm: 2, reverse: 2, belowQ1: 0, overload: 0, unstable: 0 });
    const counted = computeAccuracy(paired, referenceMeter);
    expect(counted.upper.intervals).toBe(3);
    expect(counted.upper.error).toBeCloseTo(1, 9);
  });

  it('classifies by the reference flow at both ends: Q1 and Q2 inclusive, Q4 upper, mixed ends unstable', () => {
    // Reported reference flows per reading: 0.5, 0.625, 0.625, 1, 1, 125, 125, 126, 126, 0.9, 1.1.
    // Intervals: 0.5→0.625 unstable; 0.625→0.625 lower; 0.625→1 unstable; 1→1 upper;
    // 1→125 upper (different bins: zone only); 125→125 upper-4; 125→126 unstable;
    // 126→126 overload; 126→0.9 unstable; 0.9→1.1 unstable.
    const flows = [0.5, 0.625, 0.625, 1, 1, 125, 125, 126, 126, 0.9, 1.1];
    const p = pair([{ count: 10, qM3h: 50, errorPct: 0 }], 60, (k) => ({ ref: { flowM3h: flows[k] as number } }));
    const paired = pairIntervals(p.test, p.ref, testMeter, p.window, { referenceMeter });
    const rows = Array.from({ length: paired.length }, (_, k) => pairedIntervalRecord(paired, k));
    expect(rows.map((r) => r.excluded ?? `${r.zone}/${r.bin}`)).toEqual([
      'unstable',
      'lower/lower',
      'unstable',
      'upper/upper-1',
      'upper/null',
      'upper/upper-4',
      'unstable',
      'overload',
      'unstable',
      'unstable',
    ]);
    const both = pair([{ count: 3, qM3h: 0.3, errorPct: 0 }]);
    expect(pairIntervals(both.test, both.ref, testMeter, both.window).excluded.belowQ1).toBe(3);
  });

  it('case 1: zones from the reported flow, not from register-quantized volumes', () => {
    // Steady 0.99 m³/h (lower zone, Q2 = 1) for 24 h, 1 L registers on both meters, a +0.5 %
    // test meter. By ΔV_ref/Δt, 60 s of 16.5 L shows 16 or 17 L: q = 0.96 or 1.02, so the old
    // rule put half the intervals in the upper zone with −2.45 % there. Now every interval is
    // lower and their sum telescopes: E = +0.5 % within 2 L of 23.76 m³ (±0.01 pp).
    const { test, ref, window } = pair([{ count: 1440, qM3h: 0.99, errorPct: 0.5 }]);
    const litre = register(0.001);
    const quantized = (rs: MetricReading[]) => rs.map((r) => ({ ...r, totalM3: litre(r.totalM3) }));
    const result = accuracyOf({ test: quantized(test), ref: quantized(ref), window });
    expect(result.upper.intervals).toBe(0);
    expect(result.lower.intervals).toBe(1440);
    expect(result.lower.error as number).toBeCloseTo(0.5, 1);
    expect(Math.abs((result.lower.error as number) - 0.5)).toBeLessThan(0.01);
    expect(result.lower.verdict).toBe('pass');
    // At 1.01 m³/h: every interval upper, +0.5 %, pass (the old rule: +5.70 % in the lower zone).
    const up = pair([{ count: 1440, qM3h: 1.01, errorPct: 0.5 }]);
    const resultUp = accuracyOf({ test: quantized(up.test), ref: quantized(up.ref), window: up.window });
    expect(resultUp.lower.intervals).toBe(0);
    expect(Math.abs((resultUp.upper.error as number) - 0.5)).toBeLessThan(0.01);
    // A perfect meter against a 10 L reference register at 0.99 m³/h: 0 within 10 L of 23.76 m³
    // (±0.05 pp); the old rule showed −17.5 %.
    const perfect = pair([{ count: 1440, qM3h: 0.99, errorPct: 0 }]);
    const tenLitres = register(0.01);
    const resultPerfect = accuracyOf({ test: perfect.test, ref: perfect.ref.map((r) => ({ ...r, totalM3: tenLitres(r.totalM3) })), window: perfect.window });
    expect(Math.abs(resultPerfect.lower.error as number)).toBeLessThan(0.05);
    expect(resultPerfect.lower.verdict).toBe('pass');
  });

  it('case 4: a reference every 300 s pairs with a test meter every 60 s on the reference grid', () => {
    // 3 h at 50 m³/h, test +1 %: 36 intervals of 300 s; the test total is read exactly at each
    // grid time (its readings fall on them). The old rule left every interval missing.
    const test: MetricReading[] = [];
    const ref: MetricReading[] = [];
    for (let m = 0; m <= 180; m++) {
      test.push({ tsMs: T0 + m * MIN, seq: m, flowM3h: 50.5, totalM3: 10 + (50.5 * m) / 60 });
      if (m % 5 === 0) ref.push({ tsMs: T0 + m * MIN, seq: m / 5, flowM3h: 50, totalM3: 20 + (50 * m) / 60 });
    }
    const window = { fromMs: T0, toMs: T0 + 3 * HOUR };
    const slowRef = { ...referenceMeter, intervalSec: 300 };
    const paired = pairIntervals(test, ref, testMeter, window, { referenceMeter: slowRef });
    expect(paired).toMatchObject({ grid: 'reference', gridIntervalSec: 300, length: 36 });
    const result = computeAccuracy(paired, slowRef);
    expect(result.upper.intervals).toBe(36);
    expect(result.upper.error).toBeCloseTo(1, 9);
    expect(result.upper.verdict).toBe('pass');
    // A test meter slower than its reference makes the grid; the reference is interpolated.
    const slowTest = { ...testMeter, intervalSec: 300 };
    const swapped = pairIntervals(test.filter((_, m) => m % 5 === 0), ref, slowTest, window, { referenceMeter });
    expect(swapped).toMatchObject({ grid: 'test', length: 36 });
  });

  it('interpolates the other meter at grid times from readings at most 1.5 of its Δ apart', () => {
    // Reference on the minute, test readings at :30 of each minute (clocks that differ): each
    // grid total of the test is interpolated between readings 60 s apart; totals linear in time
    // → exact. One lost test reading (minute 20:30) leaves grid times 20:00 and 21:00 between
    // the readings 19:30 and 21:30, 120 s apart > 90 s: both unknown, so the intervals
    // 19→20, 20→21 and 21→22 are missing; 57 of 60 counted.
    const test: MetricReading[] = [];
    const ref: MetricReading[] = [];
    for (let m = -1; m <= 61; m++) {
      if (m !== 20) test.push({ tsMs: T0 + m * MIN + 30_000, seq: m + 1, flowM3h: 50.4, totalM3: 1000 + (50 * 1.008 * (m + 0.5)) / 60 });
      ref.push({ tsMs: T0 + m * MIN, seq: m + 1, flowM3h: 50, totalM3: 500 + (50 * m) / 60 });
    }
    const window = { fromMs: T0, toMs: T0 + HOUR };
    const paired = pairIntervals(test, ref, testMeter, window, { referenceMeter });
    expect(paired.length).toBe(60);
    expect(paired.excluded.missing).toBe(3);
    const result = computeAccuracy(paired, referenceMeter);
    expect(result.upper.intervals).toBe(57);
    expect(result.upper.error).toBeCloseTo(0.8, 9);
  });

  it('case 5: a reading without total loses the intervals that touch it, not the zone', () => {
    // 192 intervals at 50 m³/h, +1 %; the test's reading 100 has no total: grid times 99 and 101
    // are readings, 100 is bracketed by 99 and 101 (120 s > 90 s) → intervals 99 and 100 missing:
    // 190 counted, pass (the old rule: insufficient).
    const { test, ref, window } = pair([{ count: 192, qM3h: 50, errorPct: 1 }], 60, (k) => (k === 100 ? { test: { totalM3: NaN } } : {}));
    const result = accuracyOf({ test, ref, window });
    expect(result.excluded.missing).toBe(2);
    expect(result.upper).toMatchObject({ intervals: 190, verdict: 'pass' });
    expect(result.upper.error).toBeCloseTo(1, 9);
  });

  it('needs q3, r and accuracyClass', () => {
    const { test, ref, window } = pair([{ count: 3, qM3h: 50, errorPct: 0 }]);
    expect(() => pairIntervals(test, ref, { id: 'X', site: 'S', role: 'test', intervalSec: 60 }, window)).toThrow(FlowPilotError);
  });
});

describe('accuracy per zone and bin (SPEC 4)', () => {
  it('gives each zone its error, weighted MPE and verdict; the overall verdict needs both zones', () => {
    // 40 intervals at 50 m³/h +0.8 %, then 40 at 0.8 m³/h +3.5 %. The interval where the first
    // block ends reports 0.8 at its end: unstable. Upper: 39 intervals, E = 0.8; lower: 40, E = 3.5.
    // Overall: ref 39·50/60 + 40·0.8/60 = 32.5 + 0.53333 = 33.03333 m³; test 32.5·1.008 +
    // 0.53333·1.035 = 32.76 + 0.552 = 33.312 → E = 0.278667/33.03333 = 0.843592 %;
    // MPE (2·32.5 + 5·0.53333)/33.03333 = 67.66667/33.03333 = 2.048436.
    const result = accuracyOf(pair([{ count: 40, qM3h: 50, errorPct: 0.8 }, { count: 40, qM3h: 0.8, errorPct: 3.5 }]));
    expect(result.convention).toBe('error = (indicated − reference) / reference × 100 %');
    expect(result.excluded.unstable).toBe(1);
    expect(result.upper).toMatchObject({ mpe: 2, verdict: 'pass', intervals: 39, rule: 'simple acceptance' });
    expect(result.upper.error).toBeCloseTo(0.8, 9);
    expect(result.lower).toMatchObject({ mpe: 5, verdict: 'pass', intervals: 40 });
    expect(result.lower.error).toBeCloseTo(3.5, 9);
    expect(result.overall.error).toBeCloseTo((0.278666666667 / 33.033333333333) * 100, 6);
    expect(result.overall.mpe).toBeCloseTo(67.666666666667 / 33.033333333333, 9);
    expect(result.overall).toMatchObject({ verdict: 'pass', rule: 'zones', intervals: 79 });
    // Class 1: upper ±1 % (0.8 passes), lower ±3 % (3.5 fails) → overall fail.
    const class1 = accuracyOf(pair([{ count: 40, qM3h: 50, errorPct: 0.8 }, { count: 40, qM3h: 0.8, errorPct: 3.5 }]), { ...testMeter, accuracyClass: 1 });
    expect(class1.upper).toMatchObject({ mpe: 1, verdict: 'pass' });
    expect(class1.lower).toMatchObject({ mpe: 3, verdict: 'fail' });
    expect(class1.overall.verdict).toBe('fail');
  });

  it('is insufficient without reference data, with fewer than 30 intervals, and overall when one zone is', () => {
    const p = pair([{ count: 40, qM3h: 50, errorPct: 0.8 }]);
    // No reference reading: no grid, so no paired interval at all.
    const none = accuracyOf({ ...p, ref: [] });
    expect(none.pairedIntervals).toBe(0);
    for (const group of [none.lower, none.upper]) expect(group).toMatchObject({ error: null, verdict: 'insufficient', rule: 'intervals', intervals: 0 });
    expect(none.overall).toMatchObject({ error: null, verdict: 'insufficient', rule: 'zones' });
    const few = accuracyOf(pair([{ count: 29, qM3h: 50, errorPct: 0.8 }]));
    expect(few.upper.error).toBeCloseTo(0.8, 9);
    expect(few.upper).toMatchObject({ intervals: 29, verdict: 'insufficient', minIntervals: 30 });
    // Upper passes with 40 intervals; lower has none: the meter is not signed off on one zone.
    expect(accuracyOf(p).overall.verdict).toBe('insufficient');
  });

  it('case 2: a failing test-flow bin fails its zone even when the zone error passes', () => {
    // 60 intervals at 1.2 m³/h (upper-1) +8 %, then 60 at 100 m³/h (upper-3) +1 %. The interval
    // where the first block ends (1.2 → 100) is in the upper zone but in no bin. Zone: ref
    // 60·0.02 + 60·1.66667 = 1.2 + 100 = 101.2 m³, test 1.296 + 101 = 102.296 → E = 1.083004 %,
    // within ±2 % — the old verdict, pass. Bin upper-1: 59 intervals, E = 8 % > 2 → fail, and so
    // the zone fails by that bin.
    const result = accuracyOf(pair([{ count: 60, qM3h: 1.2, errorPct: 8 }, { count: 60, qM3h: 100, errorPct: 1 }]));
    expect(result.upper.error).toBeCloseTo((1.096 / 101.2) * 100, 6);
    expect(result.upper).toMatchObject({ intervals: 120, verdict: 'fail', rule: 'bin upper-1' });
    const bins = Object.fromEntries(result.bins.map((b) => [b.bin, b]));
    expect(bins['upper-1']).toMatchObject({ intervals: 59, verdict: 'fail', rule: 'simple acceptance', zone: 'upper' });
    expect(bins['upper-1']?.error).toBeCloseTo(8, 9);
    expect(bins['upper-3']).toMatchObject({ intervals: 60, verdict: 'pass' });
    expect(bins['upper-2']).toMatchObject({ intervals: 0, verdict: 'insufficient', error: null, mpe: 2 });
    expect(bins['upper-1']?.qFromM3h).toBe(1);
    expect(bins['upper-1']?.qToM3h).toBeCloseTo(35.35, 9);
  });

  it('case 3: the MPE per interval from the reference temperature, glitches of the test meter ignored', () => {
    // 360 intervals at 50 m³/h, a +2.5 % class 2 meter. The reference reads 29 °C; the test
    // meter 29 °C with ten 85 °C glitches. The old rule: window mean of the test meter 30.6 °C
    // → MPE 3 → pass. Now every interval takes the reference's 29 °C → MPE 2 → fail.
    const glitch = (k: number) => k % 30 === 20 && k < 300;
    const p = pair([{ count: 360, qM3h: 50, errorPct: 2.5 }], 60, (k) => ({ test: { temperatureC: glitch(k) ? 85 : 29 }, ref: { temperatureC: 29 } }));
    const result = accuracyOf(p);
    expect(result.upper).toMatchObject({ mpe: 2, verdict: 'fail' });
    expect(result.upper.temperature).toMatchObject({ source: 'reference', minC: 29, medianC: 29, maxC: 29, volumeShareAbove30C: 0 });
    // A test meter at 31 °C beside a reference at 20 °C: the reference's, the cold limit.
    const warmTest = pair([{ count: 40, qM3h: 50, errorPct: 2.5 }], 60, () => ({ test: { temperatureC: 31 }, ref: { temperatureC: 20 } }));
    expect(accuracyOf(warmTest).upper.mpe).toBe(2);
    // Without a reference temperature the test meter's is used per interval: each glitch
    // reading warms the two intervals it ends or starts ((29 + 85)/2 = 57 °C): 20 of 360 at
    // MPE 3, equal volumes → MPE 2 + 20/360 = 2.0556; +2.5 % still fails. Share > 30 °C: 20/360.
    const testOnly = pair([{ count: 360, qM3h: 50, errorPct: 2.5 }], 60, (k) => ({ test: { temperatureC: glitch(k) ? 85 : 29 } }));
    const fromTest = accuracyOf(testOnly);
    expect(fromTest.upper.mpe).toBeCloseTo(2 + 20 / 360, 9);
    expect(fromTest.upper.verdict).toBe('fail');
    expect(fromTest.upper.temperature).toMatchObject({ source: 'test', minC: 29, medianC: 29, maxC: 57 });
    expect(fromTest.upper.temperature.volumeShareAbove30C).toBeCloseTo(20 / 360, 9);
    // Warm water everywhere (reference 40 °C): MPE 3, +2.5 % passes; unknown: the stricter 2.
    expect(accuracyOf(pair([{ count: 40, qM3h: 50, errorPct: 2.5 }], 60, () => ({ ref: { temperatureC: 40 } }))).upper).toMatchObject({ mpe: 3, verdict: 'pass' });
    expect(accuracyOf(pair([{ count: 40, qM3h: 50, errorPct: 2.5 }])).upper.temperature).toMatchObject({ source: 'none', minC: null, medianC: null });
  });

  it('states the uncertainty budget and decides by OIML G 19: guarded acceptance when U > MPE/3', () => {
    // Reference U = 1.6 % (k = 2) from the pilot file → u_ref = 0.8 pp; resolutions 0.001 m³ of
    // both registers over one stretch of 40 intervals at 50 m³/h: ΣV_ref = 33.3333 m³,
    // u_res = 100·√(1·(1e-6 + 1e-6)/6)/33.3333 = 100·0.00057735/33.3333 = 0.0017321 pp; one day
    // → u_rep 0 (said so). U = 2·√(0.64 + 0.0000030) = 1.600004 > 2/3 → guarded:
    // E = +0.3 %: 0.3 + 1.6 ≤ 2 → pass; E = +1 %: inconclusive; E = +3.7 %: 3.7 − 1.6 > 2 → fail.
    const calibrated: MeterConfig = { ...referenceMeter, resolution: 0.001, calibration: { certificate: 'C-1', calibratedOn: '2026-09-01', uncertaintyPct: 1.6 } };
    const dut: MeterConfig = { ...testMeter, resolution: 0.001 };
    const at = (errorPct: number) => accuracyOf(pair([{ count: 40, qM3h: 50, errorPct }]), dut, calibrated).upper;
    const pass = at(0.3);
    expect(pass.uncertainty.referencePct).toBe(0.8);
    expect(pass.uncertainty.resolutionPct).toBeCloseTo((100 * Math.sqrt(2e-6 / 6)) / (100 / 3), 9);
    expect(pass.uncertainty).toMatchObject({ repeatabilityPct: 0, stretches: 1, days: 1 });
    expect(pass.uncertainty.notes).toEqual(['repeatability needs 3 days of data, 1 day here: counted as 0']);
    expect(pass.uncertainty.expandedPct).toBeCloseTo(1.600004, 6);
    expect(pass.uncertaintyToMpe).toBeCloseTo(0.800002, 6);
    expect(pass).toMatchObject({ verdict: 'pass', rule: 'guarded acceptance' });
    expect(at(1)).toMatchObject({ verdict: 'inconclusive', rule: 'guarded acceptance' });
    expect(at(3.7)).toMatchObject({ verdict: 'fail', rule: 'guarded acceptance' });
    const result = accuracyOf(pair([{ count: 40, qM3h: 50, errorPct: 0.3 }]), dut, calibrated);
    expect(result.reference).toEqual({ serial: null, certificate: 'C-1', calibratedOn: '2026-09-01', expandedUncertaintyPct: 1.6 });
    expect(result.resolution).toEqual({ test: { m3: 0.001, source: 'pilot file' }, reference: { m3: 0.001, source: 'pilot file' } });
  });

  it('infers a resolution from the data when the pilot file has none, and says so', () => {
    // Totals quantized to 10 L at 50 m³/h: steps of 0.83 or 0.84 m³ per minute → the smallest
    // positive step is 0.83 m³: inferred (an overestimate that only widens U), not 0.01.
    const p = pair([{ count: 40, qM3h: 50, errorPct: 0 }]);
    const tenLitres = register(0.01);
    const result = accuracyOf({ ...p, ref: p.ref.map((r) => ({ ...r, totalM3: tenLitres(r.totalM3) })) }, testMeter, bareReference);
    expect(result.resolution.reference.source).toBe('inferred from data');
    expect(result.resolution.reference.m3).toBeCloseTo(0.83, 9);
    expect(result.upper.uncertainty.notes).toContain("reference meter's calibration uncertainty not given in the pilot file: counted as 0");
  });

  it('takes repeatability from the daily errors of at least 3 local days', () => {
    // Three Asia/Almaty days (UTC+5) of 60 intervals each at 50 m³/h, errors +1, +2, +3 %: the
    // daily errors are 1, 2, 3 → std 1 → u_rep = 1/√3 = 0.57735; overall zone error 2 %.
    // U = 2·0.57735 = 1.1547 > 2/3 → guarded: 2 + 1.1547 > 2 and 2 − 1.1547 ≤ 2 → inconclusive.
    const startMs = Date.UTC(2026, 10, 24, 19); // 00:00 Almaty on 25 November
    const test: MetricReading[] = [];
    const ref: MetricReading[] = [];
    let vTest = 0;
    let vRef = 0;
    for (let day = 0; day < 3; day++) {
      for (let m = 0; m < 60; m++) {
        const t = startMs + day * 24 * HOUR + m * MIN;
        test.push({ tsMs: t, seq: test.length, flowM3h: 50, totalM3: vTest });
        ref.push({ tsMs: t, seq: ref.length, flowM3h: 50, totalM3: vRef });
        vRef += 50 / 60;
        vTest += (50 / 60) * (1 + (day + 1) / 100);
      }
      const t = startMs + day * 24 * HOUR + 60 * MIN;
      test.push({ tsMs: t, seq: test.length, flowM3h: 50, totalM3: vTest });
      ref.push({ tsMs: t, seq: ref.length, flowM3h: 50, totalM3: vRef });
    }
    const window = { fromMs: startMs, toMs: startMs + 3 * 24 * HOUR };
    const paired = pairIntervals(test, ref, testMeter, window, { referenceMeter });
    const result = computeAccuracy(paired, referenceMeter, { timezone: 'Asia/Almaty' });
    expect(result.excluded.gap).toBe(2);
    expect(result.upper.dailyErrors.map((d) => d.date)).toEqual(['2026-11-25', '2026-11-26', '2026-11-27']);
    expect(result.upper.dailyErrors.map((d) => d.error)).toEqual([expect.closeTo(1, 9), expect.closeTo(2, 9), expect.closeTo(3, 9)]);
    expect(result.upper.uncertainty.dailyErrorStdPct).toBeCloseTo(1, 9);
    expect(result.upper.uncertainty.repeatabilityPct).toBeCloseTo(1 / Math.sqrt(3), 9);
    expect(result.upper.uncertainty.stretches).toBe(3);
    expect(result.upper.error).toBeCloseTo(2, 9);
    expect(result.upper).toMatchObject({ verdict: 'inconclusive', rule: 'guarded acceptance' });
  });
});

describe('error curve (SPEC 4)', () => {
  it('case 9: splits its log-spaced bins at Q2, each bin with the MPE that applies to it', () => {
    // Q1 0.625, Q2 1, Q4 125: ln 1.6 / ln 200 = 0.0887 of the span → 12 bins: 1 lower
    // [0.625, 1), 11 upper from 1 to 125 (edges 125^(i/11)). A +4 % meter at 0.98 m³/h: in the
    // lower bin with MPE 5 (the old curve drew it in a bin across Q2 against ±2 %).
    const { edges, lowerBins } = errorCurveEdges(flowRates(100, 160), 12);
    expect(lowerBins).toBe(1);
    expect(edges).toHaveLength(13);
    expect(edges[0]).toBeCloseTo(0.625, 12);
    expect(edges[1]).toBe(1);
    expect(edges[2]).toBeCloseTo(125 ** (1 / 11), 12);
    expect(edges[12]).toBe(125);
    const p = pair([{ count: 40, qM3h: 0.98, errorPct: 4 }]);
    const curve = computeErrorCurve(pairIntervals(p.test, p.ref, testMeter, p.window, { referenceMeter }));
    expect(curve[0]).toMatchObject({ zone: 'lower', intervals: 40, mpe: 5 });
    expect(curve[0]?.error).toBeCloseTo(4, 9);
    expect(curve[1]).toMatchObject({ zone: 'upper', intervals: 0, error: null, mpe: 2 });
    expect(curve.every((bin) => bin.qToM3h <= 1 || bin.qFromM3h >= 1)).toBe(true);
    // 4 bins: 0.0887 · 4 = 0.35 → still one lower bin (at least one on each side of Q2).
    expect(errorCurveEdges(flowRates(100, 160), 4).lowerBins).toBe(1);
    expect(() => errorCurveEdges(flowRates(100, 160), 1)).toThrow(FlowPilotError);
  });

  it('bins by the mean of the reference flow at both ends, with the weighted MPE of warm water', () => {
    // 40 intervals at 50 m³/h, +0.8 %, reference at 35 °C: bin of 50 (edges 125^(i/11): 125^(9/11)
    // = 52.21 > 50 ≥ 125^(8/11) = 33.52 → bin 1 + 8 = 9), MPE 3 (warm).
    const p = pair([{ count: 40, qM3h: 50, errorPct: 0.8 }], 60, () => ({ ref: { temperatureC: 35 } }));
    const curve = computeErrorCurve(pairIntervals(p.test, p.ref, testMeter, p.window, { referenceMeter }));
    expect(curve[9]).toMatchObject({ intervals: 40, mpe: 3, zone: 'upper' });
    expect(curve[9]?.error).toBeCloseTo(0.8, 9);
    expect(curve.reduce((n, bin) => n + bin.intervals, 0)).toBe(40);
  });
});
