import { mapLimit } from '@flowpilot/async';
import type { ColumnsQuery, ReadingsRepository } from '@flowpilot/influx';
import { computeErrorCurve, computeMeterMetrics, localDays, pairIntervals } from '@flowpilot/metrics';
import type { ErrorCurveBin, MeterMetrics, PairedIntervals, TimeWindow } from '@flowpilot/metrics';
import { FlowPilotError } from '@flowpilot/schema';
import type { MeterConfig, PilotConfig } from '@flowpilot/schema';
import { validationError } from './api-errors.ts';
import { createMetricsResultCache } from './metrics-result-cache.ts';
import type { MetricsResultCache, MetricsResultCacheOptions } from './metrics-result-cache.ts';
import { createCachedColumnsReader, createDirectColumnsReader } from './reading-cache.ts';
import type { ColumnsReader, ReadingCacheOptions, VersionedColumns } from './reading-cache.ts';

/**
 * SPEC section 4 for every meter of the pilot over W = [from, to), from the readings repository
 * (packages/influx readings-repository.ts says why each meter's raw columns are read and run
 * through packages/metrics). Columns come through a ColumnsReader: reading-cache.ts keeps days
 * that every request first validates (the ingest's log, or one aggregate query to InfluxDB), so no
 * answer rests on days invalidated before the request; metrics-result-cache.ts keeps each meter's
 * computed metrics by the version of the days they were computed from. `createMetricsService` at
 * the end is what the routes and the PDF report use.
 */

/** Meters read from InfluxDB at the same time: influxd answers one query per core, the API parses the next meanwhile. */
export const METRICS_QUERY_CONCURRENCY = 4;

/** What the API reports per meter: computeMeterMetrics without `duplicates` (see below) and `errorCurve` (its own route). */
export type ApiMeterMetrics = Omit<MeterMetrics, 'duplicates' | 'errorCurve'> & { role: MeterConfig['role']; reference: string | null };

export interface PilotMetricsInput {
  reader: ColumnsReader;
  pilot: PilotConfig;
  fromMs: number;
  toMs: number;
  /**
   * Rejected messages per meter and reason in W (the durable store's dead letters); null when
   * the API has no store at hand (SPEC section 4: an unknown count is null, never 0).
   */
  rejections: Record<string, Record<string, number>> | null;
  /** The caller validated the reader's days over W already (one validation for many windows). */
  validated?: boolean;
  /** Each meter's result kept by window and version of its columns (metrics-result-cache.ts); absent: computed every time. */
  results?: MetricsResultCache<ApiMeterMetrics>;
}

/**
 * How far outside W a meter's readings are read. Volume interpolates each meter's total at
 * W's edges from the nearest readings on both sides, at most 3Δ apart (SPEC section 4), so
 * every meter is read over [from − 3Δ, to + 3Δ], `to` included; a test meter and its reference
 * also at least 1.5 of the slower one's Δ (pairing). Every other metric counts the readings
 * inside W only.
 */
function marginMs(meter: MeterConfig, pilot: PilotConfig): number {
  const volumeMs = 3 * meter.intervalSec * 1000;
  // Pairing interpolates the faster meter at the slower one's readings from readings up to 1.5 of
  // the slower meter's Δ away (SPEC section 4).
  const pairedWith =
    meter.role === 'test' ? pilot.meters.filter((m) => m.id === meter.reference) : meter.role === 'reference' ? pilot.meters.filter((m) => m.role === 'test' && m.reference === meter.id) : [];
  return pairedWith.reduce((max, m) => Math.max(max, 1.5 * Math.max(m.intervalSec, meter.intervalSec) * 1000), volumeMs);
}

/** The columns a meter's metrics over [fromMs, toMs) read: W with the meter's margin on both sides, `to` included. */
function meterQuery(meter: MeterConfig, pilot: PilotConfig, fromMs: number, toMs: number): ColumnsQuery {
  const margin = marginMs(meter, pilot);
  return {
    meterId: meter.id,
    fromMs: fromMs - margin,
    toMs: toMs + margin,
    toInclusive: true,
    temperature: meter.role !== 'monitor',
  };
}

export async function computePilotMetrics(input: PilotMetricsInput): Promise<ApiMeterMetrics[]> {
  const { reader, pilot, fromMs, toMs, rejections, results } = input;
  const window = { fromMs, toMs };
  if (!input.validated) await validateAll(reader, pilot, window);
  const byId = new Map(pilot.meters.map((m) => [m.id, m]));
  // A reference's columns are read once for itself and all its test meters.
  const references = new Map<string, Promise<VersionedColumns>>();
  const columnsOf = (meter: MeterConfig): Promise<VersionedColumns> => {
    if (meter.role !== 'reference') return reader.readVersioned(meterQuery(meter, pilot, fromMs, toMs));
    let pending = references.get(meter.id);
    if (!pending) {
      pending = reader.readVersioned(meterQuery(meter, pilot, fromMs, toMs));
      references.set(meter.id, pending);
    }
    return pending;
  };
  // References first, so a test meter usually finds its reference's columns already read.
  const order = [...pilot.meters].sort((a, b) => Number(b.role === 'reference') - Number(a.role === 'reference'));
  const computed = await mapLimit(order, METRICS_QUERY_CONCURRENCY, async (meter) => {
    const referenceMeter = meter.role === 'test' && meter.reference ? byId.get(meter.reference) : undefined;
    const rejected = rejections === null ? null : (rejections[meter.id] ?? {});
    // What a meter's result depends on beside the pilot file (fixed for the service's life): the
    // window, the versions of its columns and of its reference's, and its rejected counts.
    const keyOf = (version: string | null, referenceVersion: string | null | undefined): string | null =>
      version === null || referenceVersion === null ? null : JSON.stringify([fromMs, toMs, meter.id, version, referenceVersion ?? '', rejected]);
    const compute = async () => {
      const own = await columnsOf(meter);
      const reference = referenceMeter ? await columnsOf(referenceMeter) : undefined;
      const options = reference && referenceMeter ? { reference: reference.columns, referenceMeter } : {};
      const metrics = computeMeterMetrics(own.columns, meter, window, pilot.pilot, rejected, options);
      // Kept under the versions actually read: newer than the ones asked for when a day was invalidated meanwhile.
      return { value: toApiMetrics(metrics, meter), key: keyOf(own.version, reference?.version) };
    };
    const version = (m: MeterConfig) => reader.version(meterQuery(m, pilot, fromMs, toMs));
    const key = results ? keyOf(version(meter), referenceMeter && version(referenceMeter)) : null;
    if (!results || key === null) return (await compute()).value;
    // A copy: the kept value is shared by every request that gets it.
    return { ...(await results.get(key, compute)) };
  });
  const byMeter = new Map(computed.map((m) => [m.meterId, m]));
  return pilot.meters.map((m) => byMeter.get(m.id) as ApiMeterMetrics);
}

function validateAll(reader: ColumnsReader, pilot: PilotConfig, window: TimeWindow): Promise<void> {
  const widestMarginMs = pilot.meters.reduce((max, m) => Math.max(max, marginMs(m, pilot)), 0);
  return reader.validate(
    pilot.meters.map((m) => m.id),
    window.fromMs - widestMarginMs,
    window.toMs + widestMarginMs,
  );
}

/**
 * `duplicates` is left out: InfluxDB stores one point per meter and time (SPEC section 2), so a
 * redelivered reading is invisible once stored and the count would always be 0.
 */
function toApiMetrics(metrics: MeterMetrics, meter: MeterConfig): ApiMeterMetrics {
  const { duplicates: _duplicates, errorCurve: _errorCurve, ...rest } = metrics;
  return { ...rest, role: meter.role, reference: meter.reference ?? null };
}

/**
 * The paired intervals of one test meter against its reference over W (SPEC section 4): both
 * meters read with every field pairing needs (total, flow, temperature, alarms), from 1.5 of the
 * slower meter's Δ before W to as far after `to`, `to` included, so the intervals at W's edges
 * can interpolate the faster meter across them.
 */
export async function readPairedIntervals(reader: ColumnsReader, meter: MeterConfig, reference: MeterConfig, window: TimeWindow): Promise<PairedIntervals> {
  const margin = 1.5 * Math.max(meter.intervalSec, reference.intervalSec) * 1000;
  await reader.validate([meter.id, reference.id], window.fromMs - margin, window.toMs + margin);
  const read = (m: MeterConfig) => reader.read({ meterId: m.id, fromMs: window.fromMs - margin, toMs: window.toMs + margin, toInclusive: true, temperature: true });
  const [test, ref] = await Promise.all([read(meter), read(reference)]);
  return pairIntervals(test, ref, meter, window, { referenceMeter: reference });
}

/** Rejected messages per meter and reason code in [fromMs, toMs) (SPEC section 4 `rejected`): the durable store's `rejectionCountsByMeter`. */
export type RejectionsProvider = (fromMs: number, toMs: number) => Record<string, Record<string, number>>;

/** One local day of a window (cut to it) with every meter's metrics for it. */
export interface DayMetrics {
  /** YYYY-MM-DD in the pilot's zone. */
  date: string;
  window: TimeWindow;
  meters: ApiMeterMetrics[];
}

/**
 * SPEC section 4 over stored readings, for the metrics routes, the PDF report (through the
 * in-process MetricsSource) and the cache warm-up: the one place the API computes metrics.
 */
export interface MetricsService {
  /** Every meter's metrics over the window. */
  metrics(window: TimeWindow): Promise<ApiMeterMetrics[]>;
  /** Every meter's metrics for each local day of the window (each cut to it): the same numbers as `metrics` of that day, in one call. */
  dailyMetrics(window: TimeWindow): Promise<DayMetrics[]>;
  /** A test meter's error curve against its reference; ERR_METER_NOT_FOUND or ERR_VALIDATION for a meter that has none. */
  errorCurve(meterId: string, window: TimeWindow, bins: number): Promise<{ meter: MeterConfig; reference: MeterConfig; bins: ErrorCurveBin[] }>;
  /** A test meter's paired intervals against its reference (the evidence of its accuracy, for intervals.csv); errors as errorCurve. */
  pairedIntervals(meterId: string, window: TimeWindow): Promise<{ meter: MeterConfig; reference: MeterConfig; paired: PairedIntervals }>;
  /** Whether days are kept between requests (reading-cache.ts). */
  readonly cached: boolean;
}

export interface MetricsServiceOptions {
  pilot: PilotConfig;
  readings: ReadingsRepository;
  /** The validated day cache of reading-cache.ts (default on); false reads InfluxDB every time (and keeps no results). */
  readingCache?: false | Partial<ReadingCacheOptions>;
  /** Each meter's computed metrics kept by window and version of its days (metrics-result-cache.ts; on with the day cache by default); false computes every time. */
  resultCache?: false | Partial<MetricsResultCacheOptions>;
  /**
   * The dead-letter store's counts. Absent (an API on another host than the store, e.g. a
   * standalone `flowpilot api`): every meter reports `rejected: null`, unknown, not `{}`.
   */
  rejections?: RejectionsProvider;
}

/** Days computed at once by dailyMetrics: each is already a few meters in parallel. */
export const DAILY_CONCURRENCY = 2;

export function createMetricsService(options: MetricsServiceOptions): MetricsService {
  const { pilot, readings } = options;
  const cached = options.readingCache !== false;
  const reader = options.readingCache === false ? createDirectColumnsReader(readings) : createCachedColumnsReader(readings, options.readingCache ?? {});
  // Results are kept by the versions of the cached days: without the day cache there are none.
  const results = cached && options.resultCache !== false ? createMetricsResultCache<ApiMeterMetrics>(options.resultCache ?? {}) : undefined;
  const withResults = results ? { results } : {};
  const rejections = (window: TimeWindow) => (options.rejections ? options.rejections(window.fromMs, window.toMs) : null);
  const byId = new Map(pilot.meters.map((m) => [m.id, m]));
  const meterOr404 = (id: string): MeterConfig => {
    const meter = byId.get(id);
    if (!meter) throw new FlowPilotError('ERR_METER_NOT_FOUND', `No meter "${id}" in pilot ${pilot.pilot.id}. GET /api/v1/pilot lists its meters`);
    return meter;
  };

  const testMeterAndReference = (meterId: string, what: string): { meter: MeterConfig; reference: MeterConfig } => {
    const meter = meterOr404(meterId);
    if (meter.role !== 'test' || !meter.reference) {
      throw validationError(`Meter "${meter.id}" is a ${meter.role} meter; ${what} need${what.endsWith('s') ? '' : 's'} a test meter installed in series with a reference`);
    }
    return { meter, reference: meterOr404(meter.reference) };
  };

  return {
    cached,
    metrics: (window) => computePilotMetrics({ reader, pilot, ...window, rejections: rejections(window), ...withResults }),

    async dailyMetrics(window) {
      // One validation of the cached days for the whole window, then each day read from the cache.
      await validateAll(reader, pilot, window);
      return mapLimit(localDays(window, pilot.pilot.timezone), DAILY_CONCURRENCY, async (day) => ({
        date: day.date,
        window: day.window,
        meters: await computePilotMetrics({ reader, pilot, ...day.window, rejections: rejections(day.window), validated: true, ...withResults }),
      }));
    },

    async errorCurve(meterId, window, bins) {
      const { meter, reference } = testMeterAndReference(meterId, 'an error curve');
      const paired = await readPairedIntervals(reader, meter, reference, window);
      return { meter, reference, bins: computeErrorCurve(paired, { bins }) };
    },

    async pairedIntervals(meterId, window) {
      const { meter, reference } = testMeterAndReference(meterId, 'paired intervals');
      return { meter, reference, paired: await readPairedIntervals(reader, meter, reference, window) };
    },
  };
}
