import { alarmsFromMask, toWireReading } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import type { ApiReading, Bucket, Every } from './api-schemas.ts';
import { quoteIdentifier, quoteString, timeLiteral } from '@flowpilot/influx';
import type { InfluxClient, InfluxSeries } from '@flowpilot/influx';

/** InfluxQL over the storage schema of SPEC section 2, and the mapping to the API's JSON. */

/** The fields of measurement `reading` (SPEC section 2), selected by name so tags stay out. */
const READING_FIELDS = ['flow', 'total', 'total_rev', 'velocity', 'pressure', 'temperature', 'battery', 'rssi', 'seq', 'alarms', 'received_at'] as const;
const SELECT_READING_FIELDS = READING_FIELDS.map(quoteIdentifier).join(', ');

/** The API's JSON for a normalised reading: back to the wire names of SPEC section 1. */
export function toApiReading(reading: Reading, receivedAtMs?: number): ApiReading {
  // The wire form (schema's toWireReading) minus the envelope; alarms always listed, time as ISO.
  const { v: _v, meterId: _meterId, ts, alarms: _alarms, ...fields } = toWireReading(reading);
  const api: ApiReading = { ...fields, ts: String(ts), alarms: [...reading.alarms] };
  if (receivedAtMs !== undefined) api.receivedAt = new Date(receivedAtMs).toISOString();
  return api;
}

function numberAt(row: readonly unknown[], index: number): number | undefined {
  if (index < 0) return undefined;
  const value = row[index];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** A row of `reading` (GET /query with epoch=ms: `time` is epoch ms) as the API's JSON, or null. */
export function apiReadingFromRow(columns: readonly string[], row: readonly unknown[]): ApiReading | null {
  const at = (name: string) => numberAt(row, columns.indexOf(name));
  const time = at('time');
  const flow = at('flow');
  const total = at('total');
  const seq = at('seq');
  // The ingest always writes these; a row without them is not a reading (SPEC section 2).
  if (time === undefined || flow === undefined || total === undefined || seq === undefined) return null;
  const api: ApiReading = { ts: new Date(time).toISOString(), flow, total, alarms: alarmsFromMask(at('alarms') ?? 0), seq };
  const optional = { totalReverse: 'total_rev', velocity: 'velocity', pressure: 'pressure', temperature: 'temperature', battery: 'battery', rssi: 'rssi' } as const;
  for (const [key, column] of Object.entries(optional) as [keyof typeof optional, string][]) {
    const value = at(column);
    if (value !== undefined) api[key] = value;
  }
  const receivedAt = at('received_at');
  if (receivedAt !== undefined) api.receivedAt = new Date(receivedAt).toISOString();
  return api;
}

function rowsOf(series: readonly InfluxSeries[]): Array<{ columns: string[]; row: unknown[] }> {
  return series.flatMap((s) => s.values.map((row) => ({ columns: s.columns, row })));
}

/** The window of SPEC section 4, [from, to). */
function windowClause(meterId: string, fromMs: number, toMs: number): string {
  return `${quoteIdentifier('meter')} = ${quoteString(meterId)} AND time >= ${timeLiteral(fromMs)} AND time < ${timeLiteral(toMs)}`;
}

/** Up to `limit` raw readings, oldest first. */
export async function queryRawReadings(influx: InfluxClient, meterId: string, fromMs: number, toMs: number, limit: number): Promise<ApiReading[]> {
  const series = await influx.query(
    `SELECT ${SELECT_READING_FIELDS} FROM ${quoteIdentifier('reading')} WHERE ${windowClause(meterId, fromMs, toMs)} ORDER BY time ASC LIMIT ${limit}`,
  );
  return rowsOf(series).flatMap(({ columns, row }) => apiReadingFromRow(columns, row) ?? []);
}

/** One point per non-empty bucket: mean/min/max flow, last total, count (SPEC section 5). */
export async function queryBuckets(influx: InfluxClient, meterId: string, fromMs: number, toMs: number, every: Every): Promise<Bucket[]> {
  const q = quoteIdentifier;
  const series = await influx.query(
    `SELECT mean(${q('flow')}) AS ${q('flow')}, min(${q('flow')}) AS ${q('flow_min')}, max(${q('flow')}) AS ${q('flow_max')}, ` +
      `last(${q('total')}) AS ${q('total')}, count(${q('flow')}) AS ${q('count')} FROM ${q('reading')} ` +
      `WHERE ${windowClause(meterId, fromMs, toMs)} GROUP BY time(${every.literal}) fill(none)`,
  );
  const buckets: Bucket[] = [];
  for (const { columns, row } of rowsOf(series)) {
    const at = (name: string) => numberAt(row, columns.indexOf(name));
    const time = at('time');
    const flow = at('flow');
    const count = at('count');
    if (time === undefined || flow === undefined || count === undefined || count === 0) continue;
    buckets.push({
      ts: new Date(time).toISOString(),
      flow,
      flowMin: at('flow_min') ?? flow,
      flowMax: at('flow_max') ?? flow,
      total: at('total') ?? null,
      count,
    });
  }
  return buckets;
}

/**
 * The newest reading of every meter within `lookbackDays`, in one query; the map is keyed by
 * meter id. The time bound keeps InfluxDB 1.x from opening every shard it holds.
 */
export async function queryLatestReadings(influx: InfluxClient, lookbackDays: number): Promise<Map<string, ApiReading>> {
  const series = await influx.query(
    `SELECT * FROM ${quoteIdentifier('reading')} WHERE time > now() - ${Math.trunc(lookbackDays)}d GROUP BY ${quoteIdentifier('meter')} ORDER BY time DESC LIMIT 1`,
  );
  const latest = new Map<string, ApiReading>();
  for (const s of series) {
    const meterId = s.tags?.meter;
    const row = s.values[0];
    if (meterId === undefined || row === undefined) continue;
    const reading = apiReadingFromRow(s.columns, row);
    if (reading) latest.set(meterId, reading);
  }
  return latest;
}

export async function queryLatestReading(influx: InfluxClient, meterId: string, lookbackDays: number): Promise<ApiReading | null> {
  const series = await influx.query(
    `SELECT ${SELECT_READING_FIELDS} FROM ${quoteIdentifier('reading')} WHERE ${quoteIdentifier('meter')} = ${quoteString(meterId)} ` +
      `AND time > now() - ${Math.trunc(lookbackDays)}d ORDER BY time DESC LIMIT 1`,
  );
  const first = rowsOf(series)[0];
  return first ? apiReadingFromRow(first.columns, first.row) : null;
}
