import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowPilotError } from '@flowpilot/schema';
import { runGatewayCheck } from './check-command.ts';
import { DEFAULT_DEVICE_SETTINGS, DEFAULT_GATEWAY_SETTINGS, loadGatewayConfig, parseGatewayConfig, type DeviceConfig } from './config.ts';
import { listShippedProfiles, loadProfile, SHIPPED_PROFILES_DIR } from './profiles.ts';

const REPO = resolve(import.meta.dirname, '../../..');
const EXAMPLE = join(REPO, 'examples/gateway.yaml');

const BROKER = 'broker: { url: "mqtt://127.0.0.1:1883", username: gw-ps3, password: secret }';

/** A gateway file of one broker line and these devices (YAML flow mappings, one per line). */
function file(...devices: string[]): string {
  return `${BROKER}\ndevices:\n${devices.map((device) => `  - ${device}`).join('\n')}\n`;
}

const TCP = 'transport: tcp, host: 192.0.2.10, unitId: 1, intervalSec: 60';
const FLOW_TOTAL = 'registers: { flow: { table: input, address: 0, type: float32 }, total: { table: input, address: 2, type: float64 } }';

/** The problem lines of a refused file (`  - path: message`), or a failure when it was accepted. */
function problems(text: string, options: { baseDir?: string } = {}): string[] {
  try {
    parseGatewayConfig(text, 'gateway.yaml', options);
  } catch (error) {
    expect(error).toBeInstanceOf(FlowPilotError);
    expect((error as FlowPilotError).code).toBe('ERR_GATEWAY_CONFIG');
    return (error as FlowPilotError).detail.split('\n').filter((line) => line.startsWith('  - ')).map((line) => line.slice(4));
  }
  throw new Error('expected ERR_GATEWAY_CONFIG');
}

function device(text: string): DeviceConfig {
  return parseGatewayConfig(text).devices[0]!;
}

let dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-gateway-config-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

describe('the example gateway file', () => {
  it('parses, with defaults merged and paths resolved against its folder, and is frozen', () => {
    const config = loadGatewayConfig(EXAMPLE);
    expect(config.devices.map((d) => d.meterId)).toEqual(['ALM-PS3-REF', 'ALM-PS3-DUT1', 'ALM-PS3-DUT2']);
    expect(config.dataDir).toBe(join(REPO, 'examples/.flowpilot-gateway'));
    expect(config.broker).toEqual({ url: 'mqtts://pilot.example:8883', username: 'gw-ps3', passwordFile: join(REPO, 'examples/gw-ps3.password'), ca: join(REPO, 'examples/site-ca.pem') });
    expect(config.outbox).toEqual({ maxReadings: 1_000_000 });
    expect(config.metrics).toEqual({ host: '127.0.0.1', port: 9466 });
    const [ref, dut1, dut2] = config.devices as [DeviceConfig, DeviceConfig, DeviceConfig];
    expect(ref).toMatchObject({ transport: 'rtu', path: '/dev/ttyUSB0', baudRate: 9600, parity: 'even', stopBits: 1, dataBits: 8, unitId: 1, timeoutMs: 1000, retries: 2, sensorFaultAfter: 3, profile: 'siemens-mag6000' });
    // The profile's flow register with the device's unit over it.
    expect(ref.registers.flow).toEqual({ table: 'holding', address: 3002, type: 'float32', wordOrder: 'big', scale: 1, offset: 0, unit: 'm3/h' });
    expect(dut1.registers.alarms).toEqual({ table: 'input', address: 20, type: 'uint16', wordOrder: 'big', scale: 1, offset: 0, bits: { 0: 'empty_pipe', 1: 'reverse_flow' } });
    expect(dut2).toMatchObject({ transport: 'tcp', host: '192.0.2.10', port: 502, unitId: 3 });
    expect(Object.keys(dut2.registers)).toEqual(['flow', 'total', 'totalReverse', 'velocity']);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(ref.registers.flow)).toBe(true);
  });

  it('is what `flowpilot gateway check` accepts, and the check prints each device and what it reads', () => {
    const lines: string[] = [];
    runGatewayCheck([EXAMPLE], (line) => lines.push(line));
    expect(lines[0]).toBe(`${EXAMPLE} is valid: 3 devices on 2 buses, publishing to mqtts://pilot.example:8883 as gw-ps3; outbox in ${join(REPO, 'examples/.flowpilot-gateway')}.`);
    expect(lines).toContain('Modbus RTU /dev/ttyUSB0 9600 8E1:');
    expect(lines).toContain('  ALM-PS3-REF  unit 1, every 60 s, profile siemens-mag6000; reads holding 3002×2, holding 3014×4');
    expect(lines).toContain('    flow holding 106–107 float32 L/s → m3/h');
    expect(lines.some((line) => line.startsWith('  Verify: Check against the meter in hand'))).toBe(true);
  });
});

describe('defaults', () => {
  it('fills every default of a minimal device', () => {
    const config = parseGatewayConfig(file(`{ meterId: M1, ${TCP}, ${FLOW_TOTAL} }`), 'gateway.yaml', { baseDir: '/srv/gw' });
    expect(config.dataDir).toBe(`/srv/gw/${DEFAULT_GATEWAY_SETTINGS.dataDir}`);
    expect(config.devices[0]).toEqual({
      transport: 'tcp',
      host: '192.0.2.10',
      port: DEFAULT_DEVICE_SETTINGS.port,
      meterId: 'M1',
      unitId: 1,
      intervalSec: 60,
      timeoutMs: 1000,
      retries: 2,
      sensorFaultAfter: 3,
      profile: 'generic',
      registers: {
        flow: { table: 'input', address: 0, type: 'float32', wordOrder: 'big', scale: 1, offset: 0 },
        total: { table: 'input', address: 2, type: 'float64', wordOrder: 'big', scale: 1, offset: 0 },
      },
    });
    const rtu = device(file(`{ meterId: M1, transport: rtu, path: /dev/ttyUSB0, unitId: 1, intervalSec: 60, ${FLOW_TOTAL} }`));
    expect(rtu).toMatchObject({ baudRate: 9600, parity: 'none', stopBits: 1, dataBits: 8 });
  });

  it('reads JSON as well as YAML', () => {
    const json = JSON.stringify({
      broker: { url: 'mqtt://h', username: 'gw', password: 'p' },
      devices: [{ meterId: 'M1', transport: 'tcp', host: 'h', unitId: 1, intervalSec: 5, profile: 'siemens-mag6000' }],
    });
    expect(parseGatewayConfig(json).devices[0]!.registers.total.address).toBe(3014);
  });
});

describe('a file with several mistakes', () => {
  it('names each bad field with its path, all at once', () => {
    const text = `
broker: { url: "http://pilot.example", username: gw, password: p, passwordFile: p.txt }
dataDir: ""
metrics: { port: 70000 }
devices:
  - meterId: "bad id!"
    transport: rtu
    path: /dev/ttyUSB0
    baudrate: 19200
    baudRate: 96000
    unitId: 0
    intervalSec: 0
    registers:
      flow: { table: input, address: 70000, type: float32, unit: kPa, bits: { 0: leak } }
      total: { table: coils, address: 0, type: float128 }
      alarms: { table: input, address: 20, type: float32, bits: { 0: fire, 16: leak } }
      flowrate: { table: input, address: 0, type: int16 }
  - meterId: M2
    transport: tcp
    path: /dev/ttyUSB1
    unitId: 1
    intervalSec: 60
    profile: generic
    registers:
      flow: { table: input, address: 65535, type: float64, unit: L }
      temperature: { address: 4, unit: m3 }
  - meterId: M3
    transport: tcp
    host: 192.0.2.10
    unitId: 1
    intervalSec: 1
    timeoutMs: 1000
    profile: no-such-profile
`;
    expect(problems(text)).toEqual([
      'broker.url: must be an mqtt:// or mqtts:// URL with a host, e.g. mqtts://pilot.example:8883',
      'broker.passwordFile: give password or passwordFile, not both',
      'dataDir: must not be empty',
      'metrics.port: must be 0–65535',
      'devices[0].meterId: must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ (SPEC section 1)',
      'devices[0].baudRate: must be one of 300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600, 76800, 115200, 230400 (as set in the meter\'s menu)',
      'devices[0].unitId: must be 1–247 (the Modbus address set in the meter)',
      'devices[0].intervalSec: must be of seconds ≥ 1',
      'devices[0].registers.flow.address: must be 0–65535: the 0-based address (register 43003 is holding 3002, not 43003)',
      'devices[0].registers.total.table: must be one of holding, input (Modbus function 3 or 4)',
      'devices[0].registers.total.type: must be one of int16, uint16, int32, uint32, float32, float64',
      'devices[0].registers.alarms.bits.0: must be an alarm of SPEC section 1: reverse_flow, empty_pipe, leak, tamper, low_battery, sensor_fault, overload',
      'devices[0].registers.flowrate: unknown field',
      'devices[0].baudrate: unknown field; did you mean baudRate?',
      'devices[1].path: only for transport rtu',
      'devices[1].host: required for transport tcp',
      'devices[1].registers.flow.address: 65535 with type float64 (4 registers) runs past 65535',
      'devices[1].registers.flow.unit: "L" is not a unit of flow: must be one of m3/h, L/s, m3/s, L/h',
      'devices[1].registers.total: required: every reading has total (profile "generic" maps no registers: give table, address and type)',
      'devices[1].registers.temperature.table: required (temperature needs table, address and type)',
      'devices[1].registers.temperature.type: required (temperature needs table, address and type)',
      'devices[1].registers.temperature.unit: "m3" is not a unit of temperature: must be one of C',
      'devices[2].profile: no shipped profile "no-such-profile": shipped are generic, gf-u3000-v2, siemens-mag6000; or give the path of a profile file',
    ]);
  });

  it('checks the registers merged over a profile even when other fields of the device are wrong', () => {
    expect(problems(file('{ meterId: M1, transport: tcp, host: h, unitId: 300, intervalSec: 60, profile: siemens-mag6000, registers: { flow: { unit: L } } }'))).toEqual([
      'devices[0].unitId: must be 1–247 (the Modbus address set in the meter)',
      'devices[0].registers.flow.unit: "L" is not a unit of flow: must be one of m3/h, L/s, m3/s, L/h',
    ]);
  });

  it('checks alarms registers: an integer type, bits that exist, no unit', () => {
    const alarms = '{ table: input, address: 20, type: float32, unit: C, scale: 2, bits: { 0: leak, 32: tamper, x: leak } }';
    expect(problems(file(`{ meterId: M1, ${TCP}, registers: { flow: { table: input, address: 0, type: int16 }, total: { table: input, address: 1, type: int16, bits: { 0: leak } }, alarms: ${alarms} } }`))).toEqual([
      'devices[0].registers.total.bits: only an alarms register carries bits',
      'devices[0].registers.alarms.unit: an alarms register has no unit',
      'devices[0].registers.alarms.scale: does not apply to an alarms register (its bits are read as they are)',
      'devices[0].registers.alarms.type: an alarms register is an integer: int16, uint16, int32, uint32',
      'devices[0].registers.alarms.bits: bit "32" must be a whole number 0–31 (a float32 has 32 bits)',
      'devices[0].registers.alarms.bits: bit "x" must be a whole number 0–31 (a float32 has 32 bits)',
    ]);
    expect(problems(file(`{ meterId: M1, ${TCP}, registers: { flow: { table: input, address: 0, type: int16 }, total: { table: input, address: 1, type: int16 }, alarms: { table: input, address: 2, type: uint16 } } }`))).toEqual([
      'devices[0].registers.alarms.bits: required: which bit raises which alarm, e.g. { 0: empty_pipe, 1: reverse_flow }',
    ]);
  });

  it('refuses a file that is not YAML, or not a mapping, or has no devices', () => {
    expect(() => parseGatewayConfig('broker: [')).toThrow(/not valid YAML or JSON/);
    expect(problems('- 1')).toEqual(['(file): must be a mapping with broker, dataDir and devices']);
    expect(problems(`${BROKER}\ndevices: []\nbrokers: {}`)).toEqual(['brokers: unknown field; did you mean broker?', 'devices: must list at least one device']);
    expect(problems('dataDir: x')).toEqual(['broker: required', 'devices: required: the meters to poll']);
  });

  it('says a poll and its retries must fit in the interval', () => {
    expect(problems(file(`{ meterId: M1, transport: tcp, host: h, unitId: 1, intervalSec: 2, timeoutMs: 1000, retries: 2, ${FLOW_TOTAL} }`))).toEqual([
      'devices[0].timeoutMs: (retries 2 + 1) × 1000 ms = 3000 ms does not fit in intervalSec 2: lower timeoutMs or retries, or poll less often',
    ]);
  });
});

describe('the broker login', () => {
  const withBroker = (broker: string) => `broker: ${broker}\ndevices:\n  - { meterId: M1, ${TCP}, ${FLOW_TOTAL} }\n`;

  it('needs a password login or a client certificate', () => {
    expect(problems(withBroker('{ url: "mqtt://h" }'))).toEqual([
      'broker.username: the broker needs a login: username with password or passwordFile (`flowpilot credentials add <id> --role gateway`), or cert and key',
    ]);
    expect(problems(withBroker('{ url: "mqtt://h", username: gw }'))).toEqual(['broker.password: required: password or passwordFile (or a client certificate: cert and key)']);
    expect(problems(withBroker('{ url: "mqtt://h", password: p }'))).toEqual(['broker.username: required with a password']);
    expect(problems(withBroker('{ url: "mqtts://h", cert: c.pem }'))).toEqual(['broker.key: required with cert (the private key of the client certificate)']);
    expect(problems(withBroker('{ url: "mqtt://h", username: gw, password: p, ca: ca.pem }'))).toEqual(['broker.ca: TLS files need an mqtts:// url']);
    expect(problems(withBroker('{ url: "mqtt://h", username: gw, password: p, clientId: other }'))).toEqual(['broker.clientId: must be the login "gw" or start with "gw:"; the broker refuses any other']);
    expect(parseGatewayConfig(withBroker('{ url: "mqtt://h", username: gw, password: p, clientId: "gw:ps3" }')).broker.clientId).toBe('gw:ps3');
  });

  it('accepts a client certificate alone, and resolves its files against the base folder', () => {
    const config = parseGatewayConfig(withBroker('{ url: "mqtts://h:8883", cert: tls/gw.crt, key: /etc/gw.key, ca: ca.pem, clientId: gw-ps3 }'), 'g', { baseDir: '/srv/gw' });
    expect(config.broker).toEqual({ url: 'mqtts://h:8883', cert: '/srv/gw/tls/gw.crt', key: '/etc/gw.key', ca: '/srv/gw/ca.pem', clientId: 'gw-ps3' });
  });
});

describe('RS-485 buses and TCP endpoints', () => {
  const rtu = (meterId: string, path: string, unitId: number, extra = '') => `{ meterId: ${meterId}, transport: rtu, path: ${path}, unitId: ${unitId}, intervalSec: 60, ${FLOW_TOTAL}${extra} }`;

  it('accepts meters on one bus set alike with their own unit ids, and the same unit id on another bus', () => {
    const config = parseGatewayConfig(file(rtu('A', '/dev/ttyUSB0', 1, ', baudRate: 19200, parity: even'), rtu('B', '/dev/ttyUSB0', 2, ', baudRate: 19200, parity: even'), rtu('C', '/dev/ttyUSB1', 1)));
    expect(config.devices.map((d) => d.unitId)).toEqual([1, 2, 1]);
  });

  it('names each setting that differs from the first meter on the bus', () => {
    expect(problems(file(rtu('A', '/dev/ttyUSB0', 1, ', baudRate: 9600'), rtu('B', '/dev/ttyUSB0', 2, ', baudRate: 19200, parity: even, stopBits: 2')))).toEqual([
      'devices[1].baudRate: 19200 differs from 9600 of devices[0] (A) on the same bus /dev/ttyUSB0: every meter on one RS-485 bus must be set alike',
      'devices[1].parity: even differs from none of devices[0] (A) on the same bus /dev/ttyUSB0: every meter on one RS-485 bus must be set alike',
      'devices[1].stopBits: 2 differs from 1 of devices[0] (A) on the same bus /dev/ttyUSB0: every meter on one RS-485 bus must be set alike',
    ]);
  });

  it('refuses a unit id twice on one bus or one TCP endpoint, and a meter id twice', () => {
    expect(problems(file(rtu('A', '/dev/ttyUSB0', 5), rtu('B', '/dev/ttyUSB0', 5), rtu('A', '/dev/ttyUSB1', 5)))).toEqual([
      'devices[1].unitId: 5 is already devices[0] (A) on rtu /dev/ttyUSB0: unit ids must be unique on a bus',
      'devices[2].meterId: "A" is listed twice (also devices[0])',
    ]);
    const tcp = (meterId: string, port: number) => `{ meterId: ${meterId}, transport: tcp, host: gw.local, port: ${port}, unitId: 1, intervalSec: 60, ${FLOW_TOTAL} }`;
    expect(problems(file(tcp('A', 502), tcp('B', 502), tcp('C', 503)))).toEqual([
      'devices[1].unitId: 1 is already devices[0] (A) on tcp gw.local:502: unit ids must be unique on a bus',
    ]);
  });
});

describe('profiles', () => {
  it('merges a device\'s overrides over its profile field by field, adds and removes quantities', () => {
    const mag = device(file(`{ meterId: M1, ${TCP}, profile: siemens-mag6000, registers: { flow: { unit: m3/h }, totalReverse: { table: holding, address: 3018, type: float64, unit: m3 } } }`));
    expect(mag.registers).toEqual({
      flow: { table: 'holding', address: 3002, type: 'float32', wordOrder: 'big', scale: 1, offset: 0, unit: 'm3/h' },
      total: { table: 'holding', address: 3014, type: 'float64', wordOrder: 'big', scale: 1, offset: 0, unit: 'm3' },
      totalReverse: { table: 'holding', address: 3018, type: 'float64', wordOrder: 'big', scale: 1, offset: 0, unit: 'm3' },
    });
    const gf = device(file(`{ meterId: M1, ${TCP}, profile: gf-u3000-v2, registers: { totalReverse: null, velocity: null, flow: { unit: m3/h }, total: { unit: m3 } } }`));
    expect(Object.keys(gf.registers)).toEqual(['flow', 'total']);
    expect(gf.registers.flow.unit).toBe('m3/h');
    expect(problems(file(`{ meterId: M1, ${TCP}, profile: gf-u3000-v2, registers: { flow: null } }`))).toEqual(['devices[0].registers.flow: cannot be removed: every reading has flow and total']);
  });

  it('says which field of a merged register came from the profile', () => {
    expect(problems(file(`{ meterId: M1, ${TCP}, profile: siemens-mag6000, registers: { flow: { type: float64, address: 65533 } } }`))).toEqual([
      'devices[0].registers.flow.address: 65533 with type float64 (4 registers) runs past 65535',
    ]);
    expect(problems(file(`{ meterId: M1, ${TCP}, profile: siemens-mag6000, registers: { alarms: { table: input, address: 1, type: uint16, bits: { 0: leak } }, total: { bits: { 1: leak } } } }`))).toEqual([
      'devices[0].registers.total.bits: only an alarms register carries bits',
    ]);
  });

  it('reads a profile file by path, relative to the gateway file\'s folder, and reports its problems under the device', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'our-meter.yaml'),
      'name: our-meter\ntitle: Our meter\nverify: check it\nregisters:\n  flow: { table: input, address: 0, type: float32, unit: L/s }\n  total: { table: input, address: 2, type: uint32, wordOrder: little, unit: L }\n',
    );
    writeFileSync(join(dir, 'broken.yaml'), 'name: broken\ntitle: Broken\nverify: x\nregisters:\n  flow: { table: input, type: float32, unit: kPa }\n  speed: {}\n');
    writeFileSync(join(dir, 'gateway.yaml'), file(`{ meterId: M1, ${TCP}, profile: ./our-meter.yaml }`));
    const config = loadGatewayConfig(join(dir, 'gateway.yaml'));
    expect(config.devices[0]!.registers.total).toEqual({ table: 'input', address: 2, type: 'uint32', wordOrder: 'little', scale: 1, offset: 0, unit: 'L' });
    expect(problems(file(`{ meterId: M1, ${TCP}, profile: broken.yaml }`), { baseDir: dir })).toEqual([
      'devices[0].profile: the profile file of "broken.yaml" is invalid: registers.speed: unknown field',
    ]);
    writeFileSync(join(dir, 'broken.yaml'), 'name: broken\ntitle: Broken\nverify: x\nregisters:\n  flow: { table: input, type: float32, unit: kPa }\n');
    expect(problems(file(`{ meterId: M1, ${TCP}, profile: broken.yaml }`), { baseDir: dir })).toEqual([
      'devices[0].profile: the profile file of "broken.yaml" is invalid: registers.flow.address: required (flow needs table, address and type); registers.flow.unit: "kPa" is not a unit of flow: must be one of m3/h, L/s, m3/s, L/h',
    ]);
    expect(problems(file(`{ meterId: M1, ${TCP}, profile: ./missing.yaml }`), { baseDir: dir })).toEqual([`devices[0].profile: cannot read the profile file ${join(dir, 'missing.yaml')}`]);
    // a name is never read as a file of the working folder, whatever its case
    expect(problems(file(`{ meterId: M1, ${TCP}, profile: Siemens-MAG6000 }`), { baseDir: dir })).toEqual([
      'devices[0].profile: no shipped profile "Siemens-MAG6000": shipped are generic, gf-u3000-v2, siemens-mag6000; or give the path of a profile file',
    ]);
  });

  describe.each(listShippedProfiles())('the shipped profile %s', (name) => {
    const text = readFileSync(join(SHIPPED_PROFILES_DIR, `${name}.yaml`), 'utf8');
    const profile = loadProfile(name);

    it('parses and is named as its file', () => {
      expect(profile.name).toBe(name);
      expect(profile.verify.length).toBeGreaterThan(40);
    });

    it.runIf(name !== 'generic')('cites its manual (title, document, version, URL) and says to check it against the meter in hand', () => {
      expect(profile.sources.length).toBeGreaterThan(0);
      for (const source of profile.sources) {
        expect(source.url).toMatch(/^https:\/\//);
        expect(source.document.length).toBeGreaterThan(3);
        expect(source.version.length).toBeGreaterThan(1);
      }
      expect(profile.verify).toMatch(/against the meter in hand/);
      expect(text).toMatch(/^# MUST BE CHECKED AGAINST THE METER IN HAND/m);
      expect(profile.registers.flow).toBeDefined();
      expect(profile.registers.total).toBeDefined();
    });
  });

  it('ships the generic template, which maps nothing and documents every field', () => {
    const generic = loadProfile('generic');
    expect(generic.registers).toEqual({});
    const text = readFileSync(join(SHIPPED_PROFILES_DIR, 'generic.yaml'), 'utf8');
    for (const field of ['table', 'address', 'type', 'wordOrder', 'scale', 'offset', 'unit', 'bits']) expect(text).toMatch(new RegExp(`^#\\s+${field}\\s`, 'm'));
  });
});

describe('runGatewayCheck', () => {
  it('takes the file as an argument or with --config, and refuses anything else as ERR_USAGE', () => {
    const lines: string[] = [];
    runGatewayCheck(['--config', EXAMPLE], (line) => lines.push(line));
    expect(lines[0]).toMatch(/is valid: 3 devices/);
    for (const args of [[EXAMPLE, EXAMPLE], ['--config', EXAMPLE, EXAMPLE], ['--verbose']]) {
      expect(() => runGatewayCheck(args, () => {})).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    }
  });

  it('throws ERR_GATEWAY_CONFIG naming every bad field, and for a file it cannot read', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gateway.yaml'), file('{ meterId: M1, transport: tcp, unitId: 0, intervalSec: 60 }'));
    expect(() => runGatewayCheck([join(dir, 'gateway.yaml')], () => {})).toThrow(
      expect.objectContaining({ code: 'ERR_GATEWAY_CONFIG', detail: expect.stringContaining('devices[0].host: required for transport tcp') }),
    );
    expect(() => runGatewayCheck([join(dir, 'nope.yaml')], () => {})).toThrow(expect.objectContaining({ code: 'ERR_GATEWAY_CONFIG', detail: expect.stringMatching(/cannot read the gateway file/) }));
  });
});
