import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { Aedes } from 'aedes';
import type { InfluxClient } from '@flowpilot/influx';
import { toWireReading } from '@flowpilot/schema';
import type { MeterStatus, Reading } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestInflux } from '../../../test/helpers/influx.ts';
import { eventually } from '../../../test/helpers/wait.ts';
import type { LiveReading } from './api-schemas.ts';
import { createApi } from './app.ts';
import { liveFeedContract } from './live-feed-contract.ts';
import { createMqttLiveFeed } from './live-feed.ts';
import type { LiveFeed } from './live-feed.ts';
import { testPilot } from './test-pilot.ts';

// The live side over real parts (SPEC section 5): an Aedes broker on a free loopback port, the
// MQTT live feed, the API listening on port 0, a meter publishing with MQTT.js and an SSE client
// reading the raw HTTP stream.

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface World {
  broker: Aedes;
  server: Server;
  mqttUrl: string;
  feed: LiveFeed;
  app: FastifyInstance;
  baseUrl: string;
  influx: InfluxClient;
}

async function startBroker(): Promise<{ broker: Aedes; server: Server; mqttUrl: string }> {
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { broker, server, mqttUrl: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function stopBroker(broker: Aedes, server: Server): Promise<void> {
  if (!broker.closed) await new Promise<void>((resolve) => broker.close(() => resolve()));
  if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function startWorld(): Promise<World> {
  const influx = await createTestInflux();
  const { broker, server, mqttUrl } = await startBroker();
  cleanups.push(() => stopBroker(broker, server));
  const feed = createMqttLiveFeed({ mqttUrl, pilot: testPilot(), reconnectPeriodMs: 200 });
  cleanups.push(() => feed.close());
  await eventually(() => feed.connected(), Boolean, 5000, 'the live feed to connect');
  const app = await createApi({ pilot: testPilot(), influx, liveFeed: feed });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => app.close());
  return { broker, server, mqttUrl, feed, app, baseUrl: address, influx };
}

async function meter(mqttUrl: string, id: string): Promise<MqttClient> {
  const client = await connectAsync(mqttUrl, { protocolVersion: 4, clientId: `meter-${id}`, reconnectPeriod: 0 });
  cleanups.push(() => client.endAsync(true));
  return client;
}

function reading(meterId: string, seq: number, flowM3h: number): Reading {
  return { meterId, seq, tsMs: Date.now() - 1000, flowM3h, totalM3: 1000 + seq, pressureBar: 3.1, alarms: [] };
}

async function publish(client: MqttClient, payload: unknown, meterId: string): Promise<void> {
  await client.publishAsync(`meters/${meterId}/readings`, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 });
}

/** A plain HTTP client of the event stream: collects `event: reading` data and comment lines. */
interface SseClient {
  response: IncomingMessage;
  readings: LiveReading[];
  comments: string[];
  close(): void;
}

async function openSse(url: string): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { accept: 'text/event-stream' } }, (response) => {
      const client: SseClient = { response, readings: [], comments: [], close: () => req.destroy() };
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          for (const line of lines) if (line.startsWith(':')) client.comments.push(line.slice(1).trim());
          if (lines.includes('event: reading')) {
            const data = lines.find((line) => line.startsWith('data: '));
            if (data) client.readings.push(JSON.parse(data.slice('data: '.length)) as LiveReading);
          }
        }
        // The first comment arrives once the server has attached its listener.
        if (client.comments.includes('connected')) resolve(client);
      });
      response.on('error', () => {});
    });
    req.on('error', reject);
    req.end();
    cleanups.push(async () => req.destroy());
  });
}

describe('GET /api/v1/live over a real broker', () => {
  it('streams a reading published by an MQTT.js meter within 5 s, and ?meter= filters other meters out', async () => {
    const world = await startWorld();
    const all = await openSse(`${world.baseUrl}/api/v1/live`);
    const onlyDut = await openSse(`${world.baseUrl}/api/v1/live?meter=T-DUT`);
    expect(all.response.statusCode).toBe(200);
    expect(all.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(world.feed.listenerCount()).toBe(2);

    const ref = await meter(world.mqttUrl, 'T-REF');
    const dut = await meter(world.mqttUrl, 'T-DUT');
    const started = Date.now();
    await publish(ref, toWireReading(reading('T-REF', 7, 42.5)), 'T-REF');
    await eventually(() => all.readings.length, (n) => n >= 1, 5000, 'the T-REF reading on the unfiltered stream');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(all.readings[0]).toMatchObject({ meterId: 'T-REF', seq: 7, flow: 42.5, total: 1007, pressure: 3.1, alarms: [] });
    expect(typeof all.readings[0]?.receivedAt).toBe('string');

    await publish(dut, toWireReading(reading('T-DUT', 8, 41.9)), 'T-DUT');
    await eventually(() => onlyDut.readings.length, (n) => n >= 1, 5000, 'the T-DUT reading on the filtered stream');
    await eventually(() => all.readings.length, (n) => n >= 2, 5000, 'the T-DUT reading on the unfiltered stream');
    // The T-REF reading reached the feed before T-DUT's, so a broken filter would have shown it first.
    expect(onlyDut.readings.map((r) => r.meterId)).toEqual(['T-DUT']);

    // Rejected readings are skipped without a word (the broker dead-letters them, SPEC section 1).
    await publish(ref, '{"v": 1, "meterId": "T-REF"', 'T-REF');
    await publish(ref, toWireReading(reading('T-DUT', 9, 1)), 'T-REF');
    await publish(ref, toWireReading(reading('T-REF', 10, 43)), 'T-REF');
    await eventually(() => all.readings.length, (n) => n >= 3, 5000, 'the next valid reading');
    expect(all.readings.map((r) => r.seq)).toEqual([7, 8, 10]);

    // The live status of /pilot now comes from the feed.
    const pilot = (await (await fetch(`${world.baseUrl}/api/v1/pilot`)).json()) as { meters: Array<{ id: string; online: boolean; lastReading: { seq: number } | null }> };
    expect(pilot.meters.find((m) => m.id === 'T-REF')).toMatchObject({ online: true, lastReading: { seq: 10 } });

    // Disconnecting clients take their listeners with them.
    all.close();
    onlyDut.close();
    await eventually(() => world.feed.listenerCount(), (n) => n === 0, 5000, 'the SSE listeners to be removed');
  });

  it('takes online from the retained status message the broker hands over at start', async () => {
    const { broker, server, mqttUrl } = await startBroker();
    cleanups.push(() => stopBroker(broker, server));
    const mon = await meter(mqttUrl, 'T-MON');
    await mon.publishAsync('meters/T-MON/status', JSON.stringify({ online: false, firmware: '1.2.3' }), { qos: 1, retain: true });
    const feed = createMqttLiveFeed({ mqttUrl, pilot: testPilot() });
    cleanups.push(() => feed.close());
    await eventually(() => feed.state('T-MON')?.status, (s) => s !== undefined, 5000, 'the retained status');
    expect(feed.state('T-MON')?.status).toMatchObject({ meterId: 'T-MON', online: false, firmware: '1.2.3' });
  });

  it('ends open streams when the app closes', async () => {
    const world = await startWorld();
    const client = await openSse(`${world.baseUrl}/api/v1/live`);
    const ended = new Promise<void>((resolve) => client.response.on('end', () => resolve()));
    await world.app.close();
    await ended;
    expect(world.feed.listenerCount()).toBe(0);
  });
});

describe('GET /readyz over real parts', () => {
  it('answers 200 with influxd and the broker up, and 503 once the broker is closed', async () => {
    const world = await startWorld();
    const ready = await fetch(`${world.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ok', checks: { influx: { ok: true }, broker: { ok: true } } });

    await stopBroker(world.broker, world.server);
    const degraded = await eventually(() => fetch(`${world.baseUrl}/readyz`), (r) => r.status === 503, 5000, '/readyz to answer 503');
    expect(await degraded.json()).toEqual({ status: 'degraded', checks: { influx: { ok: true, version: expect.any(String) }, broker: { ok: false } } });
  });
});

/** A status as a meter publishes it on `meters/{id}/status` (SPEC section 1). */
function wireStatus(status: MeterStatus): string {
  return JSON.stringify({ online: status.online, ts: new Date(status.tsMs).toISOString(), ...(status.firmware === undefined ? {} : { firmware: status.firmware }) });
}

// The MQTT feed against a real Aedes broker on a free loopback port: every meter message is a
// QoS 1 publish of MQTT.js (statuses retained), and the feed gets what the broker forwards.
liveFeedContract('over MQTT (createMqttLiveFeed and an Aedes broker)', async (options = {}) => {
  const { broker, server, mqttUrl } = await startBroker();
  let feed: LiveFeed | undefined;
  let meters: MqttClient | undefined;
  const dispose = async () => {
    await feed?.close();
    await meters?.endAsync(true);
    await stopBroker(broker, server);
  };
  try {
    const publisher = await connectAsync(mqttUrl, { protocolVersion: 4, clientId: 'contract-meters', reconnectPeriod: 0 });
    meters = publisher;
    const publishStatus = async (status: MeterStatus) => {
      await publisher.publishAsync(`meters/${status.meterId}/status`, wireStatus(status), { qos: 1, retain: true });
    };
    for (const status of options.statusesBeforeStart ?? []) await publishStatus(status);
    // Connected is not yet subscribed: the world is ready once the broker has the feed's subscription.
    let subscribed = false;
    broker.on('subscribe', (_subscriptions, client) => {
      if (client?.id === 'contract-feed') subscribed = true;
    });
    const started = createMqttLiveFeed({ mqttUrl, pilot: testPilot(), reconnectPeriodMs: 200, clientId: 'contract-feed' });
    feed = started;
    await eventually(() => subscribed && started.connected(), Boolean, 5000, 'the live feed to connect and subscribe');
    return {
      feed: started,
      publishReading: (r) => publish(publisher, toWireReading(r), r.meterId),
      publishStatus,
      publishPayload: (meterId, payload) => publish(publisher, payload, meterId),
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
});
