import { describe, expect, it } from 'vitest';
import { computeFlowStats, computeTotalizerConsistency, computeVolume } from './volume.ts';
import type { MetricReading } from './series.ts';
import { HOUR, MIN, T0, atMinutes, range } from './test-support.ts';

const W = { fromMs: T0, toMs: T0 + 20 * MIN };

describe('volume (SPEC 4: total(to) − total(from), edges interpolated, resets not negative)', () => {
  // Totals at minutes 0..5: 100, 101, 102.5, then a reset to 0.5, 1.5, 3.
  const totals = [100, 101, 102.5, 0.5, 1.5, 3];
  const readings = atMinutes([0, 1, 2, 3, 4, 5], (m) => ({ totalM3: totals[m] as number, flowM3h: [60, 90, 30, 60, 60, 90][m] as number }));

  it('counts a reset as 0, neither negative nor the new total from 0', () => {
    // Steps +1, +1.5, (−102: reset, 0), +1, +1.5 → 5 m³, one reset. Minute 0 sits on `from`; no
    // reading after minute 5 within 3Δ of W's end (minute 20): the last reading inside closes W.
    expect(computeVolume(readings, 60, W)).toEqual({ volumeM3: 5, resets: 1, edges: { from: 'reading', to: 'inside' } });
  });

  it('gives the same answer for readings out of order and duplicated', () => {
    const shuffled = [readings[4], readings[0], readings[5], readings[2], readings[0], readings[3], readings[1]].map((r) => ({ ...r! }));
    expect(computeVolume(shuffled, 60, W)).toEqual({ volumeM3: 5, resets: 1, edges: { from: 'reading', to: 'inside' } });
  });

  it('a day at 24 m³/h read hourly is 576 m³, not 552', () => {
    // Hourly readings at 00:00 … 24:00 (25 readings), total = 24·h. In W = [00:00, 24:00) are 24
    // of them: 23 steps = 552 m³ inside, plus the step 23:00 → 24:00 closed by the reading at
    // `to` (24 m³) = 576 m³.
    const day = range(0, 25).map((h) => ({ tsMs: T0 + h * HOUR, seq: h, flowM3h: 24, totalM3: 24 * h }));
    const w = { fromMs: T0, toMs: T0 + 24 * HOUR };
    expect(computeVolume(day, 3600, w)).toEqual({ volumeM3: 576, resets: 0, edges: { from: 'reading', to: 'reading' } });
    // Without the reading at 24:00 (a caller that read [from, to) only): 552, and `edges` says so.
    expect(computeVolume(day.slice(0, 24), 3600, w)).toEqual({ volumeM3: 552, resets: 0, edges: { from: 'reading', to: 'inside' } });
    // The same neighbour given explicitly instead of in the series: 576 again.
    expect(computeVolume(day.slice(0, 24), 3600, w, { after: { tsMs: T0 + 24 * HOUR, totalM3: 576 } }).volumeM3).toBe(576);
  });

  it('interpolates at edges between readings, so seven daily windows add up to the week exactly', () => {
    // Readings every 7 min from 6 h before the week to 6 h after it (so no edge falls on a
    // reading), flow varying, total = its integral: each edge is interpolated.
    const DAY = 24 * HOUR;
    const step = 7 * MIN;
    const week = { fromMs: T0, toMs: T0 + 7 * DAY };
    const rs: MetricReading[] = [];
    let total = 1000;
    for (let t = T0 - 6 * HOUR; t <= week.toMs + 6 * HOUR; t += step) {
      rs.push({ tsMs: t, seq: rs.length, flowM3h: 30, totalM3: total });
      total += 3 + 2 * Math.sin(rs.length / 10);
    }
    const whole = computeVolume(rs, 420, week);
    expect(whole.edges).toEqual({ from: 'interpolated', to: 'interpolated' });
    const days = range(0, 7).map((d) => computeVolume(rs, 420, { fromMs: T0 + d * DAY, toMs: T0 + (d + 1) * DAY }).volumeM3);
    const sum = days.reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - whole.volumeM3) / whole.volumeM3).toBeLessThan(1e-9);
  });

  it('interpolates by hand: edges mid-step', () => {
    // Readings at minutes −1 (total 10), 1 (12), 3 (16), 5 (20); W = [0, 4 min), Δ = 60 s.
    // total(0) = 10 + 2·(1/2) = 11; total(4) = 16 + 4·(1/2) = 18 → 18 − 11 = 7 m³.
    const rs = [
      { tsMs: T0 - MIN, seq: 0, flowM3h: 0, totalM3: 10 },
      { tsMs: T0 + MIN, seq: 1, flowM3h: 0, totalM3: 12 },
      { tsMs: T0 + 3 * MIN, seq: 2, flowM3h: 0, totalM3: 16 },
      { tsMs: T0 + 5 * MIN, seq: 3, flowM3h: 0, totalM3: 20 },
    ];
    expect(computeVolume(rs, 60, { fromMs: T0, toMs: T0 + 4 * MIN })).toEqual({ volumeM3: 7, resets: 0, edges: { from: 'interpolated', to: 'interpolated' } });
  });

  it('uses the first (last) reading inside W when no neighbour lies within 3Δ', () => {
    // Readings at minutes −4 (total 0), 1 (5), 2 (6), 7 (11), Δ = 60 s, W = [0, 3 min).
    // −4 → 1 is 5 min > 3Δ: total(from) = 5 (first inside); 2 → 7 is 5 min > 3Δ: total(to) = 6.
    // Volume 6 − 5 = 1 m³ (the 4 m³ before minute 1 and after minute 2 belong to no window).
    const rs = atMinutes([-4, 1, 2, 7], (m) => ({ totalM3: m + 4 }));
    expect(computeVolume(rs, 60, { fromMs: T0, toMs: T0 + 3 * MIN })).toEqual({ volumeM3: 1, resets: 0, edges: { from: 'inside', to: 'inside' } });
    // Exactly 3Δ apart is still a neighbour: −2 → 1 is 3 min; total(0) = 2 + 3·(2/3) = 4 → 6 − 4 = 2.
    const near = atMinutes([-2, 1, 2], (m) => ({ totalM3: m + 4 }));
    expect(computeVolume(near, 60, { fromMs: T0, toMs: T0 + 3 * MIN })).toMatchObject({ volumeM3: 2, edges: { from: 'interpolated' } });
  });

  it('a reset between the edge neighbour and the first reading inside counts 0 and is counted once', () => {
    // Minutes −1 (total 500), 1 (0.5, reset), 2 (1.5), 3 (2.5); W = [0, 3 min).
    // The step −1 → 1 fell: not interpolated, its part in W counts 0; 0.5 → 1.5 → 2.5 is 1 m³ in
    // W (the reading at minute 3 = `to` closes it: +1) = 2 m³. The reset is W's (minute 1 is in W).
    const rs = atMinutes([-1, 1, 2, 3], (m) => ({ totalM3: { [-1]: 500, 1: 0.5, 2: 1.5, 3: 2.5 }[m] as number }));
    expect(computeVolume(rs, 60, { fromMs: T0, toMs: T0 + 3 * MIN })).toEqual({ volumeM3: 2, resets: 1, edges: { from: 'reset', to: 'reading' } });
    // The window before, [−3 min, 0): the step −1 → 1 crosses its end and fell: 0 m³, no reset
    // counted there (it belongs to the window of the lower reading).
    expect(computeVolume(rs, 60, { fromMs: T0 - 3 * MIN, toMs: T0 })).toEqual({ volumeM3: 0, resets: 0, edges: { from: 'inside', to: 'reset' } });
  });

  it('a reset inside W counts 0', () => {
    // Minutes 0..3: 10, 11, 0.2, 1.2; W = [0, 4 min), nothing after: 1 + 0 + 1 = 2 m³, one reset.
    const rs = atMinutes([0, 1, 2, 3], (m) => ({ totalM3: [10, 11, 0.2, 1.2][m] as number }));
    const v = computeVolume(rs, 60, { fromMs: T0, toMs: T0 + 4 * MIN });
    expect(v.volumeM3).toBeCloseTo(2, 12);
    expect(v.resets).toBe(1);
  });

  it('a window with one reading, or none', () => {
    // Readings at minutes −2, 2, 6, total = 10·minute (−20, 20, 60): steps of 4 min.
    const rs = atMinutes([-2, 2, 6], (m) => ({ totalM3: 10 * m }));
    const one = { fromMs: T0 + 90_000, toMs: T0 + 150_000 };
    // One reading (minute 2) in W = [1:30, 2:30); at Δ = 60 s its neighbours are 4 min > 3Δ
    // away: both edges fall back to it, 0 m³.
    expect(computeVolume(rs, 60, one)).toEqual({ volumeM3: 0, resets: 0, edges: { from: 'inside', to: 'inside' } });
    // At Δ = 120 s (3Δ = 6 min) they are neighbours: total(1:30) = −20 + 40·3.5/4 = 15,
    // total(2:30) = 20 + 40·0.5/4 = 25 → 10 m³.
    expect(computeVolume(rs, 120, one)).toEqual({ volumeM3: 10, resets: 0, edges: { from: 'interpolated', to: 'interpolated' } });
    // No reading in W = [2:30, 3:30): at Δ = 120 s the step 2 → 6 spans it: total(3:30) =
    // 20 + 40·1.5/4 = 35 → 35 − 25 = 10 m³. At Δ = 60 s the step is a gap: 0 m³, no edge.
    const none = { fromMs: T0 + 150_000, toMs: T0 + 210_000 };
    expect(computeVolume(rs, 120, none)).toEqual({ volumeM3: 10, resets: 0, edges: { from: 'interpolated', to: 'interpolated' } });
    expect(computeVolume(rs, 60, none)).toEqual({ volumeM3: 0, resets: 0, edges: { from: 'none', to: 'none' } });
    expect(computeVolume([], 60, W)).toEqual({ volumeM3: 0, resets: 0, edges: { from: 'none', to: 'none' } });
  });

  it('counts a reading without total as missing', () => {
    // Minutes 0..4, total at minute 2 missing (NaN, as the InfluxDB columns hold it; undefined in
    // a reading): steps join 1 → 3: 0→1, 1→3, 3→4 = 4 m³ of W = [0, 5 min); nothing is NaN.
    const rs = atMinutes([0, 1, 2, 3, 4], (m) => ({ totalM3: m === 2 ? NaN : m }));
    expect(computeVolume(rs, 60, { fromMs: T0, toMs: T0 + 5 * MIN })).toEqual({ volumeM3: 4, resets: 0, edges: { from: 'reading', to: 'inside' } });
    // A missing total at the edge: the neighbour is the nearest reading WITH a total. Minutes −1
    // (NaN), −2 (total 8), 1 (11): total(0) = 8 + 3·(2/3) = 10 → W = [0, 1:30) holds 11 − 10 = 1
    // (plus nothing after minute 1: no reading within 3Δ after it).
    const edge = [
      { tsMs: T0 - 2 * MIN, seq: 0, flowM3h: 0, totalM3: 8 },
      { tsMs: T0 - MIN, seq: 1, flowM3h: 0, totalM3: NaN },
      { tsMs: T0 + MIN, seq: 2, flowM3h: 0, totalM3: 11 },
    ];
    expect(computeVolume(edge, 60, { fromMs: T0, toMs: T0 + 90_000 })).toMatchObject({ edges: { from: 'interpolated', to: 'inside' } });
    expect(computeVolume(edge, 60, { fromMs: T0, toMs: T0 + 90_000 }).volumeM3).toBeCloseTo(1, 12);
  });
});

describe('flow (SPEC 4: mean, min, max)', () => {
  it('is over the readings of W', () => {
    // Flows 60, 90, 30, 60, 60, 90: mean 390/6 = 65, min 30, max 90.
    const readings = atMinutes([0, 1, 2, 3, 4, 5], (m) => ({ flowM3h: [60, 90, 30, 60, 60, 90][m] as number }));
    expect(computeFlowStats(readings, W)).toEqual({ count: 6, meanM3h: 65, minM3h: 30, maxM3h: 90 });
    expect(computeFlowStats([], W)).toEqual({ count: 0, meanM3h: null, minM3h: null, maxM3h: null });
  });
});

describe('totalizerConsistency (SPEC 4: (∫flow dt − volume) / volume × 100)', () => {
  it('integrates by trapezoids and skips pairs across a gap or a reset on both sides', () => {
    // Minutes 0,1,2,7,8,9,10 at 60 m³/h; totals 0, 0.98, 1.96, 7.5, 8.48, 0.2 (reset), 1.18.
    // Pairs: 0-1, 1-2: ∫ = 60 m³/h · 1/60 h = 1 m³ each, steps 0.98; 2-7: 5 min > 3Δ, skipped;
    // 7-8: 1 vs 0.98; 8-9: reset, skipped; 9-10: 1 vs 0.98.
    // ∫ = 4, volume = 3.92 → (4 − 3.92) / 3.92 × 100 = 2.0408163265306…%.
    const totals: Record<number, number> = { 0: 0, 1: 0.98, 2: 1.96, 7: 7.5, 8: 8.48, 9: 0.2, 10: 1.18 };
    const readings = atMinutes([0, 1, 2, 7, 8, 9, 10], (m) => ({ totalM3: totals[m] as number }));
    const result = computeTotalizerConsistency(readings, 60, W);
    expect(result.integralM3).toBeCloseTo(4, 12);
    expect(result.volumeM3).toBeCloseTo(3.92, 12);
    expect(result.percent).toBeCloseTo((0.08 / 3.92) * 100, 9);
    expect(result.pairs).toBe(4);
    expect(result.skippedPairs).toEqual({ gap: 1, reset: 1 });
  });

  it('counts reverse flow as 0 (the forward totalizer does not move)', () => {
    // Flows −30 then 30 one minute apart: ∫ = (0 + 30)/2 · 1/60 = 0.25 m³; step 0.25 → 0 %.
    const readings = atMinutes([0, 1], (m) => ({ flowM3h: m === 0 ? -30 : 30, totalM3: m * 0.25 }));
    expect(computeTotalizerConsistency(readings, 60, W).percent).toBeCloseTo(0, 12);
  });

  it('is null when the totalizer did not move', () => {
    const readings = atMinutes([0, 1], () => ({ totalM3: 5 }));
    expect(computeTotalizerConsistency(readings, 60, W)).toMatchObject({ percent: null, integralM3: 1, volumeM3: 0 });
  });
});
