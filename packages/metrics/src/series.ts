import { FlowPilotError } from '@flowpilot/schema';

/**
 * One stored reading of one meter, as the API reads it back from InfluxDB (SPEC section 2):
 * `tsMs` is the point's timestamp (the meter's measurement time), `receivedAtMs` the field
 * `received_at`, `alarmsMask` the field `alarms` (bit i = ALARMS[i]), `arrival` the field
 * `arrival` (ARRIVAL of @flowpilot/schema: 0 alone, 1 in a backfill array, 2 a dead-letter replay).
 */
export interface MetricReading {
  tsMs: number;
  seq: number;
  flowM3h: number;
  totalM3: number;
  receivedAtMs?: number;
  alarmsMask?: number;
  temperatureC?: number;
  /** How the reading arrived; absent means alone (0), as for points written before the field existed. */
  arrival?: number;
}

/** A half-open window [fromMs, toMs) in epoch milliseconds (SPEC section 4: W = [from, to)). */
export interface TimeWindow {
  fromMs: number;
  toMs: number;
}

/**
 * The same readings as columns (what an InfluxQL answer holds). Optional columns may hold
 * null or undefined where a point has no such field.
 */
export interface MetricColumns {
  tsMs: ArrayLike<number>;
  seq: ArrayLike<number>;
  flowM3h: ArrayLike<number>;
  totalM3: ArrayLike<number>;
  receivedAtMs?: ArrayLike<number | null | undefined>;
  alarmsMask?: ArrayLike<number | null | undefined>;
  temperatureC?: ArrayLike<number | null | undefined>;
  arrival?: ArrayLike<number | null | undefined>;
}

/**
 * Readings of one meter sorted by time with one reading per timestamp, as typed columns.
 * Build it once with `toSeries` and pass it to every metric: each metric then costs one
 * linear pass over the readings in its window.
 */
export interface ReadingSeries {
  readonly kind: 'series';
  readonly length: number;
  readonly tsMs: Float64Array;
  readonly seq: Float64Array;
  readonly flowM3h: Float64Array;
  readonly totalM3: Float64Array;
  /** NaN where the reading has no `received_at`. */
  readonly receivedAtMs: Float64Array;
  /** 0 where the reading carries no alarm. */
  readonly alarmsMask: Uint32Array;
  /** NaN where the reading has no temperature. */
  readonly temperatureC: Float64Array;
  /** How each reading arrived (ARRIVAL of @flowpilot/schema); 0 (alone) where it is not known. */
  readonly arrival: Uint8Array;
  /** Readings dropped because another reading had the same `tsMs`. */
  readonly duplicates: number;
  /** Readings dropped because their `tsMs` was not a finite number. */
  readonly invalid: number;
}

/** Every metric accepts raw readings, columns, or a series already built by `toSeries`. */
export type SeriesInput = ReadingSeries | MetricColumns | readonly MetricReading[];

type Column = (i: number) => number;

function optional(value: number | null | undefined, absent: number): number {
  return value === null || value === undefined || !Number.isFinite(value) ? absent : value;
}

/** An `arrival` code as stored; absent, or not a code at all (another tool's value), is 0: arrived alone. */
function arrivalCode(value: number | null | undefined): number {
  return value !== null && value !== undefined && Number.isInteger(value) && value >= 0 && value <= 255 ? value : 0;
}

/**
 * The order in which to read the input: null when it is already sorted by time (what InfluxDB
 * returns, the fast path), otherwise the indices of the finite timestamps sorted by time, ties
 * in input order (Array.prototype.sort is stable).
 */
function sortOrder(n: number, ts: Column): { order: number[] | null; invalid: number } {
  let sorted = true;
  let invalid = 0;
  let previous = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = ts(i);
    if (!Number.isFinite(t)) {
      invalid++;
      sorted = false;
    } else if (t < previous) sorted = false;
    else previous = t;
  }
  if (sorted) return { order: null, invalid };
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (Number.isFinite(ts(i))) order.push(i);
  order.sort((a, b) => ts(a) - ts(b));
  return { order, invalid };
}

interface Columns {
  tsMs: Float64Array;
  seq: Float64Array;
  flowM3h: Float64Array;
  totalM3: Float64Array;
  receivedAtMs: Float64Array;
  alarmsMask: Uint32Array;
  temperatureC: Float64Array;
  arrival: Uint8Array;
}

function allocate(count: number): Columns {
  return {
    tsMs: new Float64Array(count),
    seq: new Float64Array(count),
    flowM3h: new Float64Array(count),
    totalM3: new Float64Array(count),
    receivedAtMs: new Float64Array(count),
    alarmsMask: new Uint32Array(count),
    temperatureC: new Float64Array(count),
    arrival: new Uint8Array(count),
  };
}

function finish(out: Columns, length: number, count: number, invalid: number): ReadingSeries {
  const cut = <T extends Float64Array | Uint32Array | Uint8Array>(column: T): T => (length === count ? column : (column.subarray(0, length) as T));
  return {
    kind: 'series',
    length,
    tsMs: cut(out.tsMs),
    seq: cut(out.seq),
    flowM3h: cut(out.flowM3h),
    totalM3: cut(out.totalM3),
    receivedAtMs: cut(out.receivedAtMs),
    alarmsMask: cut(out.alarmsMask),
    temperatureC: cut(out.temperatureC),
    arrival: cut(out.arrival),
    duplicates: count - length,
    invalid,
  };
}

function isSeries(input: SeriesInput): input is ReadingSeries {
  return !Array.isArray(input) && (input as ReadingSeries).kind === 'series';
}

/*
 * Both builders copy the input in time order into typed columns, one reading per timestamp.
 * SPEC section 2: the same meter and ts written twice is one point and InfluxDB keeps the
 * later write, so among duplicates the one that comes LAST in the input wins (it overwrites
 * the slot of the first). The loops are written out per input shape: this is the one step
 * that touches every input object, and it is the hot path of a 100-meter report.
 */

function fromReadings(r: readonly MetricReading[]): ReadingSeries {
  const { order, invalid } = sortOrder(r.length, (i) => (r[i] as MetricReading).tsMs);
  const count = order ? order.length : r.length;
  const out = allocate(count);
  const { tsMs, seq, flowM3h, totalM3, receivedAtMs, alarmsMask, temperatureC, arrival } = out;
  let length = 0;
  for (let k = 0; k < count; k++) {
    const reading = r[order ? (order[k] as number) : k] as MetricReading;
    const t = reading.tsMs;
    const slot = length > 0 && tsMs[length - 1] === t ? length - 1 : length++;
    tsMs[slot] = t;
    seq[slot] = reading.seq;
    flowM3h[slot] = reading.flowM3h;
    totalM3[slot] = reading.totalM3;
    receivedAtMs[slot] = optional(reading.receivedAtMs, NaN);
    alarmsMask[slot] = optional(reading.alarmsMask, 0);
    temperatureC[slot] = optional(reading.temperatureC, NaN);
    arrival[slot] = arrivalCode(reading.arrival);
  }
  return finish(out, length, count, invalid);
}

function fromColumns(c: MetricColumns): ReadingSeries {
  const { order, invalid } = sortOrder(c.tsMs.length, (i) => c.tsMs[i] as number);
  const count = order ? order.length : c.tsMs.length;
  const out = allocate(count);
  const { tsMs, seq, flowM3h, totalM3, receivedAtMs, alarmsMask, temperatureC, arrival } = out;
  let length = 0;
  for (let k = 0; k < count; k++) {
    const i = order ? (order[k] as number) : k;
    const t = c.tsMs[i] as number;
    const slot = length > 0 && tsMs[length - 1] === t ? length - 1 : length++;
    tsMs[slot] = t;
    seq[slot] = c.seq[i] as number;
    flowM3h[slot] = c.flowM3h[i] as number;
    totalM3[slot] = c.totalM3[i] as number;
    receivedAtMs[slot] = c.receivedAtMs ? optional(c.receivedAtMs[i], NaN) : NaN;
    alarmsMask[slot] = c.alarmsMask ? optional(c.alarmsMask[i], 0) : 0;
    temperatureC[slot] = c.temperatureC ? optional(c.temperatureC[i], NaN) : NaN;
    arrival[slot] = c.arrival ? arrivalCode(c.arrival[i]) : 0;
  }
  return finish(out, length, count, invalid);
}

/**
 * Builds the sorted, de-duplicated series once (one pass when the input is already sorted);
 * returns a series unchanged. Build it once per meter and pass it to every metric (and a
 * reference meter's once for all its test meters).
 */
export function toSeries(input: SeriesInput): ReadingSeries {
  if (isSeries(input)) return input;
  return Array.isArray(input) ? fromReadings(input as readonly MetricReading[]) : fromColumns(input as MetricColumns);
}

/** Index of the first reading with tsMs ≥ t (binary search over the sorted series). */
export function lowerBound(tsMs: Float64Array, t: number): number {
  let lo = 0;
  let hi = tsMs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((tsMs[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Throws ERR_VALIDATION unless the window is finite with toMs ≥ fromMs. */
export function assertWindow(window: TimeWindow): void {
  if (!Number.isFinite(window.fromMs) || !Number.isFinite(window.toMs) || window.toMs < window.fromMs) {
    throw new FlowPilotError('ERR_VALIDATION', `window must be finite epoch milliseconds with toMs ≥ fromMs, got [${window.fromMs}, ${window.toMs})`);
  }
}

/** Throws ERR_VALIDATION unless the reporting interval is a positive number of seconds. */
export function assertInterval(intervalSec: number): void {
  if (!Number.isFinite(intervalSec) || intervalSec <= 0) {
    throw new FlowPilotError('ERR_VALIDATION', `intervalSec must be a positive number of seconds, got ${intervalSec}`);
  }
}

/** The readings of W as the index range [lo, hi) of the series (SPEC section 4: W = [from, to)). */
export function windowRange(series: ReadingSeries, window: TimeWindow): { lo: number; hi: number } {
  assertWindow(window);
  return { lo: lowerBound(series.tsMs, window.fromMs), hi: lowerBound(series.tsMs, window.toMs) };
}
