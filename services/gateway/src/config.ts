import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FlowPilotError, isValidMeterId } from '@flowpilot/schema';
import {
  completeRegisterSpec,
  didYouMean,
  formatPath,
  problemsText,
  readProfile,
  registerOverridesSchema,
  required,
  zodProblems,
  type ConfigProblem,
  type GatewayProfile,
  type PartialRegisterSpec,
} from './profiles.ts';
import { READING_QUANTITIES, type ReadingQuantity, type RegisterMap, type RegisterSpec } from './registers.ts';

/**
 * The gateway file (SPEC section 10): the broker it publishes to, where it keeps its outbox, and
 * the meters it polls. Validated once at start-up, every problem reported at once with the path
 * of its field, then frozen (STYLE habit 3).
 */

export interface GatewayBrokerConfig {
  /** mqtt:// or mqtts:// */
  url: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  /** file paths, resolved against the config file's folder */
  ca?: string;
  cert?: string;
  key?: string;
  clientId?: string;
}

export interface TcpTransport {
  transport: 'tcp';
  host: string;
  /** default 502 */
  port: number;
}

export interface RtuTransport {
  transport: 'rtu';
  path: string;
  /** default 9600 */
  baudRate: number;
  /** default 'none' */
  parity: 'none' | 'even' | 'odd';
  /** default 1 */
  stopBits: 1 | 2;
  /** default 8 */
  dataBits: 7 | 8;
}

export type DeviceConfig = (TcpTransport | RtuTransport) & {
  meterId: string;
  /** 1–247 */
  unitId: number;
  intervalSec: number;
  /** default 1000 */
  timeoutMs: number;
  /** default 2: attempts after the first, within the interval */
  retries: number;
  /** default 3 failed polls in a row */
  sensorFaultAfter: number;
  profile: string;
  /** the profile merged with the device's overrides */
  registers: RegisterMap;
};

export interface GatewayConfig {
  broker: GatewayBrokerConfig;
  /** resolved */
  dataDir: string;
  devices: DeviceConfig[];
  outbox: { maxReadings: number };
  metrics: { host: string; port: number };
}

/** Defaults merged once under what the file gives (STYLE habit 4). */
export const DEFAULT_DEVICE_SETTINGS = {
  port: 502, // Modbus/TCP's registered port (Modbus Messaging on TCP/IP Implementation Guide V1.0b, 4.1)
  baudRate: 9600,
  parity: 'none',
  stopBits: 1,
  dataBits: 8,
  timeoutMs: 1000,
  retries: 2,
  sensorFaultAfter: 3,
  profile: 'generic',
} as const;

export const DEFAULT_GATEWAY_SETTINGS = {
  dataDir: '.flowpilot-gateway',
  outbox: { maxReadings: 1_000_000 },
  metrics: { host: '127.0.0.1', port: 9466 },
} as const;

/** The serial speeds RS-485 meters offer; anything else is a typo (96000) the bus would never answer. */
export const BAUD_RATES = [300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600, 76800, 115200, 230400] as const;

const DEVICE_FIELDS_BY_TRANSPORT = {
  tcp: ['host', 'port'],
  rtu: ['path', 'baudRate', 'parity', 'stopBits', 'dataBits'],
} as const;

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .number(required(`must be a whole number ${what}`))
    .int({ message: `must be a whole number ${what}` })
    .min(min, { message: `must be ${what}` })
    .max(max, { message: `must be ${what}` });

const nonEmpty = (what: string) => z.string(required(`must be a string (${what})`)).min(1, { message: 'must not be empty' });

function isMqttUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === 'mqtt:' || parsed.protocol === 'mqtts:') && parsed.hostname !== '';
  } catch {
    return false;
  }
}

const brokerSchema = z.strictObject(
  {
    url: z.string(required('must be a string')).refine(isMqttUrl, { message: 'must be an mqtt:// or mqtts:// URL with a host, e.g. mqtts://pilot.example:8883' }),
    username: nonEmpty('the gateway login').optional(),
    password: nonEmpty('the password').optional(),
    passwordFile: nonEmpty('a file holding the password').optional(),
    ca: nonEmpty('a PEM file').optional(),
    cert: nonEmpty('a PEM file').optional(),
    key: nonEmpty('a PEM file').optional(),
    clientId: nonEmpty('the MQTT client id').optional(),
  },
  required('must be the broker: { url, username, password } (or passwordFile, or cert and key)'),
);

const deviceSchema = z.strictObject(
  {
    meterId: z.string(required('must be a string')).refine(isValidMeterId, { message: 'must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ (SPEC section 1)' }),
    transport: z.enum(['tcp', 'rtu'], required('must be tcp (Modbus TCP) or rtu (Modbus RTU over RS-485)')),
    host: nonEmpty('the meter or Modbus gateway address').optional(),
    port: wholeNumber('1–65535', 1, 65535).optional(),
    path: nonEmpty('the serial port, e.g. /dev/ttyUSB0').optional(),
    baudRate: z
      .number({ error: `must be one of ${BAUD_RATES.join(', ')}` })
      .refine((n) => (BAUD_RATES as readonly number[]).includes(n), { message: `must be one of ${BAUD_RATES.join(', ')} (as set in the meter's menu)` })
      .optional(),
    parity: z.enum(['none', 'even', 'odd'], { error: "must be none, even or odd (as set in the meter's menu)" }).optional(),
    stopBits: z.union([z.literal(1), z.literal(2)], { error: 'must be 1 or 2' }).optional(),
    dataBits: z.union([z.literal(7), z.literal(8)], { error: 'must be 7 or 8 (Modbus RTU uses 8)' }).optional(),
    unitId: wholeNumber('1–247 (the Modbus address set in the meter)', 1, 247),
    intervalSec: wholeNumber('of seconds ≥ 1', 1, 86_400),
    timeoutMs: wholeNumber('of milliseconds 1–60000', 1, 60_000).optional(),
    retries: wholeNumber('0–10', 0, 10).optional(),
    sensorFaultAfter: wholeNumber('≥ 1 (failed polls in a row)', 1, 1_000_000).optional(),
    profile: nonEmpty('a shipped profile, or the path of a profile file').optional(),
    registers: registerOverridesSchema.optional(),
  },
  { error: 'must be a device: { meterId, transport, …, unitId, intervalSec, profile, registers }' },
);

const outboxSchema = z.strictObject({ maxReadings: wholeNumber('≥ 1', 1, Number.MAX_SAFE_INTEGER).optional() }, { error: 'must be { maxReadings }' });
const metricsSchema = z.strictObject(
  { host: nonEmpty('the address the metrics listen on').optional(), port: wholeNumber('0–65535', 0, 65535).optional() },
  { error: 'must be { host, port }' },
);

const TOP_LEVEL_FIELDS = ['broker', 'dataDir', 'devices', 'outbox', 'metrics'] as const;

/** The keys an object at this path may have, to suggest one for a misspelt key. */
function knownKeys(prefix: readonly (string | number)[]) {
  return (path: readonly PropertyKey[]): readonly string[] => {
    const full = [...prefix, ...path];
    const last = full.at(-1);
    if (full.length === 0) return TOP_LEVEL_FIELDS;
    if (full[0] === 'broker' && full.length === 1) return Object.keys(brokerSchema.shape);
    if (full[0] === 'outbox') return Object.keys(outboxSchema.shape);
    if (full[0] === 'metrics') return Object.keys(metricsSchema.shape);
    if (full[0] === 'devices' && full.length === 2) return Object.keys(deviceSchema.shape);
    if (full[0] === 'devices' && last === 'registers') return READING_QUANTITIES;
    if (full[0] === 'devices' && full.length === 4) return ['table', 'address', 'type', 'wordOrder', 'scale', 'offset', 'unit', 'bits'];
    return [];
  };
}

function parseSection<S extends z.ZodType>(schema: S, value: unknown, path: readonly (string | number)[], problems: ConfigProblem[]): z.infer<S> | undefined {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  problems.push(...zodProblems(parsed.error.issues, path, knownKeys(path)));
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function resolvePath(baseDir: string, file: string): string {
  return isAbsolute(file) ? file : resolve(baseDir, file);
}

function parseBroker(raw: unknown, baseDir: string, problems: ConfigProblem[]): GatewayBrokerConfig | undefined {
  const before = problems.length;
  const broker = parseSection(brokerSchema, raw, ['broker'], problems);
  // The login checks look at which fields are given, so they are reported with the shape's problems.
  if (isRecord(raw)) {
    const has = (field: string) => raw[field] !== undefined;
    const at = (field: string, message: string) => problems.push({ path: ['broker', field], message });
    const tls = typeof raw.url === 'string' && raw.url.startsWith('mqtts:');
    if (has('password') && has('passwordFile')) at('passwordFile', 'give password or passwordFile, not both');
    if ((has('password') || has('passwordFile')) && !has('username')) at('username', 'required with a password');
    if (has('cert') && !has('key')) at('key', 'required with cert (the private key of the client certificate)');
    if (has('key') && !has('cert')) at('cert', 'required with key (the client certificate)');
    const passwordLogin = has('username') && (has('password') || has('passwordFile'));
    const certificateLogin = has('cert') && has('key');
    if (!has('username') && !has('password') && !has('passwordFile') && !has('cert') && !has('key')) {
      at('username', 'the broker needs a login: username with password or passwordFile (`flowpilot credentials add <id> --role gateway`), or cert and key');
    } else if (has('username') && !passwordLogin && !certificateLogin) {
      at('password', 'required: password or passwordFile (or a client certificate: cert and key)');
    }
    // The broker takes a login's connections only with its id as client id, or `{id}:{anything}`
    // (services/broker access-policy.ts, after SPEC section 8): any other is refused at CONNECT.
    const { username, clientId } = raw;
    if (typeof username === 'string' && typeof clientId === 'string' && clientId !== username && !(clientId.startsWith(`${username}:`) && clientId.length > username.length + 1)) {
      at('clientId', `must be the login "${username}" or start with "${username}:"; the broker refuses any other`);
    }
    if (typeof raw.url === 'string' && isMqttUrl(raw.url) && !tls) {
      for (const field of ['ca', 'cert', 'key']) if (has(field)) at(field, 'TLS files need an mqtts:// url');
    }
  }
  if (!broker || problems.length > before) return undefined;
  const resolved: GatewayBrokerConfig = { url: broker.url };
  if (broker.username !== undefined) resolved.username = broker.username;
  if (broker.password !== undefined) resolved.password = broker.password;
  if (broker.clientId !== undefined) resolved.clientId = broker.clientId;
  for (const field of ['passwordFile', 'ca', 'cert', 'key'] as const) {
    const file = broker[field];
    if (file !== undefined) resolved[field] = resolvePath(baseDir, file);
  }
  return resolved;
}

type ParsedDevice = z.infer<typeof deviceSchema>;

/** Fields of one transport given on a device of the other: a `path` on a tcp device is a mistake, not a default. */
function checkTransportFields(raw: Record<string, unknown>, path: readonly (string | number)[], problems: ConfigProblem[]): void {
  const transport = raw.transport;
  if (transport !== 'tcp' && transport !== 'rtu') return;
  const other = transport === 'tcp' ? 'rtu' : 'tcp';
  for (const field of DEVICE_FIELDS_BY_TRANSPORT[other]) {
    if (raw[field] !== undefined) problems.push({ path: [...path, field], message: `only for transport ${other}` });
  }
  const needed = transport === 'tcp' ? 'host' : 'path';
  if (raw[needed] === undefined) problems.push({ path: [...path, needed], message: `required for transport ${transport}` });
}

/** The profile merged with the device's overrides, field by field; `bits` is replaced whole. */
function mergeRegisters(
  profile: GatewayProfile,
  overrides: ParsedDevice['registers'],
  path: readonly (string | number)[],
  problems: ConfigProblem[],
): RegisterMap | undefined {
  const before = problems.length;
  const merged: Partial<Record<ReadingQuantity, RegisterSpec>> = {};
  for (const quantity of READING_QUANTITIES) {
    const fromProfile = profile.registers[quantity];
    const override = overrides?.[quantity];
    if (override === null) {
      if (quantity === 'flow' || quantity === 'total') problems.push({ path: [...path, quantity], message: 'cannot be removed: every reading has flow and total' });
      continue;
    }
    if (fromProfile === undefined && override === undefined) {
      if (quantity === 'flow' || quantity === 'total') {
        const hint = Object.keys(profile.registers).length === 0 ? ` (profile "${profile.name}" maps no registers: give table, address and type)` : ` (profile "${profile.name}" does not map it)`;
        problems.push({ path: [...path, quantity], message: `required: every reading has ${quantity}${hint}` });
      }
      continue;
    }
    const spec: PartialRegisterSpec = { ...(fromProfile ?? {}), ...(override ?? {}) };
    const origin = (field: keyof PartialRegisterSpec) => (fromProfile?.[field] !== undefined && override?.[field] === undefined ? ` (from profile "${profile.name}")` : '');
    const complete = completeRegisterSpec(quantity, spec, [...path, quantity], problems, origin);
    if (complete) merged[quantity] = complete;
  }
  if (problems.length > before || !merged.flow || !merged.total) return undefined;
  return merged as RegisterMap;
}

function buildDevice(device: ParsedDevice, registers: RegisterMap): DeviceConfig {
  const common = {
    meterId: device.meterId,
    unitId: device.unitId,
    intervalSec: device.intervalSec,
    timeoutMs: device.timeoutMs ?? DEFAULT_DEVICE_SETTINGS.timeoutMs,
    retries: device.retries ?? DEFAULT_DEVICE_SETTINGS.retries,
    sensorFaultAfter: device.sensorFaultAfter ?? DEFAULT_DEVICE_SETTINGS.sensorFaultAfter,
    profile: device.profile ?? DEFAULT_DEVICE_SETTINGS.profile,
    registers,
  };
  if (device.transport === 'tcp') {
    return { transport: 'tcp', host: device.host as string, port: device.port ?? DEFAULT_DEVICE_SETTINGS.port, ...common };
  }
  return {
    transport: 'rtu',
    path: device.path as string,
    baudRate: device.baudRate ?? DEFAULT_DEVICE_SETTINGS.baudRate,
    parity: device.parity ?? DEFAULT_DEVICE_SETTINGS.parity,
    stopBits: device.stopBits ?? DEFAULT_DEVICE_SETTINGS.stopBits,
    dataBits: device.dataBits ?? DEFAULT_DEVICE_SETTINGS.dataBits,
    ...common,
  };
}

/** Where a device sits: one RS-485 bus per serial port, one Modbus TCP endpoint per host and port. */
export function deviceBus(device: DeviceConfig): string {
  return device.transport === 'rtu' ? `rtu ${device.path}` : `tcp ${device.host}:${device.port}`;
}

/**
 * The checks across devices: one meter id once; on one RS-485 bus, one line setting (every
 * station on a bus must use the same baud rate and frame, Modbus over Serial Line V1.02, 2.5)
 * and unit ids unique (2.2: each station has a unique address); on one TCP endpoint, unit ids
 * unique.
 */
function checkAcrossDevices(devices: readonly { index: number; device: DeviceConfig }[], problems: ConfigProblem[]): void {
  const byMeter = new Map<string, number>();
  const firstOnBus = new Map<string, { index: number; device: DeviceConfig }>();
  const byUnit = new Map<string, { index: number; device: DeviceConfig }>();
  for (const entry of devices) {
    const { index, device } = entry;
    const seen = byMeter.get(device.meterId);
    if (seen !== undefined) problems.push({ path: ['devices', index, 'meterId'], message: `"${device.meterId}" is listed twice (also devices[${seen}])` });
    else byMeter.set(device.meterId, index);

    const bus = deviceBus(device);
    const first = firstOnBus.get(bus);
    if (!first) firstOnBus.set(bus, entry);
    else if (device.transport === 'rtu' && first.device.transport === 'rtu') {
      for (const field of ['baudRate', 'parity', 'stopBits', 'dataBits'] as const) {
        if (device[field] !== first.device[field]) {
          problems.push({
            path: ['devices', index, field],
            message: `${device[field]} differs from ${first.device[field]} of devices[${first.index}] (${first.device.meterId}) on the same bus ${device.path}: every meter on one RS-485 bus must be set alike`,
          });
        }
      }
    }
    const unitKey = `${bus} unit ${device.unitId}`;
    const sameUnit = byUnit.get(unitKey);
    if (sameUnit) {
      problems.push({
        path: ['devices', index, 'unitId'],
        message: `${device.unitId} is already devices[${sameUnit.index}] (${sameUnit.device.meterId}) on ${bus}: unit ids must be unique on a bus`,
      });
    } else byUnit.set(unitKey, entry);
  }
}

/**
 * YAML or JSON; every problem reported at once with its path (like packages/schema pilot.ts
 * parsePilotConfig), then frozen. Checks: meterId grammar, unique meterIds, an RTU bus (same path)
 * with one baud/parity setting and unique unit ids, flow and total present after merging, address
 * 0–65535 and fitting the type's words, bits only on alarms with known alarm names, a unit that
 * fits the quantity (flow: m3/h, L/s, m3/s, L/h; total: m3, L; ...), interval ≥ 1 s.
 */
export function parseGatewayConfig(text: string, source = 'gateway file', options: { baseDir?: string } = {}): GatewayConfig {
  const baseDir = resolve(options.baseDir ?? process.cwd());
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new FlowPilotError('ERR_GATEWAY_CONFIG', `${source} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  const problems: ConfigProblem[] = [];
  if (!isRecord(raw)) {
    throw new FlowPilotError('ERR_GATEWAY_CONFIG', problemsText(source, [{ path: [], message: 'must be a mapping with broker, dataDir and devices' }]));
  }
  for (const key of Object.keys(raw)) {
    if (!(TOP_LEVEL_FIELDS as readonly string[]).includes(key)) {
      problems.push({ path: [key], message: `unknown field${didYouMean(key, TOP_LEVEL_FIELDS)}` });
    }
  }

  const broker = parseBroker(raw.broker, baseDir, problems);
  const dataDir = parseSection(nonEmpty('a folder for the outbox').optional(), raw.dataDir, ['dataDir'], problems);
  const outbox = parseSection(outboxSchema.optional(), raw.outbox, ['outbox'], problems);
  const metrics = parseSection(metricsSchema.optional(), raw.metrics, ['metrics'], problems);

  const devices: { index: number; device: DeviceConfig }[] = [];
  if (raw.devices === undefined) problems.push({ path: ['devices'], message: 'required: the meters to poll' });
  else if (!Array.isArray(raw.devices)) problems.push({ path: ['devices'], message: 'must be a list of devices' });
  else if (raw.devices.length === 0) problems.push({ path: ['devices'], message: 'must list at least one device' });
  else {
    const profiles = new Map<string, ReturnType<typeof readProfile>>();
    raw.devices.forEach((rawDevice: unknown, index) => {
      const path = ['devices', index] as const;
      const before = problems.length;
      if (isRecord(rawDevice)) checkTransportFields(rawDevice, path, problems);
      const device = parseSection(deviceSchema, rawDevice, path, problems);
      const ref = device?.profile ?? (isRecord(rawDevice) && typeof rawDevice.profile === 'string' ? rawDevice.profile : DEFAULT_DEVICE_SETTINGS.profile);
      let loaded = profiles.get(ref);
      if (!loaded) {
        loaded = readProfile(ref, baseDir);
        profiles.set(ref, loaded);
      }
      if (!loaded.profile) {
        const inFile = loaded.problems.filter((problem) => problem.path.length > 0);
        const message =
          inFile.length === 0
            ? loaded.problems.map((problem) => problem.message).join('; ')
            : `the profile file of "${ref}" is invalid: ${inFile.map((problem) => `${formatPath(problem.path)}: ${problem.message}`).join('; ')}`;
        problems.push({ path: [...path, 'profile'], message });
        return;
      }
      // The registers are checked against the profile even when another field of the device is wrong.
      const overrides = device ? { success: true as const, data: device.registers } : registerOverridesSchema.optional().safeParse(isRecord(rawDevice) ? rawDevice.registers : undefined);
      const registers = overrides.success ? mergeRegisters(loaded.profile, overrides.data, [...path, 'registers'], problems) : undefined;
      if (!device || !registers || problems.length > before) return;
      const built = buildDevice(device, registers);
      // A poll and its retries must end before the next poll is due (SPEC section 10: "retried within its interval").
      const worstMs = (built.retries + 1) * built.timeoutMs;
      if (worstMs > built.intervalSec * 1000) {
        problems.push({
          path: [...path, 'timeoutMs'],
          message: `(retries ${built.retries} + 1) × ${built.timeoutMs} ms = ${worstMs} ms does not fit in intervalSec ${built.intervalSec}: lower timeoutMs or retries, or poll less often`,
        });
        return;
      }
      devices.push({ index, device: built });
    });
    checkAcrossDevices(devices, problems);
  }

  if (problems.length > 0 || !broker) {
    throw new FlowPilotError('ERR_GATEWAY_CONFIG', problemsText(source, problems.length > 0 ? problems : [{ path: ['broker'], message: 'required' }]));
  }
  return deepFreeze({
    broker,
    dataDir: resolvePath(baseDir, dataDir ?? DEFAULT_GATEWAY_SETTINGS.dataDir),
    devices: devices.map((entry) => entry.device),
    outbox: { maxReadings: outbox?.maxReadings ?? DEFAULT_GATEWAY_SETTINGS.outbox.maxReadings },
    metrics: { host: metrics?.host ?? DEFAULT_GATEWAY_SETTINGS.metrics.host, port: metrics?.port ?? DEFAULT_GATEWAY_SETTINGS.metrics.port },
  });
}

/** Reads and parses a gateway file; relative paths in it are resolved against its folder. */
export function loadGatewayConfig(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new FlowPilotError('ERR_GATEWAY_CONFIG', `cannot read the gateway file ${path}: give the path of an existing gateway.yaml (see examples/gateway.yaml)`);
  }
  return parseGatewayConfig(text, path, { baseDir: dirname(resolve(path)) });
}
