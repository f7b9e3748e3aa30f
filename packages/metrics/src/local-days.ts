import { parseTime, TIME_GRAMMAR_HINT } from '@flowpilot/schema';
import { localToUtcMs, zoneOffsetMs } from './night-flow.ts';
import type { TimeWindow } from './series.ts';

/**
 * Local days of the pilot's zone (SPEC sections 3 and 4: "daily figures are local days"): the
 * daily charts of the report and the dashboard, and the API's daily metrics. Pure, like the
 * rest of this package; the zone arithmetic is night-flow.ts's.
 */

const DAY_MS = 86_400_000;

/** YYYY-MM-DD of the local day holding `ms` in `timezone`. */
export function localDate(timezone: string, ms: number): string {
  return new Date(ms + zoneOffsetMs(timezone, ms)).toISOString().slice(0, 10);
}

/** The calendar date `days` after (or before, when negative) `date` (YYYY-MM-DD). */
export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/** UTC ms of the local midnight starting the day `date` (YYYY-MM-DD) in `timezone`. */
export function localMidnightMs(timezone: string, date: string): number {
  return localToUtcMs(timezone, Date.parse(`${date}T00:00:00Z`));
}

export interface LocalDay {
  /** YYYY-MM-DD in the pilot's zone. */
  date: string;
  /** The day, cut to the window it was taken from. */
  window: TimeWindow;
}

/**
 * The local days that [from, to) touches, each cut to the window. A zone change on a day (DST)
 * is handled because each midnight is converted on its own.
 */
export function localDays(window: TimeWindow, timezone: string): LocalDay[] {
  const days: LocalDay[] = [];
  let date = localDate(timezone, window.fromMs);
  let start = window.fromMs;
  while (start < window.toMs) {
    const next = addDays(date, 1);
    const end = Math.min(window.toMs, localMidnightMs(timezone, next));
    if (end > start) days.push({ date, window: { fromMs: start, toMs: end } });
    start = end;
    date = next;
  }
  return days;
}

/** What `parseWindowTime` accepts, for error messages. */
export const WINDOW_TIME_HINT = `${TIME_GRAMMAR_HINT}, or a date (YYYY-MM-DD: the start of that day in the pilot's time zone)`;

const BARE_DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Epoch ms of a window's `from` or `to` as people type it (the API's query and `flowpilot
 * report`'s flags): the schema's time grammar, with a bare date read as the local midnight that
 * starts that day in the pilot's zone (SPEC section 4); null otherwise.
 */
export function parseWindowTime(text: string, timezone: string): number | null {
  const trimmed = text.trim();
  if (BARE_DATE.test(trimmed)) return parseTime(trimmed) === null ? null : localMidnightMs(timezone, trimmed);
  return parseTime(trimmed);
}
