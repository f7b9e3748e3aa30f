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
