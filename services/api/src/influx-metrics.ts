import { quoteIdentifier, quoteString, timeLiteral } from '@flowpilot/influx';
import type { InfluxClient } from '@flowpilot/influx';
import type { MetricColumns } from '@flowpilot/metrics';

/**
 * The columns packages/metrics needs, read from measurement `reading` (SPEC section 2), one
 * meter per query.
 *
 * Why raw columns and not InfluxQL aggregates (measured on influxd 1.6.7, 2 cores, 20 meters ×
 * 30 days of 1-minute data = 864k points, see services/api/README.md "Metrics: query plan"):
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

const q = quoteIdentifier;

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

/** A meter's readings as typed columns, oldest first, one per timestamp (InfluxDB keeps one point per meter and time). */
export interface ReadingColumns extends MetricColumns {
  tsMs: Float64Array;
  seq: Float64Array;
  flowM3h: Float64Array;
  totalM3: Float64Array;
  receivedAtMs: Float64Array;
  alarmsMask: Float64Array;
  temperatureC: Float64Array;
}

export function columnsStatement(query: ColumnsQuery): string {
  const fields = query.totalsOnly ? ['total'] : ['flow', 'total', 'seq', 'received_at', 'alarms'];
  if (query.temperature) fields.push('temperature');
  const to = `time ${query.toInclusive ? '<=' : '<'} ${timeLiteral(query.toMs)}`;
  return (
    `SELECT ${fields.map(q).join(', ')} FROM ${q('reading')} WHERE ${q('meter')} = ${quoteString(query.meterId)} ` +
    `AND time >= ${timeLiteral(query.fromMs)} AND ${to}`
  );
}

/** Columns for n readings, zero-filled. */
export function emptyReadingColumns(n: number): ReadingColumns {
  return {
    tsMs: new Float64Array(n),
    seq: new Float64Array(n),
    flowM3h: new Float64Array(n),
    totalM3: new Float64Array(n),
    receivedAtMs: new Float64Array(n),
    alarmsMask: new Float64Array(n),
    temperatureC: new Float64Array(n),
  };
}

const numberOr = (value: unknown, absent: number): number => (typeof value === 'number' && Number.isFinite(value) ? value : absent);

/**
 * One meter's columns. A meter whose points carry several `site` tags (moved during the pilot)
 * comes back as one series: the query does not group by site.
 */
export async function queryReadingColumns(influx: InfluxClient, query: ColumnsQuery): Promise<ReadingColumns> {
  const series = await influx.query(columnsStatement(query));
  let n = 0;
  for (const s of series) n += s.values.length;
  const out = emptyReadingColumns(n);
  let i = 0;
  for (const s of series) {
    const at = (name: string) => s.columns.indexOf(name);
    const [cTime, cFlow, cTotal, cSeq, cReceived, cAlarms, cTemp] = [at('time'), at('flow'), at('total'), at('seq'), at('received_at'), at('alarms'), at('temperature')];
    for (const row of s.values) {
      out.tsMs[i] = numberOr(row[cTime], NaN);
      out.totalM3[i] = numberOr(row[cTotal], NaN);
      out.flowM3h[i] = cFlow < 0 ? 0 : numberOr(row[cFlow], NaN);
      out.seq[i] = cSeq < 0 ? 0 : numberOr(row[cSeq], NaN);
      out.receivedAtMs[i] = cReceived < 0 ? NaN : numberOr(row[cReceived], NaN);
      out.alarmsMask[i] = cAlarms < 0 ? 0 : numberOr(row[cAlarms], 0);
      out.temperatureC[i] = cTemp < 0 ? NaN : numberOr(row[cTemp], NaN);
      i++;
    }
  }
  return out;
}

/** Runs `task` over `items` with at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
