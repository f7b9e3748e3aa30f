import { FlowPilotError } from '@flowpilot/schema';
import { GAP_INTERVALS } from './availability.ts';
import { assertInterval, assertWindow, lowerBound, toSeries } from './series.ts';
import type { SeriesInput, TimeWindow } from './series.ts';

/** Local times of day "HH:MM", as in the pilot file (SPEC section 3). */
export interface NightWindow {
  start: string;
  end: string;
}

export interface NightPilot {
  /** IANA zone: nights are local (SPEC section 3). */
  timezone: string;
  nightWindow: NightWindow;
}

/** One local night's window as UTC instants: [fromMs, toMs). */
export interface LocalNight {
  /** The local date (YYYY-MM-DD) on which the night window ENDS. */
  night: string;
  fromMs: number;
  toMs: number;
}

/** Where a night's reverse volume comes from (see `computeMinNightFlow`). */
export type NightReverseSource = 'totalReverse' | 'flow';

export interface NightFlow extends LocalNight {
  /** Mean forward flow of the readings in [fromMs, toMs), negative flow counted as 0; null without readings. */
  meanM3h: number | null;
  /** Reverse volume of the night, m³; null when neither source gives one (fewer than two readings in the night). */
  reverseM3: number | null;
  reverseSource: NightReverseSource | null;
  readings: number;
  /** ⌊night length / Δ⌋. */
  expected: number;
  /** Whether this night enters the minimum and the latest: readings ≥ half of expected. */
  counted: boolean;
}

export interface MinNightFlowResult {
  minM3h: number | null;
  minNight: string | null;
  /** Reverse volume of the minimum night, m³, reported beside its forward mean (SPEC section 4). */
  minReverseM3: number | null;
  latestM3h: number | null;
  latestNight: string | null;
  /** Reverse volume of the latest night, m³. */
  latestReverseM3: number | null;
  /** Nights that counted. */
  nights: number;
  /** Every night whose window lies inside W, counted or not, oldest first. */
  byNight: NightFlow[];
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: timezone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new FlowPilotError('ERR_VALIDATION', `"${timezone}" is not an IANA time zone`);
    }
    formatters.set(timezone, f);
  }
  return f;
}

/** The local wall-clock time at `utcMs`, expressed as if it were UTC epoch ms. */
function wallClockMs(timezone: string, utcMs: number): number {
  const fields: Record<string, number> = {};
  for (const part of formatter(timezone).formatToParts(utcMs)) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const hour = fields.hour === 24 ? 0 : (fields.hour ?? 0);
  return Date.UTC(fields.year ?? 1970, (fields.month ?? 1) - 1, fields.day ?? 1, hour, fields.minute ?? 0, fields.second ?? 0);
}

/** UTC offset of the zone at `utcMs`, in ms (Asia/Almaty: +5 h since 1 March 2024). */
export function zoneOffsetMs(timezone: string, utcMs: number): number {
  const whole = Math.floor(utcMs / 1000) * 1000;
  return wallClockMs(timezone, whole) - whole;
}

/**
 * The UTC instant of a local wall-clock time (given as if UTC epoch ms). Two passes: the
 * offset at the first guess, then the offset at the result, which settles any zone with DST
 * except for wall times that do not exist (spring forward), which land one DST step later.
 */
export function localToUtcMs(timezone: string, wallMs: number): number {
  const guess = wallMs - zoneOffsetMs(timezone, wallMs);
  return wallMs - zoneOffsetMs(timezone, guess);
}

function minutesOfDay(hhmm: string, field: string): number {
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  if (!match) throw new FlowPilotError('ERR_VALIDATION', `nightWindow.${field} must be "HH:MM", got "${hhmm}"`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/**
 * The local nights whose whole night window lies inside W, oldest first (SPEC sections 3-4:
 * "days and nights are local"). Rules:
 * - start < end (02:00-04:00): the night of local date D is [D start, D end).
 * - start > end (22:00-04:00, across midnight): [D−1 start, D end), labelled D, the date it
 *   ends on, so 22:00-04:00 and 02:00-04:00 give the same label to the same night.
 * - start = end: a whole day, [D−1 end, D end).
 * - a night only partly inside W is left out: a mean over part of the night window would
 *   not be comparable with the other nights.
 */
export function localNights(window: TimeWindow, pilot: NightPilot): LocalNight[] {
  assertWindow(window);
  const startMin = minutesOfDay(pilot.nightWindow.start, 'start');
  const endMin = minutesOfDay(pilot.nightWindow.end, 'end');
  const startsDayBefore = startMin >= endMin;
  const fromWall = wallClockMs(pilot.timezone, window.fromMs);
  const first = new Date(fromWall);
  // Convert with the offset of the previous conversion, confirmed by one Intl call, instead of
  // two calls per time: the offset changes only at a DST switch, and then localToUtcMs decides.
  // (A wall time that occurs twice at a fall-back switch is thus taken at its first occurrence.)
  let offsetMs = fromWall - Math.floor(window.fromMs / 1000) * 1000;
  const toUtc = (wallMs: number): number => {
    const guess = wallMs - offsetMs;
    if (wallClockMs(pilot.timezone, guess) === wallMs) return guess;
    const utcMs = localToUtcMs(pilot.timezone, wallMs);
    offsetMs = wallMs - utcMs;
    return utcMs;
  };
  const nights: LocalNight[] = [];
  // From the local date before W's start (a night ending on it cannot be inside W, but a
  // zone offset near midnight is then never missed) until the nights start at or after `to`.
  for (let day = -1; ; day++) {
    const y = first.getUTCFullYear();
    const m = first.getUTCMonth();
    const d = first.getUTCDate() + day;
    const toMs = toUtc(Date.UTC(y, m, d, 0, endMin));
    const fromMs = toUtc(Date.UTC(y, m, startsDayBefore ? d - 1 : d, 0, startMin));
    if (fromMs >= window.toMs) break;
    if (fromMs >= window.fromMs && toMs <= window.toMs) {
      nights.push({ night: new Date(Date.UTC(y, m, d)).toISOString().slice(0, 10), fromMs, toMs });
    }
  }
  return nights;
}

/**
 * A meter's reverse totalizer (`totalReverse`, SPEC section 2), oldest first, with its own
 * timestamps (it need not be aligned with the flow readings); null or undefined where a reading
 * carries no `totalReverse`.
 */
export interface ReverseTotals {
  tsMs: ArrayLike<number>;
  totalReverseM3: ArrayLike<number | null | undefined>;
}

const MS_PER_HOUR = 3_600_000;

/**
 * Reverse volume from the reverse totalizer: the sum of the positive steps of `totalReverse`
 * between consecutive readings inside [fromMs, toMs) that carry it (a decreasing step is a reset
 * and counts 0, as for `volume`). null with fewer than two such readings.
 */
function reverseFromTotals(totals: ReverseTotals, fromMs: number, toMs: number): number | null {
  let previous: number | null = null;
  let steps = 0;
  let volumeM3 = 0;
  // A night is a few hours: a linear scan from the binary-searched start is cheap.
  let lo = 0;
  let hi = totals.tsMs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((totals.tsMs[mid] as number) < fromMs) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < totals.tsMs.length && (totals.tsMs[i] as number) < toMs; i++) {
    const value = totals.totalReverseM3[i];
    if (value === null || value === undefined || !Number.isFinite(value)) continue;
    if (previous !== null) {
      steps++;
      if (value > previous) volumeM3 += value - previous;
    }
    previous = value;
  }
  return steps > 0 ? volumeM3 : null;
}

function assertSorted(totals: ReverseTotals): void {
  if (totals.tsMs.length !== totals.totalReverseM3.length) {
    throw new FlowPilotError('ERR_VALIDATION', `reverseTotals: ${totals.tsMs.length} timestamps but ${totals.totalReverseM3.length} totals`);
  }
  for (let i = 1; i < totals.tsMs.length; i++) {
    if (!((totals.tsMs[i] as number) >= (totals.tsMs[i - 1] as number))) throw new FlowPilotError('ERR_VALIDATION', 'reverseTotals must be sorted by tsMs, oldest first');
  }
}

/**
 * SPEC section 4 `minNightFlow` (a leak indicator): for each local night inside W (see
 * `localNights`), the mean FORWARD flow of the readings in the night window: negative `flow`
 * counts as 0 (SPEC section 4 refinement). Averaging reverse flow in would let a backflow
 * cancel a leak: +2 m³/h for one hour and −2 m³/h for the next would read 0. The night's
 * reverse volume is reported beside the mean instead (`reverseM3`), from:
 * - the reverse totalizer `totalReverse` when `reverseTotals` holds at least two readings
 *   carrying it inside the night: the sum of its positive steps between them. The register
 *   counts every litre the meter measured, between readings and across gaps, so it wins;
 * - otherwise the trapezoidal integral of the reverse flow max(0, −flow) over consecutive
 *   readings inside the night at most 3Δ apart (the same pairs rule and rule of trapezoids as
 *   `totalizerConsistency`, its sign mirrored): no reverse flow is guessed across a gap.
 * `reverseSource` says which one was used; null when neither gives a figure.
 * A night counts only when it holds at least half of its expected readings (⌊night length / Δ⌋
 * / 2, and at least one): a night with a handful of readings would otherwise set the minimum by
 * chance. The result is the minimum over the counted nights (the earliest night on a tie) and
 * the latest counted night, each with its reverse volume; `byNight` lists every night with its
 * coverage so the rule can be checked.
 */
export function computeMinNightFlow(input: SeriesInput, intervalSec: number, window: TimeWindow, pilot: NightPilot, reverseTotals?: ReverseTotals): MinNightFlowResult {
  assertInterval(intervalSec);
  if (reverseTotals) assertSorted(reverseTotals);
  const series = toSeries(input);
  const intervalMs = intervalSec * 1000;
  const maxStepMs = GAP_INTERVALS * intervalMs;
  const { tsMs, flowM3h } = series;
  const byNight: NightFlow[] = [];
  let min: NightFlow | null = null;
  let latest: NightFlow | null = null;
  for (const night of localNights(window, pilot)) {
    const lo = lowerBound(tsMs, night.fromMs);
    const hi = lowerBound(tsMs, night.toMs);
    let sum = 0;
    let reverseIntegralM3 = 0;
    let pairs = 0;
    for (let i = lo; i < hi; i++) {
      const f = flowM3h[i] as number;
      sum += Math.max(0, f);
      if (i === lo || (tsMs[i] as number) - (tsMs[i - 1] as number) > maxStepMs) continue;
      const r0 = Math.max(0, -(flowM3h[i - 1] as number));
      const r1 = Math.max(0, -f);
      reverseIntegralM3 += ((r0 + r1) / 2) * (((tsMs[i] as number) - (tsMs[i - 1] as number)) / MS_PER_HOUR);
      pairs++;
    }
    const fromRegister = reverseTotals ? reverseFromTotals(reverseTotals, night.fromMs, night.toMs) : null;
    const reverseM3 = fromRegister ?? (pairs > 0 ? reverseIntegralM3 : null);
    const reverseSource: NightReverseSource | null = fromRegister !== null ? 'totalReverse' : pairs > 0 ? 'flow' : null;
    const readings = hi - lo;
    const expected = Math.floor((night.toMs - night.fromMs) / intervalMs);
    const entry: NightFlow = {
      ...night,
      meanM3h: readings > 0 ? sum / readings : null,
      reverseM3,
      reverseSource,
      readings,
      expected,
      counted: readings > 0 && readings * 2 >= expected,
    };
    byNight.push(entry);
    if (!entry.counted) continue;
    if (!min || (entry.meanM3h as number) < (min.meanM3h as number)) min = entry;
    latest = entry;
  }
  return {
    minM3h: min ? min.meanM3h : null,
    minNight: min ? min.night : null,
    minReverseM3: min ? min.reverseM3 : null,
    latestM3h: latest ? latest.meanM3h : null,
    latestNight: latest ? latest.night : null,
    latestReverseM3: latest ? latest.reverseM3 : null,
    nights: byNight.filter((n) => n.counted).length,
    byNight,
  };
}
