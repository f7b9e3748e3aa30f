import { emptyReadingColumns } from '@flowpilot/influx';
import type { ColumnsQuery, DayStamp, ReadingColumns, ReadingsRepository } from '@flowpilot/influx';
import * as metrics from '@flowpilot/metrics';
import { describe, expect, it, vi } from 'vitest';
import { createMetricsResultCache } from './metrics-result-cache.ts';
import { createMetricsService } from './metrics-service.ts';
import { testPilot } from './test-pilot.ts';

// Counts the computations: a kept result is one that computeMeterMetrics did not run for.
vi.mock('@flowpilot/metrics', async (importOriginal) => {
  const original = await importOriginal<typeof metrics>();
  return { ...original, computeMeterMetrics: vi.fn(original.computeMeterMetrics) };
});
const computations = () => vi.mocked(metrics.computeMeterMetrics).mock.calls.length;

describe('the cache of computed results', () => {
  it('keeps a value under the key its computation answers, and answers it without computing again', async () => {
    const cache = createMetricsResultCache<string>();
    let runs = 0;
    const compute = (value: string, key: string | null) => async () => ((runs += 1), { value, key });
    expect(await cache.get('a', compute('first', 'a'))).toBe('first');
    expect(await cache.get('a', compute('second', 'a'))).toBe('first');
    // Read under newer versions than asked for: kept under those.
    expect(await cache.get('b', compute('newer', 'c'))).toBe('newer');
    expect(await cache.get('c', compute('other', 'c'))).toBe('newer');
    expect(await cache.get('b', compute('again', 'b'))).toBe('again');
    // Unversioned: never kept.
    await cache.get('d', compute('unkept', null));
    expect(await cache.get('d', compute('computed', null))).toBe('computed');
    expect(runs).toBe(5);
    expect(cache.stats()).toMatchObject({ hits: 2, computed: 5 });
  });

  it('lets requests for a key being computed join it, and keeps no failure', async () => {
    const cache = createMetricsResultCache<number>();
    let release!: (value: { value: number; key: string }) => void;
    let runs = 0;
    const slow = () => ((runs += 1), new Promise<{ value: number; key: string }>((resolve) => (release = resolve)));
    const joined = [cache.get('k', slow), cache.get('k', slow), cache.get('k', slow)];
    release({ value: 7, key: 'k' });
    expect(await Promise.all(joined)).toEqual([7, 7, 7]);
    expect(runs).toBe(1);

    const failing = async (): Promise<{ value: number; key: string }> => {
      throw new Error('InfluxDB unavailable');
    };
    await expect(Promise.all([cache.get('f', failing), cache.get('f', failing)])).rejects.toThrow('InfluxDB unavailable');
    expect(await cache.get('f', async () => ({ value: 1, key: 'f' }))).toBe(1);
    // A computation that throws at once fails its request like one that fails later.
    await expect(
      cache.get('g', () => {
        throw new Error('at once');
      }),
    ).rejects.toThrow('at once');
  });

  it('keeps at most maxBytes of values, the least recently used evicted first', async () => {
    // Each value counts 10 bytes and its key 2: two fit.
    const cache = createMetricsResultCache<string>({ maxBytes: 25, sizeOf: () => 10 });
    const put = (key: string) => cache.get(key, async () => ({ value: `computed ${key}`, key }));
    await put('a');
    await put('b');
    await put('a');
    await put('c');
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 24 });
    // 'b' went; 'a', used since, stayed.
    expect(await cache.get('a', async () => ({ value: 'again', key: 'a' }))).toBe('computed a');
    expect(await cache.get('b', async () => ({ value: 'again', key: 'b' }))).toBe('again');
  });
});

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);

/** An InfluxDB that answers at once from what the test wrote, counting the columns it reads. */
function instantInflux() {
  const stored = new Map<string, { tsMs: number; seq: number }[]>();
  const logged: { meterId: string; dayMs: number }[] = [];
  let columnReads = 0;
  const columnsOf = (query: ColumnsQuery): ReadingColumns => {
    const points = (stored.get(query.meterId) ?? []).filter((p) => p.tsMs >= query.fromMs && (query.toInclusive ? p.tsMs <= query.toMs : p.tsMs < query.toMs)).sort((a, b) => a.tsMs - b.tsMs);
    const out = emptyReadingColumns(points.length);
    points.forEach((p, i) => {
      out.tsMs[i] = p.tsMs;
      out.seq[i] = p.seq;
      out.flowM3h[i] = 10;
      out.totalM3[i] = 100 + p.seq / 6;
      out.receivedAtMs[i] = p.tsMs + 500;
      out.temperatureC[i] = NaN;
    });
    return out;
  };
  const unused = () => Promise.reject(new Error('not used by the metrics service'));
  const readings: ReadingsRepository = {
    readings: unused,
    buckets: unused,
    latest: unused,
    latestOfEvery: unused,
    count: unused,
    seqs: unused,
    maxSeqs: unused,
    columns: async (query) => ((columnReads += 1), columnsOf(query)),
    dayStamps: async (): Promise<DayStamp[]> => {
      throw new Error('the log is complete here');
    },
  };
  return {
    readings,
    log: { writtenDaysSince: (version: number) => ({ version: logged.length, days: logged.slice(version) }) },
    columnReads: () => columnReads,
    /** Minute readings of a meter, logged as the ingest does. */
    write(meterId: string, fromMs: number, count: number, firstSeq = 0) {
      const points = stored.get(meterId) ?? [];
      for (let i = 0; i < count; i++) {
        const tsMs = fromMs + i * 60_000;
        points.push({ tsMs, seq: firstSeq + i });
        logged.push({ meterId, dayMs: Math.floor(tsMs / DAY_MS) * DAY_MS });
      }
      stored.set(meterId, points);
    },
  };
}

describe('the metrics service with both caches', () => {
  const pilot = testPilot();
  const window = { fromMs: T0, toMs: T0 + DAY_MS };
  const world = (rejected: Record<string, Record<string, number>> = {}) => {
    const influx = instantInflux();
    for (const meter of pilot.meters) influx.write(meter.id, T0, 1440);
    const service = createMetricsService({ pilot, readings: influx.readings, readingCache: { writtenDays: influx.log }, rejections: () => rejected });
    return { influx, service, rejected };
  };

  it('computes each meter once for requests at once and again, and anew after a write into its days', async () => {
    const { influx, service } = world();
    const before = computations();
    const first = await Promise.all([service.metrics(window), service.metrics(window), service.metrics(window), service.metrics(window)]);
    expect(computations() - before).toBe(pilot.meters.length);
    for (const answer of first) expect(answer).toEqual(first[0]);
    expect(await service.metrics(window)).toEqual(first[0]);
    expect(computations() - before).toBe(pilot.meters.length);

    // Two more readings of the meter under test, the second on the next day (read as the margin after `to`).
    const reads = influx.columnReads();
    influx.write('T-DUT', T0 + DAY_MS - 30_000, 2, 5000);
    const after = await service.metrics(window);
    const dut = (answer: typeof after) => answer.find((m) => m.meterId === 'T-DUT')!;
    expect(dut(after).received).toBe(dut(first[0]!).received + 1);
    // The meter and nothing else was computed again; only its changed days were read.
    expect(computations() - before).toBe(pilot.meters.length + 1);
    expect(influx.columnReads() - reads).toBe(1);
  });

  it('computes again when a meter\'s rejected counts change, from the cached days', async () => {
    const { influx, service, rejected } = world();
    const first = await service.metrics(window);
    expect(first.find((m) => m.meterId === 'T-MON')!.rejected).toEqual({});
    const reads = influx.columnReads();
    rejected['T-MON'] = { ERR_READING_SCHEMA: 2 };
    const after = await service.metrics(window);
    expect(after.find((m) => m.meterId === 'T-MON')!.rejected).toEqual({ ERR_READING_SCHEMA: 2 });
    expect(influx.columnReads()).toBe(reads);
  });

  it('answers each day of dailyMetrics as the window of that day alone, and keeps those too', async () => {
    const { service } = world();
    const days = await service.dailyMetrics({ fromMs: T0, toMs: T0 + DAY_MS });
    const before = computations();
    for (const day of days) expect(await service.metrics(day.window)).toEqual(day.meters);
    expect(computations()).toBe(before);
  });
});
