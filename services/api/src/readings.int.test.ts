import { createInfluxClient, readingLine } from '@flowpilot/influx';
import type { InfluxClient } from '@flowpilot/influx';
import type { Reading } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestInflux } from '../../../test/helpers/influx.ts';
import { createApi } from './app.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import { testPilot } from './test-pilot.ts';

// The API over a real influxd (SPEC sections 2 and 5): readings seeded with the ingest's own
// line protocol, read back through InfluxQL.

const HOUR_MS = 3_600_000;
// Three whole hours ago, so the data is inside the 30-day lookback of /pilot.
const BASE_MS = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 3 * HOUR_MS;

// Every 10 minutes over two hours. T-REF's flows make the hourly means easy to check by hand:
// hour 1: (10+20+30+40+50+60)/6 = 35, min 10, max 60; hour 2: (5+5+5+5+5+11)/6 = 6, min 5, max 11.
const REF_FLOWS = [10, 20, 30, 40, 50, 60, 5, 5, 5, 5, 5, 11];
// T-DUT: constant 1000 m³/h, to show that one meter's points never leak into the other's.
const DUT_FLOWS = REF_FLOWS.map(() => 1000);

function seedReadings(meterId: string, flows: readonly number[]): Reading[] {
  let totalM3 = 500;
  return flows.map((flowM3h, i) => {
    totalM3 += flowM3h / 6; // 10 minutes of flow
    const reading: Reading = { meterId, seq: 100 + i, tsMs: BASE_MS + i * 600_000, flowM3h, totalM3, alarms: [] };
    if (meterId === 'T-REF') Object.assign(reading, { pressureBar: 3.2, temperatureC: 11.5, batteryPct: 90, rssiDbm: -80 });
    if (i === flows.length - 1) reading.alarms = ['low_battery', 'leak'];
    return reading;
  });
}

let influx: InfluxClient;
let app: FastifyInstance;
const ref = seedReadings('T-REF', REF_FLOWS);
const dut = seedReadings('T-DUT', DUT_FLOWS);

beforeEach(async () => {
  influx = await createTestInflux();
  // received_at: 2 s after the measurement, as the ingest would stamp it.
  await influx.write([...ref, ...dut].map((r) => readingLine(r, 'S1', r.tsMs + 2000)));
  app = await createApi({ pilot: testPilot(), influx, liveFeed: createMemoryLiveFeed() });
});
afterEach(async () => {
  await app.close();
});

async function get<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await app.inject(url);
  return { status: response.statusCode, body: response.json() as T };
}

const window = `from=${new Date(BASE_MS).toISOString()}&to=${BASE_MS + 2 * HOUR_MS}`;

describe('GET /api/v1/meters/:id/readings against influxd', () => {
  it('returns the raw readings of one meter, oldest first, in the wire names', async () => {
    const { status, body } = await get<{ meterId: string; every: null; readings: Array<Record<string, unknown>> }>(`/api/v1/meters/T-REF/readings?${window}`);
    expect(status).toBe(200);
    expect(body.meterId).toBe('T-REF');
    expect(body.every).toBeNull();
    expect(body.readings.map((r) => r.flow)).toEqual(REF_FLOWS);
    expect(body.readings[0]).toEqual({
      ts: new Date(BASE_MS).toISOString(),
      flow: 10,
      total: ref[0]!.totalM3,
      pressure: 3.2,
      temperature: 11.5,
      battery: 90,
      rssi: -80,
      alarms: [],
      seq: 100,
      receivedAt: new Date(BASE_MS + 2000).toISOString(),
    });
    expect(body.readings.at(-1)?.alarms).toEqual(['leak', 'low_battery']);
  });

  it('treats the window as [from, to)', async () => {
    const { body } = await get<{ readings: Array<{ seq: number }> }>(
      `/api/v1/meters/T-REF/readings?from=${BASE_MS + 600_000}&to=${BASE_MS + 1_800_000}`,
    );
    expect(body.readings.map((r) => r.seq)).toEqual([101, 102]);
  });

  it('aggregates with every=1h into the hand-computed means, extremes, last totals and counts', async () => {
    const { status, body } = await get<{ every: string; buckets: unknown[] }>(`/api/v1/meters/T-REF/readings?${window}&every=1h`);
    expect(status).toBe(200);
    expect(body.every).toBe('1h');
    expect(body.buckets).toHaveLength(2);
    const [first, second] = body.buckets as Array<{ ts: string; flow: number; flowMin: number; flowMax: number; total: number; count: number }>;
    expect(first).toMatchObject({ ts: new Date(BASE_MS).toISOString(), flowMin: 10, flowMax: 60, total: ref[5]!.totalM3, count: 6 });
    expect(first!.flow).toBeCloseTo(35, 9);
    expect(second).toMatchObject({ ts: new Date(BASE_MS + HOUR_MS).toISOString(), flowMin: 5, flowMax: 11, total: ref[11]!.totalM3, count: 6 });
    expect(second!.flow).toBeCloseTo(6, 9);

    const other = await get<{ buckets: Array<{ flow: number; count: number }> }>(`/api/v1/meters/T-DUT/readings?${window}&every=1h`);
    expect(other.body.buckets.map((b) => [b.flow, b.count])).toEqual([
      [1000, 6],
      [1000, 6],
    ]);
  });

  it('answers 400 asking for "every" when the raw readings are over the cap, and not at the cap', async () => {
    await app.close();
    app = await createApi({ pilot: testPilot(), influx, liveFeed: createMemoryLiveFeed(), maxRawReadings: 12 });
    expect((await get(`/api/v1/meters/T-REF/readings?${window}`)).status).toBe(200);
    await app.close();
    app = await createApi({ pilot: testPilot(), influx, liveFeed: createMemoryLiveFeed(), maxRawReadings: 11 });
    const over = await get<{ error: { code: string; message: string } }>(`/api/v1/meters/T-REF/readings?${window}`);
    expect(over.status).toBe(400);
    expect(over.body.error.code).toBe('ERR_VALIDATION');
    expect(over.body.error.message).toMatch(/^More than 11 readings .* Pass "every"/);
  });

  it('answers 503 ERR_INFLUX_UNAVAILABLE when influxd does not answer', async () => {
    await app.close();
    const down = createInfluxClient({ url: 'http://127.0.0.1:1', database: 'nowhere', timeoutMs: 2000 });
    app = await createApi({ pilot: testPilot(), influx: down, liveFeed: createMemoryLiveFeed() });
    const { status, body } = await get<{ error: { code: string; message: string } }>(`/api/v1/meters/T-REF/readings`);
    expect(status).toBe(503);
    expect(body.error.code).toBe('ERR_INFLUX_UNAVAILABLE');
  });
});

describe('latest readings from influxd', () => {
  it('GET /api/v1/pilot gives each meter its newest stored reading when the live feed has none', async () => {
    const { status, body } = await get<{ id: string; meters: Array<{ id: string; online: boolean; lastSeen: string | null; lastReading: Record<string, unknown> | null }> }>(
      '/api/v1/pilot',
    );
    expect(status).toBe(200);
    expect(body.id).toBe('test-pilot');
    const byId = Object.fromEntries(body.meters.map((m) => [m.id, m]));
    expect(byId['T-REF']?.lastReading).toMatchObject({ ts: new Date(ref[11]!.tsMs).toISOString(), flow: 11, seq: 111, alarms: ['leak', 'low_battery'] });
    expect(byId['T-REF']?.lastSeen).toBe(new Date(ref[11]!.tsMs + 2000).toISOString());
    // Its last reading arrived ~1 h 10 min ago: more than 3 intervals of 60 s.
    expect(byId['T-REF']?.online).toBe(false);
    expect(byId['T-DUT']?.lastReading).toMatchObject({ flow: 1000, seq: 111 });
    expect(byId['T-MON']).toMatchObject({ lastReading: null, lastSeen: null, online: false });
  });

  it('GET /api/v1/meters/:id gives one meter with its newest stored reading', async () => {
    const { status, body } = await get<{ id: string; role: string; reference: string; lastReading: { seq: number } }>('/api/v1/meters/T-DUT');
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: 'T-DUT', role: 'test', reference: 'T-REF', q3: 100 });
    expect(body.lastReading.seq).toBe(111);
  });
});
