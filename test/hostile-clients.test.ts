import { mkdtempSync, rmSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectAsync, type MqttClient } from 'mqtt';
import { openSessionPersistence, type BrokerLimits } from '@flowpilot/broker';
import { createTestInflux } from './helpers/influx.ts';
import { fixedHeader, nestedArrays } from './helpers/mqtt-bytes.ts';
import { connectMeter, makePilot, startTestPipeline, wireReading, type TestPipeline } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';

/**
 * A client is an adversary and a meter can be faulty (SPEC section 8): each attack here runs
 * over real sockets against a real broker, and each test ends by showing that an honest
 * meter's reading sent afterwards is still acknowledged and stored.
 */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Influx = Awaited<ReturnType<typeof createTestInflux>>;

async function hostileWorld(meterIds: string[], limits: Partial<BrokerLimits> = {}): Promise<{ pipeline: TestPipeline; influx: Influx; port: number }> {
  const influx = await createTestInflux();
  const pipeline = await startTestPipeline({ pilot: makePilot(meterIds), influx, broker: { limits: limits as BrokerLimits } });
  cleanups.push(() => pipeline.close());
  return { pipeline, influx, port: Number(new URL(pipeline.mqttUrl).port) };
}

async function meter(pipeline: TestPipeline, id: string, extra: Parameters<typeof connectMeter>[3] = {}): Promise<MqttClient> {
  const password = await pipeline.credentials.add(id, 'meter', `pw-${id}`);
  const client = await connectMeter(pipeline.mqttUrl, id, password, extra);
  cleanups.push(() => client.endAsync(true));
  return client;
}

/** An honest meter's reading, acknowledged and then found in InfluxDB: the pipeline goes on. */
async function expectHonestReadingStored(pipeline: TestPipeline, influx: Influx, id: string): Promise<void> {
  const client = await meter(pipeline, id);
  const tsMs = Date.now() - 60_000;
  await client.publishAsync(`meters/${id}/readings`, JSON.stringify(wireReading(id, 4242, tsMs)), { qos: 1 });
  await eventually(
    async () => (await influx.query(`SELECT seq FROM reading WHERE meter = '${id}'`))[0]?.values ?? [],
    (values) => values.some((row) => row[1] === 4242),
    15_000,
    (values) => `${values.length} points of ${id}`,
  );
}

/** A raw TCP connection to the broker; a reset by the broker is expected, not an error. */
function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', reject);
    cleanups.push(async () => socket.destroy());
  });
}

/** Whether the broker closed `socket` within `ms`. */

function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed || socket.readyState === 'closed') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('oversized and slow packets (raw TCP)', () => {
  it('closes a connection whose CONNECT announces 256 MiB before buffering its body, and stays small in memory', async () => {
    const { pipeline, influx, port } = await hostileWorld(['M1']);
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 10);
    const sockets = await Promise.all(Array.from({ length: 20 }, () => rawSocket(port)));
    const body = Buffer.alloc(512 * 1024, 0x41);
    for (const socket of sockets) {
      socket.write(fixedHeader(0x10, 268_435_455));
      socket.write(body);
    }
    const closed = await Promise.all(sockets.map((socket) => closedWithin(socket, 5_000)));
    clearInterval(sampler);
    const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
    console.log(`[oversized CONNECT ×20] test process (broker inside) RSS ${mib(rssBefore)} MiB before, peak ${mib(rssPeak)} MiB`);
    expect(closed.every(Boolean)).toBe(true);
    // Twenty 256 MiB CONNECTs buffered whole would be 5 GiB; what is left is the chunks in flight.
    expect(mib(rssPeak - rssBefore)).toBeLessThan(64);
    expect(pipeline.broker.stats().refusedByLimit.packet_size).toBe(20);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });

  it('closes a CONNECT over the pre-login limit and a PUBLISH over the packet limit after login', async () => {
    const { pipeline, influx, port } = await hostileWorld(['M1', 'M2'], { maxConnectBytes: 1024, maxPacketBytes: 64 * 1024 });
    const socket = await rawSocket(port);
    socket.write(fixedHeader(0x10, 2048));
    expect(await closedWithin(socket, 5_000)).toBe(true);

    const client = await meter(pipeline, 'M2');
    const closed = new Promise<void>((resolve) => client.stream.once('close', () => resolve()));
    // A PUBLISH header announcing 100 MiB, written under the MQTT client on its own socket.
    client.stream.write(fixedHeader(0x32, 100 * 2 ** 20));
    client.stream.write(Buffer.alloc(1024));
    await closed;
    expect(pipeline.broker.stats().refusedByLimit.packet_size).toBe(2);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });

  it('closes a connection that never completes its CONNECT (slowloris)', async () => {
    const { pipeline, influx, port } = await hostileWorld(['M1'], { connectTimeoutMs: 1_000 });
    const silent = await rawSocket(port);
    const trickling = await rawSocket(port);
    trickling.write(fixedHeader(0x10, 100));
    trickling.write(Buffer.from([0x00, 0x04]));
    expect(await closedWithin(silent, 5_000)).toBe(true);
    expect(await closedWithin(trickling, 5_000)).toBe(true);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });

  it('closes a connection whose remaining length is malformed (five bytes)', async () => {
    const { pipeline, influx, port } = await hostileWorld(['M1']);
    const socket = await rawSocket(port);
    socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(await closedWithin(socket, 5_000)).toBe(true);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });
});

describe('poison payloads from a meter with valid credentials', () => {
  it('acknowledges a 5,000- and a 100,000-deep nested reading as dead letters and goes on', async () => {
    const { pipeline, influx } = await hostileWorld(['M1', 'M2']);
    const client = await meter(pipeline, 'M2');
    for (const depth of [5_000, 100_000]) {
      await client.publishAsync('meters/M2/readings', `{"v":1,"meterId":"M2","x":${nestedArrays(depth)}}`, { qos: 1 });
    }
    await client.publishAsync('meters/M2/status', `{"online":true,"x":${nestedArrays(50_000)}}`, { qos: 1 });
    const letters = pipeline.store.listDeadLetters();
    expect(letters).toHaveLength(3);
    for (const letter of letters) expect(letter.reason.length).toBeGreaterThan(0);
    expect(client.connected).toBe(true);
    expect(pipeline.broker.stats().hookErrors).toBe(0);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });

  it('rejects absurd values as ERR_OUT_OF_RANGE and a status from year 3000, and forwards and retains neither', async () => {
    const { pipeline, influx } = await hostileWorld(['M1', 'M2']);
    const api = await pipeline.credentials.add('flowpilot-api', 'service', 'pw-api');
    const watcher = await connectAsync(pipeline.mqttUrl, { clientId: 'flowpilot-api:watch', username: 'flowpilot-api', password: api, protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => watcher.endAsync(true));
    const seen: string[] = [];
    watcher.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await watcher.subscribeAsync(['meters/+/readings', 'meters/+/status'], { qos: 1 });

    const client = await meter(pipeline, 'M2');
    const now = Date.now();
    await client.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 1, now - 60_000, { flow: 1.7e308 })), { qos: 1 });
    await client.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 2, now - 60_000, { total: 1e300 })), { qos: 1 });
    await client.publishAsync('meters/M2/status', JSON.stringify({ online: true, ts: '3000-01-01T00:00:00Z' }), { qos: 1, retain: true });
    await client.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 3, now - 60_000)), { qos: 1 });
    await eventually(async () => seen, (s) => s.length >= 1, 5_000, (s) => `${s.length} forwarded`);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const codes = pipeline.store.listDeadLetters().map((letter) => letter.code).sort();
    expect(codes).toEqual(['ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE', 'ERR_TS_FUTURE']);
    // Only the valid reading reached the live subscriber.
    expect(seen).toHaveLength(1);
    expect(seen[0]).toContain('"seq":3');

    // The rejected status was not retained: a new subscriber gets nothing for M2.
    const late = await connectAsync(pipeline.mqttUrl, { clientId: 'flowpilot-api:late', username: 'flowpilot-api', password: api, protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => late.endAsync(true));
    const retained: string[] = [];
    late.on('message', (topic) => retained.push(topic));
    await late.subscribeAsync('meters/+/status', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(retained).toEqual([]);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });
});

describe('last wills', () => {
  it('refuses a CONNECT whose will is on another meter\'s status or on any other topic (return code 5)', async () => {
    const { pipeline, influx } = await hostileWorld(['M1', 'M2', 'M3']);
    await pipeline.credentials.add('M2', 'meter', 'pw-M2');
    const will = (topic: string) => ({ will: { topic, payload: Buffer.from('{"online":false}'), qos: 1 as const, retain: true } });
    await expect(connectMeter(pipeline.mqttUrl, 'M2', 'pw-M2', will('meters/M3/status'))).rejects.toThrow(/Not authorized/);
    await expect(connectMeter(pipeline.mqttUrl, 'M2', 'pw-M2', will('alerts/everyone'))).rejects.toThrow(/Not authorized/);
    await expect(connectMeter(pipeline.mqttUrl, 'M2', 'pw-M2', will('meters/M2/readings'))).rejects.toThrow(/Not authorized/);
    const own = await connectMeter(pipeline.mqttUrl, 'M2', 'pw-M2', will('meters/M2/status'));
    cleanups.push(() => own.endAsync(true));
    expect(own.connected).toBe(true);
    expect(pipeline.broker.stats().refusedByLimit.will).toBe(3);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });
});

interface SessionStore {
  putWill(client: { id: string }, will: object): Promise<void>;
  streamWill(brokers: object): AsyncIterable<unknown>;
  destroy(): Promise<void>;
}

describe('a restart after poison and leftover wills', () => {
  it('survives leftover wills of a dead broker (bad payload, foreign topic), restarts on the same session data, and stores the meter\'s later readings', async () => {
    const influx = await createTestInflux();
    const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-hostile-'));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const pilot = makePilot(['M1', 'M2']);
    const start = () =>
      startTestPipeline({ pilot, influx, dataDir, broker: { persistence: openSessionPersistence(join(dataDir, 'broker-sessions')), heartbeatIntervalMs: 200 } });

    // What an earlier, killed broker left in the session store: wills with no client, one
    // with a payload that is no status, one on a topic that is no meter's.
    const earlier = openSessionPersistence(join(dataDir, 'broker-sessions')) as unknown as SessionStore;
    await earlier.putWill({ id: 'GHOST-1' }, { topic: 'meters/M2/status', payload: Buffer.from('not json'), qos: 1, retain: true });
    await earlier.putWill({ id: 'GHOST-2' }, { topic: 'alerts/everyone', payload: Buffer.from('{}'), qos: 1, retain: true });
    await earlier.destroy();

    const first = await start();
    const persistence = (first.broker.aedes as unknown as { persistence: SessionStore }).persistence;
    const m2 = await meter(first, 'M2', { will: { topic: 'meters/M2/status', payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
    await m2.publishAsync('meters/M2/readings', `{"v":1,"meterId":"M2","x":${nestedArrays(5_000)}}`, { qos: 1 });
    await eventually(
      async () => {
        const left: string[] = [];
        for await (const will of persistence.streamWill({})) left.push((will as { clientId: string }).clientId);
        return left.filter((id) => id.startsWith('GHOST'));
      },
      (left) => left.length === 0,
      10_000,
      (left) => `leftover wills not yet cleared: ${left.join(', ')}`,
    );
    expect(first.store.listDeadLetters().map((letter) => `${letter.topic} ${letter.code}`).sort()).toEqual(['meters/M2/readings ERR_READING_SCHEMA', 'meters/M2/status ERR_READING_JSON']);
    expect(first.broker.stats().hookErrors).toBe(0);
    m2.stream.destroy(); // an unclean end: its own will (a valid status) fires
    await new Promise((resolve) => setTimeout(resolve, 300));
    await first.close();

    const second = await start();
    cleanups.push(() => second.close());
    const again = await connectMeter(second.mqttUrl, 'M2', 'pw-M2');
    cleanups.push(() => again.endAsync(true));
    await again.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 7, Date.now() - 60_000)), { qos: 1 });
    await eventually(
      async () => (await influx.query('SELECT seq FROM reading WHERE meter = \'M2\''))[0]?.values ?? [],
      (values) => values.some((row) => row[1] === 7),
      15_000,
      (values) => `${values.length} points of M2`,
    );
    // The retained status from M2's own will survived the restart in the session store.
    const api = await second.credentials.add('flowpilot-api', 'service', 'pw-api');
    const watcher = await connectAsync(second.mqttUrl, { clientId: 'flowpilot-api:w', username: 'flowpilot-api', password: api, protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => watcher.endAsync(true));
    const retained: string[] = [];
    watcher.on('message', (topic, payload) => retained.push(`${topic} ${payload.toString()}`));
    await watcher.subscribeAsync('meters/+/status', { qos: 1 });
    await eventually(async () => retained, (r) => r.length > 0, 5_000, () => 'no retained status');
    expect(retained).toEqual(['meters/M2/status {"online":false}']);
  });
});

describe('floods', () => {
  it('slows a meter that publishes faster than its rate to that rate (PUBACKs wait), losing nothing; others go on', async () => {
    const { pipeline, influx } = await hostileWorld(['M1', 'M2'], { publishesPerSec: 10 });
    const client = await meter(pipeline, 'M2');
    const tsMs = Date.now() - 3_600_000;
    const started = Date.now();
    // A burst of 10 × 10 passes at once; the other 50 readings are acknowledged 100 ms apart.
    await Promise.all(Array.from({ length: 150 }, (_, seq) => client.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', seq, tsMs + seq * 1000)), { qos: 1 })));
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
    expect(client.connected).toBe(true);
    expect(pipeline.broker.stats().recordsAccepted).toBe(150);
    expect(pipeline.broker.stats().refusedByLimit.publish_rate).toBeGreaterThanOrEqual(45);
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });

  it('refuses connections from an address that opens them too fast, and beyond the maximum', async () => {
    const { pipeline, influx, port } = await hostileWorld(['M1'], { connectionsPerSecPerAddress: 2, maxConnections: 100 });
    // The burst is 10 × 2 = 20; 60 at once leave about 40 refused.
    const sockets = await Promise.all(Array.from({ length: 60 }, () => rawSocket(port)));
    const closed = await Promise.all(sockets.map((socket) => closedWithin(socket, 1_000)));
    expect(closed.filter(Boolean).length).toBeGreaterThanOrEqual(35);
    expect(pipeline.broker.stats().refusedByLimit.connection_rate).toBeGreaterThanOrEqual(35);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the bucket refills
    await expectHonestReadingStored(pipeline, influx, 'M1');
  });

  it('holds at most maxConnections open connections', async () => {
    const { pipeline, port } = await hostileWorld(['M1'], { maxConnections: 5, connectionsPerSecPerAddress: 1000 });
    const sockets = await Promise.all(Array.from({ length: 8 }, () => rawSocket(port)));
    const closed = await Promise.all(sockets.map((socket) => closedWithin(socket, 1_000)));
    expect(closed.filter(Boolean)).toHaveLength(3);
    expect(pipeline.broker.stats().refusedByLimit.max_connections).toBe(3);
  });

  it('blocks a username after repeated wrong passwords, without checking the right one during the block', async () => {
    const { pipeline } = await hostileWorld(['M1', 'M2'], { loginMaxFailures: 3, loginBlockMs: 60_000 });
    await pipeline.credentials.add('M2', 'meter', 'right');
    for (let i = 0; i < 3; i++) await expect(connectMeter(pipeline.mqttUrl, 'M2', `wrong-${i}`)).rejects.toThrow(/Bad username or password/);
    const started = Date.now();
    await expect(connectMeter(pipeline.mqttUrl, 'M2', 'right')).rejects.toThrow(/Not authorized/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(pipeline.broker.stats().refusedByLimit.login_failed).toBe(3);
    expect(pipeline.broker.stats().refusedByLimit.login_blocked).toBe(1);
    // The address (127.0.0.1) is blocked too after 3 failures, so the honest meter comes from a
    // new broker: meters behind other addresses are not affected, which loopback cannot show.
    const other = await hostileWorld(['M1']);
    await expectHonestReadingStored(other.pipeline, other.influx, 'M1');
  });
});
