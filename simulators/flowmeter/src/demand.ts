import type { MeterConfig, PilotConfig } from '@flowpilot/schema';
import { isActive } from './conditions.ts';
import type { Condition } from './conditions.ts';
import { createLocalTime, parseClockTime } from './local-time.ts';
import type { LocalTime } from './local-time.ts';
import { hashString, unitHashStream } from './random.ts';

/**
 * The true flow through a pipe ("line"). Meters in series see the same water: a `test` meter
 * and its `reference` share the line keyed by the reference's id; a `monitor` meter (or a
 * reference without test meters) has its own line.
 *
 * The flow is piecewise constant over the line's base steps (the gcd of its meters' intervals)
 * and a meter's reading reports the mean over its own interval, as interval-logging meters do.
 * That makes a meter's volume over an interval exactly flow × Δt, so the totalizer is the
 * integral of the indicated flow by construction (SPEC section 4, totalizerConsistency).
 */

export interface Zones {
  q1M3h: number;
  q2M3h: number;
  q3M3h: number;
  q4M3h: number;
}

/** OIML R49 / ISO 4064 flow rates of a test meter (SPEC section 4). */
export function meterZones(meter: Pick<MeterConfig, 'q3' | 'r' | 'id'>): Zones {
  if (meter.q3 === undefined || meter.r === undefined) throw new RangeError(`meter ${meter.id} has no q3 and r`);
  const q1M3h = meter.q3 / meter.r;
  return { q1M3h, q2M3h: 1.6 * q1M3h, q3M3h: meter.q3, q4M3h: 1.25 * meter.q3 };
}

/** A leak: constant extra flow from `fromMs` on the line of `meterId`, or on every line at `site`. */
export interface LeakOptions {
  meterId?: string;
  site?: string;
  fromMs: number;
  flowM3h: number;
}

export interface Line {
  id: string;
  key: number;
  stepMs: number;
  /** Flow at the night minimum (demand level 0) and at the daily peak (level 1), before noise. */
  qLowM3h: number;
  qHighM3h: number;
  /** Extra constant flows on the line, each over [fromMs, toMs); `alarm`: the meters flag `leak` meanwhile. */
  leaks: readonly LineLeak[];
  members: readonly MeterConfig[];
}

export interface LineLeak {
  fromMs: number;
  toMs: number;
  flowM3h: number;
  alarm: boolean;
}

/** Relative amplitudes of the multiplicative noise: slow (20-min knots, smooth) and per step. */
const SMOOTH_NOISE = 0.06;
const WHITE_NOISE = 0.015;
const KNOT_MS = 20 * 60_000;
const TAG_SMOOTH = 11;
const TAG_WHITE = 12;

/** Default pipe velocity at the daily peak for lines without a test meter, m/s. */
const PEAK_VELOCITY_MPS = 1.5;
const DEFAULT_DN_MM = 100;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

export function lineIdOf(meter: MeterConfig): string {
  return meter.role === 'test' && meter.reference !== undefined ? meter.reference : meter.id;
}

export function pipeAreaM2(dnMm: number): number {
  return Math.PI * (dnMm / 2000) ** 2;
}

/**
 * The flow of a played leak without a value: the line's night flow (so the night minimum
 * doubles), and at least the meter's leak threshold (SPEC section 9: `alerts.meters.<id>.leakM3h`,
 * else the meter's `leakM3h`), so the `leak` alert the leak is played for does fire.
 */
function defaultLeakM3h(meterId: string, pilot: PilotConfig, qLowM3h: number): number {
  // `alerts` is optional in a PilotConfig written by hand (tests); the parsed file always has it.
  const threshold = (pilot.alerts as PilotConfig['alerts'] | undefined)?.meters[meterId]?.leakM3h ?? pilot.meters.find((m) => m.id === meterId)?.leakM3h ?? 0;
  return Math.max(qLowM3h, threshold);
}

/**
 * The line of `meter`: who shares its water, its flow range, and its leaks: `leak` (a leak the
 * meters flag themselves) and the played `leak` conditions of its meters (conditions.ts), which
 * only the night flow reveals.
 */
export function resolveLine(meter: MeterConfig, pilot: PilotConfig, leak: LeakOptions | null, conditions: readonly Condition[] = []): Line {
  const id = lineIdOf(meter);
  const members = pilot.meters.filter((m) => m.id === id || (m.role === 'test' && m.reference === id));
  if (!members.some((m) => m.id === meter.id)) members.push(meter);
  const stepSec = members.reduce((acc, m) => gcd(acc, m.intervalSec), 0);

  // The pair's flow must span the test meter's zones (SPEC section 4): level 0 sits at the
  // geometric middle of [Q1, Q2), which ±7.5 % noise cannot leave; level 1 at 0.8·Q3, which
  // noise keeps below Q4. Night readings land in the lower zone, day readings in the upper.
  const test = members.find((m) => m.role === 'test' && m.q3 !== undefined && m.r !== undefined);
  let qLowM3h: number;
  let qHighM3h: number;
  if (test) {
    const zones = meterZones(test);
    qLowM3h = Math.sqrt(zones.q1M3h * zones.q2M3h);
    qHighM3h = 0.8 * zones.q3M3h;
  } else {
    const owner = members.find((m) => m.id === id) ?? meter;
    qHighM3h = pipeAreaM2(owner.dn ?? DEFAULT_DN_MM) * PEAK_VELOCITY_MPS * 3600;
    // A district inlet never drops to zero at night: background use and leakage.
    qLowM3h = 0.15 * qHighM3h;
  }

  const leaks: LineLeak[] = [];
  if (leak && (members.some((m) => m.id === leak.meterId) || (leak.site !== undefined && members.some((m) => m.site === leak.site)))) {
    leaks.push({ fromMs: leak.fromMs, toMs: Infinity, flowM3h: leak.flowM3h, alarm: true });
  }
  for (const condition of conditions) {
    if (condition.kind !== 'leak' || !members.some((m) => m.id === condition.meterId)) continue;
    leaks.push({ fromMs: condition.fromMs, toMs: condition.toMs, flowM3h: condition.value ?? defaultLeakM3h(condition.meterId, pilot, qLowM3h), alarm: false });
  }
  return { id, key: hashString(id), stepMs: stepSec * 1000, qLowM3h, qHighM3h, leaks, members };
}

function smoothstep(x: number): number {
  const t = Math.min(1, Math.max(0, x));
  return t * t * (3 - 2 * t);
}

function circularGauss(hour: number, centreHour: number, sigmaHours: number): number {
  let d = Math.abs(hour - centreHour) % 24;
  if (d > 12) d = 24 - d;
  return Math.exp(-(d * d) / (2 * sigmaHours * sigmaHours));
}

export interface NightWindow {
  startHour: number;
  endHour: number;
}

export function isInNightWindow(hour: number, night: NightWindow): boolean {
  return night.startHour <= night.endHour ? hour >= night.startHour && hour < night.endHour : hour >= night.startHour || hour < night.endHour;
}

/**
 * Demand level in [0, 1] at a local hour: 0 throughout the pilot's night window, rising over
 * 2 h after it, a morning peak (07:30 weekdays, 09:00 weekends), a daytime plateau, an evening
 * peak at 20:00, and a 3-h decline into the night window. Weekends are 10 % lower.
 */
export function demandLevel(hour: number, dayOfWeek: number, night: NightWindow): number {
  if (isInNightWindow(hour, night)) return 0;
  const sinceNightEnd = (hour - night.endHour + 24) % 24;
  const untilNightStart = (night.startHour - hour + 24) % 24;
  const awake = smoothstep(sinceNightEnd / 2) * smoothstep(untilNightStart / 3);
  const weekend = dayOfWeek === 0 || dayOfWeek === 6;
  const peaks = 0.45 * circularGauss(hour, weekend ? 9 : 7.5, 1.1) + 0.35 * circularGauss(hour, 20, 1.6);
  return awake * Math.min(1, 0.45 + peaks) * (weekend ? 0.9 : 1);
}

export interface LineFlow {
  /** Mean true flow over base step s, i.e. over [s·stepMs, (s+1)·stepMs), m³/h. */
  flowM3h(step: number): number;
  /** Is a leak that the meters flag (`leak` alarm) on during base step s? */
  leakOn(step: number): boolean;
  readonly line: Line;
  readonly localTime: LocalTime;
}

export function createLineFlow(line: Line, pilot: PilotConfig, seed: number): LineFlow {
  const localTime = createLocalTime(pilot.pilot.timezone);
  const night: NightWindow = {
    startHour: parseClockTime(pilot.pilot.nightWindow.start),
    endHour: parseClockTime(pilot.pilot.nightWindow.end),
  };
  const span = line.qHighM3h - line.qLowM3h;

  const smoothDraw = unitHashStream(seed, line.key, TAG_SMOOTH);
  const whiteDraw = unitHashStream(seed, line.key, TAG_WHITE);
  let knotA = Number.NaN;
  let valueA = 0;
  let valueB = 0;

  function smoothNoise(tMs: number): number {
    const knot = Math.floor(tMs / KNOT_MS);
    if (knot !== knotA) {
      knotA = knot;
      valueA = 2 * smoothDraw(knot) - 1;
      valueB = 2 * smoothDraw(knot + 1) - 1;
    }
    const frac = smoothstep((tMs - knot * KNOT_MS) / KNOT_MS);
    return valueA + (valueB - valueA) * frac;
  }

  /** The leaks' flow over base step s, judged at its middle. */
  function leakM3h(step: number): number {
    if (line.leaks.length === 0) return 0;
    const midMs = (step + 0.5) * line.stepMs;
    let sum = 0;
    for (const leak of line.leaks) if (isActive(leak, midMs)) sum += leak.flowM3h;
    return sum;
  }

  return {
    line,
    localTime,
    leakOn(step) {
      const midMs = (step + 0.5) * line.stepMs;
      return line.leaks.some((leak) => leak.alarm && isActive(leak, midMs));
    },
    flowM3h(step) {
      // Evaluated at the middle of the step: the mean of a smooth curve over a short step.
      const midMs = (step + 0.5) * line.stepMs;
      const level = demandLevel(localTime.hourOfDay(midMs), localTime.dayOfWeek(midMs), night);
      const noise = 1 + SMOOTH_NOISE * smoothNoise(midMs) + WHITE_NOISE * (2 * whiteDraw(step) - 1);
      return (line.qLowM3h + span * level) * noise + leakM3h(step);
    },
  };
}
