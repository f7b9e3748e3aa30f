import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { Aedes } from 'aedes';
import { createApi, createMqttLiveFeed } from '@flowpilot/api';
import type { ApiOptions, LiveFeed } from '@flowpilot/api';
import { createInfluxClient, quoteIdentifier, readingLine } from '@flowpilot/influx';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { InfluxClient } from '@flowpilot/influx';
import type { PilotConfig, Reading } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { dashboardPilot, dashboardReadings } from './pilot-data.ts';
import { pollUntil } from './wait.ts';

/** The real API over a real influxd database and a real broker, with the dashboard pilot's history written through line protocol. */
export interface DashboardWorld {
  pilot: PilotConfig;
  influx: InfluxClient;
  app: FastifyInstance;
  baseUrl: string;
  mqttUrl: string;
  readings: Reading[];
  close(): Promise<void>;
}


/** `api`: more createApi options (e.g. the report's provenance); the pilot, InfluxDB and live feed are the world's. */
export async function startDashboardWorld(history: { fromMs: number; toMs: number }, api: Partial<ApiOptions> = {}): Promise<DashboardWorld> {
  const pilot = dashboardPilot();
  // Its own database (STYLE habit 9), shared by the tests of one file (a browser and a world per
  // test would double the run time) and dropped in close(); createTestInflux binds to one test.
  const influx = createInfluxClient({ url: inject('influxUrl'), database: `test_${randomBytes(6).toString('hex')}`, timeoutMs: 30_000 });
  await influx.ensureDatabase();
  const readings = dashboardReadings(pilot, history);
  const siteOf = new Map(pilot.meters.map((m) => [m.id, m.site]));
  const lines = readings.map((r) => readingLine(r, siteOf.get(r.meterId) ?? 'x', r.tsMs + 800));
  for (let i = 0; i < lines.length; i += 5000) await influx.write(lines.slice(i, i + 5000));

  const broker = await Aedes.createBroker();
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const mqttUrl = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const feed: LiveFeed = createMqttLiveFeed({ mqttUrl, pilot, reconnectPeriodMs: 200 });
  // A bounded wait, not an assertion, as before: the feed keeps reconnecting every 200 ms.
  await pollUntil(() => feed.connected(), Boolean, { timeoutMs: 5000 });

  const app = await createApi({ ...api, pilot, influx, liveFeed: feed });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    pilot,
    influx,
    app,
    baseUrl,
    mqttUrl,
    readings,
    async close() {
      await app.close();
      await feed.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await influx.query(`DROP DATABASE ${quoteIdentifier(influx.config.database)}`).catch(() => {});
    },
  };
}
