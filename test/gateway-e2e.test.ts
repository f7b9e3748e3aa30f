import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, parseGatewayConfig, probeDevice, type Gateway } from '@flowpilot/gateway';
import { quoteIdentifier, quoteString, type InfluxClient } from '@flowpilot/influx';
import { ALARMS, type AlarmName } from '@flowpilot/schema';
import { createTestInflux } from './helpers/influx.ts';
import { startModbusDevice, type DeviceRegisterMap, type HeldValues, type ModbusDevice } from './helpers/modbus-device.ts';
import { makePilot, quietLog, startTestPipeline } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';

/**
 * Issue 12 on real parts (SPEC sections 1, 2 and 10): flowmeters played by Debian's pymodbus,
 * one over Modbus TCP and one over RTU on a socat pseudo-terminal pair, each answering as four
 * unit ids from the same registers; the field gateway reads each unit id through a different
 * register map (every type, both word orders, scale and offset, L/s → m³/h, L → m³, ×0.1 °C),
 * publishes through the FlowPilot broker (the gateway's own login), and the ingest writes to a
 * real influxd. What InfluxDB holds must be what the devices played: per reading, its flow and
 * total equal the values the device held at one of its ticks around the poll time (the device
 * reports every tick it writes), and the profile's own flow and totalizer to the register's
 * resolution; seq runs 0, 1, 2… without a gap; ts is on the second.
 */

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** What the device holds, and where: the flow and the totalizer in every encoding a gateway map below reads. */
const DEVICE_MAP = {
  flow_f32: { table: 'input', address: 0, type: 'float32', source: 'flow' },
  flow_f32_le: { table: 'input', address: 2, type: 'float32', wordOrder: 'little', source: 'flow' },
  flow_f64: { table: 'input', address: 4, type: 'float64', source: 'flow' },
  flow_f64_le: { table: 'input', address: 8, type: 'float64', wordOrder: 'little', source: 'flow' },
  flow_i16: { table: 'input', address: 12, type: 'int16', scale: 0.01, source: 'flow' },
  flow_i32_le: { table: 'input', address: 13, type: 'int32', wordOrder: 'little', scale: 0.001, source: 'flow' },
  // Litres per second: the device stores flow / 3.6 (float32) and flow / 0.0036 (int32, 0.001 L/s).
  flow_ls_f32: { table: 'input', address: 15, type: 'float32', scale: 3.6, source: 'flow' },
  flow_ls_i32: { table: 'input', address: 17, type: 'int32', scale: 0.0036, source: 'flow' },
  temp_i16: { table: 'input', address: 20, type: 'int16', scale: 0.1, value: -3.4 },
  temp_u16: { table: 'input', address: 21, type: 'uint16', scale: 0.1, offset: -40, value: 11.8 },
  status: { table: 'input', address: 22, type: 'uint16', value: 0b101 },
  total_rev_f32: { table: 'input', address: 24, type: 'float32', source: 'totalReverse' },
  total_rev_u32_le_l: { table: 'input', address: 26, type: 'uint32', wordOrder: 'little', scale: 0.001, source: 'totalReverse' },
  total_f64: { table: 'holding', address: 0, type: 'float64', source: 'total' },
  total_f64_le: { table: 'holding', address: 4, type: 'float64', wordOrder: 'little', source: 'total' },
  // Litres: the device stores total / 0.001.
  total_u32_l: { table: 'holding', address: 8, type: 'uint32', scale: 0.001, source: 'total' },
  total_u32_le_l: { table: 'holding', address: 10, type: 'uint32', wordOrder: 'little', scale: 0.001, source: 'total' },
  total_f32_le: { table: 'holding', address: 12, type: 'float32', wordOrder: 'little', source: 'total' },
  total_i32: { table: 'holding', address: 14, type: 'int32', scale: 0.01, source: 'total' },
} as const satisfies DeviceRegisterMap;
type DeviceRegisterName = keyof typeof DEVICE_MAP;

/** Forward, reverse, forward again: 3 s each, then the last step for ever. */
const PROFILE = [
  [0, 42.7],
  [3, -12.5],
  [6, 123.456],
] as const;
const INITIAL_TOTAL = 125_031.442;

/** One meter of the gateway: a unit id of a device, and its map (SPEC section 10), each quantity paired with the device register it reads. */
interface MeterUnderTest {
  meterId: string;
  transport: 'tcp' | 'rtu';
  unitId: number;
  reads: { flow: DeviceRegisterName; total: DeviceRegisterName; totalReverse?: DeviceRegisterName; temperature?: DeviceRegisterName };
  registers: Record<string, Record<string, unknown>>;
}

const METERS: readonly MeterUnderTest[] = [
  {
    meterId: 'E2E-T1',
    transport: 'tcp',
    unitId: 1,
    reads: { flow: 'flow_f32', total: 'total_f64', totalReverse: 'total_rev_f32', temperature: 'temp_i16' },
    registers: {
      flow: { table: 'input', address: 0, type: 'float32', unit: 'm3/h' },
      total: { table: 'holding', address: 0, type: 'float64', unit: 'm3' },
      totalReverse: { table: 'input', address: 24, type: 'float32', unit: 'm3' },
      temperature: { table: 'input', address: 20, type: 'int16', scale: 0.1, unit: 'C' },
      alarms: { table: 'input', address: 22, type: 'uint16', bits: { 0: 'empty_pipe', 2: 'leak' } },
    },
  },
  {
    meterId: 'E2E-T2',
    transport: 'tcp',
    unitId: 2,
    reads: { flow: 'flow_f32_le', total: 'total_f64_le', temperature: 'temp_u16' },
    registers: {
      flow: { table: 'input', address: 2, type: 'float32', wordOrder: 'little' },
      total: { table: 'holding', address: 4, type: 'float64', wordOrder: 'little' },
      temperature: { table: 'input', address: 21, type: 'uint16', scale: 0.1, offset: -40, unit: 'C' },
    },
  },
  {
    meterId: 'E2E-T3',
    transport: 'tcp',
    unitId: 3,
    reads: { flow: 'flow_i16', total: 'total_u32_l' },
    registers: {
      flow: { table: 'input', address: 12, type: 'int16', scale: 0.01, unit: 'm3/h' },
      total: { table: 'holding', address: 8, type: 'uint32', unit: 'L' },
    },
  },
  {
    meterId: 'E2E-T4',
    transport: 'tcp',
    unitId: 4,
    reads: { flow: 'flow_i32_le', total: 'total_u32_le_l' },
    registers: {
      flow: { table: 'input', address: 13, type: 'int32', wordOrder: 'little', scale: 0.001 },
      total: { table: 'holding', address: 10, type: 'uint32', wordOrder: 'little', unit: 'L' },
    },
  },
  {
    meterId: 'E2E-R1',
    transport: 'rtu',
    unitId: 1,
    reads: { flow: 'flow_f64', total: 'total_i32', temperature: 'temp_i16' },
    registers: {
      flow: { table: 'input', address: 4, type: 'float64' },
      total: { table: 'holding', address: 14, type: 'int32', scale: 0.01, unit: 'm3' },
      temperature: { table: 'input', address: 20, type: 'int16', scale: 0.1 },
    },
  },
  {
    meterId: 'E2E-R2',
    transport: 'rtu',
    unitId: 2,
    reads: { flow: 'flow_f64_le', total: 'total_f32_le', totalReverse: 'total_rev_u32_le_l' },
    registers: {
      flow: { table: 'input', address: 8, type: 'float64', wordOrder: 'little', unit: 'm3/h' },
      total: { table: 'holding', address: 12, type: 'float32', wordOrder: 'little' },
      totalReverse: { table: 'input', address: 26, type: 'uint32', wordOrder: 'little', unit: 'L' },
    },
  },
  {
    meterId: 'E2E-R3',
    transport: 'rtu',
    unitId: 3,
    reads: { flow: 'flow_ls_f32', total: 'total_u32_l' },
    registers: {
      flow: { table: 'input', address: 15, type: 'float32', unit: 'L/s' },
      total: { table: 'holding', address: 8, type: 'uint32', unit: 'L' },
    },
  },
  {
    meterId: 'E2E-R4',
    transport: 'rtu',
    unitId: 4,
    reads: { flow: 'flow_ls_i32', total: 'total_u32_le_l', temperature: 'temp_u16' },
    registers: {
      flow: { table: 'input', address: 17, type: 'int32', scale: 0.001, unit: 'L/s' },
      total: { table: 'holding', address: 10, type: 'uint32', wordOrder: 'little', unit: 'L' },
      temperature: { table: 'input', address: 21, type: 'uint16', scale: 0.1, offset: -40 },
    },
  },
];
const METER_IDS = METERS.map((m) => m.meterId);
const PASSWORD = 'gateway-e2e-password';
const INTERVAL_MS = 1000;

/**
 * How far a decoded value may be from what the register holds: a float32 carries 24 bits (the
 * gateway reports its shortest decimal, within half a unit in the last place); every other value
 * is the same double up to the gateway's rounding to 15 significant digits.
 */
function decodeTolerance(register: DeviceRegisterName, held: number): number {
  return DEVICE_MAP[register].type === 'float32' ? Math.abs(held) * 2 ** -23 + 1e-12 : Math.abs(held) * 1e-12 + 1e-12;
}

/**
 * How far a decoded value may be from the profile's own value: half the register's resolution
 * (a float32 twice over: the device rounds to it, the gateway to its shortest decimal; a float64
 * is taken to the gateway's 15 significant digits).
 */
function resolution(register: DeviceRegisterName, value: number): number {
  const entry: { type: string; scale?: number } = DEVICE_MAP[register];
  if (entry.type === 'float32') return Math.abs(value) * 2 ** -23 + 1e-12;
  if (entry.type === 'float64') return Math.abs(value) * 1e-12 + 1e-12;
  return Math.abs(entry.scale ?? 1) / 2 + 1e-9;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-gateway-e2e-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startDevice(transport: 'tcp' | 'rtu'): Promise<ModbusDevice> {
  const unitIds = METERS.filter((m) => m.transport === transport).map((m) => m.unitId);
  // Every tick reported (logEveryMs ≤ tickMs), so a reading can be matched with the tick it read.
  const device = await startModbusDevice({ transport, unitIds, map: DEVICE_MAP, profile: PROFILE, initialTotal: INITIAL_TOTAL, tickMs: 100, logEveryMs: 100 });
  cleanups.push(() => device.stop());
  return device;
}

function gatewayYaml(mqttUrl: string, dataDir: string, devices: Record<'tcp' | 'rtu', ModbusDevice>): string {
  const lines = [`broker: { url: "${mqttUrl}", username: gw-e2e, password: ${PASSWORD} }`, `dataDir: ${join(dataDir, 'gateway')}`, 'devices:'];
  for (const meter of METERS) {
    const device = devices[meter.transport];
    const where = device.transport === 'tcp' ? `transport: tcp, host: ${device.host}, port: ${device.port}` : `transport: rtu, path: ${device.serialPath}, baudRate: ${device.baudRate}`;
    // YAML takes JSON as flow style: the maps above go in as they are written.
    lines.push(`  - { meterId: ${meter.meterId}, ${where}, unitId: ${meter.unitId}, intervalSec: 1, timeoutMs: 300, retries: 1, registers: ${JSON.stringify(meter.registers)} }`);
  }
  return `${lines.join('\n')}\n`;
}

interface StoredPoint {
  ts: number;
  seq: number;
  flow: number;
  total: number;
  totalReverse: number | null;
  temperature: number | null;
  alarms: number | null;
  receivedAt: number;
}

async function storedPoints(influx: InfluxClient, meterId: string): Promise<StoredPoint[]> {
  const fields = ['seq', 'flow', 'total', 'total_rev', 'temperature', 'alarms', 'received_at'];
  const [series] = await influx.query(`SELECT ${fields.map(quoteIdentifier).join(', ')} FROM reading WHERE meter = ${quoteString(meterId)}`);
  if (!series) return [];
  const at = (name: string) => series.columns.indexOf(name);
  return series.values.map((row) => ({
    ts: row[at('time')] as number,
    seq: row[at('seq')] as number,
    flow: row[at('flow')] as number,
    total: row[at('total')] as number,
    totalReverse: row[at('total_rev')] as number | null,
    temperature: row[at('temperature')] as number | null,
    alarms: row[at('alarms')] as number | null,
    receivedAt: row[at('received_at')] as number,
  }));
}

/**
 * The ticks that may have been read for a poll at `ts`: the registers a poll reads were written by
 * the last tick before it, and the poll ran after its boundary and before the next one.
 */
function ticksAround(played: readonly HeldValues[], ts: number): HeldValues[] {
  return played.filter((tick) => tick.ts >= ts - 500 && tick.ts <= ts + INTERVAL_MS);
}

/** A tick whose register held this value, and whose profile value the register resolves: the tick, or a description of the mismatch. */
function matchTick(candidates: readonly HeldValues[], register: DeviceRegisterName, source: 'flow' | 'total' | 'totalReverse', value: number): HeldValues | string {
  const found = candidates.find((tick) => {
    const held = tick.held[register];
    return held !== undefined && Math.abs(value - held) <= decodeTolerance(register, held) && Math.abs(value - tick[source]) <= resolution(register, tick[source]);
  });
  if (found) return found;
  return `${value} matches no tick's ${register} (${source}) among ${candidates.map((tick) => `${tick.tick}: held ${tick.held[register]}, ${source} ${tick[source]}`).join('; ')}`;
}

const alarmMask = (alarms: readonly AlarmName[]) => alarms.reduce((mask, alarm) => mask | (1 << ALARMS.indexOf(alarm)), 0);

describe('the Modbus field gateway on real parts: pymodbus over TCP and RTU → gateway → broker → ingest → InfluxDB', () => {
  it('stores what the devices played, for every register type, word order, scale, offset and unit, with consecutive seqs on the interval\'s boundaries', async () => {
    const influx = await createTestInflux();
    const pipeline = await startTestPipeline({ pilot: makePilot(METER_IDS), influx });
    cleanups.push(() => pipeline.close());
    // The gateway's own login, serving exactly these meters (`flowpilot credentials add gw-e2e --role gateway --meters …`).
    await pipeline.credentials.add('gw-e2e', 'gateway', PASSWORD, METER_IDS);
    // Verified once before the gateway starts, so its eight connections find the login in the
    // broker's cache: here the broker shares the gateway's process, and eight scrypt checks at
    // once fill libuv's thread pool, which the serial port's open and writes also wait for.
    expect(await pipeline.credentials.verify('gw-e2e', PASSWORD)).toMatchObject({ id: 'gw-e2e', role: 'gateway' });
    const devices = { tcp: await startDevice('tcp'), rtu: await startDevice('rtu') };
    expect(devices.tcp.unitIds).toEqual([1, 2, 3, 4]);

    const config = parseGatewayConfig(gatewayYaml(pipeline.mqttUrl, tempDir(), devices), 'gateway-e2e.yaml');
    // Each meter probed once first, as an operator does (`flowpilot gateway probe`). It also loads
    // the serial-port binding, whose first open under a cold test runner can outlast a 300 ms poll.
    for (const device of config.devices) {
      const probed = await probeDevice({ ...device, timeoutMs: 5_000 });
      expect(PROFILE.some(([, flow]) => Math.abs(probed.decoded.flowM3h - flow) < 0.01), `${device.meterId} probed ${probed.decoded.flowM3h} m³/h`).toBe(true);
    }
    const gateway: Gateway = createGateway({ config, log: quietLog, reconnectPeriodMs: 200, connectTimeoutMs: 5_000 });
    cleanups.push(() => gateway.stop());
    await gateway.start();

    // Until each meter has read every step of the profile (the last one, 123.456 m³/h, from 6 s on) a few times.
    const lastFlow = PROFILE[PROFILE.length - 1]![1];
    await eventually(
      async () => Promise.all(METER_IDS.map(async (id) => (await storedPoints(influx, id)).filter((p) => Math.abs(p.flow - lastFlow) < 0.01).length)),
      (counts) => counts.every((n) => n >= 2),
      60_000,
      (counts) => `readings at the profile's last step per meter: ${counts.join(', ')}; gateway: ${JSON.stringify(gateway.stats().devices.map((d) => [d.meterId, d.readings, d.failures]))}`,
    );

    // The set to check: every seq the gateway had numbered by now, and the polls it counted as skipped.
    // (None is expected; a loaded host can make one: the first RTU poll opens the serial port and
    // loads its binding within the poll's 300 ms. A skip is a seq with no reading, never a made-up one.)
    const made = gateway.stats().devices;
    const skippedOf = (meterId: string) => Object.values(made.find((d) => d.meterId === meterId)!.failures).reduce((a, b) => a + b, 0);
    const stored = new Map<string, StoredPoint[]>();
    await eventually(
      async () => {
        for (const id of METER_IDS) stored.set(id, await storedPoints(influx, id));
        return made.map((d) => (stored.get(d.meterId) ?? []).filter((p) => p.seq < d.nextSeq).length - (d.nextSeq - skippedOf(d.meterId)));
      },
      (short) => short.every((n) => n === 0),
      30_000,
      (short) => `readings made and not yet stored, per meter: ${short.map((n) => -n).join(', ')}`,
    );
    await gateway.stop();

    let checked = 0;
    let skipped = 0;
    const flowsSeen = new Map<string, Set<number>>();
    for (const meter of METERS) {
      const device = devices[meter.transport];
      const played = device.played();
      const nextSeq = made.find((d) => d.meterId === meter.meterId)!.nextSeq;
      const points = stored.get(meter.meterId)!.filter((p) => p.seq < nextSeq).sort((a, b) => a.seq - b.seq);
      // seq 0, 1, 2… each once (a repeated seq would be a second point at another ts), but for the
      // polls counted as skipped; ts on the second and rising.
      const missing = Array.from({ length: nextSeq }, (_, seq) => seq).filter((seq) => !points.some((p) => p.seq === seq));
      expect({ meterId: meter.meterId, missing: missing.length }).toEqual({ meterId: meter.meterId, missing: skippedOf(meter.meterId) });
      expect(new Set(points.map((p) => p.seq)).size).toBe(points.length);
      skipped += missing.length;
      for (const [i, point] of points.entries()) {
        expect(point.ts % INTERVAL_MS).toBe(0);
        if (i > 0) expect(point.ts).toBeGreaterThan(points[i - 1]!.ts);
        expect(point.receivedAt).toBeGreaterThanOrEqual(point.ts);

        // Held values, not a profile recomputed here: the device said what each register held at each tick.
        const candidates = ticksAround(played, point.ts);
        const flowTick = matchTick(candidates, meter.reads.flow, 'flow', point.flow);
        const totalTick = matchTick(candidates, meter.reads.total, 'total', point.total);
        expect(typeof flowTick === 'string' ? `${meter.meterId} seq ${point.seq}: flow ${flowTick}` : 'ok').toBe('ok');
        expect(typeof totalTick === 'string' ? `${meter.meterId} seq ${point.seq}: total ${totalTick}` : 'ok').toBe('ok');
        if (typeof flowTick !== 'string') flowsSeen.set(meter.meterId, (flowsSeen.get(meter.meterId) ?? new Set()).add(flowTick.flow));
        if (meter.reads.totalReverse) {
          const reverseTick = matchTick(candidates, meter.reads.totalReverse, 'totalReverse', point.totalReverse ?? Number.NaN);
          expect(typeof reverseTick === 'string' ? `${meter.meterId} seq ${point.seq}: totalReverse ${reverseTick}` : 'ok').toBe('ok');
        } else expect(point.totalReverse).toBeNull();
        if (meter.reads.temperature) expect(point.temperature).toBe((DEVICE_MAP[meter.reads.temperature] as { value?: number }).value);
        else expect(point.temperature).toBeNull();
        checked += 1;
      }
      // The device's status word 0b101 through the map's bits {0: empty_pipe, 2: leak}, stored as SPEC section 2's mask.
      if (meter.registers.alarms) expect(new Set(points.map((p) => p.alarms))).toEqual(new Set([alarmMask(['empty_pipe', 'leak'])]));
      // Every step of the profile was read, the reverse flow with its sign.
      expect([...(flowsSeen.get(meter.meterId) ?? [])].sort((a, b) => a - b)).toEqual(PROFILE.map(([, flow]) => flow).sort((a, b) => a - b));
    }
    console.log(`[gateway e2e] ${checked} readings of ${METERS.length} meters (${METERS.filter((m) => m.transport === 'tcp').length} over TCP, ${METERS.filter((m) => m.transport === 'rtu').length} over RTU, pymodbus ${devices.tcp.pymodbusVersion}) matched what the devices held; ${skipped} polls skipped and counted${skipped > 0 ? ` (${made.filter((d) => d.lastFailure).map((d) => `${d.meterId}: ${JSON.stringify(Object.fromEntries(Object.entries(d.failures).filter(([, n]) => n > 0)))}, last ${d.lastFailure!.message}`).join('; ')})` : ''}`);
  });
});
