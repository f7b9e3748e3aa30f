import { describe, expect, it } from 'vitest';
import { demandLevel, isInNightWindow } from './demand.ts';
import { createLocalTime, parseClockTime } from './local-time.ts';

describe('createLocalTime', () => {
  it('reads Asia/Almaty as UTC+5', () => {
    const almaty = createLocalTime('Asia/Almaty');
    const ts = Date.UTC(2026, 10, 25, 21, 30); // Wednesday 21:30 UTC = Thursday 02:30 local
    expect(almaty.offsetMs(ts)).toBe(5 * 3_600_000);
    expect(almaty.hourOfDay(ts)).toBe(2.5);
    expect(almaty.dayOfWeek(ts)).toBe(4);
  });

  it('follows a daylight-saving change to the quarter hour', () => {
    const berlin = createLocalTime('Europe/Berlin');
    // 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST.
    const change = Date.UTC(2026, 2, 29, 1);
    expect(berlin.offsetMs(change - 1)).toBe(3_600_000);
    expect(berlin.offsetMs(change)).toBe(2 * 3_600_000);
    expect(berlin.hourOfDay(change - 15 * 60_000)).toBe(1.75);
    expect(berlin.hourOfDay(change)).toBe(3);
    // Adelaide changes at 16:30 UTC, not on a whole UTC hour.
    const adelaide = createLocalTime('Australia/Adelaide');
    const back = Date.UTC(2026, 3, 4, 16, 30); // 2026-04-05 03:00 ACDT → 02:00 ACST
    expect(adelaide.offsetMs(back - 1)).toBe(10.5 * 3_600_000);
    expect(adelaide.offsetMs(back)).toBe(9.5 * 3_600_000);
  });
});

describe('demandLevel', () => {
  const night = { startHour: parseClockTime('02:00'), endHour: parseClockTime('04:00') };

  it('is 0 in the night window and peaks in the morning and evening', () => {
    expect(demandLevel(2, 3, night)).toBe(0);
    expect(demandLevel(3.99, 3, night)).toBe(0);
    expect(demandLevel(7.5, 3, night)).toBeCloseTo(0.9, 2);
    expect(demandLevel(20, 3, night)).toBeCloseTo(0.8, 2);
    expect(demandLevel(14, 3, night)).toBeLessThan(demandLevel(7.5, 3, night));
    expect(demandLevel(7.5, 0, night)).toBeLessThan(demandLevel(7.5, 3, night));
  });

  it('handles a night window across midnight', () => {
    const wrapped = { startHour: 23, endHour: 5 };
    expect(isInNightWindow(23.5, wrapped)).toBe(true);
    expect(isInNightWindow(0.5, wrapped)).toBe(true);
    expect(isInNightWindow(5, wrapped)).toBe(false);
    expect(demandLevel(1, 2, wrapped)).toBe(0);
  });
});
