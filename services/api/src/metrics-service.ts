import { alignIntervals, computeErrorCurve, computeMeterMetrics } from '@flowpilot/metrics';
import type { ErrorCurveBin, MeterMetrics } from '@flowpilot/metrics';
import type { MeterConfig, PilotConfig } from '@flowpilot/schema';
import { mapLimit } from './influx-metrics.ts';
import type { ReadingColumns } from './influx-metrics.ts';
import type { ColumnsReader } from './reading-cache.ts';

/**
 * SPEC section 4 for every meter of the pilot over W = [from, to), from InfluxDB (see
 * influx-metrics.ts for why each meter's raw columns are read and run through packages/metrics).
 * Columns come through a ColumnsReader: reading-cache.ts keeps days that InfluxDB confirms
 * unchanged on every call (one aggregate query), so no answer rests on stale data.
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
  /** Rejected messages per meter and reason in W (the durable store's dead letters). */
  rejections: Record<string, Record<string, number>>;
}

/**
 * Accuracy needs the totals at the interval boundaries of W, and a boundary total may be
 * interpolated from readings up to Δ outside W (alignIntervals): the test meter and its
 * reference are read over [from − Δ, to + Δ]; every other metric still takes W only.
 */
function marginMs(meter: MeterConfig, pilot: PilotConfig): number {
  if (meter.role === 'test') return meter.intervalSec * 1000;
  if (meter.role !== 'reference') return 0;
  const tests = pilot.meters.filter((m) => m.role === 'test' && m.reference === meter.id);
  return tests.reduce((max, m) => Math.max(max, m.intervalSec * 1000), 0);
}

function readMeter(reader: ColumnsReader, meter: MeterConfig, pilot: PilotConfig, fromMs: number, toMs: number): Promise<ReadingColumns> {
  const margin = marginMs(meter, pilot);
  return reader.read({
    meterId: meter.id,
    fromMs: fromMs - margin,
    toMs: toMs + margin,
    toInclusive: margin > 0,
    temperature: meter.role !== 'monitor',
  });
}

export async function computePilotMetrics(input: PilotMetricsInput): Promise<ApiMeterMetrics[]> {
  const { reader, pilot, fromMs, toMs, rejections } = input;
  const window = { fromMs, toMs };
  const widestMarginMs = pilot.meters.reduce((max, m) => Math.max(max, marginMs(m, pilot)), 0);
  await reader.validate(
    pilot.meters.map((m) => m.id),
    fromMs - widestMarginMs,
    toMs + widestMarginMs,
  );
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
    const metrics = computeMeterMetrics(columns, meter, window, pilot.pilot, rejections[meter.id] ?? {}, reference ? { reference } : {});
    return toApiMetrics(metrics, meter);
  });
  const byMeter = new Map(computed.map((m) => [m.meterId, m]));
  return pilot.meters.map((m) => byMeter.get(m.id) as ApiMeterMetrics);
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
