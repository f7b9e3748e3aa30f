import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerTCP } from 'modbus-serial';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroker, openCredentialsStore, type CredentialsStore, type FlowPilotBroker } from '@flowpilot/broker';
import { createMeterRegistry } from '@flowpilot/schema';
import { openDurableStore, type DurableStore } from '@flowpilot/store';
import { makePilot, quietLog } from '../../../test/helpers/pipeline.ts';
import { freePort } from '../../../test/helpers/ports.ts';
import { eventually } from '../../../test/helpers/wait.ts';
import { parseGatewayConfig, type DeviceConfig, type GatewayConfig } from './config.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { serveGatewayHttp } from './metrics.ts';
import { encodeAlarms, encodeValue } from './registers.ts';

/**
 * The gateway end to end on loopback: a real Modbus TCP server (modbus-serial's ServerTCP),
 * the real FlowPilot broker (Aedes with the gateway login's ACL and the durable store), real
 * MQTT. What it holds the gateway to (SPEC sections 6 and 10): every poll's reading reaches the
 * broker with its seq, ts and values; a broker that goes away and comes back loses nothing;
 * a restarted gateway goes on numbering where it stopped. No timing is asserted: each wait is
 * for a state, with a deadline.
 */

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-gateway-int-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const METERS = ['GW-M1', 'GW-M2'];
const PASSWORD = 'gateway-int-password';

/** A Modbus TCP device holding registers; every unit id answers from the same registers. */
async function startModbusServer(): Promise<{ port: number; set(table: 'holding' | 'input', address: number, words: readonly number[]): void; close(): Promise<void> }> {
  const registers = { holding: new Map<number, number>(), input: new Map<number, number>() };
  const read = (table: 'holding' | 'input', address: number, length: number) => Array.from({ length }, (_, i) => registers[table].get(address + i) ?? 0);
  const port = await freePort();
  const server = new ServerTCP(
    {
      getHoldingRegister: (address: number) => read('holding', address, 1)[0]!,
      getInputRegister: (address: number) => read('input', address, 1)[0]!,
      getMultipleHoldingRegisters: (address: number, length: number) => read('holding', address, length),
      getMultipleInputRegisters: (address: number, length: number) => read('input', address, length),
    },
    { host: '127.0.0.1', port },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', () => resolve());
    server.once('serverError', reject);
  });
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  cleanups.push(close);
  return {
    port,
    set(table, address, words) {
      words.forEach((word, i) => registers[table].set(address + i, word));
    },
    close,
  };
}

interface BrokerWorld {
  url: string;
  store: DurableStore;
  broker: FlowPilotBroker;
  credentials: CredentialsStore;
}

/** The FlowPilot broker on `port` (0: a free one), its store and credentials in `dataDir`. */
async function startBroker(dataDir: string, port = 0): Promise<BrokerWorld & { close(): Promise<void> }> {
  const store = openDurableStore({ path: join(dataDir, 'spool.sqlite') });
  const credentials = openCredentialsStore(join(dataDir, 'credentials.json'));
  const broker = await createBroker({ registry: createMeterRegistry(makePilot(METERS)), credentials, store, log: quietLog });
  const address = await broker.listen(port, '127.0.0.1');
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await broker.close();
    store.close();
  };
  cleanups.push(close);
  return { url: `mqtt://127.0.0.1:${address.port}`, store, broker, credentials, close };
}

function gatewayConfig(brokerUrl: string, modbusPort: number, dataDir: string): GatewayConfig {
  const device = (meterId: string, unitId: number) => `
  - meterId: ${meterId}
    transport: tcp
    host: 127.0.0.1
    port: ${modbusPort}
    unitId: ${unitId}
    intervalSec: 1
    timeoutMs: 300
    retries: 1
    registers:
      flow:        { table: input,   address: 0,  type: float32 }
      total:       { table: holding, address: 10, type: float64, unit: m3 }
      temperature: { table: input,   address: 4,  type: int16, scale: 0.1, unit: C }
      alarms:      { table: input,   address: 20, type: uint16, bits: { 0: empty_pipe, 1: reverse_flow } }`;
  return parseGatewayConfig(
    `broker: { url: "${brokerUrl}", username: gw-int, password: ${PASSWORD} }\ndataDir: ${join(dataDir, 'gateway')}\nmetrics: { port: 0 }\ndevices:${device(METERS[0]!, 1)}${device(METERS[1]!, 2)}\n`,
  );
}

function startGateway(config: GatewayConfig): Promise<Gateway> {
  const gateway = createGateway({ config, log: quietLog, reconnectPeriodMs: 200, connectTimeoutMs: 2_000 });
  cleanups.push(() => gateway.stop());
  return gateway.start().then(() => gateway);
}

/** The readings of the broker's durable store, by meter: seq → ts (epoch ms) and the line. */
function storedReadings(store: DurableStore): Map<string, Map<number, { tsMs: number; line: string }>> {
  const byMeter = new Map<string, Map<number, { tsMs: number; line: string }>>();
  for (const line of store.readAfter(0, 1_000_000)?.lines ?? []) {
    if (!line.startsWith('reading,')) continue;
    const meterId = /meter=([^, ]+)/.exec(line)![1]!;
    const seq = Number(/[ ,]seq=(\d+)i/.exec(line)![1]);
    // The store's lines carry their time in epoch milliseconds (packages/influx line-protocol.ts).
    const tsMs = Number(line.slice(line.lastIndexOf(' ') + 1));
    let readings = byMeter.get(meterId);
    if (!readings) byMeter.set(meterId, (readings = new Map()));
    readings.set(seq, { tsMs, line });
  }
  return byMeter;
}

/** Seqs 0…n−1, each once: nothing lost on the way. */
const contiguous = (seqs: Iterable<number>) => [...seqs].sort((a, b) => a - b).every((seq, i) => seq === i);

async function subscriber(url: string, credentials: CredentialsStore): Promise<{ readings: Record<string, unknown>[]; statuses: Record<string, unknown>[] }> {
  await credentials.add('gw-int-watcher', 'service', 'watcher-password');
  const client: MqttClient = await connectAsync(url, { clientId: 'gw-int-watcher:1', username: 'gw-int-watcher', password: 'watcher-password', protocolVersion: 4, reconnectPeriod: 0 });
  cleanups.push(() => client.endAsync(true));
  const seen = { readings: [] as Record<string, unknown>[], statuses: [] as Record<string, unknown>[] };
  client.on('message', (topic, payload) => {
    const parsed = JSON.parse(payload.toString()) as Record<string, unknown> | Record<string, unknown>[];
    if (topic.endsWith('/status')) seen.statuses.push({ topic, ...(parsed as Record<string, unknown>) });
    else seen.readings.push(...(Array.isArray(parsed) ? parsed : [parsed]));
  });
  await client.subscribeAsync(['meters/+/readings', 'meters/+/status'], { qos: 1 });
  return seen;
}

function setMeter(modbus: Awaited<ReturnType<typeof startModbusServer>>, device: DeviceConfig, flow: number, total: number): void {
  const map = device.registers;
  modbus.set('input', 0, encodeValue(map.flow, flow));
  modbus.set('holding', 10, encodeValue(map.total, total));
  modbus.set('input', 4, encodeValue(map.temperature!, 11.8));
  modbus.set('input', 20, encodeAlarms(map.alarms!, ['empty_pipe']));
}

describe('the gateway against a Modbus TCP device and the FlowPilot broker', () => {
  it('publishes each poll\'s reading with its seq, boundary ts and decoded values, and serves /metrics and /healthz', async () => {
    const dataDir = tempDir();
    const modbus = await startModbusServer();
    const broker = await startBroker(dataDir);
    await broker.credentials.add('gw-int', 'gateway', PASSWORD, METERS);
    const seen = await subscriber(broker.url, broker.credentials);
    const config = gatewayConfig(broker.url, modbus.port, dataDir);
    setMeter(modbus, config.devices[0]!, 42.7, 125031.442);
    const gateway = await startGateway(config);
    const http = await serveGatewayHttp(gateway, '127.0.0.1', 0);
    cleanups.push(() => http.close());

    await eventually(() => seen.readings.filter((r) => r.meterId === 'GW-M1').length, (n) => n >= 3, 20_000, 'three readings of GW-M1 at the subscriber');
    const m1 = seen.readings.filter((r) => r.meterId === 'GW-M1');
    expect(m1.map((r) => r.seq)).toEqual(m1.map((_, i) => i));
    for (const reading of m1) {
      expect(reading).toMatchObject({ v: 1, flow: 42.7, total: 125031.442, temperature: 11.8, alarms: ['empty_pipe'] });
      // ts is the boundary of the 1 s interval the poll was made for.
      expect(Date.parse(reading.ts as string) % 1000).toBe(0);
    }
    expect(new Set(m1.map((r) => r.ts)).size).toBe(m1.length);
    expect(seen.statuses.find((s) => s.topic === 'meters/GW-M1/status')).toMatchObject({ online: true });

    // The broker accepted them (the PUBACK came only after its durable store committed them).
    await eventually(() => storedReadings(broker.store).get('GW-M1')?.size ?? 0, (n) => n >= 3, 10_000, 'GW-M1 readings in the broker store');

    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    expect(metrics).toMatch(/flowpilot_gateway_polls_total\{meter="GW-M1"\} [1-9]/);
    expect(metrics).toContain('flowpilot_gateway_connected{meter="GW-M1"} 1');
    expect(metrics).toContain('flowpilot_gateway_poll_failures_total{meter="GW-M1",kind="timeout"} 0');
    const health = await fetch(`${http.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', devices: [{ meterId: 'GW-M1', connected: true }, { meterId: 'GW-M2', connected: true }], outbox: { full: false } });
  });

  it('loses nothing while the broker is down: the outbox keeps the readings and sends them when it is back', async () => {
    const dataDir = tempDir();
    const modbus = await startModbusServer();
    let broker = await startBroker(dataDir);
    const port = Number(new URL(broker.url).port);
    await broker.credentials.add('gw-int', 'gateway', PASSWORD, METERS);
    const config = gatewayConfig(broker.url, modbus.port, dataDir);
    setMeter(modbus, config.devices[0]!, 10, 500);
    const gateway = await startGateway(config);
    await eventually(() => storedReadings(broker.store).get('GW-M1')?.size ?? 0, (n) => n >= 2, 20_000, 'GW-M1 readings before the outage');

    await broker.close();
    // Polls go on into the outbox while nothing acknowledges them.
    await eventually(() => gateway.stats().outbox.readings, (n) => n >= 6, 20_000, 'readings waiting in the outbox');
    expect(gateway.stats().devices.every((d) => !d.mqttConnected)).toBe(true);
    // Every reading made up to here must reach the broker once it is back.
    const madeBeforeRestart = gateway.stats().devices.map((d) => [d.meterId, d.nextSeq] as const);

    broker = await startBroker(dataDir, port);
    const holdsAll = (stored: ReturnType<typeof storedReadings>) =>
      madeBeforeRestart.every(([meterId, next]) => Array.from({ length: next }, (_, seq) => seq).every((seq) => stored.get(meterId)?.has(seq)));
    await eventually(() => storedReadings(broker.store), holdsAll, 30_000, 'every reading made during the outage in the broker store');
    for (const device of gateway.stats().devices) {
      // No poll failed, so every seq is a reading: the store holds an unbroken run from 0.
      expect(Object.values(device.failures).every((n) => n === 0)).toBe(true);
      expect(contiguous(storedReadings(broker.store).get(device.meterId)!.keys())).toBe(true);
    }
    // The backlog went as arrays (several readings per PUBLISH).
    expect(gateway.stats().devices[0]!.published).toBeGreaterThan(gateway.stats().devices[0]!.publishes);
  });

  it('goes on numbering after a restart of the gateway, and says its meters are offline while stopped', async () => {
    const dataDir = tempDir();
    const modbus = await startModbusServer();
    const broker = await startBroker(dataDir);
    await broker.credentials.add('gw-int', 'gateway', PASSWORD, METERS);
    const config = gatewayConfig(broker.url, modbus.port, dataDir);
    setMeter(modbus, config.devices[0]!, 10, 500);

    const first = await startGateway(config);
    await eventually(() => storedReadings(broker.store).get('GW-M1')?.size ?? 0, (n) => n >= 3, 20_000, 'GW-M1 readings of the first run');
    await first.stop();
    const afterFirst = storedReadings(broker.store).get('GW-M1')!;
    const firstRunSeqs = [...afterFirst.keys()];
    expect(contiguous(firstRunSeqs)).toBe(true);
    expect(broker.store.readAfter(0, 1_000_000)!.lines.some((line) => line.startsWith('status,meter=GW-M1 online=false'))).toBe(true);

    const second = await startGateway(config);
    await eventually(() => storedReadings(broker.store).get('GW-M1')?.size ?? 0, (n) => n >= firstRunSeqs.length + 2, 20_000, 'GW-M1 readings of the second run');
    await second.stop();
    const all = storedReadings(broker.store).get('GW-M1')!;
    expect(contiguous(all.keys())).toBe(true);
    // The second run's first reading follows the first run's last, in seq and in time.
    const next = all.get(firstRunSeqs.length)!;
    expect(next.tsMs).toBeGreaterThan(afterFirst.get(firstRunSeqs.length - 1)!.tsMs);
  });
});
