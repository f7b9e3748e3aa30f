import { alarmsFromMask, READING_FIELDS, RECEIPT_FIELDS } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import type { InfluxClient, InfluxSeries } from './client.ts';
import { quoteIdentifier as q, quoteString, timeLiteral } from './influxql.ts';
import { METER_TAG, READING_MEASUREMENT, STORED_FIELD, STORED_READING_FIELDS } from './storage.ts';

/**
 * The repository of measurement `reading` (SPEC section 2, STYLE habit 12): every InfluxQL query
 * the API, the reports and the bench make on stored readings, and the mapping of its rows back to
 * the schema's `Reading`. Field names come from the schema's field table; nothing outside
 * packages/influx writes InfluxQL.
 */

/** [fromMs, toMs): the window of SPEC section 4. */
export interface TimeRange {
  fromMs: number;
  toMs: number;
}

/** A stored reading: the normalised reading and, when the ingest stamped it, when it arrived. */
export interface StoredReading extends Reading {
  receivedAtMs?: number;
}

/** One bucket of `buckets` (SPEC section 5 `every`): flow statistics, the last total and the count. */
export interface ReadingBucket {
  /** Start of the bucket, epoch ms (InfluxDB aligns buckets to UTC). */
  tsMs: number;
  flowMeanM3h: number;
  flowMinM3h: number;
  flowMaxM3h: number;
  totalLastM3: number | null;
  count: number;
}

export interface ColumnsQuery {
  meterId: string;
  fromMs: number;
  /** Exclusive unless `toInclusive`. */
  toMs: number;
  /** Include a reading exactly at `toMs` (alignIntervals may use one at to + Δ). */
  toInclusive?: boolean;
  /** Also read `temperature` (accuracy's MPE depends on it, R49-1 3.2). */
  temperature?: boolean;
  /** Only `time` and `total` (and temperature when asked): enough for accuracy. */
  totalsOnly?: boolean;
}

/**
 * A meter's readings as typed columns, oldest first, one per timestamp (InfluxDB keeps one point
 * per meter and time). It is a MetricColumns of @flowpilot/metrics: the metrics take it as it is.
 */
export interface ReadingColumns {
  tsMs: Float64Array;
  seq: Float64Array;
  flowM3h: Float64Array;
  totalM3: Float64Array;
  receivedAtMs: Float64Array;
  alarmsMask: Float64Array;
  temperatureC: Float64Array;
  /** How each reading arrived (ARRIVAL of @flowpilot/schema); 0 (alone) where the point has no `arrival` field. */
  arrival: Float64Array;
}

/** A meter's stored day, for validating a cache of days: the count of readings and the latest receive time. */
export interface DayStamp {
  meterId: string;
  /** The UTC midnight starting the day. */
  dayMs: number;
  count: number;
  /** null when the day holds no reading with `received_at`. */
  maxReceivedAtMs: number | null;
}

export interface ReadingsRepository {
  /** Up to `limit` (default: all) raw readings of a meter in [from, to), oldest first. */
  readings(meterId: string, range: TimeRange, limit?: number): Promise<StoredReading[]>;
  /** One bucket of `everyMs` per non-empty stretch of [from, to), oldest first: mean/min/max flow, last total, count. */
  buckets(meterId: string, range: TimeRange, everyMs: number): Promise<ReadingBucket[]>;
  /** The newest reading of a meter within the last `lookbackDays` of InfluxDB's clock, or null. */
  latest(meterId: string, lookbackDays: number): Promise<StoredReading | null>;
  /** The newest reading of every meter within `lookbackDays`, in one query, keyed by meter id. */
  latestOfEvery(lookbackDays: number): Promise<Map<string, StoredReading>>;
  /** A meter's columns for packages/metrics (see below for why raw columns). */
  columns(query: ColumnsQuery): Promise<ReadingColumns>;
  /** Each meter's UTC days touching [from, to] (to inclusive): count and max(received_at), in one aggregate query over all meters. */
  dayStamps(range: TimeRange): Promise<DayStamp[]>;
  /** Readings stored, over every meter and all time. */
  count(): Promise<number>;
  /** The `seq` of every stored point of each of these meters, oldest first (SPEC section 6: every acknowledged seq is stored). */
  seqs(meterIds: readonly string[]): Promise<Map<string, number[]>>;
  /** The highest stored `seq` of each of these meters at or after `sinceMs`. */
  maxSeqs(meterIds: readonly string[], sinceMs: number): Promise<Map<string, number>>;
}

/** Meters named in one query's WHERE clause at most: beyond it InfluxDB 1.x plans slowly. */
export const METERS_PER_QUERY = 50;

const FIELD_TO_READING = new Map<string, (typeof READING_FIELDS)[number]>(READING_FIELDS.map((f) => [f.stored, f]));
const RECEIVED_AT = RECEIPT_FIELDS.receivedAt.stored;
const ARRIVAL_FIELD = RECEIPT_FIELDS.arrival.stored;
const SELECT_READING_FIELDS = STORED_READING_FIELDS.map(q).join(', ');
const FROM_READING = `FROM ${q(READING_MEASUREMENT)}`;
const DAY_MS = 86_400_000;
const { flowM3h: FLOW, totalM3: TOTAL, seq: SEQ, alarms: ALARMS, temperatureC: TEMPERATURE } = STORED_FIELD;

const finite = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/**
 * A row reader for one series' columns: the column of each field looked up once per series, not
 * per row. A row without time or a required field is not a reading the ingest wrote (SPEC section 2): null.
 */
function rowReader(columns: readonly string[]): (meterId: string, row: readonly unknown[]) => StoredReading | null {
  const time = columns.indexOf('time');
  const fields = columns.flatMap((name, index) => {
    const field = FIELD_TO_READING.get(name);
    return field ? [{ field, index }] : [];
  });
  const missingRequired = READING_FIELDS.some((f) => f.required && f.type !== 'bitmask' && !columns.includes(f.stored));
  const receivedAt = columns.indexOf(RECEIVED_AT);
  return (meterId, row) => {
    const tsMs = finite(row[time]);
    if (tsMs === undefined || missingRequired) return null;
    const reading = { meterId, tsMs, alarms: [] } as unknown as StoredReading;
    const target = reading as unknown as Record<string, unknown>;
    for (const { field, index } of fields) {
      const value = finite(row[index]);
      if (field.type === 'bitmask') reading.alarms = alarmsFromMask(value ?? 0);
      else if (value !== undefined) target[field.reading] = value;
      else if (field.required) return null;
    }
    const received = receivedAt < 0 ? undefined : finite(row[receivedAt]);
    if (received !== undefined) reading.receivedAtMs = received;
    return reading;
  };
}

function readingsOf(series: readonly InfluxSeries[], meterId: (s: InfluxSeries) => string | undefined): StoredReading[] {
  const out: StoredReading[] = [];
  for (const s of series) {
    const id = meterId(s);
    if (id === undefined) continue;
    const read = rowReader(s.columns);
    for (const row of s.values) {
      const reading = read(id, row);
      if (reading) out.push(reading);
    }
  }
  return out;
}

/** `meter = '…'`: quoted, so no meter id can change the query (InfluxQL has no bind parameters, influxql.ts). */
const meterIs = (meterId: string): string => `${q(METER_TAG)} = ${quoteString(meterId)}`;
const anyMeter = (meterIds: readonly string[]): string => `(${meterIds.map(meterIs).join(' OR ')})`;

/** The window of SPEC section 4, [from, to). */
const inRange = (range: TimeRange): string => `time >= ${timeLiteral(range.fromMs)} AND time < ${timeLiteral(range.toMs)}`;

/** An InfluxQL duration literal for a bucket length in ms: the largest whole unit (`1d`, `15m`, `30s`, `250ms`). */
export function durationLiteral(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new RangeError(`a bucket length must be a whole positive number of ms; got ${ms}`);
  for (const [unit, size] of [['d', DAY_MS], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The statement of `columns`. Why raw columns and not InfluxQL aggregates (measured on influxd
 * 1.6.7, 2 cores, 20 meters × 30 days of 1-minute data = 864k points, see services/api/README.md
 * "Metrics: query plan"):
 * - the aggregates that need the order of the points cost seconds in 1.6: a subquery on
 *   `elapsed()` for the gaps 1.7 s, on `difference(total)`/`difference(seq)`/`elapsed()` for
 *   volume, resets, seq restarts and gaps 4.6 s, `percentile(latency_ms, p)` 1.0 s per p,
 *   `integral(flow, 1h)` 0.7 s, the alarm bits through a subquery 0.6 s;
 * - InfluxDB's percentile rounds the rank (⌊n·p/100 + 0.5⌋) where SPEC's nearest rank is
 *   ⌈n·p/100⌉, and its integral does not skip gaps and resets as packages/metrics does;
 * - one meter's raw columns (time, flow, total, seq, received_at, alarms) come back in ~0.12 s
 *   (2 MB of JSON), and a query per meter, a few in parallel, beats one query over all meters
 *   (4.3 s: 1.6 merges the series slowly).
 * So the API reads each meter's columns once and runs the SAME pure functions as
 * packages/metrics: the numbers agree with `computeMeterMetrics` by construction.
 */
export function columnsStatement(query: ColumnsQuery): string {
  const fields: string[] = query.totalsOnly ? [TOTAL] : [FLOW, TOTAL, SEQ, RECEIVED_AT, ALARMS, ARRIVAL_FIELD];
  if (query.temperature) fields.push(TEMPERATURE);
  const to = `time ${query.toInclusive ? '<=' : '<'} ${timeLiteral(query.toMs)}`;
  return `SELECT ${fields.map(q).join(', ')} ${FROM_READING} WHERE ${meterIs(query.meterId)} AND time >= ${timeLiteral(query.fromMs)} AND ${to}`;
}

/** Every column of ReadingColumns: code that copies or slices columns iterates this list, so a new column is never forgotten. */
export const READING_COLUMN_NAMES = ['tsMs', 'seq', 'flowM3h', 'totalM3', 'receivedAtMs', 'alarmsMask', 'temperatureC', 'arrival'] as const satisfies readonly (keyof ReadingColumns)[];

/** Columns for n readings, zero-filled. */
export function emptyReadingColumns(n: number): ReadingColumns {
  const columns = {} as ReadingColumns;
  for (const name of READING_COLUMN_NAMES) columns[name] = new Float64Array(n);
  return columns;
}

const numberOr = (value: unknown, absent: number): number => finite(value) ?? absent;

/**
 * The columns of one meter's rows. A meter whose points carry several `site` tags (moved during
 * the pilot) comes back as one series: the query does not group by site.
 */
function toColumns(series: readonly InfluxSeries[]): ReadingColumns {
  let n = 0;
  for (const s of series) n += s.values.length;
  const out = emptyReadingColumns(n);
  let i = 0;
  for (const s of series) {
    const at = (name: string) => s.columns.indexOf(name);
    const [cTime, cFlow, cTotal, cSeq, cReceived, cAlarms, cTemp, cArrival] = [at('time'), at(FLOW), at(TOTAL), at(SEQ), at(RECEIVED_AT), at(ALARMS), at(TEMPERATURE), at(ARRIVAL_FIELD)];
    for (const row of s.values) {
      out.tsMs[i] = numberOr(row[cTime], NaN);
      out.totalM3[i] = numberOr(row[cTotal], NaN);
      out.flowM3h[i] = cFlow < 0 ? 0 : numberOr(row[cFlow], NaN);
      out.seq[i] = cSeq < 0 ? 0 : numberOr(row[cSeq], NaN);
      out.receivedAtMs[i] = cReceived < 0 ? NaN : numberOr(row[cReceived], NaN);
      out.alarmsMask[i] = cAlarms < 0 ? 0 : numberOr(row[cAlarms], 0);
      out.temperatureC[i] = cTemp < 0 ? NaN : numberOr(row[cTemp], NaN);
      // A point written before `arrival` existed, or by another tool, arrived alone (docs/ARCHITECTURE.md "Storage").
      out.arrival[i] = cArrival < 0 ? 0 : numberOr(row[cArrival], 0);
      i++;
    }
  }
  return out;
}

export function createReadingsRepository(influx: InfluxClient): ReadingsRepository {
  return {
    async readings(meterId, range, limit) {
      const limitClause = limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.trunc(limit))}`;
      const series = await influx.query(`SELECT ${SELECT_READING_FIELDS} ${FROM_READING} WHERE ${meterIs(meterId)} AND ${inRange(range)} ORDER BY time ASC${limitClause}`);
      return readingsOf(series, () => meterId);
    },

    async buckets(meterId, range, everyMs) {
      const series = await influx.query(
        `SELECT mean(${q(FLOW)}) AS ${q('flow')}, min(${q(FLOW)}) AS ${q('flow_min')}, max(${q(FLOW)}) AS ${q('flow_max')}, ` +
          `last(${q(TOTAL)}) AS ${q('total')}, count(${q(FLOW)}) AS ${q('count')} ${FROM_READING} ` +
          `WHERE ${meterIs(meterId)} AND ${inRange(range)} GROUP BY time(${durationLiteral(everyMs)}) fill(none)`,
      );
      const buckets: ReadingBucket[] = [];
      for (const s of series) {
        const at = (name: string) => s.columns.indexOf(name);
        const [cTime, cFlow, cMin, cMax, cTotal, cCount] = [at('time'), at('flow'), at('flow_min'), at('flow_max'), at('total'), at('count')];
        for (const row of s.values) {
          const tsMs = finite(row[cTime]);
          const flow = finite(row[cFlow]);
          const count = finite(row[cCount]);
          if (tsMs === undefined || flow === undefined || count === undefined || count === 0) continue;
          buckets.push({
            tsMs,
            flowMeanM3h: flow,
            flowMinM3h: finite(row[cMin]) ?? flow,
            flowMaxM3h: finite(row[cMax]) ?? flow,
            totalLastM3: finite(row[cTotal]) ?? null,
            count,
          });
        }
      }
      return buckets;
    },

    async latest(meterId, lookbackDays) {
      const series = await influx.query(
        `SELECT ${SELECT_READING_FIELDS} ${FROM_READING} WHERE ${meterIs(meterId)} AND time > now() - ${Math.trunc(lookbackDays)}d ORDER BY time DESC LIMIT 1`,
      );
      return readingsOf(series, () => meterId)[0] ?? null;
    },

    // The time bound keeps InfluxDB 1.x from opening every shard it holds.
    async latestOfEvery(lookbackDays) {
      const series = await influx.query(
        `SELECT ${SELECT_READING_FIELDS} ${FROM_READING} WHERE time > now() - ${Math.trunc(lookbackDays)}d GROUP BY ${q(METER_TAG)} ORDER BY time DESC LIMIT 1`,
      );
      const latest = new Map<string, StoredReading>();
      for (const reading of readingsOf(series, (s) => s.tags?.[METER_TAG])) if (!latest.has(reading.meterId)) latest.set(reading.meterId, reading);
      return latest;
    },

    async columns(query) {
      return toColumns(await influx.query(columnsStatement(query)));
    },

    async dayStamps(range) {
      const firstDay = Math.floor(range.fromMs / DAY_MS) * DAY_MS;
      const endDay = Math.floor(range.toMs / DAY_MS) * DAY_MS + DAY_MS;
      const series = await influx.query(
        `SELECT count(${q(TOTAL)}), max(${q(RECEIVED_AT)}) ${FROM_READING} WHERE ${inRange({ fromMs: firstDay, toMs: endDay })} GROUP BY ${q(METER_TAG)}, time(1d)`,
      );
      const stamps: DayStamp[] = [];
      for (const s of series) {
        const meterId = s.tags?.[METER_TAG];
        if (!meterId) continue;
        for (const [time, count, max] of s.values as [number, number | null, number | null][]) {
          stamps.push({ meterId, dayMs: time, count: count ?? 0, maxReceivedAtMs: count ? max : null });
        }
      }
      return stamps;
    },

    async count() {
      const series = await influx.query(`SELECT count(${q(SEQ)}) ${FROM_READING}`);
      return finite(series[0]?.values[0]?.[1]) ?? 0;
    },

    async seqs(meterIds) {
      const stored = new Map<string, number[]>();
      for (const slice of chunks(meterIds, METERS_PER_QUERY)) {
        const series = await influx.query(`SELECT ${q(SEQ)} ${FROM_READING} WHERE ${anyMeter(slice)} GROUP BY ${q(METER_TAG)}`);
        for (const s of series) {
          const meterId = s.tags?.[METER_TAG];
          if (meterId === undefined) continue;
          const column = s.columns.indexOf(SEQ);
          const seqs = stored.get(meterId) ?? [];
          for (const row of s.values) {
            const seq = finite(row[column]);
            if (seq !== undefined) seqs.push(seq);
          }
          stored.set(meterId, seqs);
        }
      }
      return stored;
    },

    async maxSeqs(meterIds, sinceMs) {
      const max = new Map<string, number>();
      for (const slice of chunks(meterIds, METERS_PER_QUERY)) {
        const series = await influx.query(`SELECT max(${q(SEQ)}) ${FROM_READING} WHERE ${anyMeter(slice)} AND time >= ${timeLiteral(sinceMs)} GROUP BY ${q(METER_TAG)}`);
        for (const s of series) {
          const value = finite(s.values[0]?.[1]);
          const meterId = s.tags?.[METER_TAG];
          if (meterId !== undefined && value !== undefined) max.set(meterId, value);
        }
      }
      return max;
    },
  };
}
