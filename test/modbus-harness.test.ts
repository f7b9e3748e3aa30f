import modbusSerial from 'modbus-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { startModbusDevice, type DeviceRegister, type DeviceRegisterMap, type HeldValues, type ModbusDevice, type ModbusTable } from './helpers/modbus-device.ts';
import { eventually } from './helpers/wait.ts';

/**
 * The harness the gateway's end-to-end tests stand on (SPEC section 10): Debian's pymodbus
 * playing a flowmeter over Modbus TCP and RTU (socat's pseudo-terminals), read here with
 * modbus-serial, the client the gateway uses. Every type and word order of SPEC section 10 is
 * decoded by hand in this file (not with the gateway's decoder, so the two check each other),
 * and must equal what the device says its registers held at one of its ticks.
 */

// modbus-serial is CommonJS: its class is module.exports, also exported as `default` (the name
// its typings give it under NodeNext).
const ModbusRTU = modbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;

const MAP = {
  // Input registers: the flow in every encoding, and the reverse totalizer.
  flow: { table: 'input', address: 0, type: 'float32' },
  flow_f32_little: { table: 'input', address: 2, type: 'float32', wordOrder: 'little', source: 'flow' },
  flow_f64: { table: 'input', address: 4, type: 'float64', source: 'flow' },
  flow_f64_little: { table: 'input', address: 8, type: 'float64', wordOrder: 'little', source: 'flow' },
  flow_i16: { table: 'input', address: 12, type: 'int16', scale: 0.01, source: 'flow' },
  flow_i32: { table: 'input', address: 13, type: 'int32', scale: 0.001, source: 'flow' },
  flow_i32_little: { table: 'input', address: 15, type: 'int32', wordOrder: 'little', scale: 0.001, source: 'flow' },
  flow_l_s: { table: 'input', address: 17, type: 'float32', scale: 3.6, source: 'flow' }, // L/s stored, m³/h meant
  totalReverse: { table: 'input', address: 20, type: 'float32' },
  // Holding registers: the forward totalizer, and constants at the edges of each integer type.
  total: { table: 'holding', address: 0, type: 'float64' },
  total_f64_little: { table: 'holding', address: 4, type: 'float64', wordOrder: 'little', source: 'total' },
  total_u32: { table: 'holding', address: 8, type: 'uint32', scale: 0.001, source: 'total' },
  total_u32_little: { table: 'holding', address: 10, type: 'uint32', wordOrder: 'little', scale: 0.001, source: 'total' },
  total_f32_little: { table: 'holding', address: 12, type: 'float32', wordOrder: 'little', source: 'total' },
  total_litres: { table: 'holding', address: 14, type: 'uint32', scale: 1000, offset: 100_000, source: 'total' },
  temperature: { table: 'holding', address: 20, type: 'int16', scale: 0.1, value: -3.4 },
  alarms: { table: 'holding', address: 21, type: 'uint16', value: 0b1000_0000_0000_0101 },
  pressure: { table: 'holding', address: 22, type: 'uint16', scale: 0.01, offset: -1, value: 3.21 },
  serial_i32: { table: 'holding', address: 23, type: 'int32', value: -123_456_789 },
  serial_i32_little: { table: 'holding', address: 25, type: 'int32', wordOrder: 'little', value: -123_456_789 },
  counter_u32: { table: 'holding', address: 27, type: 'uint32', value: 3_000_000_000 },
  counter_u32_little: { table: 'holding', address: 29, type: 'uint32', wordOrder: 'little', value: 3_000_000_000 },
  battery_f32: { table: 'holding', address: 31, type: 'float32', value: -87.125 },
} satisfies DeviceRegisterMap;
type Quantity = keyof typeof MAP;

/** Forward flow, then reverse, then forward again: each step held for a second. */
const PROFILE = [
  [0, 42.7],
  [1, -12.5],
  [2, 123.456],
] as const;
const INITIAL_TOTAL = 125_031.442;
const INITIAL_TOTAL_REVERSE = 0.25;

const WORDS = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, float64: 4 } as const;

/** SPEC section 10 by hand: words big-endian each, in the word order given, then raw * scale + offset. */
function decode(words: readonly number[], register: DeviceRegister): number {
  const ordered = register.wordOrder === 'little' ? [...words].reverse() : words;
  const view = new DataView(new ArrayBuffer(ordered.length * 2));
  ordered.forEach((word, i) => view.setUint16(i * 2, word, false));
  const raw = {
    int16: () => view.getInt16(0, false),
    uint16: () => view.getUint16(0, false),
    int32: () => view.getInt32(0, false),
    uint32: () => view.getUint32(0, false),
    float32: () => view.getFloat32(0, false),
    float64: () => view.getFloat64(0, false),
  }[register.type]();
  return raw * (register.scale ?? 1) + (register.offset ?? 0);
}

function entriesOf(table: ModbusTable): [Quantity, DeviceRegister][] {
  return (Object.entries(MAP) as [Quantity, DeviceRegister][]).filter(([, register]) => register.table === table);
}

/** One request per table, so each table's values come from one tick of the device. */
async function readTable(client: ModbusRTU, table: ModbusTable): Promise<Partial<Record<Quantity, number>>> {
  const entries = entriesOf(table);
  const start = Math.min(...entries.map(([, r]) => r.address));
  const end = Math.max(...entries.map(([, r]) => r.address + WORDS[r.type]));
  const { data } = table === 'holding' ? await client.readHoldingRegisters(start, end - start) : await client.readInputRegisters(start, end - start);
  return Object.fromEntries(entries.map(([name, r]) => [name, decode(data.slice(r.address - start, r.address - start + WORDS[r.type]), r)]));
}

/** The tick whose registers were read: every value decoded equals what the device held then. */
async function tickThatHeld(device: ModbusDevice, decoded: Partial<Record<Quantity, number>>): Promise<HeldValues> {
  const matches = (state: HeldValues) => Object.entries(decoded).every(([name, value]) => state.held[name] === value);
  // The device reports a tick right after writing it; the report may reach us just after the read.
  const found = await eventually(
    () => device.played().find(matches),
    (state) => state !== undefined,
    10_000,
    () => `no tick held ${JSON.stringify(decoded)}; the last held ${JSON.stringify(device.played().at(-1)?.held)}`,
  );
  return found as HeldValues;
}

/** The profile's totalizers at t seconds, integrated independently of the device. */
function expectedTotals(t: number): { total: number; totalReverse: number } {
  let total = INITIAL_TOTAL;
  let totalReverse = INITIAL_TOTAL_REVERSE;
  PROFILE.forEach(([start, flow], i) => {
    if (start >= t) return;
    const volume = (flow * (Math.min(t, PROFILE[i + 1]?.[0] ?? t) - start)) / 3600;
    if (volume > 0) total += volume;
    else totalReverse -= volume;
  });
  return { total, totalReverse };
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startDevice(transport: 'tcp' | 'rtu'): Promise<ModbusDevice> {
  const device = await startModbusDevice({ transport, unitId: 7, map: MAP, profile: PROFILE, initialTotal: INITIAL_TOTAL, initialTotalReverse: INITIAL_TOTAL_REVERSE, logEveryMs: 100 });
  cleanups.push(() => device.stop());
  return device;
}

async function connectClient(device: ModbusDevice): Promise<ModbusRTU> {
  const client = new ModbusRTU();
  if (device.transport === 'tcp') await client.connectTCP(device.host, { port: device.port });
  else await client.connectRTUBuffered(device.serialPath, { baudRate: device.baudRate, parity: device.parity });
  client.setID(device.unitId);
  client.setTimeout(2_000);
  cleanups.push(() => new Promise<void>((resolve) => (client.isOpen ? client.close(() => resolve()) : resolve())));
  return client;
}

describe.each(['tcp', 'rtu'] as const)('a pymodbus flowmeter over %s', (transport) => {
  it('holds what it says it holds, in every type and word order, as its profile plays', async () => {
    const device = await startDevice(transport);
    expect(device.pymodbusVersion).toMatch(/^3\./);
    if (device.transport === 'rtu') expect(device.serialPath).toMatch(/^\/dev\/pts\/\d+$/);
    const client = await connectClient(device);

    // Read until each step of the profile has been seen; every read must match one tick exactly.
    const flowsSeen = new Set<number>();
    await eventually(
      async () => {
        const inputs = await readTable(client, 'input');
        const inputTick = await tickThatHeld(device, inputs);
        // One flow, six encodings: the exact ones equal the device's flow, the scaled ones round it.
        expect(inputs.flow_f64).toBe(inputTick.flow);
        expect(inputs.flow_f64_little).toBe(inputTick.flow);
        expect(inputs.flow).toBe(Math.fround(inputTick.flow));
        expect(inputs.flow_f32_little).toBe(Math.fround(inputTick.flow));
        expect(inputs.flow_i16).toBeCloseTo(inputTick.flow, 1);
        expect(inputs.flow_i32).toBeCloseTo(inputTick.flow, 2);
        expect(inputs.flow_i32_little).toBe(inputs.flow_i32);
        expect(inputs.flow_l_s).toBeCloseTo(inputTick.flow, 4);
        expect(inputs.totalReverse).toBe(Math.fround(inputTick.totalReverse));
        expect(inputTick.totalReverse).toBeCloseTo(expectedTotals(inputTick.t).totalReverse, 9);
        expect(PROFILE.map(([, flow]) => flow)).toContain(inputTick.flow);
        flowsSeen.add(inputTick.flow);

        const holding = await readTable(client, 'holding');
        const holdingTick = await tickThatHeld(device, holding);
        expect(holding.total).toBe(holdingTick.total);
        expect(holding.total_f64_little).toBe(holdingTick.total);
        expect(holding.total_u32).toBeCloseTo(holdingTick.total, 2);
        expect(holding.total_u32_little).toBe(holding.total_u32);
        expect(holding.total_f32_little).toBe(Math.fround(holdingTick.total));
        expect(Math.abs((holding.total_litres ?? NaN) - holdingTick.total)).toBeLessThanOrEqual(500); // whole m³ above 100,000
        expect(holdingTick.total).toBeCloseTo(expectedTotals(holdingTick.t).total, 9);
        expect(holding).toMatchObject({
          temperature: -34 * 0.1,
          alarms: 0b1000_0000_0000_0101,
          pressure: 421 * 0.01 - 1,
          serial_i32: -123_456_789,
          serial_i32_little: -123_456_789,
          counter_u32: 3_000_000_000,
          counter_u32_little: 3_000_000_000,
          battery_f32: -87.125,
        });
        return flowsSeen;
      },
      (seen) => seen.size === PROFILE.length,
      30_000,
      (seen) => `flows seen: ${[...seen].join(', ')}`,
    );

    // It reports its ticks in order, and its forward totalizer never runs backwards.
    const played = device.played();
    expect(played.length).toBeGreaterThan(2);
    for (const [previous, next] of played.slice(1).map((state, i) => [played[i] as HeldValues, state] as const)) {
      expect(next.tick).toBeGreaterThan(previous.tick);
      expect(next.total).toBeGreaterThanOrEqual(previous.total);
    }
  });

  it('answers with a Modbus exception, falls silent and recovers, on command', async () => {
    const device = await startDevice(transport);
    const client = await connectClient(device);
    await readTable(client, 'holding');

    expect(await device.fault('exception')).toMatchObject({ fault: 'exception', untilTs: null, code: 4 });
    await expect(client.readHoldingRegisters(0, 4)).rejects.toMatchObject({ modbusCode: 4 });
    await device.fault('exception 60 6');
    await expect(client.readInputRegisters(0, 2)).rejects.toMatchObject({ modbusCode: 6 });
    await device.fault('normal');
    await tickThatHeld(device, await readTable(client, 'holding'));

    await device.fault('silent');
    client.setTimeout(300);
    await expect(client.readHoldingRegisters(0, 4)).rejects.toMatchObject({ errno: 'ETIMEDOUT' });
    await device.fault('normal');
    client.setTimeout(2_000);
    await tickThatHeld(device, await readTable(client, 'input'));

    // A fault with a duration ends by itself.
    const ack = await device.fault('silent 0.5');
    expect(ack.untilTs).toEqual(expect.any(Number));
    client.setTimeout(300);
    const recovered = await eventually(
      () => readTable(client, 'input').then((values) => values, () => null),
      (values) => values !== null,
      10_000,
      'the device to answer again after `silent 0.5`',
    );
    client.setTimeout(2_000);
    await tickThatHeld(device, recovered as Partial<Record<Quantity, number>>);

    await expect(device.fault('louder')).rejects.toThrow('refused "louder"');

    // A client that lets go and comes back (as the gateway does after a failure) is answered again:
    // over RTU, socat keeps the pseudo-terminal pair up across the client's close.
    await new Promise<void>((resolve) => client.close(() => resolve()));
    const again = await connectClient(device);
    await tickThatHeld(device, await readTable(again, 'holding'));
  });
});

describe('the device\'s start-up', () => {
  it('refuses a map it cannot play, naming every problem at once', async () => {
    const map = {
      flow: { table: 'coils', address: 0, type: 'float32' },
      humidity: { table: 'input', address: 4, type: 'int16' },
      a: { table: 'input', address: 10, type: 'float32', source: 'flow' },
      b: { table: 'input', address: 11, type: 'int16', value: 1 },
    } as unknown as DeviceRegisterMap;
    const started = startModbusDevice({ transport: 'tcp', map, profile: [[0, 1], [0, 2]] });
    await expect(started).rejects.toThrow('map.flow.table: expected holding or input');
    await expect(started).rejects.toThrow('map.humidity: needs a source');
    await expect(started).rejects.toThrow('map.b: register input 11 is also a\'s');
    await expect(started).rejects.toThrow('profile[1]: the times must start at 0 or later and increase');
  });
});
