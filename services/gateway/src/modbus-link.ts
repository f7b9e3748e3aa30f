import type { EventEmitter } from 'node:events';
import modbusSerial from 'modbus-serial';
import { FlowPilotError } from '@flowpilot/schema';
import type { DeviceConfig } from './config.ts';
import type { ReadRequest } from './registers.ts';

/**
 * The gateway's only contact with Modbus (modbus-serial, with serialport for RTU), behind a
 * small interface the tests replace with a fake (STYLE habit 8's shape: the poller sees a
 * link, never a library).
 *
 * One link per endpoint: a TCP host:port, or an RTU serial port. A serial bus has one master,
 * so every device on one `path` shares one link and is polled one after another; devices
 * behind one TCP address (a Modbus TCP-to-RTU converter, say) share one link the same way.
 */

// modbus-serial is CommonJS: its class is module.exports, which it also exports as `default`
// (the name its typings give it under NodeNext).
const ModbusRTU = modbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;

export type ModbusEndpoint =
  | { transport: 'tcp'; host: string; port: number }
  | { transport: 'rtu'; path: string; baudRate: number; parity: 'none' | 'even' | 'odd'; stopBits: 1 | 2; dataBits: 7 | 8 };

/** Why a poll failed (SPEC section 10: "skipped and counted"), as the metrics label it. */
export type DeviceFailureKind = 'timeout' | 'crc' | 'exception' | 'connection' | 'decode';
/** A poll skipped for the gateway's own reasons, not the device's: they never raise sensor_fault. */
export type GatewayFailureKind = 'overrun' | 'outbox_full' | 'outbox_error';
export type FailureKind = DeviceFailureKind | GatewayFailureKind;

export const DEVICE_FAILURE_KINDS: readonly DeviceFailureKind[] = ['timeout', 'crc', 'exception', 'connection', 'decode'];
export const FAILURE_KINDS: readonly FailureKind[] = [...DEVICE_FAILURE_KINDS, 'overrun', 'outbox_full', 'outbox_error'];

/** A failed Modbus request, classified where it arose (STYLE habit 6: decide by asking the error, not its text). */
export class ModbusReadError extends Error {
  readonly kind: DeviceFailureKind;

  constructor(kind: DeviceFailureKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModbusReadError';
    this.kind = kind;
  }
}

export interface ModbusLink {
  /** A human name of the endpoint, for logs: `tcp 192.0.2.10:502`, `rtu /dev/ttyUSB0`. */
  readonly name: string;
  /**
   * Reads `request.count` registers of unit `unitId`, opening the connection first when it is
   * not open. Rejects with a ModbusReadError; the caller bounds the whole call by `timeoutMs` too.
   */
  read(unitId: number, request: ReadRequest, timeoutMs: number): Promise<number[]>;
  /**
   * The caller gave up on a request (its deadline passed): a TCP link drops its connection so a
   * late answer cannot be taken for the next one, and the next read reconnects.
   */
  abandon(): void;
  close(): Promise<void>;
}

export type ModbusClientFactory = (endpoint: ModbusEndpoint) => ModbusLink;

export function endpointOf(device: DeviceConfig): ModbusEndpoint {
  if (device.transport === 'tcp') return { transport: 'tcp', host: device.host, port: device.port };
  return { transport: 'rtu', path: device.path, baudRate: device.baudRate, parity: device.parity, stopBits: device.stopBits, dataBits: device.dataBits };
}

/** Devices with the same key share one link and one queue (a bus has one master). */
export function endpointKey(endpoint: ModbusEndpoint): string {
  return endpoint.transport === 'tcp' ? `tcp ${endpoint.host}:${endpoint.port}` : `rtu ${endpoint.path}`;
}

/**
 * What kind of failure a modbus-serial error is. It reports a timeout as errno ETIMEDOUT
 * ("Timed out"), an exception response with `modbusCode`, a corrupted RTU frame as "CRC error"
 * or "Data length error"; everything else (refused, reset, port not open) is the connection.
 */
export function classifyModbusError(error: unknown): DeviceFailureKind {
  if (error instanceof ModbusReadError) return error.kind;
  if (error instanceof FlowPilotError && error.code === 'ERR_GATEWAY_DECODE') return 'decode';
  const e = error as { errno?: unknown; code?: unknown; modbusCode?: unknown; message?: unknown } | null;
  if (typeof e?.modbusCode === 'number') return 'exception';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (/CRC error|Data length error|Unexpected data/i.test(message)) return 'crc';
  if (e?.errno === 'ETIMEDOUT' || e?.code === 'ETIMEDOUT' || message === 'Timed out') return 'timeout';
  return 'connection';
}

function describe(error: unknown): string {
  const e = error as { message?: unknown; errno?: unknown; code?: unknown } | null;
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(error);
  const code = typeof e?.code === 'string' ? e.code : typeof e?.errno === 'string' ? e.errno : '';
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/** How long a dropped port's close is waited for before the path is opened again regardless. */
const CLOSE_WAIT_MS = 1_000;

/** Closes a client whatever state it is in, ignoring what it says afterwards; resolves once it is closed. */
function destroyQuietly(client: ModbusRTU): Promise<void> {
  // An EventEmitter at runtime, though its typings list only `on`.
  (client as unknown as EventEmitter).removeAllListeners();
  client.on('error', () => {});
  try {
    client.destroy(() => {});
    // destroy() ends a TCP socket, but modbus-serial's serial port (RTUBufferedPort) has no
    // destroy: left open, it keeps the port's lock, and every later open of the path fails with
    // "Cannot lock port". So a port still open after destroy() is closed.
    if (client.isOpen) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_WAIT_MS);
        client.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  } catch {
    // Nothing was open.
  }
  return Promise.resolve();
}

/** The link over modbus-serial: one ModbusRTU client, opened on first use and after a failure. */
export function createModbusSerialLink(endpoint: ModbusEndpoint): ModbusLink {
  const name = endpointKey(endpoint);
  /** The client in use, open or still connecting; `opening` is set while it connects. */
  let current: ModbusRTU | null = null;
  let opening: Promise<ModbusRTU> | null = null;
  /**
   * A serial port holds its lock until it is closed: the next open of the path waits for the
   * close of the one dropped before it, or it would fail with "Cannot lock port".
   */
  let released: Promise<void> = Promise.resolve();
  /** Reads the caller gave up on so far: one given up on while the port opened must not send its request late. */
  let abandons = 0;

  function drop(): void {
    const dropped = current;
    current = null;
    opening = null;
    if (!dropped) return;
    const closed = destroyQuietly(dropped);
    if (endpoint.transport === 'rtu') released = closed;
  }

  function open(timeoutMs: number): Promise<ModbusRTU> {
    if (opening) return opening;
    if (current?.isOpen) return Promise.resolve(current);
    drop();
    const created = new ModbusRTU();
    current = created;
    created.setTimeout(timeoutMs);
    // A port that fails later (a reset, a USB adapter unplugged) is reopened by the next read.
    created.on('error', () => {
      if (current === created) drop();
    });
    created.on('close', () => {
      if (current === created) drop();
    });
    const abandoned = () => new ModbusReadError('connection', `${name}: the connection was abandoned while it opened`);
    const connected =
      endpoint.transport === 'tcp'
        ? created.connectTCP(endpoint.host, { port: endpoint.port, timeout: timeoutMs })
        : released.then(() => {
            if (current !== created) throw abandoned();
            return created.connectRTUBuffered(endpoint.path, { baudRate: endpoint.baudRate, parity: endpoint.parity, stopBits: endpoint.stopBits, dataBits: endpoint.dataBits });
          });
    const attempt: Promise<ModbusRTU> = connected.then(
      async () => {
        // Closed (or a TCP connect abandoned) while it connected: it was destroyed while not yet
        // open, so close what has opened since (a serial port would otherwise stay open, and
        // locked, for good).
        if (current !== created) {
          await destroyQuietly(created);
          throw abandoned();
        }
        opening = null;
        return created;
      },
      (error: unknown) => {
        if (current === created) drop();
        if (error instanceof ModbusReadError) throw error;
        throw new ModbusReadError('connection', `cannot open ${name}: ${describe(error)}`, { cause: error });
      },
    );
    opening = attempt;
    return attempt;
  }

  return {
    name,
    async read(unitId, request, timeoutMs) {
      const ticket = abandons;
      const modbus = await open(timeoutMs);
      // Given up on while the port opened (its first open can take longer than a poll's timeout):
      // the port is kept for the next read, and this request is not sent after its deadline.
      if (ticket !== abandons) throw new ModbusReadError('timeout', `${name} unit ${unitId}: the port opened after the read was given up`);
      modbus.setID(unitId);
      modbus.setTimeout(timeoutMs);
      try {
        const result = request.table === 'holding' ? await modbus.readHoldingRegisters(request.address, request.count) : await modbus.readInputRegisters(request.address, request.count);
        if (result.data.length !== request.count) {
          throw new ModbusReadError('crc', `${name} unit ${unitId} answered ${result.data.length} registers for ${request.count} asked`);
        }
        return result.data;
      } catch (error) {
        if (error instanceof ModbusReadError) throw error;
        const kind = classifyModbusError(error);
        // After a timeout a TCP connection may be half-open, and its late answer would be read as
        // the next one's: start afresh. A serial port stays open (the bus is fine, a device is silent).
        if (current === modbus && (kind === 'connection' || (kind === 'timeout' && endpoint.transport === 'tcp'))) drop();
        throw new ModbusReadError(kind, `${name} unit ${unitId} ${request.table} ${request.address}+${request.count}: ${describe(error)}`, { cause: error });
      }
    },
    abandon() {
      abandons += 1;
      // A TCP connection may be half-open, or its connect hang: start afresh. A serial port still
      // opening is left to open, for the next read (dropping it only made the next open wait for it).
      if (endpoint.transport === 'tcp') drop();
    },
    close() {
      const closing = current;
      current = null;
      opening = null;
      if (!closing) return Promise.resolve();
      if (!closing.isOpen) return destroyQuietly(closing);
      return new Promise<void>((resolve) => {
        try {
          closing.close(() => resolve());
        } catch {
          resolve();
        }
      }).finally(() => void destroyQuietly(closing));
    },
  };
}
