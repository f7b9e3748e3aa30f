import type { InfluxClient, InfluxSeries } from '@flowpilot/influx';
import { FlowPilotError } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApi } from './app.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import { chunkBounds, METRICS_CSV_HEADER, metricsCsvRow } from './reports-csv.ts';
import { resolveWindow } from './window.ts';
import type { ApiMeterMetrics } from './metrics-service.ts';
import { testPilot } from './test-pilot.ts';

// Validation and shapes of the evaluator's routes with an InfluxDB that holds nothing; the
// numbers themselves are checked against a real influxd in test/metrics-contract.test.ts.

const NOW_MS = Date.parse('2026-11-25T12:00:00.000Z');
const DAY_MS = 86_400_000;

let app: FastifyInstance;
let queries: string[];

beforeEach(async () => {
  queries = [];
  const influx: InfluxClient = {
    config: { url: 'http://influx.invalid', database: 'test' },
    ping: async () => ({ version: 'fake' }),
    ensureDatabase: async () => {},
    write: async () => {},
    query: async (influxql): Promise<InfluxSeries[]> => {
      queries.push(influxql);
      return [];
    },
  };
  app = await createApi({ pilot: testPilot(), influx, liveFeed: createMemoryLiveFeed(), clock: () => NOW_MS, maxWindowDays: 30 });
});
afterEach(async () => {
  await app.close();
});

async function errorOf(url: string): Promise<{ status: number; code: string; message: string }> {
  const response = await app.inject(url);
  const body = response.json() as { error: { code: string; message: string } };
  return { status: response.statusCode, ...body.error };
}

describe('query validation (400/404 with {"error": {"code", "message"}})', () => {
  it.each([
    ['/api/v1/metrics?from=yesterday', 400, 'ERR_VALIDATION', /Query parameter "from" must be an ISO 8601 time/],
    ['/api/v1/metrics?from=2026-11-20T00:00:00Z&to=2026-11-19T00:00:00Z', 400, 'ERR_VALIDATION', /"to" \(2026-11-19T00:00:00.000Z\) must be after "from"/],
    ['/api/v1/metrics?from=2026-09-01T00:00:00Z', 400, 'ERR_VALIDATION', /spans 86 days; the longest is 30 days/],
    ['/api/v1/meters/T-DUT/error-curve?bins=0', 400, 'ERR_VALIDATION', /"bins"/],
    ['/api/v1/meters/T-DUT/error-curve?bins=101', 400, 'ERR_VALIDATION', /"bins"/],
    ['/api/v1/meters/T-DUT/error-curve?bins=2.5', 400, 'ERR_VALIDATION', /"bins"/],
    ['/api/v1/meters/NOPE/error-curve', 404, 'ERR_METER_NOT_FOUND', /No meter "NOPE"/],
    ['/api/v1/meters/T-REF/error-curve', 400, 'ERR_VALIDATION', /"T-REF" is a reference meter; an error curve needs a test meter/],
    ['/api/v1/reports/metrics.csv?from=2&to=1', 400, 'ERR_VALIDATION', /must be after "from"/],
    ['/api/v1/reports/readings.csv?meter=NOPE', 404, 'ERR_METER_NOT_FOUND', /No meter "NOPE"/],
    ['/api/v1/reports/readings.csv?meter=T-REF&every=5x', 400, 'ERR_VALIDATION', /"every" must be a duration/],
  ])('%s → %i %s', async (url, status, code, message) => {
    const error = await errorOf(url);
    expect(error).toMatchObject({ status, code });
    expect(error.message).toMatch(message);
  });

  it('asks InfluxDB nothing for a request it refuses', async () => {
    await app.inject('/api/v1/metrics?from=2026-09-01T00:00:00Z');
    expect(queries).toEqual([]);
  });
});

describe('GET /api/v1/metrics on an empty database', () => {
  it('defaults to the 7 days before now and states the error convention', async () => {
    const response = await app.inject('/api/v1/metrics');
    expect(response.statusCode).toBe(200);
    const body = response.json() as { from: string; to: string; convention: string; meters: Array<{ meterId: string; received: number; expected: number; accuracy: { lower: { verdict: string } } | null }> };
    expect(body.from).toBe(new Date(NOW_MS - 7 * DAY_MS).toISOString());
    expect(body.to).toBe(new Date(NOW_MS).toISOString());
    expect(body.convention).toBe('error = (indicated − reference) / reference × 100 %');
    expect(body.meters.map((m) => m.meterId)).toEqual(['T-REF', 'T-DUT', 'T-MON']);
    expect(body.meters[2]).toMatchObject({ received: 0, expected: 2016, accuracy: null }); // 7 days / 5 min
    expect(body.meters[1]?.accuracy?.lower.verdict).toBe('insufficient');
  });

  it('documents the routes in OpenAPI', async () => {
    const doc = (await app.inject('/docs/json')).json() as { paths: Record<string, { get: { description?: string } }> };
    expect(doc.paths['/api/v1/metrics']?.get.description).toContain('indicated minus reference, over reference, in %');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/meters/{id}/error-curve', '/api/v1/reports/metrics.csv', '/api/v1/reports/readings.csv']));
  });

  it('streams an empty readings.csv with its header and a file name', async () => {
    const response = await app.inject('/api/v1/reports/readings.csv?meter=T-REF&from=2026-11-20T00:00:00Z&to=2026-11-22T12:00:00Z');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toBe('attachment; filename="T-REF_readings_2026-11-20_2026-11-22.csv"');
    expect(response.body).toBe('meter,ts,flow_m3h,total_m3,total_reverse_m3,velocity_mps,pressure_bar,temperature_c,battery_pct,rssi_dbm,seq,alarms,received_at\r\n');
    expect(queries).toHaveLength(3); // one query per day: 20th, 21st, half of the 22nd
  });
});

describe('GET /api/v1/metrics?per=day and the PDF report', () => {
  it('answers every local day of the window in one call, days cut to the window', async () => {
    const response = await app.inject('/api/v1/metrics?from=2026-11-23T12:00:00Z&to=2026-11-25T00:00:00Z&per=day');
    expect(response.statusCode).toBe(200);
    const body = response.json() as { per: string; timezone: string; clamped: boolean; days: Array<{ date: string; from: string; to: string; meters: Array<{ meterId: string }> }> };
    expect(body).toMatchObject({ per: 'day', timezone: 'Asia/Almaty', clamped: false });
    // Asia/Almaty is UTC+5: 17:00 on the 23rd, the 24th, and the 25th until 05:00.
    expect(body.days.map((d) => [d.date, d.from, d.to])).toEqual([
      ['2026-11-23', '2026-11-23T12:00:00.000Z', '2026-11-23T19:00:00.000Z'],
      ['2026-11-24', '2026-11-23T19:00:00.000Z', '2026-11-24T19:00:00.000Z'],
      ['2026-11-25', '2026-11-24T19:00:00.000Z', '2026-11-25T00:00:00.000Z'],
    ]);
    expect(body.days[1]?.meters.map((m) => m.meterId)).toEqual(['T-REF', 'T-DUT', 'T-MON']);
  });

  it('clamps a `to` later than now and says so', async () => {
    const body = (await app.inject('/api/v1/metrics?from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z')).json() as { to: string; clamped: boolean };
    expect(body).toMatchObject({ to: new Date(NOW_MS).toISOString(), clamped: true });
  });

  it('answers a PDF whose InfluxDB is down with 503 ERR_INFLUX_UNAVAILABLE, not 500', async () => {
    await app.close();
    const down: InfluxClient = {
      config: { url: 'http://influx.invalid', database: 'test' },
      ping: async () => ({ version: 'fake' }),
      ensureDatabase: async () => {},
      write: async () => {},
      query: async () => {
        throw new FlowPilotError('ERR_INFLUX_UNAVAILABLE', 'InfluxDB at http://10.0.0.9:8086 could not be reached for query (ECONNREFUSED)');
      },
    };
    app = await createApi({ pilot: testPilot(), influx: down, liveFeed: createMemoryLiveFeed(), clock: () => NOW_MS, maxWindowDays: 30 });
    const error = await errorOf('/api/v1/reports/pilot.pdf');
    expect(error).toMatchObject({ status: 503, code: 'ERR_INFLUX_UNAVAILABLE' });
    expect(error.message).not.toContain('10.0.0.9');
  });
});

describe('pure helpers', () => {
  it('chunkBounds cuts [from, to) at multiples of the chunk', () => {
    // from 10, to 35, chunk 10: [10,20) [20,30) [30,35)
    expect(chunkBounds(10, 35, 10)).toEqual([
      [10, 20],
      [20, 30],
      [30, 35],
    ]);
    // from 5 (mid-chunk): [5,10) then whole chunks
    expect(chunkBounds(5, 20, 10)).toEqual([
      [5, 10],
      [10, 20],
    ]);
    expect(chunkBounds(5, 5, 10)).toEqual([]);
  });

  it('resolveWindow applies the defaults', () => {
    expect(resolveWindow({}, 10 * DAY_MS, 7, 30)).toEqual({ fromMs: 3 * DAY_MS, toMs: 10 * DAY_MS });
    expect(resolveWindow({ from: DAY_MS }, 10 * DAY_MS, 7, 30)).toEqual({ fromMs: DAY_MS, toMs: 10 * DAY_MS });
  });

  it('metricsCsvRow has one value per header column', () => {
    const metrics: ApiMeterMetrics = {
      meterId: 'M',
      role: 'monitor',
      reference: null,
      window: { fromMs: 0, toMs: DAY_MS },
      intervalSec: 60,
      expected: 1440,
      received: 0,
      completeness: 0,
      delivery: null,
      seq: { distinct: 0, produced: 0, restarts: 0 },
      gaps: { count: 1, longestMs: DAY_MS, totalMs: DAY_MS, thresholdMs: 180_000, longest: { fromMs: 0, toMs: DAY_MS } },
      latencyMs: { count: 0, p50: null, p95: null, p99: null, max: null, backfilled: { count: 0, share: null, maxMs: null }, replayed: 0 },
      volumeM3: 0,
      totalizerResets: 0,
      flow: { count: 0, meanM3h: null, minM3h: null, maxM3h: null },
      minNightFlow: { minM3h: null, minNight: null, minReverseM3: null, latestM3h: null, latestNight: null, latestReverseM3: null, nights: 0, byNight: [] },
      totalizerConsistency: { percent: null, integralM3: 0, volumeM3: 0, pairs: 0, skippedPairs: { gap: 0, reset: 0 } },
      alarms: { reverse_flow: 0, empty_pipe: 0, leak: 0, tamper: 0, low_battery: 0, sensor_fault: 0, overload: 0 },
      rejected: { ERR_READING_SCHEMA: 2 },
      accuracy: null,
    };
    const row = metricsCsvRow(metrics);
    expect(row).toHaveLength(METRICS_CSV_HEADER.length);
    expect(row.slice(0, 6)).toEqual(['M', 'monitor', null, '1970-01-01T00:00:00.000Z', '1970-01-02T00:00:00.000Z', 60]);
    expect(row).toContain('ERR_READING_SCHEMA=2');
    // SPEC section 4: unknown (null) is an empty cell, known and none is 0.
    const at = METRICS_CSV_HEADER.indexOf('rejected');
    expect(metricsCsvRow({ ...metrics, rejected: null })[at]).toBeNull();
    expect(metricsCsvRow({ ...metrics, rejected: {} })[at]).toBe(0);
    // SPEC section 4: latency over the readings that arrived alone, then the backfilled and the replayed beside it.
    const latencyMs = { count: 3, p50: 100, p95: 300, p99: 300, max: 300, backfilled: { count: 1, share: 0.2, maxMs: 3_600_000 }, replayed: 1 };
    const from = METRICS_CSV_HEADER.indexOf('latency_p50_ms');
    expect(METRICS_CSV_HEADER.slice(from, from + 9)).toEqual([
      'latency_p50_ms',
      'latency_p95_ms',
      'latency_p99_ms',
      'latency_max_ms',
      'latency_readings',
      'backfilled_readings',
      'backfilled_share',
      'backfilled_max_delay_ms',
      'replayed_readings',
    ]);
    expect(metricsCsvRow({ ...metrics, latencyMs }).slice(from, from + 9)).toEqual([100, 300, 300, 300, 3, 1, 0.2, 3_600_000, 1]);
  });
});

describe('rejected (SPEC section 4: an unknown count is null, never 0)', () => {
  const emptyInflux: InfluxClient = {
    config: { url: 'http://influx.invalid', database: 'test' },
    ping: async () => ({ version: 'fake' }),
    ensureDatabase: async () => {},
    write: async () => {},
    query: async (): Promise<InfluxSeries[]> => [],
  };
  const rejectedOf = async (api: FastifyInstance, url: string): Promise<unknown[]> => {
    const response = await api.inject(url);
    expect(response.statusCode).toBe(200);
    const body = response.json() as { meters?: Array<{ rejected: unknown }>; days?: Array<{ meters: Array<{ rejected: unknown }> }> };
    return [...(body.meters ?? []), ...(body.days ?? []).flatMap((d) => d.meters)].map((m) => m.rejected);
  };

  it('answers rejected: null for every meter without a rejections provider (an API away from the dead-letter store)', async () => {
    // `app` of beforeEach has no provider.
    expect(await rejectedOf(app, '/api/v1/metrics')).toEqual([null, null, null]);
    const daily = await rejectedOf(app, '/api/v1/metrics?from=2026-11-23&to=2026-11-25&per=day');
    expect(daily.length).toBeGreaterThan(0);
    expect(new Set(daily)).toEqual(new Set([null]));
  });

  it('answers {} with a provider and no rejections, the counts with some', async () => {
    const withStore = await createApi({
      pilot: testPilot(),
      influx: emptyInflux,
      liveFeed: createMemoryLiveFeed(),
      clock: () => NOW_MS,
      rejections: () => ({ 'T-MON': { ERR_READING_SCHEMA: 3 } }),
    });
    try {
      expect(await rejectedOf(withStore, '/api/v1/metrics')).toEqual([{}, {}, { ERR_READING_SCHEMA: 3 }]);
    } finally {
      await withStore.close();
    }
  });
});
