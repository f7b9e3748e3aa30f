import { FlowPilotError } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApi } from './app.ts';
import { withoutAddresses } from './routes/health.ts';
import type { InfluxClient, InfluxSeries } from '@flowpilot/influx';
import { createMemoryLiveFeed } from './live-feed.ts';
import type { MemoryLiveFeed } from './live-feed.ts';
import { testPilot } from './test-pilot.ts';

// Request validation and error shapes only (SPEC section 5): answers that never reach InfluxDB,
// or whose InfluxDB failure is the point. The data itself is tested against a real influxd in
// app.int.test.ts.

const NOW_MS = Date.parse('2026-11-25T12:00:00.000Z');

function fakeInflux(query: (influxql: string) => Promise<InfluxSeries[]> = async () => []): InfluxClient & { queries: string[] } {
  const queries: string[] = [];
  return {
    config: { url: 'http://influx.invalid', database: 'test' },
    queries,
    ping: async () => ({ version: 'fake' }),
    ensureDatabase: async () => {},
    write: async () => {},
    query: async (influxql) => {
      queries.push(influxql);
      return query(influxql);
    },
  };
}

let app: FastifyInstance;
let feed: MemoryLiveFeed;
let influx: ReturnType<typeof fakeInflux>;

async function build(query?: (influxql: string) => Promise<InfluxSeries[]>, ping?: () => Promise<{ version: string }>) {
  await app?.close();
  influx = fakeInflux(query);
  if (ping) influx.ping = ping;
  app = await createApi({ pilot: testPilot(), influx, liveFeed: feed, clock: () => NOW_MS, maxWindowDays: 30 });
  return app;
}

beforeEach(async () => {
  feed = createMemoryLiveFeed(() => NOW_MS);
  await build();
});
afterEach(async () => {
  await app.close();
});

async function get(url: string) {
  const response = await app.inject({ method: 'GET', url });
  return { status: response.statusCode, body: response.json() as { error: { code: string; message: string } } };
}

describe('request validation', () => {
  it('answers 400 ERR_VALIDATION naming "from" when it is not a time', async () => {
    const { status, body } = await get('/api/v1/meters/T-REF/readings?from=yesterday');
    expect(status).toBe(400);
    expect(body.error.code).toBe('ERR_VALIDATION');
    expect(body.error.message).toMatch(/^Query parameter "from" must be an ISO 8601 time/);
    expect(influx.queries).toEqual([]);
  });

  it('accepts epoch milliseconds and ISO times with an offset, and refuses a local time without one', async () => {
    expect((await get(`/api/v1/meters/T-REF/readings?from=${NOW_MS - 3_600_000}&to=${NOW_MS}`)).status).toBe(200);
    expect((await get('/api/v1/meters/T-REF/readings?from=2026-11-25T10:00:00%2B06:00&to=2026-11-25T12:00:00Z')).status).toBe(200);
    const local = await get('/api/v1/meters/T-REF/readings?from=2026-11-25T10:00:00');
    expect(local.status).toBe(400);
    expect(local.body.error.message).toContain('"from"');
  });

  it('answers 400 when "to" is before "from"', async () => {
    const { status, body } = await get('/api/v1/meters/T-REF/readings?from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z');
    expect(status).toBe(400);
    expect(body.error).toEqual({
      code: 'ERR_VALIDATION',
      message: 'Query parameter "to" (2026-11-25T09:00:00.000Z) must be after "from" (2026-11-25T10:00:00.000Z)',
    });
  });

  it('answers 400 for a "from" in the future without "to" (to defaults to now)', async () => {
    const { status, body } = await get('/api/v1/meters/T-REF/readings?from=2026-11-26T00:00:00Z');
    expect(status).toBe(400);
    expect(body.error.message).toContain('"to" (now, 2026-11-25T12:00:00.000Z)');
  });

  it('answers 400 for a window longer than maxWindowDays', async () => {
    const { status, body } = await get('/api/v1/meters/T-REF/readings?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z');
    expect(status).toBe(400);
    expect(body.error.code).toBe('ERR_VALIDATION');
    expect(body.error.message).toMatch(/spans 59 days; the longest is 30 days/);
  });

  it('answers 400 naming "every" when it is not a duration', async () => {
    for (const every of ['5', '1w', '0m', 'abc']) {
      const { status, body } = await get(`/api/v1/meters/T-REF/readings?every=${every}`);
      expect(status).toBe(400);
      expect(body.error.message).toMatch(/^Query parameter "every" must be a duration such as 30s/);
    }
  });

  it('answers 400 when "every" would make too many buckets', async () => {
    const { status, body } = await get('/api/v1/meters/T-REF/readings?from=2026-10-27T00:00:00Z&to=2026-11-25T00:00:00Z&every=1s');
    expect(status).toBe(400);
    expect(body.error.message).toMatch(/"every" \(1s\) splits the window into 2505600 buckets/);
  });

  it('answers 400 for /live with a meter the pilot does not have', async () => {
    const { status, body } = await get('/api/v1/live?meter=T-REF,NOPE');
    expect(status).toBe(400);
    expect(body.error.code).toBe('ERR_VALIDATION');
    expect(body.error.message).toMatch(/^Query parameter "meter" must name meters of the pilot .*unknown: "NOPE"/);
  });
});

describe('error shapes', () => {
  it('answers 404 ERR_METER_NOT_FOUND for a meter the pilot does not have', async () => {
    for (const url of ['/api/v1/meters/NOPE', '/api/v1/meters/NOPE/readings']) {
      const { status, body } = await get(url);
      expect(status).toBe(404);
      expect(body.error.code).toBe('ERR_METER_NOT_FOUND');
      expect(body.error.message).toContain('"NOPE"');
    }
  });

  it('answers 404 ERR_NOT_FOUND for an unknown route, in the error shape', async () => {
    const { status, body } = await get('/api/v2/nothing?x=1');
    expect(status).toBe(404);
    expect(body).toEqual({ error: { code: 'ERR_NOT_FOUND', message: 'No route GET /api/v2/nothing. See /docs for the API.' } });
  });

  it('answers a malformed URL in the error shape too', async () => {
    const { status, body } = await get('/api/v1/meters/%E0%A4%A');
    expect(status).toBe(400);
    expect(body.error.code).toBe('ERR_VALIDATION');
  });

  it('answers 503 ERR_INFLUX_UNAVAILABLE when InfluxDB cannot be reached', async () => {
    await build(async () => {
      throw new FlowPilotError('ERR_INFLUX_UNAVAILABLE', 'InfluxDB at http://10.0.0.9:8086 could not be reached for query (ECONNREFUSED)');
    });
    const { status, body } = await get('/api/v1/meters/T-REF/readings');
    expect(status).toBe(503);
    expect(body.error.code).toBe('ERR_INFLUX_UNAVAILABLE');
    expect(body.error.message).not.toContain('10.0.0.9');
  });

  it('answers 500 ERR_INTERNAL without the internals of an unexpected failure', async () => {
    await build(async () => {
      throw new Error('secret: connection string postgres://admin:hunter2@db');
    });
    const { status, body } = await get('/api/v1/meters/T-REF/readings');
    expect(status).toBe(500);
    expect(body).toEqual({ error: { code: 'ERR_INTERNAL', message: 'An internal error occurred. The server log has the details.' } });
  });

  it('still answers /pilot from the live feed when InfluxDB is down', async () => {
    await build(async () => {
      throw new FlowPilotError('ERR_INFLUX_UNAVAILABLE');
    });
    const response = await app.inject('/api/v1/pilot');
    expect(response.statusCode).toBe(200);
    expect(response.json().meters.map((m: { lastReading: unknown }) => m.lastReading)).toEqual([null, null, null]);
  });

  it('answers /readyz 503 degraded naming the failed checks, but no address', async () => {
    await build(undefined, async () => {
      throw new Error('InfluxDB at http://127.0.0.1:1 could not be reached for ping (ECONNREFUSED)');
    });
    feed.setConnected(false);
    const response = await app.inject('/readyz');
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({
      status: 'degraded',
      checks: { influx: { ok: false, error: 'InfluxDB at <address> could not be reached for ping (ECONNREFUSED)' }, broker: { ok: false } },
    });
    expect(response.body).not.toContain('127.0.0.1');
  });
});

describe('readiness names no address', () => {
  it('strips URLs, IPs and host:port from the reasons of extra checks too', async () => {
    const extra = await createApi({
      pilot: testPilot(),
      influx: fakeInflux(),
      liveFeed: feed,
      clock: () => NOW_MS,
      readinessChecks: { ingest: () => ({ ok: false, reason: 'InfluxDB writes fail: connect ECONNREFUSED 10.1.2.3:8086 (http://influx.lan:8086/write); readings wait in the durable store' }) },
    });
    try {
      const body = (await extra.inject('/readyz')).json() as { checks: { ingest: { reason: string } } };
      expect(body.checks.ingest.reason).toBe('InfluxDB writes fail: connect ECONNREFUSED <address> (<address>); readings wait in the durable store');
    } finally {
      await extra.close();
    }
  });

  it.each([
    ['getaddrinfo ENOTFOUND influx.internal', 'getaddrinfo ENOTFOUND <address>'],
    ['connect ECONNREFUSED ::1:8086', 'connect ECONNREFUSED <address>'],
    ['no answer from [fe80::1]:443 or db.example.com:8086.', 'no answer from <address> or <address>.'],
    ['waited 12:00 for the store at 2026-11-25T12:00:00Z', 'waited 12:00 for the store at 2026-11-25T12:00:00Z'],
  ])('%s → %s', (text, expected) => {
    expect(withoutAddresses(text)).toBe(expected);
  });
});

describe('documents and pages', () => {
  it('answers /healthz', async () => {
    const response = await app.inject('/healthz');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('serves the OpenAPI document at /docs/json, generated from the zod schemas', async () => {
    const response = await app.inject('/docs/json');
    expect(response.statusCode).toBe(200);
    const doc = response.json() as { openapi: string; paths: Record<string, { get: { parameters?: Array<{ name: string; in: string }> } }> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/v1/alerts',
      '/api/v1/deadletters',
      '/api/v1/deadletters/replay',
      '/api/v1/live',
      '/api/v1/meters/{id}',
      '/api/v1/meters/{id}/error-curve',
      '/api/v1/meters/{id}/intervals.csv',
      '/api/v1/meters/{id}/readings',
      '/api/v1/metrics',
      '/api/v1/pilot',
      '/api/v1/reports/metrics.csv',
      '/api/v1/reports/metrics.xlsx',
      '/api/v1/reports/pilot.pdf',
      '/api/v1/reports/readings.csv',
      '/api/v1/reports/readings.xlsx',
      '/api/v1/session',
      '/healthz',
      '/readyz',
    ]);
    const readings = doc.paths['/api/v1/meters/{id}/readings']?.get;
    expect(readings?.parameters?.map((p) => `${p.in}:${p.name}`).sort()).toEqual(['path:id', 'query:every', 'query:from', 'query:to']);
    expect(JSON.stringify(doc)).toContain('m³/h');
  });

  it('serves the Swagger UI at /docs', async () => {
    const response = await app.inject('/docs');
    expect(response.statusCode).toBeLessThan(400);
  });

  it('serves the dashboard at / and its script', async () => {
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('/dashboard.js');
    const script = await app.inject('/dashboard.js');
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toContain('javascript');
    expect(script.body).toContain('/api/v1/live');
  });
});
