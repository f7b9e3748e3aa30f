import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseGatewayConfig, type DeviceConfig, type GatewayConfig } from './config.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { renderGatewayMetrics } from './metrics.ts';
import { encodeAlarms, encodeValue, type RegisterSpec } from './registers.ts';
import { createFakeModbus, createFakeMqtt, createRecordingLog, type FakeModbus, type FakeMqtt } from './test-support.ts';

/**
 * The gateway with fake Modbus devices, fake MQTT connections and fake timers: the schedule,
 * the retries and skips, seq, sensor_fault and the outbox's bound, with no socket and no sleep.
 */

const T0 = Date.parse('2026-11-25T10:00:23.456Z');

const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.useRealTimers();
});

const REGISTERS = `
      flow:        { table: input,   address: 0,  type: float32 }
      total:       { table: holding, address: 10, type: float64, unit: m3 }
      temperature: { table: input,   address: 4,  type: int16, scale: 0.1, unit: C }
      alarms:      { table: input,   address: 20, type: uint16, bits: { 0: empty_pipe, 1: reverse_flow } }`;

function tcpDevice(meterId: string, host: string, extra = ''): string {
  return `
  - meterId: ${meterId}
    transport: tcp
    host: ${host}
    unitId: 1
    intervalSec: 60
    ${extra}
    registers:${REGISTERS}`;
}

function configOf(devices: string, outbox = ''): GatewayConfig {
  const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-gateway-test-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  return parseGatewayConfig(`broker: { url: "mqtt://127.0.0.1:1883", username: gw-test, password: secret }\ndataDir: ${dataDir}\n${outbox}\ndevices:${devices}\n`);
}

const endpointOf = (device: DeviceConfig) => (device.transport === 'tcp' ? `tcp ${device.host}:${device.port}` : `rtu ${device.path}`);

/** Puts a meter's values in its fake device's registers. */
function setValues(modbus: FakeModbus, device: DeviceConfig, values: { flow: number; total: number; temperature?: number; alarms?: ('empty_pipe' | 'reverse_flow')[] }): void {
  const put = (spec: RegisterSpec | undefined, words: number[] | undefined) => {
    if (spec && words) modbus.setWords(endpointOf(device), device.unitId, spec.table, spec.address, words);
  };
  const map = device.registers;
  put(map.flow, encodeValue(map.flow, values.flow));
  put(map.total, encodeValue(map.total, values.total));
  if (values.temperature !== undefined && map.temperature) put(map.temperature, encodeValue(map.temperature, values.temperature));
  if (map.alarms) put(map.alarms, encodeAlarms(map.alarms, values.alarms ?? []));
}

/** stop() waits on the fake clock (a poll's timeout, a PUBACK's deadline): move it along meanwhile. */
async function stopUnderFakeTimers(gateway: Gateway): Promise<void> {
  let done = false;
  const stopping = gateway.stop().finally(() => (done = true));
  for (let i = 0; i < 100 && !done; i++) await vi.advanceTimersByTimeAsync(100);
  await stopping;
}

interface World {
  config: GatewayConfig;
  gateway: Gateway;
  modbus: FakeModbus;
  mqtt: FakeMqtt;
  log: ReturnType<typeof createRecordingLog>;
}

async function startWorld(config: GatewayConfig, options: { autoAck?: boolean; latencyMs?: number } = {}): Promise<World> {
  const clock = { now: () => Date.now() };
  const timers = { setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
  const modbus = createFakeModbus({ timers, clock, latencyMs: options.latencyMs ?? 10 });
  const mqtt = createFakeMqtt({ autoAck: options.autoAck ?? true });
  const log = createRecordingLog();
  const gateway = createGateway({ config, log, clock, timers, modbus: modbus.factory, mqtt: mqtt.connect });
  cleanups.push(() => stopUnderFakeTimers(gateway));
  await gateway.start();
  return { config, gateway, modbus, mqtt, log };
}

const readingsOf = (mqtt: FakeMqtt, meterId: string) =>
  mqtt
    .published(`meters/${meterId}/readings`)
    .filter((p) => p.settled)
    .flatMap((p) => {
      const parsed = JSON.parse(p.payload) as Record<string, unknown> | Record<string, unknown>[];
      return Array.isArray(parsed) ? parsed : [parsed];
    });

const statusesOf = (mqtt: FakeMqtt, meterId: string) => mqtt.published(`meters/${meterId}/status`).map((p) => JSON.parse(p.payload) as Record<string, unknown>);

/** Moves the fake clock to `iso` (UTC), running every timer due on the way. */
async function advanceTo(iso: string): Promise<void> {
  await vi.advanceTimersByTimeAsync(Date.parse(iso) - Date.now());
}

describe('the schedule: one poll per interval boundary of the wall clock', () => {
  it('polls at hh:mm:00.000 and makes SPEC section 1 readings with ts = the boundary and seq 0, 1, …', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 42.7, total: 125031.442, temperature: 11.8 });

    await advanceTo('2026-11-25T10:00:59.999Z');
    expect(world.modbus.reads).toHaveLength(0);
    await advanceTo('2026-11-25T10:01:00.500Z');
    // Three requests: input 0–5 (flow and temperature, merged), input 20 (alarms), holding 10–13 (total).
    expect(world.modbus.reads.map((r) => r.startedAtMs - Date.parse('2026-11-25T10:01:00.000Z'))).toEqual([0, 10, 20]);

    setValues(world.modbus, device, { flow: -3.5, total: 125031.9, temperature: 12.1, alarms: ['reverse_flow'] });
    await advanceTo('2026-11-25T10:02:00.500Z');

    expect(readingsOf(world.mqtt, 'M1')).toEqual([
      { v: 1, meterId: 'M1', seq: 0, ts: '2026-11-25T10:01:00.000Z', flow: 42.7, total: 125031.442, temperature: 11.8 },
      { v: 1, meterId: 'M1', seq: 1, ts: '2026-11-25T10:02:00.000Z', flow: -3.5, total: 125031.9, temperature: 12.1, alarms: ['reverse_flow'] },
    ]);
    // Each reading went alone (the gateway was not behind), and left the outbox at its PUBACK.
    expect(world.mqtt.published('meters/M1/readings').every((p) => !p.payload.startsWith('['))).toBe(true);
    expect(world.gateway.stats().outbox.readings).toBe(0);
    expect(world.gateway.stats().devices[0]).toMatchObject({ polls: 2, readings: 2, published: 2, nextSeq: 2, mqttConnected: true });
  });

  it('keeps each device on its own interval', async () => {
    const world = await startWorld(configOf(`${tcpDevice('M1', '192.0.2.10')}${tcpDevice('M5', '192.0.2.11').replace('intervalSec: 60', 'intervalSec: 300')}`));
    for (const device of world.config.devices) setValues(world.modbus, device, { flow: 1, total: 2 });
    await advanceTo('2026-11-25T10:10:30.000Z');
    expect(readingsOf(world.mqtt, 'M1').map((r) => r.ts)).toHaveLength(10);
    expect(readingsOf(world.mqtt, 'M5').map((r) => r.ts)).toEqual(['2026-11-25T10:05:00.000Z', '2026-11-25T10:10:00.000Z']);
  });

  it('polls the devices of one serial bus one after another, and TCP devices in parallel', async () => {
    const rtu = (meterId: string, unitId: number) => `
  - meterId: ${meterId}
    transport: rtu
    path: /dev/ttyUSB0
    unitId: ${unitId}
    intervalSec: 60
    registers:${REGISTERS}`;
    const world = await startWorld(configOf(`${rtu('R1', 1)}${rtu('R2', 2)}${rtu('R3', 3)}${tcpDevice('T1', '192.0.2.10')}${tcpDevice('T2', '192.0.2.11')}`), { latencyMs: 100 });
    for (const device of world.config.devices) setValues(world.modbus, device, { flow: 1, total: 2 });
    await advanceTo('2026-11-25T10:01:30.000Z');

    const bus = world.modbus.reads.filter((r) => r.endpoint === 'rtu /dev/ttyUSB0');
    expect(bus).toHaveLength(9);
    for (let i = 1; i < bus.length; i++) expect(bus[i]!.startedAtMs).toBeGreaterThanOrEqual(bus[i - 1]!.endedAtMs!);
    expect(bus.map((r) => r.unitId)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3]);
    const tcpStarts = world.modbus.reads.filter((r) => r.endpoint.startsWith('tcp')).map((r) => r.startedAtMs);
    expect(new Set(tcpStarts.slice(0, 2)).size).toBe(1);
    // The readings of the bus all carry the boundary they were polled for.
    for (const meterId of ['R1', 'R2', 'R3']) expect(readingsOf(world.mqtt, meterId).map((r) => r.ts)).toEqual(['2026-11-25T10:01:00.000Z']);
  });
});

describe('failures: retried within the interval, then skipped and counted, seq advancing', () => {
  it('retries a timeout `retries` times, skips the poll, and numbers the next reading after it', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    await advanceTo('2026-11-25T10:01:30.000Z');
    world.modbus.failNext(endpointOf(device), 1, 'timeout', 'timeout', 'timeout');
    const before = world.modbus.reads.length;
    await advanceTo('2026-11-25T10:02:30.000Z');
    // Three attempts (retries: 2), each ended by the 1000 ms timeout at its first request.
    expect(world.modbus.reads.length - before).toBe(3);
    expect(world.modbus.abandoned).toHaveLength(3);
    await advanceTo('2026-11-25T10:03:30.000Z');

    expect(readingsOf(world.mqtt, 'M1').map((r) => [r.seq, r.ts])).toEqual([
      [0, '2026-11-25T10:01:00.000Z'],
      [2, '2026-11-25T10:03:00.000Z'],
    ]);
    const stats = world.gateway.stats().devices[0]!;
    expect(stats).toMatchObject({ polls: 3, readings: 2, consecutiveFailures: 0, sensorFault: false });
    expect(stats.failures.timeout).toBe(1);
    expect(stats.lastFailure).toMatchObject({ kind: 'timeout', atMs: Date.parse('2026-11-25T10:02:00.000Z') });
  });

  it('succeeds on a retry within the same interval: one reading, no failure counted', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    world.modbus.failNext(endpointOf(device), 1, 'crc', 'exception');
    await advanceTo('2026-11-25T10:01:30.000Z');
    expect(readingsOf(world.mqtt, 'M1')).toMatchObject([{ seq: 0, ts: '2026-11-25T10:01:00.000Z', flow: 5 }]);
    expect(Object.values(world.gateway.stats().devices[0]!.failures).every((n) => n === 0)).toBe(true);
  });

  it('counts each kind apart: crc, exception, connection', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10', 'retries: 0')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    world.modbus.failNext(endpointOf(device), 1, 'crc');
    await advanceTo('2026-11-25T10:01:30.000Z');
    world.modbus.failNext(endpointOf(device), 1, 'exception');
    await advanceTo('2026-11-25T10:02:30.000Z');
    world.modbus.failNext(endpointOf(device), 1, 'connection');
    await advanceTo('2026-11-25T10:03:30.000Z');
    await advanceTo('2026-11-25T10:04:30.000Z');
    const stats = world.gateway.stats().devices[0]!;
    expect(stats.failures).toMatchObject({ crc: 1, exception: 1, connection: 1, timeout: 0, decode: 0 });
    expect(readingsOf(world.mqtt, 'M1').map((r) => r.seq)).toEqual([3]);
    const text = renderGatewayMetrics(world.gateway.stats(), Date.now());
    expect(text).toContain('flowpilot_gateway_poll_failures_total{meter="M1",kind="crc"} 1');
    expect(text).toContain('flowpilot_gateway_poll_failures_total{meter="M1",kind="exception"} 1');
    expect(text).toContain('flowpilot_gateway_polls_total{meter="M1"} 4');
  });

  it('skips registers that do not decode to a finite number (never a made-up value)', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10', 'retries: 0')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    // A float32 NaN in the flow register.
    world.modbus.setWords(endpointOf(device), 1, 'input', 0, [0x7fc0, 0x0000]);
    await advanceTo('2026-11-25T10:01:30.000Z');
    expect(readingsOf(world.mqtt, 'M1')).toEqual([]);
    expect(world.gateway.stats().devices[0]!.failures.decode).toBe(1);
  });

  it('skips values outside the plausibility bounds of SPEC section 1 as decode failures (a faulty meter)', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10', 'retries: 0')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    // A float32 of 1e30 m³/h in the flow register: above the 10⁶ m³/h bound.
    world.modbus.setWords(endpointOf(device), 1, 'input', 0, [0x7149, 0xf2ca]);
    await advanceTo('2026-11-25T10:01:30.000Z');
    expect(readingsOf(world.mqtt, 'M1')).toEqual([]);
    expect(world.gateway.stats().devices[0]!.failures.decode).toBe(1);
  });

  it('stops retrying when an attempt could not end before the next boundary', async () => {
    // intervalSec 10, timeoutMs 3000: an attempt of three requests may take 9 s, so after the
    // first attempt times out at 3 s, a second could not end before the next poll is due.
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10', 'timeoutMs: 3000').replace('intervalSec: 60', 'intervalSec: 10')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    world.modbus.failNext(endpointOf(device), 1, 'timeout');
    await advanceTo('2026-11-25T10:00:39.999Z');
    expect(world.modbus.reads).toHaveLength(1);
    expect(world.gateway.stats().devices[0]!.failures.timeout).toBe(1);
    await advanceTo('2026-11-25T10:00:40.500Z');
    expect(readingsOf(world.mqtt, 'M1').map((r) => [r.seq, r.ts])).toEqual([[1, '2026-11-25T10:00:40.000Z']]);
  });

  it('skips as overrun a poll its bus could not start before the next boundary, which raises no sensor_fault', async () => {
    const rtu = (meterId: string, unitId: number) => `
  - meterId: ${meterId}
    transport: rtu
    path: /dev/ttyUSB1
    unitId: ${unitId}
    intervalSec: 10
    timeoutMs: 3000
    sensorFaultAfter: 1
    registers:
      flow:  { table: input, address: 0, type: float32 }
      total: { table: input, address: 2, type: float32 }`;
    const world = await startWorld(configOf(`${rtu('A', 1)}${rtu('B', 2)}${rtu('C', 3)}`));
    for (const device of world.config.devices) setValues(world.modbus, device, { flow: 1, total: 2 });
    world.modbus.failAlways('rtu /dev/ttyUSB1', 1, 'timeout');
    world.modbus.failAlways('rtu /dev/ttyUSB1', 2, 'timeout');
    // A takes 3 × 3 s + 2 pauses, B as long: C's turn comes after its next boundary.
    await advanceTo('2026-11-25T10:00:49.000Z');
    const c = world.gateway.stats().devices.find((d) => d.meterId === 'C')!;
    expect(c.failures.overrun).toBe(1);
    expect(c.sensorFault).toBe(false);
    expect(world.modbus.reads.filter((r) => r.unitId === 3)).toHaveLength(0);
  });
});

describe('sensor_fault after sensorFaultAfter failed polls in a row', () => {
  it('says it in the meter\'s status and the gauge, and clears both at the next reading', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10', 'retries: 0\n    sensorFaultAfter: 3')));
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10, temperature: 11.8 });
    world.modbus.failAlways(endpointOf(device), 1, 'connection');
    await advanceTo('2026-11-25T10:02:30.000Z');
    expect(world.gateway.stats().devices[0]!.sensorFault).toBe(false);
    expect(statusesOf(world.mqtt, 'M1').some((s) => 'fault' in s)).toBe(false);

    await advanceTo('2026-11-25T10:03:30.000Z');
    expect(world.gateway.stats().devices[0]).toMatchObject({ sensorFault: true, consecutiveFailures: 3 });
    expect(statusesOf(world.mqtt, 'M1').at(-1)).toEqual({ online: true, ts: '2026-11-25T10:03:00.010Z', fault: 'sensor_fault', faultSince: '2026-11-25T10:01:00.000Z', failedPolls: 3 });
    expect(world.mqtt.published('meters/M1/status').at(-1)!.retain).toBe(true);
    expect(renderGatewayMetrics(world.gateway.stats(), Date.now())).toContain('flowpilot_gateway_sensor_fault{meter="M1"} 1');
    expect(world.gateway.health().status).toBe('degraded');
    expect(world.log.lines.some((l) => l.level === 'warn' && l.msg.startsWith('sensor_fault'))).toBe(true);
    // Raised once, not at every further failure.
    await advanceTo('2026-11-25T10:04:30.000Z');
    expect(statusesOf(world.mqtt, 'M1').filter((s) => s.fault === 'sensor_fault')).toHaveLength(1);

    world.modbus.failAlways(endpointOf(device), 1, null);
    await advanceTo('2026-11-25T10:05:30.000Z');
    expect(world.gateway.stats().devices[0]).toMatchObject({ sensorFault: false, consecutiveFailures: 0 });
    expect(statusesOf(world.mqtt, 'M1').at(-1)).toEqual({ online: true, ts: '2026-11-25T10:05:00.030Z' });
    // The reading after the fault is what the meter measured, with the seq after the four skips, untagged.
    expect(readingsOf(world.mqtt, 'M1')).toEqual([{ v: 1, meterId: 'M1', seq: 4, ts: '2026-11-25T10:05:00.000Z', flow: 5, total: 10, temperature: 11.8 }]);
    expect(world.gateway.health().status).toBe('ok');
  });
});

describe('the outbox: committed before published, bounded, never overwritten', () => {
  it('keeps polling while the broker is unreachable, then sends the backlog oldest first in one array', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10')), { autoAck: false });
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    await advanceTo('2026-11-25T10:05:30.000Z');
    expect(world.gateway.stats().outbox).toMatchObject({ readings: 5, oldestTsMs: Date.parse('2026-11-25T10:01:00.000Z'), full: false });
    expect(world.mqtt.published('meters/M1/readings')).toHaveLength(0);
    expect(renderGatewayMetrics(world.gateway.stats(), Date.now())).toContain('flowpilot_gateway_outbox_oldest_age_seconds 270');

    const client = world.mqtt.client('M1');
    client.accept();
    // The status first, then the five readings as one array, in seq order.
    const [status, batch] = client.publishes;
    expect(JSON.parse(status!.payload)).toMatchObject({ online: true });
    expect((JSON.parse(batch!.payload) as { seq: number }[]).map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    // Nothing leaves the outbox before its PUBACK.
    expect(world.gateway.stats().outbox.readings).toBe(5);
    batch!.settle();
    expect(world.gateway.stats().outbox.readings).toBe(0);
    expect(world.gateway.stats().devices[0]).toMatchObject({ published: 5, publishes: 1 });
  });

  it('when full, keeps the oldest readings and skips new polls as outbox_full, loudly; seq still advances', async () => {
    const world = await startWorld(configOf(tcpDevice('M1', '192.0.2.10'), 'outbox: { maxReadings: 3 }'), { autoAck: false });
    const device = world.config.devices[0]!;
    setValues(world.modbus, device, { flow: 5, total: 10 });
    await advanceTo('2026-11-25T10:05:30.000Z');

    const stats = world.gateway.stats();
    expect(stats.outbox).toMatchObject({ readings: 3, full: true, oldestTsMs: Date.parse('2026-11-25T10:01:00.000Z') });
    expect(stats.devices[0]!.failures.outbox_full).toBe(2);
    // A full outbox is not the meter's fault: the device was not even asked.
    expect(stats.devices[0]!.sensorFault).toBe(false);
    expect(world.modbus.reads.length).toBe(9);
    expect(world.log.lines.some((l) => l.level === 'error' && l.msg.startsWith('THE OUTBOX IS FULL'))).toBe(true);
    expect(world.log.lines.some((l) => l.level === 'error' && l.msg.includes('a poll was skipped: THE OUTBOX IS FULL'))).toBe(true);
    // Told as it filled (1 of 3 is under 50 %, 2 of 3 over it), then loudly when full.
    expect(world.log.lines.filter((l) => l.level === 'warn' && l.msg.startsWith('the outbox is')).map((l) => l.msg.slice(0, 22))).toEqual(['the outbox is 50 % ful']);
    expect(renderGatewayMetrics(stats, Date.now())).toContain('flowpilot_gateway_outbox_full 1');

    const client = world.mqtt.client('M1');
    client.accept();
    client.unacked().forEach((p) => p.settle());
    await advanceTo('2026-11-25T10:06:30.000Z');
    client.unacked().forEach((p) => p.settle());
    expect(readingsOf(world.mqtt, 'M1').map((r) => [r.seq, r.ts])).toEqual([
      [0, '2026-11-25T10:01:00.000Z'],
      [1, '2026-11-25T10:02:00.000Z'],
      [2, '2026-11-25T10:03:00.000Z'],
      [5, '2026-11-25T10:06:00.000Z'],
    ]);
    expect(world.gateway.stats().outbox.full).toBe(false);
    expect(world.log.lines.some((l) => l.level === 'info' && l.msg.startsWith('the outbox is draining'))).toBe(true);
  });
});

describe('MQTT: one connection per meter, each with its will', () => {
  it('connects as {login}:gateway:{meterId} with a retained will on the meter\'s own status, and says offline at stop', async () => {
    const world = await startWorld(configOf(`${tcpDevice('M1', '192.0.2.10')}${tcpDevice('M2', '192.0.2.11')}`));
    await vi.advanceTimersByTimeAsync(0);
    expect(world.mqtt.clients.map((c) => c.options.clientId)).toEqual(['gw-test:gateway:M1', 'gw-test:gateway:M2']);
    for (const meterId of ['M1', 'M2']) {
      const client = world.mqtt.client(meterId);
      expect(client.options).toMatchObject({ username: 'gw-test', password: 'secret', will: { topic: `meters/${meterId}/status`, payload: '{"online":false}', qos: 1, retain: true } });
      expect(statusesOf(world.mqtt, meterId)).toEqual([{ online: true, ts: '2026-11-25T10:00:23.456Z' }]);
    }
    await stopUnderFakeTimers(world.gateway);
    for (const meterId of ['M1', 'M2']) {
      expect(statusesOf(world.mqtt, meterId).at(-1)).toEqual({ online: false, ts: '2026-11-25T10:00:23.456Z' });
      expect(world.mqtt.client(meterId).ended).toEqual({ force: false });
    }
    expect(world.gateway.health().status).toBe('stopped');
  });

  it('keeps seq across a restart of the gateway (the outbox is the only memory)', async () => {
    const config = configOf(tcpDevice('M1', '192.0.2.10'));
    const first = await startWorld(config);
    setValues(first.modbus, config.devices[0]!, { flow: 5, total: 10 });
    await advanceTo('2026-11-25T10:02:30.000Z');
    await stopUnderFakeTimers(first.gateway);

    const second = await startWorld(config);
    setValues(second.modbus, config.devices[0]!, { flow: 6, total: 11 });
    await advanceTo('2026-11-25T10:03:30.000Z');
    expect(readingsOf(second.mqtt, 'M1').map((r) => r.seq)).toEqual([2]);
  });
});
