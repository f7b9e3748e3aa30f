import { mapLimit } from '@flowpilot/async';
import type { ReadingColumns, ReadingsRepository } from '@flowpilot/influx';
import { alignIntervals, computeErrorCurve, computeMeterMetrics, localDays } from '@flowpilot/metrics';
import type { ErrorCurveBin, MeterMetrics, TimeWindow } from '@flowpilot/metrics';
import { FlowPilotError } from '@flowpilot/schema';
import type { MeterConfig, PilotConfig } from '@flowpilot/schema';
import { validationError } from './api-errors.ts';
import { createCachedColumnsReader, createDirectColumnsReader } from './reading-cache.ts';
import type { ColumnsReader, ReadingCacheOptions } from './reading-cache.ts';

/**
 * SPEC section 4 for every meter of the pilot over W = [from, to), from the readings repository
 * (packages/influx readings-repository.ts says why each meter's raw columns are read and run
 * through packages/metrics). Columns come through a ColumnsReader: reading-cache.ts keeps days
 * that InfluxDB confirms unchanged on every call (one aggregate query), so no answer rests on
 * stale data. `createMetricsService` at the end is what the routes and the PDF report use.
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
}

/**
 * How far outside W a meter's readings are read. Volume interpolates each meter's total at
 * W's edges from the nearest readings on both sides, at most 3Δ apart (SPEC section 4), so
 * every meter is read over [from − 3Δ, to + 3Δ], `to` included; accuracy also interpolates a
 * test meter's and its reference's totals at the interval boundaries from readings up to Δ of
 * the other meter outside W. Every other metric counts the readings inside W only.
 */
function marginMs(meter: MeterConfig, pilot: PilotConfig): number {
  const volumeMs = 3 * meter.intervalSec * 1000;
  if (meter.role === 'test') return Math.max(volumeMs, meter.intervalSec * 1000);
  if (meter.role !== 'reference') return volumeMs;
  const tests = pilot.meters.filter((m) => m.role === 'test' && m.reference === meter.id);
  return tests.reduce((max, m) => Math.max(max, m.intervalSec * 1000), volumeMs);
}

function readMeter(reader: ColumnsReader, meter: MeterConfig, pilot: PilotConfig, fromMs: number, toMs: number): Promise<ReadingColumns> {
  const margin = marginMs(meter, pilot);
  return reader.read({
    meterId: meter.id,
    fromMs: fromMs - margin,
    toMs: toMs + margin,
    toInclusive: true,
    temperature: meter.role !== 'monitor',
  });
}

export async function computePilotMetrics(input: PilotMetricsInput): Promise<ApiMeterMetrics[]> {
  const { reader, pilot, fromMs, toMs, rejections } = input;
  const window = { fromMs, toMs };
  if (!input.validated) await validateAll(reader, pilot, window);
  const byId = new Map(pilot.meters.map((m) => [m.id, m]));
  // A reference's columns are read once for itself and all its test meters.
  const references = new Map<string, Promise<ReadingColumns>>();
  const columnsOf = (meter: MeterConfig): Promise<ReadingColumns> => {
    if (meter.role !== 'reference') return readMeter(reader, meter, pilot, fromMs, toMs);
    let pending = references.get(meter.id);
    if (!pending) {
      pending = readMeter(reader, meter, pilot, fromMs, toMs);
      references.set(meter.id, pending);
    }
    return pending;
  };
  // References first, so a test meter usually finds its reference's columns already read.
  const order = [...pilot.meters].sort((a, b) => Number(b.role === 'reference') - Number(a.role === 'reference'));
  const computed = await mapLimit(order, METRICS_QUERY_CONCURRENCY, async (meter) => {
    const columns = await columnsOf(meter);
    const referenceMeter = meter.role === 'test' && meter.reference ? byId.get(meter.reference) : undefined;
    const reference = referenceMeter ? await columnsOf(referenceMeter) : undefined;
    const metrics = computeMeterMetrics(columns, meter, window, pilot.pilot, rejections === null ? null : (rejections[meter.id] ?? {}), reference ? { reference } : {});
    return toApiMetrics(metrics, meter);
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

/** The error curve of one test meter against its reference (SPEC section 4), `bins` log-spaced bins from Q1 to Q4. */
export async function computeMeterErrorCurve(
  reader: ColumnsReader,
  meter: MeterConfig,
  reference: MeterConfig,
  window: { fromMs: number; toMs: number },
  bins: number,
): Promise<ErrorCurveBin[]> {
  const margin = meter.intervalSec * 1000;
  await reader.validate([meter.id, reference.id], window.fromMs - margin, window.toMs + margin);
  const read = (m: MeterConfig) =>
    reader.read({ meterId: m.id, fromMs: window.fromMs - margin, toMs: window.toMs + margin, toInclusive: true, temperature: true, totalsOnly: true });
  const [test, ref] = await Promise.all([read(meter), read(reference)]);
  return computeErrorCurve(alignIntervals(test, ref, meter, window), { bins });
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
  /** Whether days are kept between requests (reading-cache.ts). */
  readonly cached: boolean;
}

export interface MetricsServiceOptions {
  pilot: PilotConfig;
  readings: ReadingsRepository;
  /** The validated day cache of reading-cache.ts (default on); false reads InfluxDB every time. */
  readingCache?: false | Partial<ReadingCacheOptions>;
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
  const rejections = (window: TimeWindow) => (options.rejections ? options.rejections(window.fromMs, window.toMs) : null);
  const byId = new Map(pilot.meters.map((m) => [m.id, m]));
  const meterOr404 = (id: string): MeterConfig => {
    const meter = byId.get(id);
    if (!meter) throw new FlowPilotError('ERR_METER_NOT_FOUND', `No meter "${id}" in pilot ${pilot.pilot.id}. GET /api/v1/pilot lists its meters`);
    return meter;
  };

  return {
    cached,
    metrics: (window) => computePilotMetrics({ reader, pilot, ...window, rejections: rejections(window) }),

    async dailyMetrics(window) {
      // One validation of the cached days for the whole window, then each day read from the cache.
      await validateAll(reader, pilot, window);
      return mapLimit(localDays(window, pilot.pilot.timezone), DAILY_CONCURRENCY, async (day) => ({
        date: day.date,
        window: day.window,
        meters: await computePilotMetrics({ reader, pilot, ...day.window, rejections: rejections(day.window), validated: true }),
      }));
    },

    async errorCurve(meterId, window, bins) {
      const meter = meterOr404(meterId);
      if (meter.role !== 'test' || !meter.reference) {
        throw validationError(`Meter "${meter.id}" is a ${meter.role} meter; an error curve needs a test meter installed in series with a reference`);
      }
      const reference = meterOr404(meter.reference);
      return { meter, reference, bins: await computeMeterErrorCurve(reader, meter, reference, window, bins) };
    },
  };
}
