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

describe('delivery (SPEC 4: runs of seq in arrival order)', () => {
  /** Received 0.5 s after ts unless given. */
  const arrived = (ms: readonly (readonly [tsMs: number, seq: number, receivedAtMs?: number])[]) =>
    ms.map(([tsMs, seq, receivedAtMs]) => ({ tsMs, seq, flowM3h: 1, totalM3: 0, receivedAtMs: receivedAtMs ?? tsMs + 500 }));
  const W1H = { fromMs: T0 - 10 * MIN, toMs: T0 + HOUR };

  it('is distinct seq / (max − min + 1)', () => {
    // seq 0,1,2,7,8,9: 6 distinct of 9 − 0 + 1 = 10 → 0.6 (no received_at: ts order, see below).
    expect(computeDelivery(atMinutes([0, 1, 2, 7, 8, 9]), W10)).toEqual({ delivery: 0.6, distinctSeq: 6, producedSeq: 10, seqRestarts: 0, withoutReceivedAt: 6 });
  });

  it('counts a seq seen at two timestamps once', () => {
    // seq 0, 1, 1, 2 at minutes 0..3: distinct 3 of 3 → 1.
    const readings = atMinutes([0, 1, 2, 3], (m) => ({ seq: [0, 1, 1, 2][m] as number }));
    expect(computeDelivery(readings, W10).delivery).toBe(1);
    // A duplicate arriving late (seq 1 again after 3): still 4 distinct of 0..3 → 1, no restart.
    const late = arrived([[T0, 0], [T0 + MIN, 1], [T0 + 2 * MIN, 2], [T0 + 3 * MIN, 3], [T0 + 4 * MIN, 1]]);
    expect(computeDelivery(late, W10)).toMatchObject({ delivery: 1, distinctSeq: 4, producedSeq: 4, seqRestarts: 0 });
  });

  it('a 150 s backward clock step with nothing lost is 100 % (was 76.9 % by ts)', () => {
    // seq 0..19 every minute, received 0.5 s later; from seq 10 on the meter's clock is 150 s
    // behind: ts of seq s = s min − 150 s. By ts the order is …7, 10, 8, 11, 9, 12…: seq fell
    // at 8 and 9 (two restarts), runs 0..7,10 (9 of 11), 8,11 (2 of 4), 9,12..19 (9 of 11):
    // 20 / 26 = 76.9 %. By arrival seq never falls: one run 0..19, 20 / 20 = 100 %.
    const readings = arrived(range(0, 20).map((s) => [T0 + s * MIN - (s >= 10 ? 150_000 : 0), s, T0 + s * MIN + 500] as const));
    expect(computeDelivery(readings, W1H)).toEqual({ delivery: 1, distinctSeq: 20, producedSeq: 20, seqRestarts: 0, withoutReceivedAt: 0 });
  });

  it('a reboot (seq restarts at 0) that lost 10 readings is 50/60 (was 100 % by ts)', () => {
    // seq 0..29 at minutes 0..29. The meter reboots at minute 30 with its clock back at minute 0
    // (+30 s) and counts from 0 again; of seq 0..29 of the new run, 10..19 are lost. By ts the two
    // runs interleave (0, 0, 1, 1, …): each repeat was taken as a duplicate, 30 / 30 = 100 %. By arrival:
    // run 0..29 (30 of 30), then seq 0 falls to the run's lowest: run 0..29 with 20 of 30.
    // (30 + 20) / (30 + 30) = 50 / 60 = 0.8333….
    const first = range(0, 30).map((s) => [T0 + s * MIN, s] as const);
    const second = range(0, 30).filter((s) => s < 10 || s >= 20).map((s) => [T0 + s * MIN + 30_000, s, T0 + (30 + s) * MIN + 500] as const);
    const result = computeDelivery(arrived([...first, ...second]), W1H);
    expect(result).toEqual({ delivery: 50 / 60, distinctSeq: 50, producedSeq: 60, seqRestarts: 1, withoutReceivedAt: 0 });
  });

  it('a restart to a seq above 0 is a restart too (a seq below the whole current run)', () => {
    // seq 10,11,12 then 0,1: runs 10..12 (3 produced) and 0..1 (2 produced), 5 distinct → 1,
    // where max − min + 1 = 13 would have said 5/13.
    const readings = atMinutes([0, 1, 2, 3, 4], (m) => ({ seq: [10, 11, 12, 0, 1][m] as number }));
    expect(computeDelivery(readings, W10)).toEqual({ delivery: 1, distinctSeq: 5, producedSeq: 5, seqRestarts: 1, withoutReceivedAt: 5 });
  });

  it('a backfill array that arrives after newer live readings fills its run, not a restart', () => {
    // seq 0..9 live; 10..14 buffered offline and delivered at minute 20 in one array (received at
    // the same instant: ties by seq); 15..19 live. Arrival order 0..9, 15..19, 10..14: seq falls
    // to 10, above the run's lowest (0): late arrivals. One run 0..19, 20 / 20 = 1.
    const live = range(0, 20).filter((s) => s < 10 || s >= 15).map((s) => [T0 + s * MIN, s] as const);
    const backfill = [14, 12, 10, 13, 11].map((s) => [T0 + s * MIN, s, T0 + 20 * MIN] as const);
    expect(computeDelivery(arrived([...live, ...backfill]), W1H)).toEqual({ delivery: 1, distinctSeq: 20, producedSeq: 20, seqRestarts: 0, withoutReceivedAt: 0 });
    // The same with seq 12 lost from the backfill: 19 / 20 = 0.95.
    const lost = backfill.filter(([, s]) => s !== 12);
    expect(computeDelivery(arrived([...live, ...lost]), W1H).delivery).toBe(0.95);
  });

  it('places a reading without received_at at its ts (no received_at at all: ts order)', () => {
    // seq 0..4 stored before received_at existed (minutes 0..4, no field), seq 5..9 with it:
    // the first five are placed at their ts, before the others' arrival: one run, 10 / 10.
    const old = atMinutes([0, 1, 2, 3, 4]);
    const recent = arrived(range(5, 10).map((s) => [T0 + s * MIN, s] as const));
    expect(computeDelivery([...old, ...recent], W10)).toEqual({ delivery: 1, distinctSeq: 10, producedSeq: 10, seqRestarts: 0, withoutReceivedAt: 5 });
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
