import { describe, expect, it } from 'vitest';
import { computeCompleteness, computeDelivery, computeGaps, expectedReadings, findGaps, receivedReadings } from './availability.ts';
import { HOUR, MIN, T0, atMinutes, range } from './test-support.ts';

const W10 = { fromMs: T0, toMs: T0 + 10 * MIN };

describe('expected, received, completeness (SPEC 4)', () => {
  it('counts distinct timestamps in W against ⌊|W|/Δ⌋', () => {
    // Minutes 0,1,2,7,8,9 plus a duplicate of minute 1, shuffled: received 6 of expected
    // ⌊600 s / 60 s⌋ = 10, completeness 6/10 = 0.6.
    const readings = atMinutes([9, 1, 0, 7, 2, 1, 8]);
    expect(expectedReadings(60, W10)).toBe(10);
    expect(receivedReadings(readings, W10)).toBe(6);
    expect(computeCompleteness(readings, 60, W10)).toBeCloseTo(0.6, 12);
  });

  it('handles a window that starts mid-interval: ⌊|W|/Δ⌋ and only readings inside W', () => {
    // W = [0:30, 10:30): expected ⌊600/60⌋ = 10; minutes 1..10 inside (minute 0 is not): 10/10 = 1.
    const w = { fromMs: T0 + 30_000, toMs: T0 + 10 * MIN + 30_000 };
    expect(computeCompleteness(atMinutes(range(0, 11)), 60, w)).toBe(1);
  });

  it('caps completeness at 1 and is null when no interval fits in W', () => {
    // A reading every 30 s with Δ = 60 s: 20 received, 10 expected → min(1, 2) = 1.
    const twice = range(0, 20).map((i) => ({ tsMs: T0 + i * 30_000, seq: i, flowM3h: 1, totalM3: i }));
    expect(computeCompleteness(twice, 60, W10)).toBe(1);
    // |W| = 30 s < Δ: expected 0 → null.
    expect(computeCompleteness(twice, 60, { fromMs: T0, toMs: T0 + 30_000 })).toBeNull();
  });
});

describe('delivery (SPEC 4)', () => {
  it('is distinct seq / (max − min + 1)', () => {
    // seq 0,1,2,7,8,9: 6 distinct of 9 − 0 + 1 = 10 → 0.6.
    expect(computeDelivery(atMinutes([0, 1, 2, 7, 8, 9]), W10)).toEqual({ delivery: 0.6, distinctSeq: 6, producedSeq: 10, seqRestarts: 0 });
  });

  it('counts a seq seen at two timestamps once', () => {
    // seq 0, 1, 1, 2 at minutes 0..3: distinct 3 of 3 → 1.
    const readings = atMinutes([0, 1, 2, 3], (m) => ({ seq: [0, 1, 1, 2][m] as number }));
    expect(computeDelivery(readings, W10).delivery).toBe(1);
  });

  it('starts a new run when seq goes down (the meter restarted its counter)', () => {
    // seq 10,11,12 then 0,1: runs 10..12 (3 produced) and 0..1 (2 produced), 5 distinct → 1,
    // where max − min + 1 = 13 would have said 5/13.
    const readings = atMinutes([0, 1, 2, 3, 4], (m) => ({ seq: [10, 11, 12, 0, 1][m] as number }));
    expect(computeDelivery(readings, W10)).toEqual({ delivery: 1, distinctSeq: 5, producedSeq: 5, seqRestarts: 1 });
  });

  it('is null without readings in W', () => {
    expect(computeDelivery(atMinutes([20]), W10).delivery).toBeNull();
  });
});

describe('gaps (SPEC 4: stretches longer than 3Δ without a reading)', () => {
  it('finds a stretch between readings and not the edge stretches shorter than 3Δ', () => {
    // Minutes 0,1,2,7,8,9 in [0, 10): stretches 0→0 (0), 2→7 (5 min > 3 min: a gap),
    // 9→10 (1 min). One gap of 300 000 ms.
    const summary = computeGaps(atMinutes([0, 1, 2, 7, 8, 9]), 60, W10);
    expect(summary).toEqual({ count: 1, longestMs: 5 * MIN, totalMs: 5 * MIN, thresholdMs: 3 * MIN, longest: { fromMs: T0 + 2 * MIN, toMs: T0 + 7 * MIN } });
  });

  it('does not count exactly 3Δ (two readings lost), counts more', () => {
    // 0 → 3: 180 000 ms, not > 180 000. 0 → 4: 240 000 ms, a gap.
    expect(computeGaps(atMinutes([0, 3, 4, 5, 6, 7, 8, 9]), 60, W10).count).toBe(0);
    expect(computeGaps(atMinutes([0, 4, 5, 6, 7, 8, 9]), 60, W10).longestMs).toBe(4 * MIN);
  });

  it('clips at the window edges: a window that starts mid-interval, a silent end', () => {
    // W = [0:30, 10:00). First reading at minute 4: stretch 0:30 → 4:00 = 210 s > 180 s: a gap
    // from the window start. First reading at minute 3: 150 s, no gap.
    const w = { fromMs: T0 + 30_000, toMs: T0 + 10 * MIN };
    expect(findGaps(atMinutes([0, 4, 5, 6, 7, 8, 9]), 60, w)).toEqual([{ fromMs: T0 + 30_000, toMs: T0 + 4 * MIN, durationMs: 210_000 }]);
    expect(findGaps(atMinutes([0, 3, 4, 5, 6, 7, 8, 9]), 60, w)).toEqual([]);
    // Last reading at minute 5 of [0, 10): 5 → 10 = 5 min, a gap up to the window end.
    expect(findGaps(atMinutes([0, 1, 2, 3, 4, 5]), 60, W10)).toEqual([{ fromMs: T0 + 5 * MIN, toMs: T0 + 10 * MIN, durationMs: 5 * MIN }]);
  });

  it('a gap longer than the window is one gap of |W|; so is no reading at all', () => {
    // Readings 1 h before and 2 h after W = [T0, T0 + 1 h): none inside → one gap of 3 600 000 ms.
    const w = { fromMs: T0, toMs: T0 + HOUR };
    const around = [{ tsMs: T0 - HOUR, seq: 0, flowM3h: 1, totalM3: 0 }, { tsMs: T0 + 2 * HOUR, seq: 1, flowM3h: 1, totalM3: 1 }];
    expect(computeGaps(around, 60, w)).toMatchObject({ count: 1, longestMs: HOUR, longest: { fromMs: T0, toMs: T0 + HOUR } });
    expect(computeGaps([], 60, w)).toMatchObject({ count: 1, longestMs: HOUR, totalMs: HOUR });
    // A window of 3Δ with no reading: 180 000 ms is not longer than 3Δ, so no gap.
    expect(computeGaps([], 60, { fromMs: T0, toMs: T0 + 3 * MIN }).count).toBe(0);
  });
});
