import { Readable } from 'node:stream';
import { quoteIdentifier, quoteString, timeLiteral } from '@flowpilot/influx';
import type { InfluxClient } from '@flowpilot/influx';
import { ERROR_CONVENTION } from '@flowpilot/metrics';
import { ALARMS } from '@flowpilot/schema';
import type { MeterConfig, PilotConfig } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { validationError } from './api-errors.ts';
import { errorResponseSchema, meterIdParamsSchema } from './api-schemas.ts';
import type { ApiReading, Every } from './api-schemas.ts';
import { attachment, csvRow } from './csv.ts';
import type { CsvValue } from './csv.ts';
import { apiReadingFromRow, queryBuckets } from './influx-readings.ts';
import { createCachedColumnsReader, createDirectColumnsReader } from './reading-cache.ts';
import type { ReadingCacheOptions } from './reading-cache.ts';
import { computeMeterErrorCurve, computePilotMetrics } from './metrics-service.ts';
import type { ApiMeterMetrics } from './metrics-service.ts';
import {
  DEFAULT_METRICS_WINDOW_DAYS,
  errorCurveQuerySchema,
  errorCurveResponseSchema,
  metricsQuerySchema,
  metricsResponseSchema,
  readingsCsvQuerySchema,
} from './metrics-schemas.ts';

export type RejectionsProvider = (fromMs: number, toMs: number) => Record<string, Record<string, number>>;

export interface MetricsRoutesOptions {
  /** The validated day cache of reading-cache.ts (default on); false reads InfluxDB every time. */
  readingCache?: false | Partial<ReadingCacheOptions>;
  /** Once listening, read this many past days into the cache in the background, so the first visitor does not wait. */
  warmupDays?: number;
  pilot: PilotConfig;
  influx: InfluxClient;
  clock: () => number;
  maxWindowDays: number;
  rejections?: RejectionsProvider;
  meterOr404: (id: string) => MeterConfig;
}

const DAY_MS = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();
const isoDate = (ms: number): string => iso(ms).slice(0, 10);

/** A readings.csv query reads at most this span per InfluxDB query, so a year of data never sits in memory. */
export const CSV_CHUNK_MS = DAY_MS;

/**
 * [from, to) of a request (SPEC section 5): `to` defaults to now, `from` to `defaultDays`
 * before `to`; `to` must be after `from` and the window at most maxWindowDays.
 */
export function resolveWindow(query: { from?: number; to?: number }, nowMs: number, defaultDays: number, maxWindowDays: number): { fromMs: number; toMs: number } {
  const toMs = query.to ?? nowMs;
  const fromMs = query.from ?? toMs - defaultDays * DAY_MS;
  if (toMs <= fromMs) {
    const toText = query.to === undefined ? `now, ${iso(toMs)}` : iso(toMs);
    throw validationError(`Query parameter "to" (${toText}) must be after "from" (${iso(fromMs)})`);
  }
  const windowDays = (toMs - fromMs) / DAY_MS;
  if (windowDays > maxWindowDays) {
    throw validationError(
      `The window from "from" (${iso(fromMs)}) to "to" (${iso(toMs)}) spans ${Math.ceil(windowDays)} days; the longest is ${maxWindowDays} days. Narrow it`,
    );
  }
  return { fromMs, toMs };
}

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
  'volume_m3',
  'totalizer_resets',
  'flow_mean_m3h',
  'flow_min_m3h',
  'flow_max_m3h',
  'min_night_flow_m3h',
  'min_night',
  'latest_night_flow_m3h',
  'latest_night',
  'nights',
  'totalizer_consistency_pct',
  ...ALARMS.map((name) => `alarm_${name}`),
  'rejected',
  'accuracy_class',
  'water_temperature_c',
  ...ZONES.flatMap((zone) => [`${zone}_error_pct`, `${zone}_mpe_pct`, `${zone}_verdict`, `${zone}_intervals`]),
];

export function metricsCsvRow(m: ApiMeterMetrics): CsvValue[] {
  const a = m.accuracy;
  const rejected = Object.entries(m.rejected)
    .map(([code, n]) => `${code}=${n}`)
    .join(' ');
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
    m.volumeM3,
    m.totalizerResets,
    m.flow.meanM3h,
    m.flow.minM3h,
    m.flow.maxM3h,
    m.minNightFlow.minM3h,
    m.minNightFlow.minNight,
    m.minNightFlow.latestM3h,
    m.minNightFlow.latestNight,
    m.minNightFlow.nights,
    m.totalizerConsistency.percent,
    ...ALARMS.map((name) => m.alarms[name]),
    rejected,
    a?.accuracyClass,
    a?.waterTemperatureC,
    ...ZONES.flatMap((zone) => (a ? [a[zone].error, a[zone].mpe, a[zone].verdict, a[zone].intervals] : [null, null, null, null])),
  ];
}

export const READINGS_CSV_HEADER = ['meter', 'ts', 'flow_m3h', 'total_m3', 'total_reverse_m3', 'velocity_mps', 'pressure_bar', 'temperature_c', 'battery_pct', 'rssi_dbm', 'seq', 'alarms', 'received_at'] as const;
export const BUCKETS_CSV_HEADER = ['meter', 'ts', 'flow_mean_m3h', 'flow_min_m3h', 'flow_max_m3h', 'total_last_m3', 'count'] as const;

function readingCsvRow(meterId: string, r: ApiReading): string {
  return csvRow([meterId, r.ts, r.flow, r.total, r.totalReverse, r.velocity, r.pressure, r.temperature, r.battery, r.rssi, r.seq, r.alarms.join(' '), r.receivedAt]);
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

const READING_FIELDS = ['flow', 'total', 'total_rev', 'velocity', 'pressure', 'temperature', 'battery', 'rssi', 'seq', 'alarms', 'received_at'].map(quoteIdentifier).join(', ');

async function* readingsCsv(influx: InfluxClient, meters: readonly MeterConfig[], fromMs: number, toMs: number, every: Every | undefined): AsyncGenerator<string> {
  yield csvRow(every ? BUCKETS_CSV_HEADER : READINGS_CSV_HEADER);
  // One chunk per InfluxDB query: ~one day, a multiple of `every` so buckets stay whole.
  const chunkMs = every ? Math.max(1, Math.round(CSV_CHUNK_MS / every.ms)) * every.ms : CSV_CHUNK_MS;
  for (const [start, end] of chunkBounds(fromMs, toMs, chunkMs)) {
    for (const meter of meters) {
      if (every) {
        const buckets = await queryBuckets(influx, meter.id, start, end, every);
        yield buckets.map((b) => csvRow([meter.id, b.ts, b.flow, b.flowMin, b.flowMax, b.total, b.count])).join('');
        continue;
      }
      const series = await influx.query(
        `SELECT ${READING_FIELDS} FROM ${quoteIdentifier('reading')} WHERE ${quoteIdentifier('meter')} = ${quoteString(meter.id)} ` +
          `AND time >= ${timeLiteral(start)} AND time < ${timeLiteral(end)}`,
      );
      let text = '';
      for (const s of series) {
        for (const row of s.values) {
          const reading = apiReadingFromRow(s.columns, row);
          if (reading) text += readingCsvRow(meter.id, reading);
        }
      }
      if (text) yield text;
    }
  }
}

export function registerMetricsRoutes(app: FastifyInstance, options: MetricsRoutesOptions): void {
  const { pilot, influx, clock, maxWindowDays, meterOr404 } = options;
  const reader = options.readingCache === false ? createDirectColumnsReader(influx) : createCachedColumnsReader(influx, options.readingCache ?? {});
  const warmupDays = options.warmupDays ?? 0;
  if (warmupDays > 0 && options.readingCache !== false) {
    app.addHook('onListen', async () => {
      const toMs = clock();
      // Not awaited: the API answers meanwhile; a failure only means a slower first request.
      void computePilotMetrics({ reader, pilot, fromMs: toMs - warmupDays * DAY_MS, toMs, rejections: {} }).catch((error: unknown) =>
        app.log.debug({ err: (error as Error).message }, 'metrics cache warm-up failed'),
      );
    });
  }
  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: errorResponseSchema, 404: errorResponseSchema, 503: errorResponseSchema };
  const rejections = (fromMs: number, toMs: number) => options.rejections?.(fromMs, toMs) ?? {};
  const windowText = `The window is at most ${maxWindowDays} days; without \`from\` it is the ${DEFAULT_METRICS_WINDOW_DAYS} days before \`to\` (default now).`;

  api.get(
    '/api/v1/metrics',
    {
      schema: {
        tags: ['metrics'],
        summary: 'SPEC section 4 performance metrics of every meter over [from, to)',
        description:
          'Per meter: expected, received, completeness, delivery, gaps, latency (nearest-rank p50/p95/p99, max), volume, flow, ' +
          'minimum night flow (local nights of the pilot\'s time zone), totalizer consistency, alarms and rejected messages; ' +
          `for test meters, accuracy against the reference per OIML R49 zone with its MPE and verdict. Error convention: ${ERROR_CONVENTION}, ` +
          `i.e. indicated minus reference, over reference, in % (positive: the meter under test reads high). ${windowText} ` +
          'Computed from what InfluxDB holds at the time of the request; nothing is cached.',
        querystring: metricsQuerySchema,
        response: { 200: metricsResponseSchema, ...errors },
      },
    },
    async (request) => {
      const { fromMs, toMs } = resolveWindow(request.query, clock(), DEFAULT_METRICS_WINDOW_DAYS, maxWindowDays);
      const meters = await computePilotMetrics({ reader, pilot, fromMs, toMs, rejections: rejections(fromMs, toMs) });
      return { pilotId: pilot.pilot.id, from: iso(fromMs), to: iso(toMs), convention: ERROR_CONVENTION, meters };
    },
  );

  api.get(
    '/api/v1/meters/:id/error-curve',
    {
      schema: {
        tags: ['metrics'],
        summary: 'The error curve of a test meter against its reference',
        description:
          'Intervals of the test meter\'s Δ binned by the reference flow rate q into log-spaced bins from Q1 to Q4; each bin\'s error ' +
          `(${ERROR_CONVENTION}), interval count and the MPE at its mid-point (OIML R49). ${windowText}`,
        params: meterIdParamsSchema,
        querystring: errorCurveQuerySchema,
        response: { 200: errorCurveResponseSchema, ...errors },
      },
    },
    async (request) => {
      const meter = meterOr404(request.params.id);
      if (meter.role !== 'test' || !meter.reference) {
        throw validationError(`Meter "${meter.id}" is a ${meter.role} meter; an error curve needs a test meter installed in series with a reference`);
      }
      const reference = meterOr404(meter.reference);
      const window = resolveWindow(request.query, clock(), DEFAULT_METRICS_WINDOW_DAYS, maxWindowDays);
      const bins = await computeMeterErrorCurve(reader, meter, reference, window, request.query.bins ?? 12);
      return { meterId: meter.id, reference: reference.id, from: iso(window.fromMs), to: iso(window.toMs), convention: ERROR_CONVENTION, bins };
    },
  );

  api.get(
    '/api/v1/reports/metrics.csv',
    {
      schema: {
        tags: ['reports'],
        summary: 'The metrics table as CSV, one row per meter',
        description:
          `The numbers of /api/v1/metrics as RFC 4180 CSV (CRLF, UTF-8); test meters add each zone's error, MPE, verdict and interval count (${ERROR_CONVENTION}). ` +
          `Text cells that start with = + - @ tab or CR are prefixed with ' (formula injection). ${windowText}`,
        querystring: metricsQuerySchema,
        produces: ['text/csv'],
      },
    },
    async (request, reply) => {
      const { query } = request;
      const { fromMs, toMs } = resolveWindow(query, clock(), DEFAULT_METRICS_WINDOW_DAYS, maxWindowDays);
      const meters = await computePilotMetrics({ reader, pilot, fromMs, toMs, rejections: rejections(fromMs, toMs) });
      const body = csvRow(METRICS_CSV_HEADER) + meters.map((m) => csvRow(metricsCsvRow(m))).join('');
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', attachment(`${pilot.pilot.id}_metrics_${isoDate(fromMs)}_${isoDate(toMs)}.csv`))
        .send(body);
    },
  );

  api.get(
    '/api/v1/reports/readings.csv',
    {
      schema: {
        tags: ['reports'],
        summary: 'Readings as CSV, streamed',
        description:
          'The raw readings (or, with `every`, per-bucket mean/min/max flow, last total and count) of one meter or all, oldest first, ' +
          'as RFC 4180 CSV. Streamed: InfluxDB is read one day at a time and each day is written as it comes, so any window fits in memory. ' +
          `${windowText} A failure after the first bytes ends the download early (the status is already sent).`,
        querystring: readingsCsvQuerySchema,
        produces: ['text/csv'],
      },
    },
    async (request, reply) => {
      const { query } = request;
      const meters = query.meter === undefined ? pilot.meters : [meterOr404(query.meter)];
      const { fromMs, toMs } = resolveWindow(query, clock(), DEFAULT_METRICS_WINDOW_DAYS, maxWindowDays);
      const name = `${query.meter ?? pilot.pilot.id}_readings_${isoDate(fromMs)}_${isoDate(toMs)}${query.every ? `_${query.every.literal}` : ''}.csv`;
      const stream = Readable.from(readingsCsv(influx, meters, fromMs, toMs, query.every));
      stream.on('error', (error) => request.log.error({ err: error }, 'readings.csv stopped early'));
      return reply.type('text/csv; charset=utf-8').header('content-disposition', attachment(name)).send(stream);
    },
  );
}
