import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { FlowPilotError, toWireReading, type Reading } from '@flowpilot/schema';
import type { DeviceConfig, GatewayBrokerConfig, GatewayConfig } from './config.ts';
import { createModbusSerialLink, DEVICE_FAILURE_KINDS, endpointKey, FAILURE_KINDS, endpointOf, type FailureKind, type ModbusClientFactory } from './modbus-link.ts';
import { openOutbox, type Outbox } from './outbox.ts';
import { createPoller, DEFAULT_RETRY_PAUSE_MS, type PollOutcome, type Poller } from './poller.ts';
import { connectMqtt, createMeterChannel, DEFAULT_CHANNEL_LIMITS, type MeterChannel, type MqttConnect } from './publisher.ts';
import type { DecodedReading } from './registers.ts';
import { SYSTEM_CLOCK, SYSTEM_TIMERS, withDeadline, type Clock, type Timers } from './time.ts';

/**
 * The Modbus field gateway (SPEC section 10), as a factory (STYLE habit 1): it polls its
 * devices (poller.ts), commits each reading with its seq to the durable outbox (outbox.ts)
 * before anything is sent, and publishes each meter's readings and status on that meter's own
 * MQTT connection (publisher.ts). The command (apps/flowpilot gateway-command.ts) reads the
 * config file, serves /metrics and /healthz (metrics.ts) and wires the signals.
 *
 * `sensor_fault` (SPEC section 10: "raised after a configurable number of failed polls in a
 * row"): a skipped poll publishes nothing, since a reading must carry a measured flow and total
 * (SPEC section 1), and the gateway never makes one up. So after `sensorFaultAfter` device
 * failures in a row, the meter's retained status says it:
 * `{"online": true, "ts", "fault": "sensor_fault", "faultSince", "failedPolls"}` (the status
 * schema accepts and ignores fields it does not know), the Prometheus gauge
 * flowpilot_gateway_sensor_fault{meter} is 1 and a warning is logged; the first good reading
 * clears all three. The readings themselves are not tagged: the reading after recovery is a
 * genuine measurement, and a `sensor_fault` alarm on it would exclude its paired intervals from
 * the accuracy evaluation (packages/metrics pairing.ts, DISQUALIFYING_ALARMS). An alarm the
 * meter itself reports in its status register passes through unchanged.
 */

export interface GatewayLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface GatewayOptions {
  config: GatewayConfig;
  log: GatewayLog;
  clock: Clock;
  timers: Timers;
  /** Opens a Modbus link per endpoint (modbus-serial by default; a fake in tests). */
  modbus: ModbusClientFactory;
  /** Opens an MQTT connection (MQTT.js by default; a fake in tests). */
  mqtt: MqttConnect;
  /** Reads the password file and the TLS files the config names. */
  readFile: (path: string) => Buffer;
  /** How long stop() waits for the polls in progress, then for the offline statuses' PUBACKs. */
  stopTimeoutMs: number;
  retryPauseMs: number;
  /** MQTT reconnect pause and connect timeout. */
  reconnectPeriodMs: number;
  connectTimeoutMs: number;
}

export const DEFAULT_GATEWAY_OPTIONS: Omit<GatewayOptions, 'config' | 'log'> = {
  clock: SYSTEM_CLOCK,
  timers: SYSTEM_TIMERS,
  modbus: createModbusSerialLink,
  mqtt: connectMqtt,
  readFile: (path) => readFileSync(path),
  // Within the 4.5 s a ServiceSet gives every service to stop (apps/flowpilot service-set.ts).
  stopTimeoutMs: 1_500,
  retryPauseMs: DEFAULT_RETRY_PAUSE_MS,
  reconnectPeriodMs: 2_000,
  connectTimeoutMs: 30_000,
};

export interface DeviceStats {
  meterId: string;
  endpoint: string;
  unitId: number;
  intervalSec: number;
  /** Polls made (each boundary once), readings committed, and skips by kind. */
  polls: number;
  readings: number;
  failures: Record<FailureKind, number>;
  /** Device failures in a row (timeout, crc, exception, connection, decode), 0 after a reading. */
  consecutiveFailures: number;
  sensorFault: boolean;
  lastPollAtMs: number | null;
  lastReadingAtMs: number | null;
  lastFailure: { kind: FailureKind; message: string; atMs: number } | null;
  /** The seq of the next poll. */
  nextSeq: number;
  mqttConnected: boolean;
  /** Readings the broker acknowledged (PUBACK) since start, and in how many PUBLISH packets. */
  published: number;
  publishes: number;
}

export interface GatewayStats {
  devices: DeviceStats[];
  outbox: { readings: number; maxReadings: number; oldestTsMs: number | null; full: boolean };
}

export interface GatewayHealth {
  /** ok: every meter connected, none in fault, the outbox not full; degraded otherwise. */
  status: 'starting' | 'ok' | 'degraded' | 'stopped';
  devices: { meterId: string; connected: boolean; sensorFault: boolean; consecutiveFailures: number; lastReadingAt: string | null; lastFailure: string | null }[];
  outbox: { readings: number; maxReadings: number; oldestAgeSec: number; full: boolean };
}

export interface Gateway {
  /** Opens the outbox, connects to the broker (without waiting for it) and starts the schedule. */
  start(): Promise<void>;
  /** Stops polling, says `online: false` for each meter, disconnects and closes the outbox. */
  stop(): Promise<void>;
  stats(): GatewayStats;
  health(): GatewayHealth;
}

/** The MQTT login of the gateway, resolved from its config section. */
export interface BrokerLogin {
  url: string;
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Client ids are `{clientIdBase}:{meterId}`. */
  clientIdBase: string;
}

function configError(detail: string): FlowPilotError {
  return new FlowPilotError('ERR_GATEWAY_CONFIG', detail);
}

/** A PEM given inline, or the file it names. */
function readPem(value: string, field: string, readFile: (path: string) => Buffer): Buffer {
  if (value.trimStart().startsWith('-----BEGIN')) return Buffer.from(value);
  try {
    return readFile(value);
  } catch (error) {
    throw configError(`broker.${field}: ${value} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): point it to a PEM file`);
  }
}

/** The CN of a client certificate: the broker logs a client in by it when no username is given (SPEC section 8). */
function certificateName(pem: Buffer): string | null {
  try {
    const match = /^CN=(.+)$/m.exec(new X509Certificate(pem).subject);
    return match?.[1]?.trim() || null;
  } catch {
    return null;
  }
}

export function resolveBrokerLogin(broker: GatewayBrokerConfig, readFile: (path: string) => Buffer): BrokerLogin {
  let password = broker.password;
  if (password === undefined && broker.passwordFile !== undefined) {
    try {
      password = readFile(broker.passwordFile).toString('utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw configError(`broker.passwordFile: ${broker.passwordFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const ca = broker.ca !== undefined ? readPem(broker.ca, 'ca', readFile) : undefined;
  const cert = broker.cert !== undefined ? readPem(broker.cert, 'cert', readFile) : undefined;
  const key = broker.key !== undefined ? readPem(broker.key, 'key', readFile) : undefined;
  const login = broker.username ?? (cert ? certificateName(cert) : null);
  const clientIdBase = broker.clientId ?? (login ? `${login}:gateway` : null);
  if (clientIdBase === null) throw configError('broker: give a username, a client certificate with a CN, or a clientId: the gateway\'s client ids are built from it');
  return {
    url: broker.url,
    clientIdBase,
    ...(broker.username !== undefined ? { username: broker.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}

/** The reading of SPEC section 1 for one poll: what the device answered, decoded, with the poll's time and seq. */
export function wireReadingPayload(meterId: string, seq: number, tsMs: number, decoded: DecodedReading): string {
  const reading: Reading = {
    meterId,
    seq,
    tsMs,
    flowM3h: decoded.flowM3h,
    totalM3: decoded.totalM3,
    alarms: [...new Set(decoded.alarms)],
    ...(decoded.totalReverseM3 !== undefined ? { totalReverseM3: decoded.totalReverseM3 } : {}),
    ...(decoded.velocityMps !== undefined ? { velocityMps: decoded.velocityMps } : {}),
    ...(decoded.pressureBar !== undefined ? { pressureBar: decoded.pressureBar } : {}),
    ...(decoded.temperatureC !== undefined ? { temperatureC: decoded.temperatureC } : {}),
    ...(decoded.batteryPct !== undefined ? { batteryPct: decoded.batteryPct } : {}),
  };
  return JSON.stringify(toWireReading(reading));
}

/** Fill levels of the outbox at which the operator is told, loudly and once each, as it fills. */
const FILL_WARNINGS = [0.5, 0.8, 0.9, 1] as const;
const LOG_EVERY_MS = 60_000;
const OUTBOX_FILE = 'outbox.sqlite';

interface DeviceState {
  device: DeviceConfig;
  stats: Omit<DeviceStats, 'nextSeq' | 'mqttConnected' | 'published' | 'publishes'>;
  /** The poll time of the first failure of the current streak. */
  streakSinceMs: number | null;
  channel: MeterChannel | null;
}

export function createGateway(options: Partial<GatewayOptions> & Pick<GatewayOptions, 'config' | 'log'>): Gateway {
  const settings: GatewayOptions = { ...DEFAULT_GATEWAY_OPTIONS, ...options };
  const { config, log, clock, timers } = settings;
  const states = new Map<string, DeviceState>();
  for (const device of config.devices) {
    if (states.has(device.meterId)) throw configError(`devices: meter ${device.meterId} is listed twice`);
    states.set(device.meterId, {
      device,
      streakSinceMs: null,
      channel: null,
      stats: {
        meterId: device.meterId,
        endpoint: endpointKey(endpointOf(device)),
        unitId: device.unitId,
        intervalSec: device.intervalSec,
        polls: 0,
        readings: 0,
        failures: Object.fromEntries(FAILURE_KINDS.map((kind) => [kind, 0])) as Record<FailureKind, number>,
        consecutiveFailures: 0,
        sensorFault: false,
        lastPollAtMs: null,
        lastReadingAtMs: null,
        lastFailure: null,
      },
    });
  }
  let outbox: Outbox | null = null;
  let poller: Poller | null = null;
  let phase: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  let warnedFill = 0;
  const lastLoggedAt = new Map<string, number>();

  function logOnce(key: string, level: 'warn' | 'error', fields: object, message: string): void {
    const now = clock.now();
    if (now - (lastLoggedAt.get(key) ?? Number.NEGATIVE_INFINITY) < LOG_EVERY_MS) return;
    lastLoggedAt.set(key, now);
    log[level](fields, message);
  }

  /** Tells the operator as the outbox fills (50, 80, 90, 100 %) and when it drains again. */
  function watchFill(box: Outbox): void {
    const { readings, oldestTsMs } = box.depth();
    const ratio = readings / box.maxReadings;
    const level = FILL_WARNINGS.filter((threshold) => ratio >= threshold).pop() ?? 0;
    if (level > warnedFill) {
      const fields = { readings, maxReadings: box.maxReadings, oldest: oldestTsMs === null ? null : new Date(oldestTsMs).toISOString() };
      if (level >= 1) {
        log.error(fields, 'THE OUTBOX IS FULL: the broker has not acknowledged readings for too long; new polls are skipped and counted (outbox_full) until it drains. Check the broker connection, or raise outbox.maxReadings');
      } else {
        log.warn(fields, `the outbox is ${Math.round(level * 100)} % full: the broker has not acknowledged readings since the oldest one; at 100 % new polls are skipped`);
      }
    } else if (level < warnedFill && level === 0) {
      log.info({ readings }, 'the outbox is draining: the broker acknowledges readings again');
    }
    warnedFill = level;
  }

  function onOutcome(device: DeviceConfig, outcome: PollOutcome): void {
    const state = states.get(device.meterId);
    const box = outbox;
    if (!state || !box || phase === 'stopped') return;
    const { stats } = state;
    stats.polls += 1;
    stats.lastPollAtMs = outcome.boundaryMs;
    if (outcome.ok) {
      try {
        box.commitReading(device.meterId, outcome.boundaryMs, (seq) => wireReadingPayload(device.meterId, seq, outcome.boundaryMs, outcome.decoded));
      } catch (error) {
        const kind = box.isFull() ? 'outbox_full' : 'outbox_error';
        skipped(state, box, { ok: false, boundaryMs: outcome.boundaryMs, kind, message: (error as Error).message, attempts: outcome.attempts });
        return;
      }
      stats.readings += 1;
      stats.lastReadingAtMs = outcome.boundaryMs;
      stats.consecutiveFailures = 0;
      state.streakSinceMs = null;
      if (stats.sensorFault) {
        stats.sensorFault = false;
        state.channel?.setFault(null);
        log.info({ meterId: device.meterId }, 'the meter answers again: sensor_fault cleared');
      }
      watchFill(box);
      state.channel?.wake();
      return;
    }
    skipped(state, box, outcome);
  }

  function skipped(state: DeviceState, box: Outbox, outcome: Extract<PollOutcome, { ok: false }>): void {
    const { stats, device } = state;
    const { kind } = outcome;
    // The poll's seq is used up all the same: `delivery` counts the reading as lost (SPEC section 1).
    try {
      box.commitSkip(device.meterId);
    } catch (error) {
      logOnce(`seq:${device.meterId}`, 'error', { meterId: device.meterId, err: (error as Error).message }, 'could not record a skipped poll in the outbox: check the disk of the data dir');
    }
    stats.failures[kind] += 1;
    stats.lastFailure = { kind, message: outcome.message, atMs: outcome.boundaryMs };
    const fields = { meterId: device.meterId, kind, attempts: outcome.attempts, ts: new Date(outcome.boundaryMs).toISOString(), err: outcome.message };
    if (kind === 'outbox_full') {
      logOnce(`full:${device.meterId}`, 'error', { ...fields, readings: box.depth().readings }, 'a poll was skipped: THE OUTBOX IS FULL, so its reading is lost (counted, never overwriting older readings)');
      watchFill(box);
      return;
    }
    if (kind === 'outbox_error') {
      logOnce(`outbox:${device.meterId}`, 'error', fields, 'a reading could not be committed to the outbox and is lost: check the disk of the data dir');
      return;
    }
    if (kind === 'overrun') {
      logOnce(`overrun:${device.meterId}`, 'warn', fields, 'a poll was skipped: its bus was busy until the next boundary (too many devices or retries for the intervals)');
      return;
    }
    if (!(DEVICE_FAILURE_KINDS as readonly string[]).includes(kind)) return;
    stats.consecutiveFailures += 1;
    state.streakSinceMs ??= outcome.boundaryMs;
    logOnce(`fail:${device.meterId}:${kind}`, 'warn', fields, 'a poll failed after its retries and was skipped (no reading is made up)');
    if (!stats.sensorFault && stats.consecutiveFailures >= Math.max(1, device.sensorFaultAfter)) {
      stats.sensorFault = true;
      state.channel?.setFault({ fault: 'sensor_fault', sinceMs: state.streakSinceMs, failedPolls: stats.consecutiveFailures });
      log.warn({ ...fields, failedPolls: stats.consecutiveFailures, since: new Date(state.streakSinceMs).toISOString() }, 'sensor_fault: the meter failed its polls in a row; its status says so until it answers again');
    }
  }

  function outboxStats(): GatewayStats['outbox'] {
    const depth = outbox?.depth() ?? { readings: 0, oldestTsMs: null };
    return { readings: depth.readings, maxReadings: config.outbox.maxReadings, oldestTsMs: depth.oldestTsMs, full: outbox?.isFull() ?? false };
  }

  function stats(): GatewayStats {
    return {
      devices: [...states.values()].map((state) => ({
        ...state.stats,
        failures: { ...state.stats.failures },
        lastFailure: state.stats.lastFailure ? { ...state.stats.lastFailure } : null,
        nextSeq: outbox && phase !== 'stopped' ? outbox.nextSeq(state.device.meterId) : 0,
        mqttConnected: state.channel?.connected ?? false,
        published: state.channel?.published ?? 0,
        publishes: state.channel?.publishes ?? 0,
      })),
      outbox: outboxStats(),
    };
  }

  async function shutDown(): Promise<void> {
    const box = outbox;
    // A poll still running past the deadline is left behind: its outcome is ignored once stopped.
    if (poller) await withDeadline(poller.stop(), settings.stopTimeoutMs, timers);
    await Promise.all([...states.values()].map((state) => state.channel?.stop(settings.stopTimeoutMs)));
    phase = 'stopped';
    box?.close();
    log.info({}, 'gateway stopped');
  }

  let stopping: Promise<void> | null = null;

  return {
    async start() {
      if (phase !== 'new') throw new Error('the gateway was started already');
      phase = 'starting';
      const login = resolveBrokerLogin(config.broker, settings.readFile);
      const box = openOutbox({ path: join(config.dataDir, OUTBOX_FILE), maxReadings: config.outbox.maxReadings });
      outbox = box;
      try {
        const waiting = box.meters();
        const served = new Set(states.keys());
        const orphans = Object.entries(waiting).filter(([meterId]) => !served.has(meterId));
        if (orphans.length > 0) {
          log.warn({ meters: Object.fromEntries(orphans) }, 'the outbox holds readings of meters no longer in the config: they are kept, and sent when the meter is configured again');
        }
        const backlog = Object.values(waiting).reduce((sum, n) => sum + n, 0);
        if (backlog > 0) log.info({ readings: backlog }, 'readings from before the restart wait in the outbox; they are sent first');
        watchFill(box);
        for (const state of states.values()) {
          const { meterId } = state.device;
          const channel = createMeterChannel({
            meterId,
            url: login.url,
            connect: settings.mqtt,
            outbox: box,
            clock,
            timers,
            log,
            ...DEFAULT_CHANNEL_LIMITS,
            link: {
              clientId: `${login.clientIdBase}:${meterId}`,
              ...(login.username !== undefined ? { username: login.username } : {}),
              ...(login.password !== undefined ? { password: login.password } : {}),
              ...(login.ca ? { ca: login.ca } : {}),
              ...(login.cert ? { cert: login.cert } : {}),
              ...(login.key ? { key: login.key } : {}),
              reconnectPeriodMs: settings.reconnectPeriodMs,
              connectTimeoutMs: settings.connectTimeoutMs,
            },
          });
          state.channel = channel;
          channel.start();
        }
        poller = createPoller({
          devices: config.devices,
          modbus: settings.modbus,
          clock,
          timers,
          log,
          retryPauseMs: settings.retryPauseMs,
          admit: () => (box.isFull() ? 'outbox_full' : null),
          onOutcome,
        });
        poller.start();
      } catch (error) {
        phase = 'stopping';
        await shutDown();
        throw error;
      }
      phase = 'running';
      log.info({ devices: config.devices.length, broker: login.url, outbox: join(config.dataDir, OUTBOX_FILE) }, 'gateway started');
    },

    stop() {
      if (phase === 'new') {
        phase = 'stopped';
        return Promise.resolve();
      }
      phase = phase === 'stopped' ? phase : 'stopping';
      stopping ??= shutDown();
      return stopping;
    },

    stats,

    health() {
      const now = clock.now();
      const box = outboxStats();
      const devices = [...states.values()].map((state) => ({
        meterId: state.device.meterId,
        connected: state.channel?.connected ?? false,
        sensorFault: state.stats.sensorFault,
        consecutiveFailures: state.stats.consecutiveFailures,
        lastReadingAt: state.stats.lastReadingAtMs === null ? null : new Date(state.stats.lastReadingAtMs).toISOString(),
        lastFailure: state.stats.lastFailure ? `${state.stats.lastFailure.kind}: ${state.stats.lastFailure.message}` : null,
      }));
      const healthy = devices.every((d) => d.connected && !d.sensorFault) && !box.full;
      const status = phase === 'running' ? (healthy ? 'ok' : 'degraded') : phase === 'stopped' || phase === 'stopping' ? 'stopped' : 'starting';
      return {
        status,
        devices,
        outbox: { readings: box.readings, maxReadings: box.maxReadings, oldestAgeSec: box.oldestTsMs === null ? 0 : Math.max(0, (now - box.oldestTsMs) / 1000), full: box.full },
      };
    },
  };
}
