import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { createTestInflux } from './helpers/influx.ts';
import { connectMeter, makePilot, startTestPipeline, storedPairs, wireReading, type TestPipeline } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';

/** End to end over real parts: MQTT.js meters → Aedes → durable store → ingest → influxd. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function pipelineFor(meterIds: string[], options: { maxPayloadBytes?: number } = {}): Promise<{ pipeline: TestPipeline; influx: Awaited<ReturnType<typeof createTestInflux>> }> {
  const influx = await createTestInflux();
  const pipeline = await startTestPipeline({ pilot: makePilot(meterIds), influx, ...options });
  cleanups.push(() => pipeline.close());
  return { pipeline, influx };
}

async function meter(pipeline: TestPipeline, id: string): Promise<MqttClient> {
  const password = await pipeline.credentials.add(id, 'meter');
  const client = await connectMeter(pipeline.mqttUrl, id, password);
  cleanups.push(() => client.endAsync(true));
  return client;
}

describe('delivery over real parts', () => {
  it('stores exactly the (meter, seq) pairs that 20 meters got a PUBACK for: 10,000 readings', async () => {
    const meterIds = Array.from({ length: 20 }, (_, i) => `SIM-${String(i).padStart(2, '0')}`);
    const { pipeline, influx } = await pipelineFor(meterIds);
    const clients = await Promise.all(meterIds.map((id) => meter(pipeline, id)));
    const start = Date.now() - 600 * 60_000;
    const acked = new Set<string>();
    await Promise.all(
      clients.map(async (client, m) => {
        const id = meterIds[m]!;
        for (let seq = 0; seq < 500; seq++) {
          // publishAsync resolves on the PUBACK: the reading is then accepted (SPEC section 6).
          await client.publishAsync(`meters/${id}/readings`, JSON.stringify(wireReading(id, seq, start + seq * 60_000)), { qos: 1 });
          acked.add(`${id}#${seq}`);
        }
      }),
    );
    expect(acked.size).toBe(10_000);
    const stored = await eventually(() => storedPairs(influx), (s) => s.points >= 10_000, 60_000, (s) => `${s.points} of 10000 stored`);
    const lost = [...acked].filter((pair) => !stored.pairs.has(pair));
    expect(lost).toEqual([]);
    expect(stored.points).toBe(10_000);
    expect(stored.pairs.size).toBe(10_000);
    expect(pipeline.store.depth().records).toBe(0);
  });

  it('stores every valid reading among 50 malformed ones, counts each bad one by reason, keeps it as a dead letter, and keeps the connection', async () => {
    const { pipeline, influx } = await pipelineFor(['M1', 'M2'], { maxPayloadBytes: 16 * 1024 });
    const m1 = await meter(pipeline, 'M1');
    // Registered as a login but not in the pilot: its readings are ERR_METER_UNKNOWN.
    const ghost = await meter(pipeline, 'GHOST');
    let closed = 0;
    m1.on('close', () => (closed += 1));
    const now = Date.now();
    const good = (seq: number) => JSON.stringify(wireReading('M1', seq, now - 100 * 60_000 + seq * 60_000));
    const malformed: [string, string, MqttClient?][] = [
      ['ERR_READING_JSON', '{"v":1,"meterId":"M1",'],
      ['ERR_READING_JSON', 'hello'],
      ['ERR_READING_SCHEMA', JSON.stringify({ v: 1, meterId: 'M1', seq: 1, ts: now })],
      ['ERR_READING_SCHEMA', JSON.stringify(wireReading('M1', -1, now))],
      ['ERR_READING_SCHEMA', JSON.stringify(wireReading('M1', 5, now, { alarms: ['fire'] }))],
      ['ERR_READING_NON_FINITE', good(3).replace(/"flow":[\d.]+/, '"flow":1e999')],
      ['ERR_READING_VERSION', JSON.stringify(wireReading('M1', 5, now, { v: 2 }))],
      ['ERR_METER_MISMATCH', JSON.stringify(wireReading('M2', 5, now))],
      ['ERR_TS_FUTURE', JSON.stringify(wireReading('M1', 5, now + 3_600_000))],
      ['ERR_TS_TOO_OLD', JSON.stringify(wireReading('M1', 5, 0))],
      ['ERR_PAYLOAD_TOO_LARGE', JSON.stringify(wireReading('M1', 5, now, { pad: 'x'.repeat(20_000) }))],
      ['ERR_METER_UNKNOWN', JSON.stringify(wireReading('GHOST', 5, now)), ghost],
    ];
    const expectedCounts: Record<string, number> = {};
    let valid = 0;
    for (let i = 0; i < 50; i++) {
      const [code, payload, client = m1] = malformed[i % malformed.length]!;
      const topic = client === ghost ? 'meters/GHOST/readings' : 'meters/M1/readings';
      await client.publishAsync(topic, payload, { qos: 1 });
      expectedCounts[code] = (expectedCounts[code] ?? 0) + 1;
      await m1.publishAsync('meters/M1/readings', good(valid), { qos: 1 });
      valid += 1;
    }
    // A batch array whose element 1 is bad: the others are kept, the bad one is dead-lettered alone.
    await m1.publishAsync('meters/M1/readings', `[${good(50)},{"v":1},${good(51)}]`, { qos: 1 });
    expectedCounts.ERR_READING_SCHEMA = (expectedCounts.ERR_READING_SCHEMA ?? 0) + 1;
    valid += 2;

    const stored = await eventually(() => storedPairs(influx), (s) => s.points >= valid, 30_000, (s) => `${s.points} of ${valid}`);
    expect(stored.points).toBe(valid);
    for (let seq = 0; seq < valid; seq++) expect(stored.pairs.has(`M1#${seq}`)).toBe(true);

    expect(pipeline.broker.stats().rejected).toEqual(expectedCounts);
    expect(pipeline.store.rejectionCounts()).toEqual(expectedCounts);
    const letters = pipeline.store.listDeadLetters({ limit: 1000 });
    expect(letters).toHaveLength(51);
    const nonFinite = letters.find((l) => l.code === 'ERR_READING_NON_FINITE')!;
    expect(nonFinite.reason).toMatch(/^flow is not a finite number\. The meter must send finite numbers/);
    expect(nonFinite.payload).toContain('1e999');
    expect(letters.find((l) => l.reason.startsWith('reading [1]:'))?.payload).toBe('{"v":1}');
    expect(m1.connected).toBe(true);
    expect(closed).toBe(0);
  });

  it('records the retained status and the last will of a meter as status points', async () => {
    const { pipeline, influx } = await pipelineFor(['M1']);
    const password = await pipeline.credentials.add('M1', 'meter');
    const client = await connectMeter(pipeline.mqttUrl, 'M1', password, { will: { topic: 'meters/M1/status', payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
    await client.publishAsync('meters/M1/status', JSON.stringify({ online: true, firmware: '1.2.3' }), { qos: 1, retain: true });
    // Neither status carries a ts, so each is timed on receipt; a will received in the same
    // millisecond would be the same point and overwrite the first (SPEC section 2). The first was
    // received before its PUBACK: once the clock is past that, the will is timed later.
    const ackedAtMs = Date.now();
    while (Date.now() <= ackedAtMs) await new Promise((resolve) => setImmediate(resolve));
    // Dropping the socket without DISCONNECT fires the will [MQTT-3.1.2-8].
    client.stream.destroy();
    const rows = await eventually(
      async () => (await influx.query('SELECT online FROM status WHERE meter = \'M1\''))[0]?.values ?? [],
      (values) => values.length >= 2,
      15_000,
      (values) => `${values.length} status points`,
    );
    expect(rows.map((row) => row[1])).toEqual([true, false]);
  });
});

describe('device authentication and topic ACL', () => {
  it('refuses a login with a wrong password', async () => {
    const { pipeline } = await pipelineFor(['M1']);
    await pipeline.credentials.add('M1', 'meter', 'right-password');
    await expect(connectMeter(pipeline.mqttUrl, 'M1', 'wrong-password')).rejects.toThrow(/Bad username or password/);
    await expect(connectMeter(pipeline.mqttUrl, '', '', { clientId: 'anonymous-1', clean: true })).rejects.toThrow(/Not authorized/);
  });

  it('refuses a meter connecting with a client id that is not its own', async () => {
    const { pipeline } = await pipelineFor(['M1', 'M2']);
    const password = await pipeline.credentials.add('M1', 'meter');
    await expect(connectMeter(pipeline.mqttUrl, 'M1', password, { clientId: 'M2' })).rejects.toThrow(/Not authorized/);
  });

  it('refuses a meter publishing to another meter\'s topic: no PUBACK, nothing stored', async () => {
    const { pipeline, influx } = await pipelineFor(['M1', 'M2']);
    const m1 = await meter(pipeline, 'M1');
    const closed = new Promise<void>((resolve) => m1.once('close', () => resolve()));
    let outcome = 'no puback';
    m1.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 1, Date.now())), { qos: 1 }).then(
      () => (outcome = 'acked'),
      () => (outcome = 'failed without puback'),
    );
    // The broker answers a publish outside the client's topics by closing the connection: once it
    // is closed the publish was handled, refused before the store (a PUBACK follows the commit).
    await closed;
    expect(m1.connected).toBe(false);
    expect(outcome).not.toBe('acked');
    expect(pipeline.store.depth().records).toBe(0);
    expect(pipeline.store.listDeadLetters()).toEqual([]);
    expect((await storedPairs(influx)).points).toBe(0);
  });

  it('gives a meter subscribing to # nothing: SUBACK 128 and no messages', async () => {
    const { pipeline } = await pipelineFor(['M1', 'M2']);
    const spy = await meter(pipeline, 'M1');
    const m2 = await meter(pipeline, 'M2');
    const received: string[] = [];
    spy.on('message', (topic) => received.push(topic));
    // MQTT.js reports a refused subscription as an error that carries the SUBACK.
    const suback = await spy.subscribeAsync('#', { qos: 1 }).then(
      () => null,
      (error: { packet?: { granted?: number[] } }) => error.packet?.granted,
    );
    expect(suback).toEqual([128]);
    // A service allowed to subscribe is the witness that M2's reading was forwarded.
    const password = await pipeline.credentials.add('svc', 'service');
    const witness = await connectMeter(pipeline.mqttUrl, 'svc', password, { clientId: 'svc:witness', clean: true });
    cleanups.push(() => witness.endAsync(true));
    const forwarded = new Promise<void>((resolve) => witness.on('message', (topic) => topic === 'meters/M2/readings' && resolve()));
    await witness.subscribeAsync('meters/+/readings', { qos: 1 });
    await m2.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', 1, Date.now())), { qos: 1 });
    await forwarded;
    // Then a round trip on the spy's own connection: a copy sent to it would have come before this PUBACK.
    await spy.publishAsync('meters/M1/status', '{"online":true}', { qos: 1 });
    expect(received).toEqual([]);
    expect(spy.connected).toBe(true);
  });
});
