import type { AlarmName, AlertsConfig, MeterConfig, PilotConfig } from '@flowpilot/schema';
import type { AlertRule } from './types.ts';

/**
 * The rules of SPEC section 9 as pure functions: each rule's condition from a snapshot of facts
 * (AlertFacts) with the meter's thresholds (the pilot file's `alerts:` section, its per-meter
 * overrides, a meter's `leakM3h`). No I/O and no clock: the facts carry `nowMs`.
 *
 * A condition is three-valued. `firing` and `ok` need evidence; `unknown` (InfluxDB not yet
 * read, no dead-letter store, the live feed away from the broker) changes nothing, so a missing
 * fact neither opens an alert nor resolves one that is open.
 */

/** The alarms a meter reports that raise the `alarm` rule (SPEC section 9); `low_battery` has its own rule. */
export const ALERTING_ALARMS: readonly AlarmName[] = ['reverse_flow', 'empty_pipe', 'leak', 'tamper', 'sensor_fault', 'overload'];

/** Rules about one meter, and about the pipeline (meterId null). */
export const METER_RULES = ['stale', 'offline', 'leak', 'alarm', 'low_battery', 'totalizer', 'rejected'] as const satisfies readonly AlertRule[];
export const PIPELINE_RULES = ['store_lag', 'influx_down'] as const satisfies readonly AlertRule[];

/** Rules whose facts come from the live feed: the engine re-evaluates them for a meter on each of its readings. */
export const LIVE_RULES: readonly AlertRule[] = ['stale', 'offline', 'alarm', 'low_battery'];

/** How urgent each rule is: the `severity` label of the Prometheus rules, and the notifier's to use. */
export const RULE_SEVERITY: Readonly<Record<AlertRule, 'critical' | 'warning' | 'info'>> = {
  stale: 'warning',
  offline: 'warning',
  leak: 'critical',
  alarm: 'warning',
  low_battery: 'info',
  totalizer: 'warning',
  rejected: 'warning',
  store_lag: 'critical',
  influx_down: 'critical',
};

/** A meter's thresholds: the pilot-wide ones under its own overrides (`alerts.meters.<id>`, then the meter's `leakM3h`). */
export interface MeterThresholds {
  staleIntervals: number;
  lowBatteryPct: number;
  totalizerPct: number;
  rejectedPerHour: number;
  /** null: no leak rule for this meter. */
  leakM3h: number | null;
}

export function meterThresholds(alerts: AlertsConfig, meter: MeterConfig): MeterThresholds {
  const own = alerts.meters[meter.id] ?? {};
  return {
    staleIntervals: own.staleIntervals ?? alerts.staleIntervals,
    lowBatteryPct: own.lowBatteryPct ?? alerts.lowBatteryPct,
    totalizerPct: own.totalizerPct ?? alerts.totalizerPct,
    rejectedPerHour: own.rejectedPerHour ?? alerts.rejectedPerHour,
    leakM3h: own.leakM3h ?? meter.leakM3h ?? null,
  };
}

/** What is known about one meter at `AlertFacts.nowMs`. Each `null` is "unknown". */
export interface MeterFacts {
  meterId: string;
  /**
   * When the meter's last reading arrived (the live feed's receipt time; for a meter the feed
   * has not heard from since the API started, its newest reading in InfluxDB), epoch ms.
   */
  lastReadingAtMs: number | null;
  /** The newest reading's battery and alarms; null without a reading. */
  lastReading: { tsMs: number; batteryPct: number | null; alarms: readonly AlarmName[] } | null;
  /**
   * The last status message (retained); null when the meter sent none. `receivedAtMs`: when the
   * API received it (its clock, as `lastReadingAtMs`), where known.
   */
  status: { online: boolean; tsMs: number; receivedAtMs?: number } | null;
  /** The latest counted local night's mean forward flow (SPEC section 4 minNightFlow, `latest`); null when unknown. */
  night: { night: string; meanM3h: number } | null;
  /** Totalizer consistency of the last complete local day (SPEC section 4), %; null when unknown or not computable. */
  totalizer: { date: string; percent: number } | null;
  /** Dead letters of the meter received in the last hour; null without the dead-letter store. */
  rejectedLastHour: number | null;
}

export interface PipelineFacts {
  /** Age of the oldest accepted reading waiting for InfluxDB, s (0 when none waits); null when the store is not at hand. */
  storeLagSec: number | null;
  /**
   * Without the lag itself, the durable store's readiness check (its own threshold,
   * FLOWPILOT_READY_MAX_LAG_SEC): store_lag fires while it fails. null when neither is at hand.
   */
  storeCheck: { ok: boolean; reason?: string } | null;
  /** InfluxDB answers its ping and the ingest's writes succeed; with the reason when not; null when not checked yet. */
  influx: { ok: boolean; reason?: string } | null;
}

export interface AlertFacts {
  nowMs: number;
  /**
   * Since when the API has watched the live feed without a break (the later of the engine's start
   * and the feed's last reconnection); null while the feed is away from the broker. Silence is
   * only evidence once it was watched for the whole of a meter's stale threshold.
   */
  watchingSinceMs: number | null;
  meters: ReadonlyMap<string, MeterFacts>;
  pipeline: PipelineFacts;
}

export type Details = Record<string, string | number | null>;

/**
 * A rule's verdict. `sinceMs` of a firing condition: when it began to hold, where the rule knows
 * (stale: N intervals after the last reading); the alert's `since` then says so, not the
 * evaluation that noticed it.
 */
export type Condition = { state: 'firing'; message: string; details: Details; sinceMs?: number } | { state: 'ok' } | { state: 'unknown' };

const OK: Condition = { state: 'ok' };
const UNKNOWN: Condition = { state: 'unknown' };
const firing = (message: string, details: Details, sinceMs?: number): Condition => ({ state: 'firing', message, details, ...(sinceMs === undefined ? {} : { sinceMs }) });

const iso = (ms: number): string => new Date(ms).toISOString();
const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

/** `stale`: no reading for N intervals (SPEC section 9). */
export function staleCondition(meter: MeterConfig, t: MeterThresholds, facts: MeterFacts | undefined, all: AlertFacts): Condition {
  const limitMs = t.staleIntervals * meter.intervalSec * 1000;
  const last = facts?.lastReadingAtMs ?? null;
  if (last !== null && all.nowMs - last <= limitMs) return OK;
  // Silence counts only while it was watched: not while the feed is away, nor just after a start.
  if (all.watchingSinceMs === null || all.nowMs - all.watchingSinceMs <= limitMs) return UNKNOWN;
  const details: Details = { threshold: t.staleIntervals, intervalSec: meter.intervalSec, lastReadingAt: last === null ? null : iso(last) };
  const since = last === null ? `since ${iso(all.watchingSinceMs)} (none since the API started)` : `since ${iso(last)}`;
  return firing(`Meter ${meter.id} sent no reading for more than ${t.staleIntervals} intervals of ${meter.intervalSec} s: none ${since}`, details, (last ?? all.watchingSinceMs) + limitMs);
}

/** `offline`: the meter's status says `online: false` (its last will), and no reading came after it. */
export function offlineCondition(meter: MeterConfig, facts: MeterFacts | undefined): Condition {
  const status = facts?.status ?? null;
  const reading = facts?.lastReading ?? null;
  if (!status) return reading ? OK : UNKNOWN;
  if (status.online) return OK;
  // "After" in the order the API received them, where it knows both: a last will carries no ts
  // and is timed on receipt, so against a reading's own ts a meter clock running ahead (SPEC
  // section 1 allows 5 minutes) would hide the outage for as long as the meter stays away.
  const lastReadingAtMs = facts?.lastReadingAtMs ?? null;
  const readingAfter = status.receivedAtMs !== undefined && lastReadingAtMs !== null ? lastReadingAtMs > status.receivedAtMs : reading !== null && reading.tsMs > status.tsMs;
  if (reading && readingAfter) return OK;
  return firing(`Meter ${meter.id} is offline: its status says online: false since ${iso(status.tsMs)}`, { statusAt: iso(status.tsMs) });
}

/** `leak`: the latest night's mean forward flow above the meter's `leakM3h` (SPEC sections 4 and 9). */
export function leakCondition(meter: MeterConfig, t: MeterThresholds, facts: MeterFacts | undefined): Condition {
  if (t.leakM3h === null) return OK;
  const night = facts?.night ?? null;
  if (!night) return UNKNOWN;
  if (night.meanM3h <= t.leakM3h) return OK;
  return firing(`Meter ${meter.id}: mean night flow ${round(night.meanM3h, 3)} m³/h on the night of ${night.night}, above its leak threshold ${t.leakM3h} m³/h`, {
    threshold: t.leakM3h,
    value: round(night.meanM3h, 3),
    night: night.night,
  });
}

/** `alarm`: the newest reading carries an alarm of ALERTING_ALARMS. */
export function alarmCondition(meter: MeterConfig, facts: MeterFacts | undefined): Condition {
  const reading = facts?.lastReading ?? null;
  if (!reading) return UNKNOWN;
  const raised = ALERTING_ALARMS.filter((alarm) => reading.alarms.includes(alarm));
  if (raised.length === 0) return OK;
  return firing(`Meter ${meter.id} reports ${raised.length === 1 ? 'the alarm' : 'the alarms'} ${raised.join(', ')}`, { alarm: raised.join(',') });
}

/**
 * `low_battery`: the newest reading's battery below the threshold; a meter that reports no
 * battery level but raises its own `low_battery` alarm counts too.
 */
export function lowBatteryCondition(meter: MeterConfig, t: MeterThresholds, facts: MeterFacts | undefined): Condition {
  const reading = facts?.lastReading ?? null;
  if (!reading) return UNKNOWN;
  if (reading.batteryPct === null) {
    return reading.alarms.includes('low_battery')
      ? firing(`Meter ${meter.id} reports the alarm low_battery`, { threshold: t.lowBatteryPct, value: null, alarm: 'low_battery' })
      : OK;
  }
  if (reading.batteryPct >= t.lowBatteryPct) return OK;
  return firing(`Meter ${meter.id}: battery at ${round(reading.batteryPct, 1)} %, below ${t.lowBatteryPct} %`, { threshold: t.lowBatteryPct, value: round(reading.batteryPct, 1) });
}

/** `totalizer`: |totalizer consistency| of the last complete local day above the threshold. */
export function totalizerCondition(meter: MeterConfig, t: MeterThresholds, facts: MeterFacts | undefined): Condition {
  const day = facts?.totalizer ?? null;
  if (!day) return UNKNOWN;
  if (Math.abs(day.percent) <= t.totalizerPct) return OK;
  return firing(
    `Meter ${meter.id}: totalizer consistency ${round(day.percent)} % on ${day.date} (∫flow dt against the totalizer's volume), beyond ±${t.totalizerPct} %`,
    { threshold: t.totalizerPct, value: round(day.percent), date: day.date },
  );
}

/** `rejected`: more dead letters of the meter in the last hour than the threshold. */
export function rejectedCondition(meter: MeterConfig, t: MeterThresholds, facts: MeterFacts | undefined): Condition {
  const count = facts?.rejectedLastHour ?? null;
  if (count === null) return UNKNOWN;
  if (count <= t.rejectedPerHour) return OK;
  return firing(`Meter ${meter.id}: ${count} messages rejected in the last hour, more than ${t.rejectedPerHour} (flowpilot deadletters list --meter says why)`, {
    threshold: t.rejectedPerHour,
    value: count,
  });
}

/** `store_lag`: the oldest accepted reading has waited for InfluxDB longer than `storeLagSec`. */
export function storeLagCondition(alerts: AlertsConfig, pipeline: PipelineFacts): Condition {
  if (pipeline.storeLagSec !== null) {
    if (pipeline.storeLagSec <= alerts.storeLagSec) return OK;
    return firing(`The oldest accepted reading has waited ${Math.round(pipeline.storeLagSec)} s for InfluxDB, more than ${alerts.storeLagSec} s`, {
      threshold: alerts.storeLagSec,
      value: Math.round(pipeline.storeLagSec),
    });
  }
  if (pipeline.storeCheck === null) return UNKNOWN;
  if (pipeline.storeCheck.ok) return OK;
  return firing(`The durable store lags: ${pipeline.storeCheck.reason ?? 'its readiness check fails'}`, { threshold: null, value: null, reason: pipeline.storeCheck.reason ?? null });
}

/** `influx_down`: InfluxDB does not answer its ping, or the ingest's writes fail. */
export function influxDownCondition(pipeline: PipelineFacts): Condition {
  if (pipeline.influx === null) return UNKNOWN;
  if (pipeline.influx.ok) return OK;
  return firing(`InfluxDB is unreachable: ${pipeline.influx.reason ?? 'no answer'}. Readings wait in the durable store`, { reason: pipeline.influx.reason ?? null });
}

/** One rule's condition for one meter (or the pipeline, meterId null). */
export interface RuleOutcome {
  rule: AlertRule;
  meterId: string | null;
  condition: Condition;
}

export interface EvaluateOptions {
  /** Only these rules (default: all). */
  rules?: readonly AlertRule[];
  /** Only this meter's rules (and no pipeline rules). */
  meterId?: string;
}

/** Every rule's condition for every meter of the pilot and the pipeline, from one snapshot of facts. */
export function evaluateRules(pilot: PilotConfig, facts: AlertFacts, options: EvaluateOptions = {}): RuleOutcome[] {
  const wanted = (rule: AlertRule) => !options.rules || options.rules.includes(rule);
  const outcomes: RuleOutcome[] = [];
  for (const meter of pilot.meters) {
    if (options.meterId !== undefined && meter.id !== options.meterId) continue;
    const t = meterThresholds(pilot.alerts, meter);
    const own = facts.meters.get(meter.id);
    const conditions: Record<(typeof METER_RULES)[number], () => Condition> = {
      stale: () => staleCondition(meter, t, own, facts),
      offline: () => offlineCondition(meter, own),
      leak: () => leakCondition(meter, t, own),
      alarm: () => alarmCondition(meter, own),
      low_battery: () => lowBatteryCondition(meter, t, own),
      totalizer: () => totalizerCondition(meter, t, own),
      rejected: () => rejectedCondition(meter, t, own),
    };
    for (const rule of METER_RULES) if (wanted(rule)) outcomes.push({ rule, meterId: meter.id, condition: conditions[rule]() });
  }
  if (options.meterId === undefined) {
    if (wanted('store_lag')) outcomes.push({ rule: 'store_lag', meterId: null, condition: storeLagCondition(pilot.alerts, facts.pipeline) });
    if (wanted('influx_down')) outcomes.push({ rule: 'influx_down', meterId: null, condition: influxDownCondition(facts.pipeline) });
  }
  return outcomes;
}
