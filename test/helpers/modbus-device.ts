import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

/**
 * A flowmeter behind Modbus for the gateway's end-to-end tests (SPEC section 10), played by a
 * server nobody here wrote: Debian's python3-pymodbus (test/helpers/modbus_device.py), over TCP,
 * or over RTU on a pseudo-terminal pair made by socat. Its registers follow a flow profile, and
 * it says what it holds, so a test compares what the gateway published with what the device held.
 *
 * Each device owns its processes: `stop()` ends them, and should the test runner die instead,
 * both see their stdin close and exit on their own.
 */

export type ModbusTable = 'holding' | 'input';
export type ModbusValueType = 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';
export type ModbusSource = 'flow' | 'total' | 'totalReverse';

/** Where one quantity lives; the gateway decodes `raw * scale + offset`. */
export interface DeviceRegister {
  table: ModbusTable;
  /** The 0-based PDU address. */
  address: number;
  type: ModbusValueType;
  /** `big` (default): the most significant word first. Bytes within a word are big-endian. */
  wordOrder?: 'big' | 'little';
  scale?: number;
  offset?: number;
  /** What it holds: the flow (m³/h) or a totalizer (m³); the name `flow`, `total` or `totalReverse` is its own source. */
  source?: ModbusSource;
  /** A constant, for any quantity that is not the flow or a totalizer. */
  value?: number;
}

export type DeviceRegisterMap = Readonly<Record<string, DeviceRegister>>;

/** `[secondsFromStart, flowM3h]` steps (each flow holds until the next step, the last for ever), or a constant flow. */
export type FlowProfile = number | readonly (readonly [number, number])[];

export interface ModbusDeviceOptions {
  transport: 'tcp' | 'rtu';
  /** Default 1. */
  unitId?: number;
  /**
   * Several unit ids answering from the same registers (default: `[unitId]`): one server plays
   * several meters behind one address or on one bus, which a gateway may read through different
   * register maps (each unit id its own device of the gateway).
   */
  unitIds?: readonly number[];
  map: DeviceRegisterMap;
  profile: FlowProfile;
  /** The totalizers at the start, m³ (default 0). */
  initialTotal?: number;
  initialTotalReverse?: number;
  /** RTU only (defaults 9600, none, 1). */
  baudRate?: number;
  parity?: 'none' | 'even' | 'odd';
  stopBits?: 1 | 2;
  /** How often the device reports what it holds (default 1000 ms); at or below `tickMs`, every tick. */
  logEveryMs?: number;
  /** How often it writes its registers (default 100 ms). */
  tickMs?: number;
}

/** What the device held at one tick: the quantities, and what each register encodes (decoded as the gateway should). */
export interface HeldValues {
  tick: number;
  /** Epoch ms of the tick. */
  ts: number;
  /** Seconds from the start of the profile. */
  t: number;
  flow: number;
  total: number;
  totalReverse: number;
  /** Per map entry: `raw * scale + offset` of the value its registers hold (after rounding, clamping, float32). */
  held: Record<string, number>;
}

export interface FaultAck {
  command: string;
  fault: 'silent' | 'exception' | 'corrupt' | 'normal';
  /** Epoch ms when the fault ends by itself, null when it lasts until `normal`. */
  untilTs: number | null;
  code?: number;
  /** `corrupt N`: how many answers it corrupts (absent: every answer until `normal`). */
  responses?: number;
}

/** One answer the device sent with a byte flipped (`corrupt`): its CRC does not match. */
export interface CorruptedFrame {
  /** Epoch ms when it was sent. */
  ts: number;
  unitId: number;
  functionCode: number;
  /** The index of the flipped byte in the RTU frame. */
  byte: number;
  /** Answers still to corrupt after this one; null while `corrupt` lasts until `normal`. */
  remaining: number | null;
}

interface ModbusDeviceBase {
  /** The first of `unitIds`. */
  readonly unitId: number;
  /** Every unit id the device answers as, each from the same registers. */
  readonly unitIds: readonly number[];
  readonly baudRate: number;
  readonly parity: 'none' | 'even' | 'odd';
  /** The pymodbus version serving. */
  readonly pymodbusVersion: string;
  /** The process id of the pymodbus server (for a bench's CPU share). */
  readonly pid: number;
  /** Every report so far, oldest first. */
  played(): HeldValues[];
  /**
   * `silent [seconds]` (stops answering), `exception [seconds] [code]` (answers with a Modbus
   * exception, 4 by default), `corrupt [responses]` (RTU only: the next answers, or every answer
   * until `normal`, go out with one data byte flipped, so the client sees a CRC error), `normal`;
   * resolves once the device has taken it.
   */
  fault(command: string): Promise<FaultAck>;
  /** Every answer sent corrupted so far, oldest first. */
  corrupted(): CorruptedFrame[];
  /** The device's stderr so far (pymodbus's own log), for a failing test's message. */
  log(): string;
  /** Ends the device (and socat); safe to call twice. */
  stop(): Promise<void>;
}

export interface TcpModbusDevice extends ModbusDeviceBase {
  readonly transport: 'tcp';
  readonly host: '127.0.0.1';
  readonly port: number;
}

export interface RtuModbusDevice extends ModbusDeviceBase {
  readonly transport: 'rtu';
  /** The client's end of the pseudo-terminal pair (the server holds the other). */
  readonly serialPath: string;
}

export type ModbusDevice = TcpModbusDevice | RtuModbusDevice;

/** Debian's interpreter: python3-pymodbus installs for it, whatever `python3` is first on PATH (pyenv, a venv). */
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./modbus_device.py', import.meta.url));
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const PARITY = { none: 'N', even: 'E', odd: 'O' } as const;

function hasPymodbus(): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import pymodbus.server, serial_asyncio'], { stdio: 'ignore' }).status === 0;
}

function hasSocat(): boolean {
  return spawnSync('sh', ['-c', 'command -v socat'], { stdio: 'ignore' }).status === 0;
}

/**
 * Installs Debian's python3-pymodbus (and socat, for RTU) with apt-get when missing and we are
 * root on Debian, as test/global-setup.ts does for influxd; otherwise one error saying what to install.
 */
export function ensureModbusTools(transport: 'tcp' | 'rtu'): void {
  const missing = [...(hasPymodbus() ? [] : ['python3-pymodbus']), ...(transport === 'rtu' && !hasSocat() ? ['socat'] : [])];
  if (missing.length === 0) return;
  const hint = `The Modbus tests need Debian's ${missing.join(' and ')}: sudo apt-get install -y ${missing.join(' ')}`;
  const canInstall = process.getuid?.() === 0 && existsSync('/etc/debian_version') && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (!canInstall) throw new Error(hint);
  console.log(`[test] installing Debian's ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // apt-get update only when the package lists do not know a package yet (a fresh container).
  if (missing.some((name) => spawnSync('apt-cache', ['show', name], { stdio: 'ignore' }).status !== 0)) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  }
  const installed = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (installed.status !== 0 || !hasPymodbus() || (transport === 'rtu' && !hasSocat())) throw new Error(`${hint} (apt-get install failed with status ${installed.status})`);
}

/** A child's stdout as JSON lines, each handed to `onLine`; its stderr kept. */
function watch(child: ChildProcessWithoutNullStreams, onLine: (line: Record<string, unknown>) => void): () => string {
  let stderr = '';
  child.stdin.on('error', () => {}); // EPIPE once it has exited: what it said is in stderr
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 256 * 1024) stderr = stderr.slice(-128 * 1024);
  });
  createInterface({ input: child.stdout }).on('line', (text) => {
    try {
      onLine(JSON.parse(text) as Record<string, unknown>);
    } catch {
      stderr += `(stdout) ${text}\n`;
    }
  });
  return () => stderr;
}

function exited(child: ChildProcessWithoutNullStreams): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Closes stdin (each helper exits on that), then SIGTERM, then SIGKILL, each after a grace period. */
async function end(child: ChildProcessWithoutNullStreams, stdinLine?: string): Promise<void> {
  const done = exited(child);
  if (!child.stdin.destroyed) child.stdin.end(stdinLine);
  const waited = (ms: number) => Promise.race([done.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
  if (await waited(STOP_TIMEOUT_MS)) return;
  child.kill('SIGTERM');
  if (await waited(STOP_TIMEOUT_MS)) return;
  child.kill('SIGKILL');
  await done;
}

interface PtyPair {
  serverPath: string;
  clientPath: string;
  stop(): Promise<void>;
}

/**
 * `socat -d -d pty,raw,echo=0 pty,raw,echo=0`: two linked pseudo-terminals, their paths read
 * from socat's stderr. socat runs under a shell that kills it when its stdin closes, so it
 * cannot outlive the test runner.
 */
async function startPtyPair(): Promise<PtyPair> {
  const child = spawn('sh', ['-c', 'socat -d -d pty,raw,echo=0 pty,raw,echo=0 & s=$!; cat >/dev/null; kill $s 2>/dev/null; wait $s'], { stdio: 'pipe' });
  child.stdin.on('error', () => {});
  let stderr = '';
  const paths: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`socat made no pseudo-terminals within ${START_TIMEOUT_MS} ms: ${stderr}`)), START_TIMEOUT_MS);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`socat exited (${code}) before linking two pseudo-terminals: ${stderr}`));
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        paths.splice(0, paths.length, ...[...stderr.matchAll(/PTY is (\S+)/g)].map((match) => match[1] as string));
        if (paths.length === 2 && stderr.includes('starting data transfer loop')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (error) {
    await end(child);
    throw error;
  }
  child.removeAllListeners('exit');
  const [serverPath, clientPath] = paths as [string, string];
  return { serverPath, clientPath, stop: () => end(child) };
}

function deviceArgs(options: ModbusDeviceOptions, unitIds: readonly number[], endpoint: string[]): string[] {
  return [
    SCRIPT,
    '--transport', options.transport,
    ...endpoint,
    '--unit-id', unitIds.join(','),
    '--map', JSON.stringify(options.map),
    '--profile', JSON.stringify(options.profile),
    '--initial-total', String(options.initialTotal ?? 0),
    '--initial-total-reverse', String(options.initialTotalReverse ?? 0),
    '--tick-ms', String(options.tickMs ?? 100),
    '--log-every-ms', String(options.logEveryMs ?? 1000),
  ];
}

interface RunningServer {
  child: ChildProcessWithoutNullStreams;
  listening: Record<string, unknown>;
  played: HeldValues[];
  corrupted: CorruptedFrame[];
  acks: Record<string, unknown>[];
  onAck: Set<() => void>;
  log: () => string;
}

/** Starts modbus_device.py and waits for it to listen (or to say why it cannot). */
async function startServer(args: string[]): Promise<RunningServer> {
  const child = spawn(PYTHON, args, { stdio: 'pipe', env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  const server: Omit<RunningServer, 'listening' | 'log'> = { child, played: [], corrupted: [], acks: [], onAck: new Set() };
  let listening: Record<string, unknown> | undefined;
  let failure: string | undefined;
  let notify = () => {};
  const log = watch(child, (line) => {
    if (line.event === 'held') server.played.push(line as unknown as HeldValues);
    else if (line.event === 'corrupted') server.corrupted.push(line as unknown as CorruptedFrame);
    else if (line.event === 'fault') {
      server.acks.push(line);
      for (const wake of server.onAck) wake();
    } else if (line.event === 'listening') listening = line;
    else if (line.event === 'error') failure = String(line.message);
    notify();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the Modbus device did not start within ${START_TIMEOUT_MS} ms: ${log()}`)), START_TIMEOUT_MS);
      const settle = (error?: Error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      notify = () => {
        if (listening) settle();
        else if (failure) settle(new Error(`the Modbus device refused to start: ${failure}`));
      };
      child.once('error', (error) => settle(error));
      child.once('exit', (code) => settle(new Error(`the Modbus device exited (${code}) before listening: ${failure ?? log()}`)));
    });
  } catch (error) {
    await end(child);
    throw error;
  }
  child.removeAllListeners('exit');
  return { ...server, listening: listening as Record<string, unknown>, log };
}

export async function startModbusDevice(options: ModbusDeviceOptions & { transport: 'tcp' }): Promise<TcpModbusDevice>;
export async function startModbusDevice(options: ModbusDeviceOptions & { transport: 'rtu' }): Promise<RtuModbusDevice>;
export async function startModbusDevice(options: ModbusDeviceOptions): Promise<ModbusDevice>;
export async function startModbusDevice(options: ModbusDeviceOptions): Promise<ModbusDevice> {
  ensureModbusTools(options.transport);
  const unitIds = options.unitIds ?? [options.unitId ?? 1];
  const unitId = unitIds[0];
  if (unitId === undefined) throw new Error('startModbusDevice: unitIds names no unit id');
  const baudRate = options.baudRate ?? 9600;
  const parity = options.parity ?? 'none';

  let pty: PtyPair | undefined;
  let server: RunningServer;
  if (options.transport === 'tcp') {
    // A free port can be taken between asking and binding: try another one then.
    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      try {
        server = await startServer(deviceArgs(options, unitIds, ['--host', '127.0.0.1', '--port', String(port)]));
        break;
      } catch (error) {
        if (attempt >= 3 || !String(error).includes('cannot listen')) throw error;
      }
    }
  } else {
    pty = await startPtyPair();
    try {
      server = await startServer(deviceArgs(options, unitIds, ['--device', pty.serverPath, '--baudrate', String(baudRate), '--parity', PARITY[parity], '--stopbits', String(options.stopBits ?? 1)]));
    } catch (error) {
      await pty.stop();
      throw error;
    }
  }

  let stopped: Promise<void> | undefined;
  const base: ModbusDeviceBase = {
    unitId,
    unitIds: [...unitIds],
    baudRate,
    parity,
    pymodbusVersion: String(server.listening.pymodbus),
    pid: server.child.pid as number,
    played: () => [...server.played],
    corrupted: () => [...server.corrupted],
    log: server.log,
    async fault(command) {
      if (stopped) throw new Error('the Modbus device is stopped');
      const line = command.trim();
      const seen = server.acks.length;
      const ack = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const timer = setTimeout(() => {
          server.onAck.delete(check);
          reject(new Error(`the Modbus device did not take "${line}" within ${START_TIMEOUT_MS} ms: ${server.log()}`));
        }, START_TIMEOUT_MS);
        function check() {
          const found = server.acks.slice(seen).find((a) => a.command === line);
          if (!found) return;
          clearTimeout(timer);
          server.onAck.delete(check);
          resolve(found);
        }
        server.onAck.add(check);
        server.child.stdin.write(`${line}\n`);
      });
      if (typeof ack.error === 'string') throw new Error(`the Modbus device refused "${line}": ${ack.error}`);
      return ack as unknown as FaultAck;
    },
    stop() {
      stopped ??= (async () => {
        await end(server.child, 'stop\n');
        await pty?.stop();
      })();
      return stopped;
    },
  };
  if (options.transport === 'tcp') return { ...base, transport: 'tcp', host: '127.0.0.1', port: Number(server.listening.port) };
  return { ...base, transport: 'rtu', serialPath: (pty as PtyPair).clientPath };
}
