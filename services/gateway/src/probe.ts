import { FlowPilotError } from '@flowpilot/schema';
import type { DeviceConfig, GatewayConfig } from './config.ts';
import { classifyModbusError, createModbusSerialLink, endpointKey, endpointOf, ModbusReadError, type ModbusClientFactory } from './modbus-link.ts';
import { decodeReading, planReads, type DecodedReading, type RegisterBlock, type RegisterMap, type RegisterSpec } from './registers.ts';
import { SYSTEM_TIMERS, TIMED_OUT, withDeadline, type Timers } from './time.ts';

/**
 * `flowpilot gateway probe --config F --meter ID` (SPEC section 10): commissioning. Reads one
 * device once, every block of its register map, and prints each quantity decoded, in the unit
 * of SPEC section 1, beside the registers it came from in hex, so a wrong address, word order
 * or scale shows at a glance. No retries, no outbox, no broker.
 */

/** The quantities of a register map in the order of SPEC section 1, with the unit the reading carries. */
const QUANTITIES: readonly { name: keyof RegisterMap; field: keyof DecodedReading | null; unit: string }[] = [
  { name: 'flow', field: 'flowM3h', unit: 'm³/h' },
  { name: 'total', field: 'totalM3', unit: 'm³' },
  { name: 'totalReverse', field: 'totalReverseM3', unit: 'm³' },
  { name: 'velocity', field: 'velocityMps', unit: 'm/s' },
  { name: 'pressure', field: 'pressureBar', unit: 'bar' },
  { name: 'temperature', field: 'temperatureC', unit: '°C' },
  { name: 'battery', field: 'batteryPct', unit: '%' },
  { name: 'alarms', field: null, unit: '' },
];

const WORDS: Record<RegisterSpec['type'], number> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, float64: 4 };

export interface ProbeOptions {
  modbus: ModbusClientFactory;
  timers: Timers;
}

export interface ProbeResult {
  device: DeviceConfig;
  endpoint: string;
  blocks: RegisterBlock[];
  decoded: DecodedReading;
}

export function findDevice(config: GatewayConfig, meterId: string): DeviceConfig {
  const device = config.devices.find((d) => d.meterId === meterId);
  if (!device) {
    throw new FlowPilotError('ERR_USAGE', `--meter ${meterId}: no such device in the config (it has ${config.devices.map((d) => d.meterId).join(', ') || 'none'})`);
  }
  return device;
}

/** The registers of one quantity, cut from the blocks read. */
function registersOf(spec: RegisterSpec, blocks: readonly RegisterBlock[]): number[] | null {
  const count = WORDS[spec.type];
  for (const block of blocks) {
    if (block.table !== spec.table) continue;
    const start = spec.address - block.address;
    if (start >= 0 && start + count <= block.words.length) return block.words.slice(start, start + count);
  }
  return null;
}

const hex = (words: readonly number[]): string => words.map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ');

function describeSpec(spec: RegisterSpec): string {
  const count = WORDS[spec.type];
  const range = count === 1 ? `${spec.address}` : `${spec.address}-${spec.address + count - 1}`;
  const order = count > 1 ? ` ${spec.wordOrder}` : '';
  const scale = spec.scale !== 1 ? ` ×${spec.scale}` : '';
  const offset = spec.offset !== 0 ? ` ${spec.offset > 0 ? '+' : ''}${spec.offset}` : '';
  const unit = spec.unit ? ` (${spec.unit})` : '';
  return `${spec.table} ${range} ${spec.type}${order}${scale}${offset}${unit}`;
}

/** Lines of the registers read, before decoding: printed also when the decoding fails. */
export function formatBlocks(blocks: readonly RegisterBlock[]): string[] {
  return blocks.map((b) => `  ${b.table} ${b.address}+${b.count}: ${hex(b.words)}`);
}

/** One line per quantity of the map: name, value with its SPEC unit, where it came from, the raw registers. */
export function formatProbe(result: ProbeResult): string[] {
  const { device, decoded, blocks } = result;
  const lines = [`${device.meterId}: unit ${device.unitId} on ${result.endpoint}, profile ${device.profile}, ${blocks.length} read${blocks.length === 1 ? '' : 's'}`];
  const rows: [string, string, string, string][] = [];
  for (const { name, field, unit } of QUANTITIES) {
    const spec = device.registers[name];
    if (!spec) continue;
    const raw = decoded.raw[name] ?? registersOf(spec, blocks);
    let value: string;
    if (field === null) value = decoded.alarms.length > 0 ? decoded.alarms.join(', ') : 'no alarm';
    else {
      const number = decoded[field];
      value = typeof number === 'number' ? `${number} ${unit}` : 'not decoded';
    }
    rows.push([name, value, describeSpec(spec), raw ? `[${hex(raw)}]` : '[not read]']);
  }
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) lines.push(`  ${row[0].padEnd(widths[0]!)}  ${row[1].padEnd(widths[1]!)}  ${row[2].padEnd(widths[2]!)}  ${row[3]}`);
  return lines;
}

/**
 * Reads the device once and decodes it. A device that does not answer (or answers an exception
 * or a corrupted frame) is ERR_UNREACHABLE naming what failed; registers that do not decode
 * throw the decoder's error, after `onBlocks` saw what was read.
 */
export async function probeDevice(device: DeviceConfig, options: Partial<ProbeOptions> & { onBlocks?: (blocks: RegisterBlock[]) => void } = {}): Promise<ProbeResult> {
  const modbus = options.modbus ?? createModbusSerialLink;
  const timers = options.timers ?? SYSTEM_TIMERS;
  const endpoint = endpointKey(endpointOf(device));
  const link = modbus(endpointOf(device));
  try {
    const blocks: RegisterBlock[] = [];
    for (const request of planReads(device.registers)) {
      let words: number[] | typeof TIMED_OUT;
      try {
        words = await withDeadline(link.read(device.unitId, request, device.timeoutMs), device.timeoutMs, timers);
        if (words === TIMED_OUT) throw new ModbusReadError('timeout', `no answer within ${device.timeoutMs} ms`);
      } catch (error) {
        const kind = classifyModbusError(error);
        throw new FlowPilotError('ERR_UNREACHABLE', `${device.meterId}: reading ${request.table} registers ${request.address}+${request.count} of unit ${device.unitId} on ${endpoint} failed (${kind}): ${(error as Error).message}`, {
          cause: error,
        });
      }
      blocks.push({ ...request, words });
    }
    options.onBlocks?.(blocks);
    return { device, endpoint, blocks, decoded: decodeReading(device.registers, blocks) };
  } finally {
    link.abandon();
    await link.close().catch(() => {});
  }
}
