import { isSimulated, isValidMeterId, parseDuration } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';

/**
 * Conditions the simulator can play on a meter, so that each alert of SPEC section 9 can be
 * shown on demand (issue 13): a meter that goes silent (`stale`), an empty pipe (`alarm`), a
 * leak seen in the night flow (`leak`) and a low battery (`low_battery`). Pure: a condition is
 * a window of time and what it changes; the meter model (meter-model.ts) applies it.
 *
 * The grammar, one condition or several separated by commas:
 *
 *   KIND:METER[=VALUE][:DURATION][@START]
 *
 * - KIND: `silent` (no reading is sent), `empty_pipe` (flow 0, the totalizer stops, alarm
 *   `empty_pipe`), `leak` (a constant extra flow on the meter's pipe, day and night: it is
 *   at night, when demand is lowest, that it shows) or `low_battery` (battery at VALUE %).
 * - VALUE: the leak's flow in m³/h (default: the pipe's night flow, and at least the meter's
 *   `leakM3h` threshold), or the battery in % (default 15, under the meters' own 20 % alarm).
 * - DURATION: how long, e.g. `5m` (default 10m for `silent` and `empty_pipe`; a `leak` and a
 *   `low_battery` last until the simulator stops).
 * - START: when, after the simulator starts, e.g. `@2m`; negative reaches into the history
 *   it sends (`@-2d`). Default 0, except a `leak`: one day before the start, so that the last
 *   night of the history already shows it.
 *
 * `demo` is the gentle scenario `flowpilot start` plays (`demoConditions`), `none` none.
 */

export const CONDITION_KINDS = ['silent', 'empty_pipe', 'leak', 'low_battery'] as const;
export type ConditionKind = (typeof CONDITION_KINDS)[number];

/** A condition as asked for: its time relative to the simulator's start. */
export interface ConditionSpec {
  kind: ConditionKind;
  meterId: string;
  /** From the simulator's start, ms; negative is before it (in the history). */
  startOffsetMs: number;
  /** How long, ms; null: until the simulator stops. */
  durationMs: number | null;
  /** `leak`: extra flow, m³/h; `low_battery`: battery, %; null: the default. Unused by the others. */
  value: number | null;
}

/** A condition placed in time: active for the readings with fromMs ≤ ts < toMs. */
export interface Condition {
  kind: ConditionKind;
  meterId: string;
  fromMs: number;
  /** Infinity: until the simulator stops. */
  toMs: number;
  value: number | null;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** What a condition is when its text leaves a part out. */
export const CONDITION_DEFAULTS: Readonly<Record<ConditionKind, { durationMs: number | null; startOffsetMs: number }>> = Object.freeze({
  silent: { durationMs: 10 * MINUTE_MS, startOffsetMs: 0 },
  empty_pipe: { durationMs: 10 * MINUTE_MS, startOffsetMs: 0 },
  leak: { durationMs: null, startOffsetMs: -DAY_MS },
  low_battery: { durationMs: null, startOffsetMs: 0 },
});

/** The battery of a `low_battery` condition without a value, % (the meters flag `low_battery` under 20 %). */
export const DEFAULT_LOW_BATTERY_PCT = 15;

export const CONDITIONS_GRAMMAR_HINT =
  'KIND:METER[=VALUE][:DURATION][@START] separated by commas, KIND one of silent, empty_pipe, leak, low_battery (e.g. silent:ALM-DMA12-MON:5m,leak:ALM-DMA12-MON,empty_pipe:ALM-PS7-DUT1:10m@2m,low_battery:ALM-PS3-DUT2=12), or demo, or none';

const ITEM = /^([a-z_]+):([^:=@]+)(?:=([^:@]*))?(?::([^@]*))?(?:@(.*))?$/;

function isKind(text: string): text is ConditionKind {
  return (CONDITION_KINDS as readonly string[]).includes(text);
}

/** A signed duration: `2m`, `+2m`, `-1d`. */
function parseSignedDuration(text: string): number | null {
  const trimmed = text.trim();
  const sign = trimmed.startsWith('-') ? -1 : 1;
  const ms = parseDuration(trimmed.replace(/^[+-]/, ''));
  return ms === null ? null : sign * ms;
}

/**
 * Parses the conditions to play on `pilot`'s simulated meters, reporting every problem at once
 * (STYLE habit 3) in a RangeError. `demo` gives `demoConditions(pilot)`, `none` or '' nothing.
 */
export function parseConditions(text: string, pilot: PilotConfig): ConditionSpec[] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'none') return [];
  if (trimmed === 'demo') return demoConditions(pilot);
  const specs: ConditionSpec[] = [];
  const problems: string[] = [];
  for (const item of trimmed.split(',').map((part) => part.trim())) {
    const match = ITEM.exec(item);
    if (!match) {
      problems.push(`"${item}": expected KIND:METER[=VALUE][:DURATION][@START]`);
      continue;
    }
    const [, kind = '', meterId = '', valueText, durationText, startText] = match;
    const before = problems.length;
    if (!isKind(kind)) problems.push(`"${item}": unknown condition "${kind}", expected one of ${CONDITION_KINDS.join(', ')}`);
    const meter = pilot.meters.find((m) => m.id === meterId);
    if (!isValidMeterId(meterId) || !meter) problems.push(`"${item}": no meter "${meterId}" in pilot ${pilot.pilot.id}`);
    else if (!isSimulated(meter)) problems.push(`"${item}": meter ${meterId} is not simulated (simulate: true in the pilot file, SPEC section 3)`);
    let value: number | null = null;
    if (valueText !== undefined) {
      value = Number(valueText);
      if (kind === 'leak' && !(value > 0 && Number.isFinite(value))) problems.push(`"${item}": a leak's flow must be a number of m³/h above 0`);
      else if (kind === 'low_battery' && !(value >= 0 && value < 100)) problems.push(`"${item}": a battery must be a number of % from 0 to under 100`);
      else if (kind === 'silent' || kind === 'empty_pipe') problems.push(`"${item}": ${kind} takes no =VALUE`);
    }
    const defaults = isKind(kind) ? CONDITION_DEFAULTS[kind] : { durationMs: null, startOffsetMs: 0 };
    let durationMs = defaults.durationMs;
    if (durationText !== undefined) {
      durationMs = parseDuration(durationText);
      if (durationMs === null || durationMs <= 0) problems.push(`"${item}": duration "${durationText}" is not a duration above 0 such as 5m, 2h or 1d`);
    }
    let startOffsetMs = defaults.startOffsetMs;
    if (startText !== undefined) {
      const parsed = parseSignedDuration(startText);
      if (parsed === null) problems.push(`"${item}": start "@${startText}" is not a duration such as @2m or @-1d`);
      else startOffsetMs = parsed;
    }
    if (problems.length === before && isKind(kind)) specs.push({ kind, meterId, startOffsetMs, durationMs, value });
  }
  if (problems.length > 0) throw new RangeError(`cannot play ${problems.length === 1 ? 'this condition' : 'these conditions'}: ${problems.join('; ')}. Expected ${CONDITIONS_GRAMMAR_HINT}`);
  return specs;
}

/** The text of conditions, in the grammar `parseConditions` reads: for the log, and for a person to copy. */
export function formatConditions(specs: readonly ConditionSpec[]): string {
  const duration = (ms: number): string => {
    const abs = Math.abs(ms);
    const text = abs % DAY_MS === 0 ? `${abs / DAY_MS}d` : abs % 3_600_000 === 0 ? `${abs / 3_600_000}h` : abs % MINUTE_MS === 0 ? `${abs / MINUTE_MS}m` : abs % 1000 === 0 ? `${abs / 1000}s` : `${abs}ms`;
    return ms < 0 ? `-${text}` : text;
  };
  return specs
    .map((spec) => {
      const defaults = CONDITION_DEFAULTS[spec.kind];
      let text = `${spec.kind}:${spec.meterId}`;
      if (spec.value !== null) text += `=${spec.value}`;
      if (spec.durationMs !== defaults.durationMs && spec.durationMs !== null) text += `:${duration(spec.durationMs)}`;
      if (spec.startOffsetMs !== defaults.startOffsetMs) text += `@${duration(spec.startOffsetMs)}`;
      return text;
    })
    .join(',');
}

/**
 * The demo's gentle scenario (`flowpilot start`): one condition per meter, so each alert shows
 * within minutes and the silent meter and the empty pipe resolve again, leaving history:
 * - a leak on the first monitor meter since a day ago (last night's flow shows it);
 * - a low battery on the second meter under test, from the start;
 * - an empty pipe on the last meter under test, 2 to 12 minutes in;
 * - the first other reference meter silent 4 to 10 minutes in.
 * Only simulated meters; a pilot without a kind of meter plays less.
 */
export function demoConditions(pilot: PilotConfig): ConditionSpec[] {
  const simulated = pilot.meters.filter(isSimulated);
  const tests = simulated.filter((m) => m.role === 'test');
  const references = simulated.filter((m) => m.role === 'reference');
  const monitor = simulated.find((m) => m.role === 'monitor');
  const specs: ConditionSpec[] = [];
  const leakMeter = monitor ?? references[0];
  if (leakMeter) specs.push({ kind: 'leak', meterId: leakMeter.id, ...CONDITION_DEFAULTS.leak, value: null });
  const battery = tests[1] ?? tests[0];
  if (battery) specs.push({ kind: 'low_battery', meterId: battery.id, ...CONDITION_DEFAULTS.low_battery, value: null });
  const empty = tests.length > 2 ? tests.at(-1) : undefined;
  if (empty) specs.push({ kind: 'empty_pipe', meterId: empty.id, durationMs: 10 * MINUTE_MS, startOffsetMs: 2 * MINUTE_MS, value: null });
  const silent = references.find((m) => m.id !== leakMeter?.id);
  if (silent) specs.push({ kind: 'silent', meterId: silent.id, durationMs: 6 * MINUTE_MS, startOffsetMs: 4 * MINUTE_MS, value: null });
  return specs;
}

/** The conditions placed in time, relative to the simulator's start `startMs`. */
export function placeConditions(specs: readonly ConditionSpec[], startMs: number): Condition[] {
  return specs.map((spec) => {
    const fromMs = startMs + spec.startOffsetMs;
    return { kind: spec.kind, meterId: spec.meterId, fromMs, toMs: spec.durationMs === null ? Infinity : fromMs + spec.durationMs, value: spec.value };
  });
}

/** Is a condition active for a reading at `tsMs`? */
export function isActive(condition: Pick<Condition, 'fromMs' | 'toMs'>, tsMs: number): boolean {
  return tsMs >= condition.fromMs && tsMs < condition.toMs;
}
