import { localToUtcMs, zoneOffsetMs } from '@flowpilot/metrics';
import type { TimeWindow } from '@flowpilot/metrics';

const DAY_MS = 86_400_000;

/** YYYY-MM-DD of the local day holding `ms` in `timezone`. */
export function localDate(timezone: string, ms: number): string {
  return new Date(ms + zoneOffsetMs(timezone, ms)).toISOString().slice(0, 10);
}

/** UTC ms of local midnight starting the day `date` (YYYY-MM-DD) in `timezone`. */
export function localMidnightMs(timezone: string, date: string): number {
  return localToUtcMs(timezone, Date.parse(`${date}T00:00:00Z`));
}

/**
 * The local days that [from, to) touches, each cut to the window: the daily charts of the
 * report and the dashboard (SPEC section 3: "days and nights are local"). A zone change on a
 * day (DST) is handled because each midnight is converted on its own.
 */
export function localDays(window: TimeWindow, timezone: string): Array<{ date: string; window: TimeWindow }> {
  const days: Array<{ date: string; window: TimeWindow }> = [];
  let date = localDate(timezone, window.fromMs);
  let start = window.fromMs;
  while (start < window.toMs) {
    const next = new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
    const end = Math.min(window.toMs, localMidnightMs(timezone, next));
    if (end > start) days.push({ date, window: { fromMs: start, toMs: end } });
    start = end;
    date = next;
  }
  return days;
}
