import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { parsePilotConfig, validateReadingPayload } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import { Aedes } from 'aedes';
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../../test/helpers/wait.ts';
import { createMeterModel, generateReadings } from './meter-model.ts';
import { createSimulator } from './simulator.ts';
import type { Simulator } from './simulator.ts';

const pilot = parsePilotConfig(readFileSync(new URL('../../../examples/pilot.yaml', import.meta.url), 'utf8'), 'examples/pilot.yaml');
const HOUR_MS = 3_600_000;

interface World {
  url: string;
  close(): Promise<void>;
}

/** A plain Aedes broker (no auth) on a free loopback port, owned by one test. */
async function startBroker(): Promise<World> {
  // Client ids are `${username}:${meterId}`, longer than Aedes's default limit of 23.
  const broker = await Aedes.createBroker({ maxClientsIdLength: 128 });
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('createSimulator', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups.length = 0;
  });

  it('backfills 2 h of every meter of the example pilot as arrays, and announces each meter online', async () => {
    const world = await startBroker();
    cleanups.push(() => world.close());

    const subscriber: MqttClient = await connectAsync(world.url, { clientId: 'test-subscriber', protocolVersion: 4 });
    cleanups.push(() => subscriber.endAsync());
    const received = new Map<string, Reading[]>();
    const arrays = new Map<string, number>();
    const statuses = new Map<string, unknown>();
    subscriber.on('message', (topic, payload) => {
      const [, meterId = '', kind] = topic.split('/');
      if (kind === 'status') {
        statuses.set(meterId, JSON.parse(payload.toString()));
        return;
      }
      const result = validateReadingPayload(meterId, payload, { nowMs: Date.now(), isRegistered: () => true, retentionMs: 30 * 24 * HOUR_MS, maxPayloadBytes: 1 << 20 });
      expect(result.rejections).toEqual([]);
      if (payload.toString().startsWith('[')) arrays.set(meterId, (arrays.get(meterId) ?? 0) + 1);
      received.set(meterId, [...(received.get(meterId) ?? []), ...result.readings]);
    });
    await subscriber.subscribeAsync('meters/#', { qos: 1 });

    // A frozen clock: the window is exact and no realtime reading falls due during the test.
    const nowMs = Date.now();
    const backfillMs = 2 * HOUR_MS;
    const simulator: Simulator = createSimulator({
      pilot,
      mqttUrl: world.url,
      username: 'simulator',
      password: 'unused',
      seed: 42,
      backfillMs,
      batchSize: 50, // several arrays per meter
      clock: { now: () => nowMs },
    });
    cleanups.push(() => simulator.stop());
    await simulator.start();

    let expectedTotal = 0;
    const expected = new Map<string, Reading[]>();
    for (const meter of pilot.meters) {
      // The backfill window is [now − backfillMs, now], both ends included.
      const readings = generateReadings(meter, pilot, nowMs - backfillMs, nowMs + 1, { seed: 42 });
      expected.set(meter.id, readings);
      expectedTotal += readings.length;
    }
    expect(simulator.stats()).toEqual({ published: expectedTotal, acked: expectedTotal, backfilled: expectedTotal });
    const count = () => [...received.values()].reduce((n, rs) => n + rs.length, 0);
    await eventually(count, (n) => n >= expectedTotal, 10_000, (n) => `${n} of ${expectedTotal} readings received`);

    for (const meter of pilot.meters) {
      const got = received.get(meter.id) ?? [];
      expect(got.length).toBe((expected.get(meter.id) ?? []).length);
      expect(got.length).toBeGreaterThanOrEqual(119);
      expect(got).toEqual(expected.get(meter.id));
      expect(arrays.get(meter.id)).toBe(Math.ceil(got.length / 50));
      expect(statuses.get(meter.id)).toMatchObject({ online: true, firmware: 'sim-1.0' });
    }

    // The online status is retained: a client that subscribes now still gets it.
    const late: MqttClient = await connectAsync(world.url, { clientId: 'test-late', protocolVersion: 4 });
    cleanups.push(() => late.endAsync());
    const retained = new Map<string, { online: boolean; retain: boolean }>();
    late.on('message', (topic, payload, packet) => {
      retained.set(topic.split('/')[1] ?? '', { online: (JSON.parse(payload.toString()) as { online: boolean }).online, retain: packet.retain });
    });
    await late.subscribeAsync('meters/+/status', { qos: 1 });
    await eventually(() => retained.size, (n) => n === pilot.meters.length, 5_000, (n) => `${n} of ${pilot.meters.length} retained statuses`);
    for (const meter of pilot.meters) expect(retained.get(meter.id)).toEqual({ online: true, retain: true });

    // stop() says goodbye: each meter's retained status becomes offline.
    await simulator.stop();
    await eventually(() => [...retained.values()].every((s) => !s.online), Boolean, 5_000, 'every retained status to say offline');
  });

  it('publishes realtime readings at boundaries ≤ now, and replays the window as single readings when accelerated', async () => {
    const world = await startBroker();
    cleanups.push(() => world.close());
    const subscriber: MqttClient = await connectAsync(world.url, { clientId: 'test-subscriber-2', protocolVersion: 4 });
    cleanups.push(() => subscriber.endAsync());
    const singles: Reading[] = [];
    subscriber.on('message', (topic, payload) => {
      const [, meterId = '', kind] = topic.split('/');
      if (kind !== 'readings') return;
      expect(payload.toString().startsWith('{')).toBe(true);
      singles.push(...validateReadingPayload(meterId, payload, { nowMs: Date.now(), isRegistered: () => true, retentionMs: 30 * 24 * HOUR_MS, maxPayloadBytes: 1 << 20 }).readings);
    });
    await subscriber.subscribeAsync('meters/+/readings', { qos: 1 });

    // Wall clock advanced by hand: 10 min of backfill at 600× take 1 s of "wall" time.
    const startMs = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
    let nowMs = startMs;
    const simulator = createSimulator({
      pilot,
      mqttUrl: world.url,
      username: 'simulator',
      password: 'unused',
      meters: ['ALM-PS3-REF'],
      speed: 600,
      backfillMs: 10 * 60_000,
      clock: { now: () => nowMs },
    });
    cleanups.push(() => simulator.stop());
    await simulator.start();
    nowMs = startMs + 500; // sim clock at startMs − 5 min
    await eventually(() => singles.length, (n) => n >= 5, 15_000, (n) => `${n} of 5 replayed readings`);
    expect(singles.every((r) => r.tsMs <= startMs - 5 * 60_000)).toBe(true);
    nowMs = startMs + 60_000; // caught up, one more realtime boundary passed
    await eventually(() => singles.length, (n) => n >= 11, 15_000, (n) => `${n} of 11 readings`);
    const expected = generateReadings('ALM-PS3-REF', pilot, startMs - 10 * 60_000, startMs + 60_000);
    expect(singles).toEqual(expected);
    expect(singles.every((r) => r.tsMs <= nowMs)).toBe(true);
  });

  it('publishes nothing, not even a status, for a meter without simulate: true (SPEC section 3)', async () => {
    const world = await startBroker();
    cleanups.push(() => world.close());
    const subscriber: MqttClient = await connectAsync(world.url, { clientId: 'test-subscriber-mixed', protocolVersion: 4 });
    cleanups.push(() => subscriber.endAsync());
    const meters = new Set<string>();
    subscriber.on('message', (topic) => meters.add(topic.split('/')[1] ?? ''));
    await subscriber.subscribeAsync('meters/#', { qos: 1 });

    const mixed = parsePilotConfig(`
pilot: { id: mixed, name: Mixed pilot, timezone: UTC }
meters:
  - { id: REAL, site: S, role: monitor, intervalSec: 60 }
  - { id: SIM, site: S, role: monitor, intervalSec: 60, simulate: true }
`);
    const nowMs = Date.now();
    const simulator = createSimulator({ pilot: mixed, mqttUrl: world.url, username: 'simulator', password: 'unused', backfillMs: 10 * 60_000, clock: { now: () => nowMs } });
    cleanups.push(() => simulator.stop());
    expect(simulator.meterIds()).toEqual(['SIM']);
    await simulator.start();
    expect(simulator.stats().acked).toBeGreaterThanOrEqual(10);
    await simulator.stop();
    await eventually(() => meters.has('SIM'), Boolean, 5_000, 'a message from SIM');
    expect([...meters]).toEqual(['SIM']);
  });

  it('sends the readings of an offline stretch as arrays when the meter returns, skips dropouts and repeats duplicates', async () => {
    const world = await startBroker();
    cleanups.push(() => world.close());
    const subscriber: MqttClient = await connectAsync(world.url, { clientId: 'test-subscriber-3', protocolVersion: 4 });
    cleanups.push(() => subscriber.endAsync());
    const messages: { array: boolean; readings: Reading[] }[] = [];
    const statuses: boolean[] = [];
    subscriber.on('message', (topic, payload) => {
      const [, meterId = '', kind] = topic.split('/');
      if (kind === 'status') {
        statuses.push((JSON.parse(payload.toString()) as { online: boolean }).online);
        return;
      }
      const { readings } = validateReadingPayload(meterId, payload, { nowMs: Date.now(), isRegistered: () => true, retentionMs: 400 * 24 * HOUR_MS, maxPayloadBytes: 1 << 20 });
      messages.push({ array: payload.toString().startsWith('['), readings });
    });
    await subscriber.subscribeAsync('meters/#', { qos: 1 });

    const faults = { offlineProbabilityPerDay: 1, offlineIntervals: 10, duplicateProbability: 0.05, dropoutProbability: 0.05 };
    const model = createMeterModel('ALM-DMA12-MON', pilot, { seed: 5, faults });
    // Run an hour that holds an offline stretch: replayed at 3600× it takes about a second.
    // (One stretch a day: the latest 48 h hold one that ended well before now.)
    let k = model.indexAtOrAfter(Date.now() - 48 * HOUR_MS);
    while (!model.isOffline(k)) k++;
    expect(model.timestampOf(k)).toBeLessThan(Date.now() - HOUR_MS);
    const windowFromMs = model.timestampOf(k) - 20 * 60_000;
    const windowToMs = windowFromMs + HOUR_MS;
    const wallStartMs = Date.now();
    const simulator = createSimulator({
      pilot,
      mqttUrl: world.url,
      username: 'simulator',
      password: 'unused',
      meters: ['ALM-DMA12-MON'],
      seed: 5,
      faults,
      speed: 3600,
      backfillMs: HOUR_MS,
      clock: { now: () => windowToMs + (Date.now() - wallStartMs) },
    });
    cleanups.push(() => simulator.stop());
    await simulator.start();

    // The clock had moved a few ms past windowToMs when start() read it: the window
    // [now − 1 h, now] starts just after windowFromMs.
    const expected = generateReadings('ALM-DMA12-MON', pilot, windowFromMs + 1, windowToMs + 1, { seed: 5, faults });
    const distinct = (): number => new Set(messages.flatMap((m) => m.readings.map((r) => r.seq))).size;
    await eventually(distinct, (n) => n >= expected.length, 20_000, (n) => `${n} of ${expected.length} distinct readings`);
    const all = messages.flatMap((m) => m.readings);
    expect([...new Map(all.map((r) => [r.seq, r])).values()].sort((a, b) => a.seq - b.seq)).toEqual(expected);
    // The stretch's readings came as one array, after the meter said it was offline and back.
    const stored = messages.filter((m) => m.array);
    expect(stored.length).toBeGreaterThanOrEqual(1);
    expect(stored[0]?.readings.length).toBeGreaterThanOrEqual(5);
    expect(statuses).toEqual(expect.arrayContaining([true, false]));
    const duplicates = all.length - distinct();
    let expectedDuplicates = 0;
    for (const r of expected) if (model.isDuplicated(model.indexAtOrAfter(r.tsMs)) && !model.isOffline(model.indexAtOrAfter(r.tsMs))) expectedDuplicates++;
    expect(duplicates).toBe(expectedDuplicates);
    expect(simulator.stats().published).toBe(all.length);
  });
});
