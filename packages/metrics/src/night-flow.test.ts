import { describe, expect, it } from 'vitest';
import { computeMinNightFlow, localNights, localToUtcMs, zoneOffsetMs } from './night-flow.ts';
import type { MetricReading } from './series.ts';
import { HOUR, MIN } from './test-support.ts';

const almaty = (nightWindow: { start: string; end: string }) => ({ timezone: 'Asia/Almaty', nightWindow });
// W = local days 20, 21, 22 Nov 2026 in Almaty (UTC+5): [2026-11-19T19:00Z, 2026-11-22T19:00Z).
const W = { fromMs: Date.UTC(2026, 10, 19, 19), toMs: Date.UTC(2026, 10, 22, 19) };

function everyMinute(window: { fromMs: number; toMs: number }, flow: (tsMs: number) => number): MetricReading[] {
  const readings: MetricReading[] = [];
  for (let t = window.fromMs, i = 0; t < window.toMs; t += MIN, i++) readings.push({ tsMs: t, seq: i, flowM3h: flow(t), totalM3: i });
  return readings;
}

describe('local time (Asia/Almaty: UTC+5 without DST since March 2024)', () => {
  it('knows the offset before and after the change', () => {
    expect(zoneOffsetMs('Asia/Almaty', Date.UTC(2026, 10, 25))).toBe(5 * HOUR);
    expect(zoneOffsetMs('Asia/Almaty', Date.UTC(2024, 0, 10))).toBe(6 * HOUR);
    // 2026-11-20 02:00 local = 2026-11-19 21:00 UTC.
    expect(localToUtcMs('Asia/Almaty', Date.UTC(2026, 10, 20, 2))).toBe(Date.UTC(2026, 10, 19, 21));
    // A zone with DST: Berlin in July is UTC+2, 02:00 local = 00:00 UTC.
    expect(localToUtcMs('Europe/Berlin', Date.UTC(2026, 6, 1, 2))).toBe(Date.UTC(2026, 6, 1, 0));
  });
});

describe('localNights', () => {
  it('02:00-04:00 local is 21:00-23:00 UTC the day before; only nights wholly inside W', () => {
    expect(localNights(W, almaty({ start: '02:00', end: '04:00' }))).toEqual([
      { night: '2026-11-20', fromMs: Date.UTC(2026, 10, 19, 21), toMs: Date.UTC(2026, 10, 19, 23) },
      { night: '2026-11-21', fromMs: Date.UTC(2026, 10, 20, 21), toMs: Date.UTC(2026, 10, 20, 23) },
      { night: '2026-11-22', fromMs: Date.UTC(2026, 10, 21, 21), toMs: Date.UTC(2026, 10, 21, 23) },
    ]);
    // W from 20 Nov 03:00 local to 22 Nov 03:00 local: the 20th and the 22nd are cut, left out.
    const partial = { fromMs: Date.UTC(2026, 10, 19, 22), toMs: Date.UTC(2026, 10, 21, 22) };
    expect(localNights(partial, almaty({ start: '02:00', end: '04:00' })).map((n) => n.night)).toEqual(['2026-11-21']);
  });

  it('22:00-04:00 crosses midnight and is labelled with the date it ends on', () => {
    // Night D = [D−1 22:00, D 04:00) local = [D−1 17:00Z, D−1 23:00Z). In W: D = 21 and 22
    // (D = 20 starts 19 Nov 17:00Z, before W; D = 23 ends 22 Nov 23:00Z, after W).
    expect(localNights(W, almaty({ start: '22:00', end: '04:00' }))).toEqual([
      { night: '2026-11-21', fromMs: Date.UTC(2026, 10, 20, 17), toMs: Date.UTC(2026, 10, 20, 23) },
      { night: '2026-11-22', fromMs: Date.UTC(2026, 10, 21, 17), toMs: Date.UTC(2026, 10, 21, 23) },
    ]);
  });

  it('rejects a malformed time and an unknown zone', () => {
    expect(() => localNights(W, almaty({ start: '2:00', end: '04:00' }))).toThrow(/HH:MM/);
    expect(() => localNights(W, { timezone: 'Asia/Atlantis', nightWindow: { start: '02:00', end: '04:00' } })).toThrow(/IANA/);
  });
});

describe('minNightFlow (SPEC 4)', () => {
  it('means each night window, reports the minimum and the latest night', () => {
    // Night flows by UTC date of 21:00-23:00: the 19th (night 20 Nov) alternates 4 and 6 →
    // mean 5; the 20th (night 21 Nov) 3; the 21st (night 22 Nov) 4. Day flow 50.
    // → min 3 on 2026-11-21, latest 4 on 2026-11-22, 3 nights of 120 readings each.
    const nightFlow: Record<number, (t: number) => number> = { 19: (t) => ((t / MIN) % 2 === 0 ? 4 : 6), 20: () => 3, 21: () => 4 };
    const readings = everyMinute(W, (t) => {
      const d = new Date(t);
      const hour = d.getUTCHours();
      return hour >= 21 && hour < 23 ? (nightFlow[d.getUTCDate()] as (t: number) => number)(t) : 50;
    });
    const result = computeMinNightFlow(readings, 60, W, almaty({ start: '02:00', end: '04:00' }));
    expect(result).toMatchObject({ minM3h: 3, minNight: '2026-11-21', latestM3h: 4, latestNight: '2026-11-22', nights: 3 });
    expect(result.byNight.map((n) => [n.night, n.meanM3h, n.readings, n.expected, n.counted])).toEqual([
      ['2026-11-20', 5, 120, 120, true],
      ['2026-11-21', 3, 120, 120, true],
      ['2026-11-22', 4, 120, 120, true],
    ]);
  });

  it('handles a 22:00-04:00 night across midnight', () => {
    // Night 21 Nov: 22:00-24:00 local (17:00-19:00Z) at 10, 00:00-04:00 (19:00-23:00Z) at 2:
    // (120·10 + 240·2) / 360 = 4.666…; night 22 Nov: 10 then 1: (1200 + 240) / 360 = 4.
    const readings = everyMinute(W, (t) => {
      const d = new Date(t);
      const hour = d.getUTCHours();
      if (hour >= 17 && hour < 19) return 10;
      if (hour >= 19 && hour < 23) return d.getUTCDate() === 20 ? 2 : 1;
      return 50;
    });
    const result = computeMinNightFlow(readings, 60, W, almaty({ start: '22:00', end: '04:00' }));
    expect(result.byNight.map((n) => n.night)).toEqual(['2026-11-21', '2026-11-22']);
    expect(result.byNight[0]?.meanM3h).toBeCloseTo(1680 / 360, 12);
    expect(result).toMatchObject({ minM3h: 4, minNight: '2026-11-22', latestM3h: 4, latestNight: '2026-11-22', nights: 2 });
  });

  it('counts a night only with at least half of its expected readings', () => {
    // Night 20 Nov holds 59 readings at 0.5 (59·2 = 118 < 120: not counted) → the minimum is
    // night 21 Nov at 3. With 60 readings (60·2 = 120 ≥ 120) it counts and is the minimum.
    const base = everyMinute(W, (t) => (new Date(t).getUTCDate() === 19 ? 0.5 : 3));
    const inNight20 = (t: number) => t >= Date.UTC(2026, 10, 19, 21) && t < Date.UTC(2026, 10, 19, 23);
    const keep = (n: number) => base.filter((r) => !inNight20(r.tsMs) || r.tsMs < Date.UTC(2026, 10, 19, 21) + n * MIN);
    const pilot = almaty({ start: '02:00', end: '04:00' });
    const sparse = computeMinNightFlow(keep(59), 60, W, pilot);
    expect(sparse).toMatchObject({ minM3h: 3, minNight: '2026-11-21', nights: 2 });
    expect(sparse.byNight[0]).toMatchObject({ night: '2026-11-20', readings: 59, counted: false });
    expect(computeMinNightFlow(keep(60), 60, W, pilot)).toMatchObject({ minM3h: 0.5, minNight: '2026-11-20', nights: 3 });
    expect(computeMinNightFlow([], 60, W, pilot)).toMatchObject({ minM3h: null, minNight: null, latestM3h: null, latestNight: null, nights: 0 });
  });
});

describe('minNightFlow counts forward flow only, reverse volume beside it (SPEC 4 refinement)', () => {
  const pilot = almaty({ start: '02:00', end: '04:00' });
  // Night 20 Nov = [19 Nov 21:00Z, 23:00Z): 120 readings a minute apart, m = 0…119 from 21:00Z.
  const night20 = { fromMs: Date.UTC(2026, 10, 19, 21), toMs: Date.UTC(2026, 10, 19, 23) };
  const minute = (t: number) => Math.round((t - night20.fromMs) / MIN);
  const W1 = { fromMs: Date.UTC(2026, 10, 19, 19), toMs: Date.UTC(2026, 10, 20, 19) }; // local day 20 Nov: one night

  it('a night of +2 m³/h then −2 m³/h halves: mean 0 before → 1 m³/h, reverse volume from the flow', () => {
    const readings = everyMinute(night20, (t) => (minute(t) < 60 ? 2 : -2));
    const result = computeMinNightFlow(readings, 60, W1, pilot);
    // Mean: before (60·2 + 60·(−2)) / 120 = 0; now (60·2 + 60·0) / 120 = 1.
    // Reverse (no totalizer given): trapezoids of max(0, −flow) over the 119 pairs 1 min apart:
    // 59 pairs inside the reverse hour at (2 + 2)/2 · 1/60 h = 1/30 m³, the pair 21:59 → 22:00
    // across the sign change at (0 + 2)/2 · 1/60 = 1/60 m³: 59/30 + 1/60 = 119/60 m³.
    expect(result).toMatchObject({ minM3h: 1, minNight: '2026-11-20', latestM3h: 1, nights: 1 });
    expect(result.minReverseM3).toBeCloseTo(119 / 60, 12);
    expect(result.latestReverseM3).toBeCloseTo(119 / 60, 12);
    expect(result.byNight[0]).toMatchObject({ meanM3h: 1, reverseSource: 'flow', readings: 120, counted: true });
  });

  it('takes the reverse volume from the steps of totalReverse when it is given', () => {
    const readings = everyMinute(night20, (t) => (minute(t) < 60 ? 2 : -2));
    // The register at 10 m³ during the forward hour, then 2 m³/h = 1/30 m³ a minute: at m ≥ 60
    // it reads 10 + (m − 59)/30, 12 at m = 119. Sum of positive steps: 60 · 1/30 = 2 m³ (the
    // register also counted the half minute around the sign change the trapezoids split).
    const reverseTotals = { tsMs: readings.map((r) => r.tsMs), totalReverseM3: readings.map((r) => (minute(r.tsMs) < 60 ? 10 : 10 + (minute(r.tsMs) - 59) / 30)) };
    const result = computeMinNightFlow(readings, 60, W1, pilot, reverseTotals);
    expect(result).toMatchObject({ minM3h: 1, nights: 1 });
    expect(result.minReverseM3).toBeCloseTo(2, 12);
    expect(result.byNight[0]?.reverseSource).toBe('totalReverse');
    // Across a 30-minute hole in the readings (m = 70…99 missing, > 3Δ) the register still
    // counts the whole 2 m³; the flow integral skips the pair 69 → 100 (a gap, nothing guessed):
    // reverse pairs 60→69 (9) and 100→119 (19) at 1/30 m³ each, plus 1/60 across the sign
    // change: 28/30 + 1/60 = 57/60 m³. A reading without totalReverse (m = 30) is skipped.
    const holed = readings.filter((r) => minute(r.tsMs) < 70 || minute(r.tsMs) >= 100);
    const holedTotals = { tsMs: holed.map((r) => r.tsMs), totalReverseM3: holed.map((r) => (minute(r.tsMs) === 30 ? null : minute(r.tsMs) < 60 ? 10 : 10 + (minute(r.tsMs) - 59) / 30)) };
    expect(computeMinNightFlow(holed, 60, W1, pilot, holedTotals).minReverseM3).toBeCloseTo(2, 12);
    expect(computeMinNightFlow(holed, 60, W1, pilot).minReverseM3).toBeCloseTo(57 / 60, 12);
    // A register with fewer than two readings in the night: the flow integral stands in.
    const lone = { tsMs: [night20.fromMs], totalReverseM3: [10] };
    expect(computeMinNightFlow(readings, 60, W1, pilot, lone).byNight[0]).toMatchObject({ reverseSource: 'flow' });
    expect(() => computeMinNightFlow(readings, 60, W1, pilot, { tsMs: [2, 1], totalReverseM3: [0, 0] })).toThrow(/sorted/);
  });

  it('a night entirely in reverse has forward mean 0 (before: −3) and is the minimum, its reverse volume beside it', () => {
    // Night 20 Nov at −3 m³/h, nights 21 and 22 Nov at +0.5. Before: min −3 on the 20th. Now:
    // the 20th has mean 0, still the minimum, with 119 pairs · 3/60 = 5.95 m³ reverse; the other
    // nights' reverse volume is 0.
    const readings = everyMinute(W, (t) => (t >= night20.fromMs && t < night20.toMs ? -3 : 0.5));
    const result = computeMinNightFlow(readings, 60, W, pilot);
    expect(result).toMatchObject({ minM3h: 0, minNight: '2026-11-20', latestM3h: 0.5, latestNight: '2026-11-22', latestReverseM3: 0, nights: 3 });
    expect(result.minReverseM3).toBeCloseTo(5.95, 12);
  });

  it('a night without readings has no mean and no reverse volume', () => {
    const result = computeMinNightFlow([], 60, W1, pilot, { tsMs: [], totalReverseM3: [] });
    expect(result).toMatchObject({ minM3h: null, minReverseM3: null, latestM3h: null, latestReverseM3: null, nights: 0 });
    expect(result.byNight).toEqual([{ night: '2026-11-20', ...night20, meanM3h: null, reverseM3: null, reverseSource: null, readings: 0, expected: 120, counted: false }]);
  });
});
