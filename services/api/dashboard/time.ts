/** Local days of the pilot's zone (SPEC section 3: days are local), without a date library. */

const DAY_MS = 86_400_000;

/** The zone's offset from UTC at `utcMs`, in ms. */
export function zoneOffsetMs(timeZone: string, utcMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(utcMs);
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/** YYYY-MM-DD of the local day holding `ms`. */
export function localDate(timeZone: string, ms: number): string {
  return new Date(ms + zoneOffsetMs(timeZone, ms)).toISOString().slice(0, 10);
}

/** UTC ms of the local midnight that starts `date`. */
export function localMidnightMs(timeZone: string, date: string): number {
  const wall = Date.parse(`${date}T00:00:00Z`);
  const guess = wall - zoneOffsetMs(timeZone, wall);
  return wall - zoneOffsetMs(timeZone, guess);
}

export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/** [from, to) of local dates `from`…`to` inclusive, cut at now (an unfinished day counts only its past). */
export function periodWindow(timeZone: string, from: string, to: string, nowMs: number): { fromMs: number; toMs: number } {
  const fromMs = localMidnightMs(timeZone, from);
  const endMs = localMidnightMs(timeZone, addDays(to, 1));
  return { fromMs, toMs: Math.max(fromMs + 60_000, Math.min(endMs, Math.floor(nowMs / 60_000) * 60_000)) };
}

/** The local days of [from, to), each cut to the window (as @flowpilot/report's localDays). */
export function localDays(timeZone: string, window: { fromMs: number; toMs: number }): Array<{ date: string; fromMs: number; toMs: number }> {
  const days: Array<{ date: string; fromMs: number; toMs: number }> = [];
  let date = localDate(timeZone, window.fromMs);
  let start = window.fromMs;
  while (start < window.toMs) {
    const next = addDays(date, 1);
    const end = Math.min(window.toMs, localMidnightMs(timeZone, next));
    if (end > start) days.push({ date, fromMs: start, toMs: end });
    start = end;
    date = next;
  }
  return days;
}
