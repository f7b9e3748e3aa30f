import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FlowPilotError } from '@flowpilot/schema';
import { deviceBus, loadGatewayConfig, type DeviceConfig } from './config.ts';
import { readProfile } from './profiles.ts';
import { mappedQuantities, planReads, registerWords, SPEC_UNITS, type ReadingQuantity, type RegisterSpec } from './registers.ts';

/**
 * `flowpilot gateway check [gateway.yaml]`: validates a gateway file, naming every bad field
 * (ERR_GATEWAY_CONFIG), and prints what each device will read, so a field engineer can hold the
 * register map against the meter's manual before anything is polled.
 */

export const GATEWAY_CHECK_USAGE = 'usage: flowpilot gateway check [gateway.yaml] (or --config gateway.yaml)';
export const DEFAULT_GATEWAY_FILE = 'gateway.yaml';

function usageError(problem: string): FlowPilotError {
  return new FlowPilotError('ERR_USAGE', `${problem}; ${GATEWAY_CHECK_USAGE}`);
}

function lineSetting(device: DeviceConfig): string {
  if (device.transport === 'tcp') return `Modbus TCP ${device.host}:${device.port}`;
  return `Modbus RTU ${device.path} ${device.baudRate} ${device.dataBits}${device.parity[0]!.toUpperCase()}${device.stopBits}`;
}

function describeSpec(quantity: ReadingQuantity, spec: RegisterSpec): string {
  const words = registerWords(spec.type);
  const where = `${spec.table} ${spec.address}${words > 1 ? `–${spec.address + words - 1}` : ''}`;
  const how = [spec.type, words > 1 && spec.wordOrder === 'little' ? 'words swapped' : '', spec.scale !== 1 ? `×${spec.scale}` : '', spec.offset !== 0 ? `+${spec.offset}` : '']
    .filter(Boolean)
    .join(' ');
  if (quantity === 'alarms') {
    const bits = Object.entries(spec.bits ?? {}).map(([bit, alarm]) => `bit ${bit} ${alarm}`);
    return `${quantity} ${where} ${how} (${bits.join(', ')})`;
  }
  const specUnit = SPEC_UNITS[quantity];
  const unit = spec.unit ?? specUnit;
  return `${quantity} ${where} ${how} ${unit}${unit === specUnit ? '' : ` → ${specUnit}`}`;
}

/** Validates the file and prints a summary; throws ERR_USAGE or ERR_GATEWAY_CONFIG. */
export function runGatewayCheck(args: string[], print: (line: string) => void): void {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true, allowPositionals: true });
  } catch (error) {
    throw usageError((error as Error).message.split(/\.\s/)[0]!);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw usageError(`unexpected argument "${positionals[1]}"`);
  if (values.config !== undefined && positionals.length > 0) throw usageError('give the file once, as an argument or with --config');
  const file = values.config ?? positionals[0] ?? DEFAULT_GATEWAY_FILE;

  const config = loadGatewayConfig(file);
  const buses = new Map<string, DeviceConfig[]>();
  for (const device of config.devices) buses.set(deviceBus(device), [...(buses.get(deviceBus(device)) ?? []), device]);
  print(
    `${file} is valid: ${config.devices.length} device${config.devices.length === 1 ? '' : 's'} on ${buses.size} bus${buses.size === 1 ? '' : 'es'}, publishing to ${config.broker.url}${config.broker.username ? ` as ${config.broker.username}` : ''}; outbox in ${config.dataDir}.`,
  );
  const profiles = new Set<string>();
  for (const [, devices] of buses) {
    print('');
    print(`${lineSetting(devices[0]!)}:`);
    for (const device of devices) {
      const reads = planReads(device.registers)
        .map((request) => `${request.table} ${request.address}×${request.count}`)
        .join(', ');
      print(`  ${device.meterId}  unit ${device.unitId}, every ${device.intervalSec} s, profile ${device.profile}; reads ${reads}`);
      for (const quantity of mappedQuantities(device.registers)) print(`    ${describeSpec(quantity, device.registers[quantity] as RegisterSpec)}`);
      profiles.add(device.profile);
    }
  }
  // Each profile's own words on what to check against the meter in hand.
  for (const ref of profiles) {
    const { profile } = readProfile(ref, dirname(resolve(file)));
    if (!profile || profile.sources.length === 0) continue;
    print('');
    print(`Profile ${profile.name} (${profile.title}) follows ${profile.sources.map((source) => `${source.document} ${source.version}`).join('; ')}.`);
    print(`  Verify: ${profile.verify}`);
  }
  // Files the gateway will read at start-up: not an error here (the file may be checked before
  // they are copied to the gateway), but worth a line.
  const missing = (['passwordFile', 'ca', 'cert', 'key'] as const).filter((field) => config.broker[field] !== undefined && !existsSync(config.broker[field]!));
  if (missing.length > 0) print('');
  for (const field of missing) print(`Note: broker.${field} ${config.broker[field]} does not exist yet; the gateway reads it at start-up.`);
  print('');
  print(`Before the pilot starts, compare each meter with its display: flowpilot gateway probe --config ${file} --meter ${config.devices[0]!.meterId}`);
}
