import { randomBytes } from 'node:crypto';
import { createInfluxClient, createReadingsRepository, dropDatabase, readingLine } from '@flowpilot/influx';
import type { InfluxClient } from '@flowpilot/influx';
import { createHttpMetricsSource } from '@flowpilot/report';
import type { MetricsSource } from '@flowpilot/report';
import type { PilotConfig } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { metricsSourceContract } from '../../../packages/report/src/metrics-source-contract.ts';
import type { MetricsSourceFixture } from '../../../packages/report/src/metrics-source-contract.ts';
import { dashboardPilot, dashboardReadings } from '../../../test/helpers/pilot-data.ts';
import { createApi } from './app.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import { createMetricsService } from './metrics-service.ts';
import { createInProcessMetricsSource } from './metrics-source.ts';

// Both MetricsSources (the API's in-process one for the PDF route, @flowpilot/report's HTTP one
// for `flowpilot report --api`) over the same influxd data run the same contract (STYLE habit 8),
// and answer the same numbers.

const DAY_MS = 86_400_000;
const NOW_MS = Date.parse('2026-11-20T00:00:00Z');
const MAX_WINDOW_DAYS = 30;
const pilot: PilotConfig = dashboardPilot();
// Two days from 06:00 local: three local days, the first and last cut to the window.
const fromMs = Date.parse('2026-11-10T06:00:00+05:00');
const fixture: MetricsSourceFixture = {
  meterIds: pilot.meters.map((m) => m.id),
  timezone: pilot.pilot.timezone,
  testMeterId: 'D-DUT2',
  referenceMeterId: 'D-REF2',
  window: { fromMs, toMs: fromMs + 2 * DAY_MS },
  nowMs: NOW_MS,
  maxWindowDays: MAX_WINDOW_DAYS,
};

let influx: InfluxClient;
const apps: FastifyInstance[] = [];
const unreachable = createInfluxClient({ url: 'http://127.0.0.1:1', database: 'nowhere', timeoutMs: 2000 });

beforeAll(async () => {
  // One database for the file, dropped after it (each source only reads).
  influx = createInfluxClient({ url: inject('influxUrl'), database: `test_${randomBytes(6).toString('hex')}`, timeoutMs: 30_000 });
  await influx.ensureDatabase();
  const siteOf = new Map(pilot.meters.map((m) => [m.id, m.site]));
  const lines = dashboardReadings(pilot, { fromMs: fixture.window.fromMs - 5 * 60_000, toMs: fixture.window.toMs + 5 * 60_000 }).map((r) => readingLine(r, siteOf.get(r.meterId) ?? 'x', r.tsMs + 800));
  for (let i = 0; i < lines.length; i += 5000) await influx.write(lines.slice(i, i + 5000));
});
afterAll(async () => {
  for (const app of apps.splice(0)) await app.close();
  await dropDatabase(influx);
});

function inProcess(client: InfluxClient): MetricsSource {
  // As createApi builds the PDF route's source: InfluxDB read directly, no reading cache.
  const service = createMetricsService({ pilot, readings: createReadingsRepository(client), readingCache: false });
  return createInProcessMetricsSource(service, { clock: () => NOW_MS, maxWindowDays: MAX_WINDOW_DAYS, timezone: pilot.pilot.timezone });
}

async function overHttp(client: InfluxClient): Promise<MetricsSource> {
  const app = await createApi({ pilot, influx: client, liveFeed: createMemoryLiveFeed(), clock: () => NOW_MS, maxWindowDays: MAX_WINDOW_DAYS });
  apps.push(app);
  return createHttpMetricsSource(await app.listen({ port: 0, host: '127.0.0.1' }));
}

/** The bytes of GET /api/v1/meters/{id}/intervals.csv from an API over the fixture's data (its cached metrics service, as the route has it). */
async function intervalsCsv(meterId: string, window: { fromMs: number; toMs: number }): Promise<Uint8Array> {
  const app = await createApi({ pilot, influx, liveFeed: createMemoryLiveFeed(), clock: () => NOW_MS, maxWindowDays: MAX_WINDOW_DAYS });
  apps.push(app);
  const response = await app.inject({ method: 'GET', url: `/api/v1/meters/${encodeURIComponent(meterId)}/intervals.csv?from=${window.fromMs}&to=${window.toMs}` });
  expect(response.statusCode).toBe(200);
  return response.rawPayload;
}

metricsSourceContract('in process (the API\'s metrics service)', fixture, { open: async () => inProcess(influx), openUnreachable: async () => inProcess(unreachable), intervalsCsv });
metricsSourceContract('over HTTP (createHttpMetricsSource against a listening API)', fixture, { open: () => overHttp(influx), openUnreachable: () => overHttp(unreachable), intervalsCsv });

describe('the two MetricsSources', () => {
  it('answer the same numbers', async () => {
    const [local, remote] = [inProcess(influx), await overHttp(influx)];
    expect(await remote.metrics(fixture.window)).toEqual(await local.metrics(fixture.window));
    expect(await remote.dailyMetrics(fixture.window)).toEqual(await local.dailyMetrics(fixture.window));
    expect(await remote.errorCurve(fixture.testMeterId, fixture.window)).toEqual(await local.errorCurve(fixture.testMeterId, fixture.window));
    expect(await remote.intervalsSha256(fixture.testMeterId, fixture.window)).toBe(await local.intervalsSha256(fixture.testMeterId, fixture.window));
  });

  it('over HTTP, a network failure is ERR_UNREACHABLE naming the address', async () => {
    const source = createHttpMetricsSource('http://127.0.0.1:1');
    await expect(source.metrics(fixture.window)).rejects.toMatchObject({ code: 'ERR_UNREACHABLE', message: expect.stringContaining('http://127.0.0.1:1') });
  });
});
