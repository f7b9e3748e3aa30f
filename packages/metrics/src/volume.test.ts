import { describe, expect, it } from 'vitest';
import { computeFlowStats, computeTotalizerConsistency, computeVolume } from './volume.ts';
import { MIN, T0, atMinutes } from './test-support.ts';

const W = { fromMs: T0, toMs: T0 + 20 * MIN };

describe('volume (SPEC 4: sum of positive steps of total)', () => {
  // Totals at minutes 0..5: 100, 101, 102.5, then a reset to 0.5, 1.5, 3.
  const totals = [100, 101, 102.5, 0.5, 1.5, 3];
  const readings = atMinutes([0, 1, 2, 3, 4, 5], (m) => ({ totalM3: totals[m] as number, flowM3h: [60, 90, 30, 60, 60, 90][m] as number }));

  it('counts a reset as 0, neither negative nor the new total from 0', () => {
    // Steps +1, +1.5, (−102: reset, 0), +1, +1.5 → 5 m³, one reset.
    expect(computeVolume(readings, W)).toEqual({ volumeM3: 5, resets: 1 });
  });

  it('gives the same answer for readings out of order and duplicated', () => {
    const shuffled = [readings[4], readings[0], readings[5], readings[2], readings[0], readings[3], readings[1]].map((r) => ({ ...r! }));
    expect(computeVolume(shuffled, W)).toEqual({ volumeM3: 5, resets: 1 });
  });

  it('uses only readings in W', () => {
    // W = [1 min, 3 min): minutes 1 and 2, one step of +1.5.
    expect(computeVolume(readings, { fromMs: T0 + MIN, toMs: T0 + 3 * MIN })).toEqual({ volumeM3: 1.5, resets: 0 });
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
