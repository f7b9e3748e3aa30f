import type { ReadingsRepository, StoredReading } from '@flowpilot/influx';
import { ALARMS, READING_FIELDS, RECEIPT_FIELDS } from '@flowpilot/schema';
import type { MeterConfig } from '@flowpilot/schema';
import type { Every } from './api-schemas.ts';
import { csvRow, RFC4180 } from './csv.ts';
import type { CsvDialect, CsvValue } from './csv.ts';
import type { ApiMeterMetrics } from './metrics-service.ts';
import { EXCLUSION_REASONS } from '@flowpilot/metrics';

/**
 * The evaluator's CSV tables (SPEC section 5): the metrics table, one row per meter, and the
 * readings, streamed. Their columns come from the metrics' field names and the schema's field table.
 */

const DAY_MS = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();

/** A readings.csv query reads at most this span per InfluxDB query, so a year of data never sits in memory. */
export const CSV_CHUNK_MS = DAY_MS;

/** The metrics table's columns, one row per meter (reports/metrics.csv). */
const ZONES = ['lower', 'upper', 'overall'] as const;
export const METRICS_CSV_HEADER: readonly string[] = [
  'meter',
  'role',
  'reference',
  'from',
  'to',
  'interval_s',
  'expected',
  'received',
  'completeness',
  'delivery',
  'seq_distinct',
  'seq_produced',
  'seq_restarts',
  'gaps',
  'gap_longest_s',
  'gap_total_s',
  'latency_p50_ms',
  'latency_p95_ms',
  'latency_p99_ms',
  'latency_max_ms',
  // SPEC section 4: the latency figures are over readings that arrived alone; backfill arrays apart, replays left out.
  'latency_readings',
  'backfilled_readings',
  'backfilled_share',
  'backfilled_max_delay_ms',
  'replayed_readings',
  'volume_m3',
  'totalizer_resets',
  'flow_mean_m3h',
  'flow_min_m3h',
  'flow_max_m3h',
  'min_night_flow_m3h',
  'min_night',
  'min_night_reverse_m3',
  'latest_night_flow_m3h',
  'latest_night',
  'latest_night_reverse_m3',
  'nights',
  'totalizer_consistency_pct',
  ...ALARMS.map((name) => `alarm_${name}`),
  'rejected',
  'accuracy_class',
  ...ZONES.flatMap((zone) => [
    `${zone}_error_pct`,
    `${zone}_mpe_pct`,
    `${zone}_expanded_uncertainty_pct`,
    `${zone}_verdict`,
    `${zone}_rule`,
    `${zone}_intervals`,
    `${zone}_temperature_median_c`,
  ]),
  ...EXCLUSION_REASONS.map((reason) => `excluded_${reason}`),
];

export function metricsCsvRow(m: ApiMeterMetrics): CsvValue[] {
  const a = m.accuracy;
  // SPEC section 4: unknown (no dead-letter store at hand) is an empty cell, as every unknown
  // figure of this table; known and none is 0, so the two never read alike.
  const rejected =
    m.rejected === null
      ? null
      : Object.entries(m.rejected)
          .map(([code, n]) => `${code}=${n}`)
          .join(' ') || 0;
  return [
    m.meterId,
    m.role,
    m.reference,
    iso(m.window.fromMs),
    iso(m.window.toMs),
    m.intervalSec,
    m.expected,
    m.received,
    m.completeness,
    m.delivery,
    m.seq.distinct,
    m.seq.produced,
    m.seq.restarts,
    m.gaps.count,
    m.gaps.longestMs / 1000,
    m.gaps.totalMs / 1000,
    m.latencyMs.p50,
    m.latencyMs.p95,
    m.latencyMs.p99,
    m.latencyMs.max,
    m.latencyMs.count,
    m.latencyMs.backfilled.count,
    m.latencyMs.backfilled.share,
    m.latencyMs.backfilled.maxMs,
    m.latencyMs.replayed,
    m.volumeM3,
    m.totalizerResets,
    m.flow.meanM3h,
    m.flow.minM3h,
    m.flow.maxM3h,
    m.minNightFlow.minM3h,
    m.minNightFlow.minNight,
    m.minNightFlow.minReverseM3,
    m.minNightFlow.latestM3h,
    m.minNightFlow.latestNight,
    m.minNightFlow.latestReverseM3,
    m.minNightFlow.nights,
    m.totalizerConsistency.percent,
    ...ALARMS.map((name) => m.alarms[name]),
    rejected,
    a?.accuracyClass,
    ...ZONES.flatMap((zone) => {
      const z = a?.[zone];
      return z ? [z.error, z.mpe, z.uncertainty.expandedPct, z.verdict, z.rule, z.intervals, z.temperature.medianC] : [null, null, null, null, null, null, null];
    }),
    ...EXCLUSION_REASONS.map((reason) => a?.excluded[reason]),
  ];
}

/** readings.csv: the meter, the time, then every field of the schema's field table (units in the names), then when it arrived. */
export const READINGS_CSV_HEADER: readonly string[] = ['meter', 'ts', ...READING_FIELDS.map((f) => f.csv), RECEIPT_FIELDS.receivedAt.csv];
export const BUCKETS_CSV_HEADER = ['meter', 'ts', 'flow_mean_m3h', 'flow_min_m3h', 'flow_max_m3h', 'total_last_m3', 'count'] as const;

function readingCsvRow(r: StoredReading, dialect: CsvDialect): string {
  const fields = READING_FIELDS.map((f): CsvValue => (f.type === 'bitmask' ? r.alarms.join(' ') : r[f.reading]));
  return csvRow([r.meterId, iso(r.tsMs), ...fields, r.receivedAtMs === undefined ? undefined : iso(r.receivedAtMs)], dialect);
}

/** The chunk boundaries of [from, to): multiples of chunkMs (epoch-aligned), so a bucket of `every` never straddles two chunks. */
export function chunkBounds(fromMs: number, toMs: number, chunkMs: number): Array<[number, number]> {
  const chunks: Array<[number, number]> = [];
  for (let start = fromMs; start < toMs; ) {
    const end = Math.min(toMs, (Math.floor(start / chunkMs) + 1) * chunkMs);
    chunks.push([start, end]);
    start = end;
  }
  return chunks;
}

/** The span of one InfluxDB query of a readings export: ~one day, a multiple of `every` so buckets stay whole. */
export function exportChunkMs(every: Every | undefined): number {
  return every ? Math.max(1, Math.round(CSV_CHUNK_MS / every.ms)) * every.ms : CSV_CHUNK_MS;
}

/** The metrics table (reports/metrics.csv): the header, one row per meter. */
export function metricsCsv(meters: readonly ApiMeterMetrics[], dialect: CsvDialect = RFC4180): string {
  return dialect.preamble + csvRow(METRICS_CSV_HEADER, dialect) + meters.map((m) => csvRow(metricsCsvRow(m), dialect)).join('');
}

/** readings.csv (or its buckets with `every`) as text chunks: one InfluxDB query per meter and chunk, so any window fits in memory. */
export async function* readingsCsv(
  readings: ReadingsRepository,
  meters: readonly MeterConfig[],
  fromMs: number,
  toMs: number,
  every: Every | undefined,
  dialect: CsvDialect = RFC4180,
): AsyncGenerator<string> {
  yield dialect.preamble + csvRow(every ? BUCKETS_CSV_HEADER : READINGS_CSV_HEADER, dialect);
  for (const [start, end] of chunkBounds(fromMs, toMs, exportChunkMs(every))) {
    for (const meter of meters) {
      const range = { fromMs: start, toMs: end };
      if (every) {
        const buckets = await readings.buckets(meter.id, range, every.ms);
        const text = buckets.map((b) => csvRow([meter.id, iso(b.tsMs), b.flowMeanM3h, b.flowMinM3h, b.flowMaxM3h, b.totalLastM3, b.count], dialect)).join('');
        if (text) yield text;
        continue;
      }
      const text = (await readings.readings(meter.id, range)).map((r) => readingCsvRow(r, dialect)).join('');
      if (text) yield text;
    }
  }
}
