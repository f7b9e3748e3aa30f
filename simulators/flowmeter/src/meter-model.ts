import type { AlarmName, MeterConfig, PilotConfig, Reading } from '@flowpilot/schema';
import { CONDITION_KINDS, DEFAULT_LOW_BATTERY_PCT, isActive } from './conditions.ts';
import type { Condition } from './conditions.ts';
import { createLineFlow, meterZones, pipeAreaM2, resolveLine } from './demand.ts';
import type { LeakOptions, LineFlow, Zones } from './demand.ts';
import { hashString, signedHash, unitHash, unitHashStream } from './random.ts';

/**
 * One simulated meter as a pure function of time: `reading(k)` is what the meter measures at
 * its k-th interval boundary (ts = k · intervalMs), and the fault predicates say what happens
 * to that reading on its way out. No I/O, no clock: the caller passes time in.
 */

/** Error of a test meter in % of the true volume: `lowerPct` below Q2, `upperPct` from Q2 up. */
export interface ErrorModel {
  lowerPct: number;
  upperPct: number;
}

export const DEFAULT_ERROR_MODEL: Readonly<ErrorModel> = Object.freeze({ lowerPct: 3.5, upperPct: 0.8 });

export interface FaultOptions {
  /** Probability that a produced reading is lost: its seq is skipped and it is never sent. */
  dropoutProbability: number;
  /** Probability that a sent reading is sent twice (a redelivery; storage is idempotent). */
  duplicateProbability: number;
  /** Probability per meter and UTC day that one offline stretch starts that day. */
  offlineProbabilityPerDay: number;
  /** Length of an offline stretch, in the meter's intervals. */
  offlineIntervals: number;
}

/** Faults off: what the tests get unless they ask. */
export const DEFAULT_FAULT_OPTIONS: Readonly<FaultOptions> = Object.freeze({
  dropoutProbability: 0,
  duplicateProbability: 0,
  offlineProbabilityPerDay: 0,
  offlineIntervals: 30,
});

/** Modest faults for the demo: a few lost readings, a few redeliveries, an occasional outage. */
export const DEMO_FAULT_OPTIONS: Readonly<FaultOptions> = Object.freeze({
  dropoutProbability: 0.002,
  duplicateProbability: 0.002,
  offlineProbabilityPerDay: 0.1,
  offlineIntervals: 45,
});

/**
 * Totalizers count from this fixed instant (see `total` below). Summing from it costs one
 * step per interval since, ~0.1 s per 1-minute meter and year on a laptop: move it forward
 * when it gets old, which changes every simulated total once.
 */
export const DEFAULT_TOTALS_ANCHOR_MS = Date.UTC(2026, 0, 1);

/** seq counts intervals since this instant, plus a per-meter offset (see `seq` below). */
export const SEQ_EPOCH_MS = Date.UTC(2020, 0, 1);

export interface ModelOptions {
  seed: number;
  errorModel: ErrorModel;
  /** Per test meter overrides of `errorModel`, e.g. to show a meter that fails. */
  errorModelByMeter: Record<string, Partial<ErrorModel>>;
  faults: FaultOptions;
  leak: LeakOptions | null;
  /** Conditions played on the meters (conditions.ts), placed in time. */
  conditions: readonly Condition[];
  totalsAnchorMs: number;
}

export const DEFAULT_MODEL_OPTIONS: Readonly<ModelOptions> = Object.freeze({
  seed: 1,
  errorModel: DEFAULT_ERROR_MODEL,
  errorModelByMeter: {},
  faults: DEFAULT_FAULT_OPTIONS,
  leak: null,
  conditions: [],
  totalsAnchorMs: DEFAULT_TOTALS_ANCHOR_MS,
});

export interface ModelOptionsInput {
  seed?: number;
  errorModel?: Partial<ErrorModel>;
  errorModelByMeter?: Record<string, Partial<ErrorModel>>;
  faults?: Partial<FaultOptions>;
  leak?: LeakOptions | null;
  conditions?: readonly Condition[];
  totalsAnchorMs?: number;
}

export function resolveModelOptions(input: ModelOptionsInput = {}): ModelOptions {
  const options: ModelOptions = {
    seed: input.seed ?? DEFAULT_MODEL_OPTIONS.seed,
    errorModel: { ...DEFAULT_ERROR_MODEL, ...input.errorModel },
    errorModelByMeter: { ...input.errorModelByMeter },
    faults: { ...DEFAULT_FAULT_OPTIONS, ...input.faults },
    leak: input.leak ?? null,
    conditions: [...(input.conditions ?? [])],
    totalsAnchorMs: input.totalsAnchorMs ?? DEFAULT_TOTALS_ANCHOR_MS,
  };
  const problems: string[] = [];
  if (!Number.isInteger(options.seed)) problems.push(`seed must be an integer, got ${options.seed}`);
  for (const key of ['dropoutProbability', 'duplicateProbability', 'offlineProbabilityPerDay'] as const) {
    const p = options.faults[key];
    if (!(p >= 0 && p <= 1)) problems.push(`faults.${key} must be in [0, 1], got ${p}`);
  }
  if (!(Number.isInteger(options.faults.offlineIntervals) && options.faults.offlineIntervals >= 1)) {
    problems.push(`faults.offlineIntervals must be a whole number ≥ 1, got ${options.faults.offlineIntervals}`);
  }
  if (!Number.isFinite(options.errorModel.lowerPct) || !Number.isFinite(options.errorModel.upperPct)) problems.push('errorModel must hold finite numbers');
  for (const [i, c] of options.conditions.entries()) {
    if (!(CONDITION_KINDS as readonly string[]).includes(c.kind)) problems.push(`conditions[${i}].kind must be one of ${CONDITION_KINDS.join(', ')}, got ${c.kind}`);
    if (!(Number.isFinite(c.fromMs) && c.toMs > c.fromMs)) problems.push(`conditions[${i}] must start at a finite time before it ends`);
    if (c.value !== null && !Number.isFinite(c.value)) problems.push(`conditions[${i}].value must be a finite number or null`);
  }
  if (problems.length > 0) throw new RangeError(`invalid simulator model options: ${problems.join('; ')}`);
  return options;
}

// Tags separate the independent random streams of one meter.
const TAG_REF_NOISE = 21;
const TAG_DROP = 31;
const TAG_DUP = 32;
const TAG_OFFLINE = 33;
const TAG_OFFLINE_START = 34;
const TAG_BASE_TOTAL = 41;
const TAG_SEQ_OFFSET = 42;
const TAG_BATTERY_LIFE = 43;
const TAG_BATTERY_PHASE = 44;
const TAG_RSSI_BASE = 45;
const TAG_RSSI = 46;
const TAG_PRESSURE_BASE = 47;
const TAG_PRESSURE = 48;
const TAG_TEMPERATURE = 49;

/** A reference meter reads the true volume within ±0.04 % (the brief allows ≤ 0.05 %). */
const REFERENCE_NOISE = 0.0004;
const DAY_MS = 86_400_000;
const LOW_BATTERY_PCT = 20;

const round = (value: number, decimals: number): number => {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
};

export interface MeterModel {
  readonly meter: MeterConfig;
  readonly intervalMs: number;
  /** Zones of a test meter, else null. */
  readonly zones: Zones | null;
  /** Index of the first interval boundary at or after `ms`. */
  indexAtOrAfter(ms: number): number;
  /** Index of the last interval boundary at or before `ms`. */
  indexAtOrBefore(ms: number): number;
  timestampOf(k: number): number;
  seqOf(k: number): number;
  /** The reading the meter produces at boundary k, whatever happens to it afterwards. */
  reading(k: number): Reading;
  /** Is the reading of boundary k lost (a dropout, or a `silent` condition)? */
  isDropped(k: number): boolean;
  isDuplicated(k: number): boolean;
  /** Is the meter offline (storing, not sending) at boundary k? */
  isOffline(k: number): boolean;
}

export function findMeter(pilot: PilotConfig, meterId: string): MeterConfig {
  const meter = pilot.meters.find((m) => m.id === meterId);
  if (!meter) throw new RangeError(`no meter "${meterId}" in pilot ${pilot.pilot.id}`);
  return meter;
}

export function createMeterModel(meterOrId: MeterConfig | string, pilot: PilotConfig, input: ModelOptionsInput | ModelOptions = {}): MeterModel {
  const meter = typeof meterOrId === 'string' ? findMeter(pilot, meterOrId) : meterOrId;
  const options = resolveModelOptions(input);
  const { seed, faults } = options;
  const key = hashString(meter.id);
  const siteKey = hashString(meter.site);
  const intervalMs = meter.intervalSec * 1000;

  const line = resolveLine(meter, pilot, options.leak, options.conditions);
  // This meter's own conditions (a leak is the line's: resolveLine took it).
  const own = (kind: Condition['kind']): Condition[] => options.conditions.filter((c) => c.kind === kind && c.meterId === meter.id);
  const silences = own('silent');
  const emptyPipes = own('empty_pipe');
  const lowBatteries = own('low_battery');
  const activeIn = (list: readonly Condition[], tsMs: number): Condition | undefined => (list.length === 0 ? undefined : list.find((c) => isActive(c, tsMs)));
  const flow: LineFlow = createLineFlow(line, pilot, seed);
  const stepsPerInterval = intervalMs / line.stepMs;
  const referenceKey = line.key; // the line is keyed by its reference's id
  const zones = meter.role === 'test' ? meterZones(meter) : null;
  const errorModel: ErrorModel = { ...options.errorModel, ...options.errorModelByMeter[meter.id] };

  const referenceDraw = unitHashStream(seed, referenceKey, TAG_REF_NOISE);
  const referenceFactor = (step: number): number => 1 + REFERENCE_NOISE * (2 * referenceDraw(step) - 1);

  /**
   * The meter's volume over interval k, i.e. [tₖ − Δ, tₖ), m³. A test meter's volume is the true
   * volume × (1 + e/100), with e chosen by the zone of the reference's own measured flow over the
   * same interval: exactly how SPEC section 4 classifies interval k, so the zone errors computed
   * from the totalizers return the ErrorModel (up to the reference's ±0.04 % noise, which
   * averages out).
   */
  function intervalVolumeM3(k: number): number {
    // An empty pipe: the meter sees no water, its totalizer stops.
    if (activeIn(emptyPipes, k * intervalMs)) return 0;
    const firstStep = (k - 1) * stepsPerInterval;
    const stepHours = line.stepMs / 3_600_000;
    let trueM3 = 0;
    let referenceM3 = 0;
    for (let s = firstStep; s < firstStep + stepsPerInterval; s++) {
      const v = flow.flowM3h(s) * stepHours;
      trueM3 += v;
      if (meter.role !== 'monitor') referenceM3 += v * referenceFactor(s);
    }
    if (meter.role === 'reference') return referenceM3;
    if (meter.role === 'monitor' || zones === null) return trueM3;
    const referenceFlowM3h = referenceM3 / (intervalMs / 3_600_000);
    const errorPct = referenceFlowM3h < zones.q2M3h ? errorModel.lowerPct : errorModel.upperPct;
    return trueM3 * (1 + errorPct / 100);
  }

  /**
   * Totals anchor. total(k) = base + Σ volumes of the intervals after the anchor up to k,
   * summed in the same order from the same fixed anchor every time: the total at a timestamp
   * is then bit-for-bit the same whatever the run's start, so a restarted simulator continues
   * its stored series without a step. (Summing from the run's start would make every restart
   * look like a meter reset; a closed form is impossible with noise.) The cursor makes
   * consecutive readings O(1); a jump backwards re-sums from the anchor. Before the anchor
   * the total is summed backwards from it and floors at 0.
   */
  const anchorK = Math.ceil(options.totalsAnchorMs / intervalMs);
  const baseTotalM3 = round(20_000 + 180_000 * unitHash(seed, key, TAG_BASE_TOTAL, 0), 3);
  let cursorK = anchorK;
  let cursorTotal = baseTotalM3;
  let cursorVolume = 0; // volume of interval cursorK, kept for the reading's flow

  function totalAndVolume(k: number): { totalM3: number; volumeM3: number } {
    if (k < anchorK) {
      let total = baseTotalM3;
      for (let j = anchorK; j > k; j--) total -= intervalVolumeM3(j);
      return { totalM3: Math.max(0, total), volumeM3: intervalVolumeM3(k) };
    }
    if (k < cursorK || cursorK === anchorK) {
      cursorK = anchorK;
      cursorTotal = baseTotalM3;
      cursorVolume = intervalVolumeM3(anchorK);
    }
    while (cursorK < k) {
      cursorK++;
      cursorVolume = intervalVolumeM3(cursorK);
      cursorTotal += cursorVolume;
    }
    return { totalM3: cursorTotal, volumeM3: cursorVolume };
  }

  /**
   * seq = k − k(SEQ_EPOCH) + a per-meter offset: a pure function of the timestamp, so a
   * restarted meter never reuses or skips a seq, and a gap in seq is exactly a lost reading.
   */
  const seqOffset = Math.floor(100_000 * unitHash(seed, key, TAG_SEQ_OFFSET, 0));
  const seqEpochK = Math.floor(SEQ_EPOCH_MS / intervalMs);

  // Battery: drains linearly from 100 % to 5 % over its life (2.5–4 years) and is replaced,
  // with a per-meter phase, so a few meters of a pilot run low.
  const batteryLifeMs = (900 + 560 * unitHash(seed, key, TAG_BATTERY_LIFE, 0)) * DAY_MS;
  const batteryPhaseMs = unitHash(seed, key, TAG_BATTERY_PHASE, 0) * batteryLifeMs;
  const rssiBaseDbm = -95 + 25 * unitHash(seed, key, TAG_RSSI_BASE, 0);
  const pressureBaseBar = 2.6 + 1.4 * unitHash(seed, siteKey, TAG_PRESSURE_BASE, 0);
  const areaM2 = meter.dn !== undefined ? pipeAreaM2(meter.dn) : null;

  const offlineSpanDays = Math.ceil((faults.offlineIntervals * intervalMs) / DAY_MS) + 1;

  function offlineStretchOfDay(day: number): [number, number] | null {
    if (faults.offlineProbabilityPerDay <= 0) return null;
    if (unitHash(seed, key, TAG_OFFLINE, day) >= faults.offlineProbabilityPerDay) return null;
    const firstK = Math.ceil((day * DAY_MS) / intervalMs);
    const perDay = Math.max(1, Math.floor(DAY_MS / intervalMs));
    const startK = firstK + Math.floor(unitHash(seed, key, TAG_OFFLINE_START, day) * perDay);
    return [startK, startK + faults.offlineIntervals];
  }

  const model: MeterModel = {
    meter,
    intervalMs,
    zones,
    indexAtOrAfter: (ms) => Math.ceil(ms / intervalMs),
    indexAtOrBefore: (ms) => Math.floor(ms / intervalMs),
    timestampOf: (k) => k * intervalMs,
    seqOf(k) {
      const seq = k - seqEpochK + seqOffset;
      if (seq < 0) throw new RangeError(`meter ${meter.id}: no seq before ${new Date(SEQ_EPOCH_MS).toISOString()}`);
      return seq;
    },
    reading(k) {
      const tsMs = k * intervalMs;
      const { totalM3, volumeM3 } = totalAndVolume(k);
      const flowM3h = volumeM3 / (intervalMs / 3_600_000);
      const lastStep = k * stepsPerInterval - 1;

      const batteryAgeMs = (((tsMs + batteryPhaseMs) % batteryLifeMs) + batteryLifeMs) % batteryLifeMs;
      const lowBattery = activeIn(lowBatteries, tsMs);
      const naturalPct = 100 - (95 * batteryAgeMs) / batteryLifeMs;
      const batteryPct = lowBattery ? Math.min(naturalPct, lowBattery.value ?? DEFAULT_LOW_BATTERY_PCT) : naturalPct;
      // Pressure falls with demand (friction losses grow with the square of the flow).
      const load = Math.min(1.2, flowM3h / line.qHighM3h);
      const pressureBar = pressureBaseBar * (1 - 0.18 * load * load) + 0.02 * signedHash(seed, key, TAG_PRESSURE, k);
      // Mains water: seasonal swing (coldest around March, warmest around September), a
      // small daily swing and per-meter sensor offset.
      const dayOfYear = (tsMs % (365.25 * DAY_MS)) / DAY_MS;
      const temperatureC =
        10 + 5 * Math.sin((2 * Math.PI * (dayOfYear - 165)) / 365.25) + 0.3 * Math.sin((2 * Math.PI * (tsMs % DAY_MS)) / DAY_MS) + 0.2 * signedHash(seed, key, TAG_TEMPERATURE, 0);
      const rssiDbm = rssiBaseDbm + 3 * signedHash(seed, key, TAG_RSSI, k);

      const alarms: AlarmName[] = [];
      // In the order of SPEC section 1's list.
      if (activeIn(emptyPipes, tsMs)) alarms.push('empty_pipe');
      if (flow.leakOn(lastStep)) alarms.push('leak');
      if (batteryPct < LOW_BATTERY_PCT) alarms.push('low_battery');

      const reading: Reading = {
        meterId: meter.id,
        seq: model.seqOf(k),
        tsMs,
        flowM3h: round(flowM3h, 4),
        totalM3: round(totalM3, 6),
        totalReverseM3: 0,
        pressureBar: round(pressureBar, 2),
        temperatureC: round(temperatureC, 1),
        batteryPct: round(batteryPct, 1),
        rssiDbm: Math.round(rssiDbm),
        alarms,
      };
      if (areaM2 !== null) reading.velocityMps = round(flowM3h / areaM2 / 3600, 3);
      return reading;
    },
    // A silent meter's readings are lost as dropped ones are: never sent, their seq skipped.
    isDropped: (k) => activeIn(silences, k * intervalMs) !== undefined || (faults.dropoutProbability > 0 && unitHash(seed, key, TAG_DROP, k) < faults.dropoutProbability),
    isDuplicated: (k) => faults.duplicateProbability > 0 && unitHash(seed, key, TAG_DUP, k) < faults.duplicateProbability,
    isOffline(k) {
      if (faults.offlineProbabilityPerDay <= 0) return false;
      const day = Math.floor((k * intervalMs) / DAY_MS);
      for (let d = day - offlineSpanDays; d <= day; d++) {
        const stretch = offlineStretchOfDay(d);
        if (stretch && k >= stretch[0] && k < stretch[1]) return true;
      }
      return false;
    },
  };
  return model;
}

/**
 * The readings a meter produces with timestamps in [fromMs, toMs), after dropouts: what the
 * pipeline should eventually hold (duplicates and offline stretches change only when and how
 * often a reading is sent, not what is stored). Pure; the tests' expectations come from here.
 */
export function generateReadings(meter: MeterConfig | string, pilot: PilotConfig, fromMs: number, toMs: number, options: ModelOptionsInput = {}): Reading[] {
  const model = createMeterModel(meter, pilot, options);
  const readings: Reading[] = [];
  for (let k = model.indexAtOrAfter(fromMs); model.timestampOf(k) < toMs; k++) {
    if (!model.isDropped(k)) readings.push(model.reading(k));
  }
  return readings;
}
