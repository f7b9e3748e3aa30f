import { connect } from 'mqtt';
import { MAX_BATCH_READINGS, readingsTopic, statusTopic } from '@flowpilot/schema';
import type { Outbox } from './outbox.ts';
import type { Clock, TimerHandle, Timers } from './time.ts';
import { TIMED_OUT, withDeadline } from './time.ts';

/**
 * One meter's MQTT connection, and the pump that empties its part of the outbox.
 *
 * Why one connection per meter: a client has one last will, and the broker accepts a will only
 * on a status topic the login may publish to (SPEC section 1: "A meter's last will may only be
 * on its own status topic"; services/broker access-policy.ts `canLeaveWill`). With one
 * connection per meter, each meter served has its own will, so when the gateway dies (power,
 * SIGKILL, a cut link) the broker sets `online: false` for every one of its meters, which a
 * single shared connection could do for one meter only. The client ids are
 * `{base}:{meterId}`, which the broker allows a service or gateway login (`{login}:{anything}`).
 *
 * Delivery (SPEC sections 6 and 10): QoS 1 on a persistent session (clean: false). The pump
 * sends the meter's oldest waiting readings, one PUBLISH at a time: one reading alone as an
 * object, several (the gateway was behind) as one JSON array of at most 1000 (SPEC section 1).
 * The rows are deleted from the outbox only in the PUBACK's callback. A PUBLISH cut off by a
 * lost connection stays in MQTT.js's store and is sent again on reconnect; a process restart
 * sends again whatever the outbox still holds. Either way the broker may see a reading twice,
 * never zero times; InfluxDB stores a repeated point once (SPEC section 2).
 */

/** The part of an MQTT.js client this module uses, so tests can drive PUBACKs by hand. */
export interface MqttLinkClient {
  readonly connected: boolean;
  publish(topic: string, payload: string, options: { qos: 1; retain: boolean }, callback: (error?: Error) => void): void;
  on(event: 'connect' | 'close' | 'offline', listener: () => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  /** Ends the connection: `force` drops it at once (the broker publishes the will), else a DISCONNECT. */
  end(force: boolean, callback: () => void): void;
}

export interface MqttLinkOptions {
  clientId: string;
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  will: { topic: string; payload: string; qos: 1; retain: true };
  reconnectPeriodMs: number;
  connectTimeoutMs: number;
}

export type MqttConnect = (url: string, options: MqttLinkOptions) => MqttLinkClient;

/** MQTT.js, as the gateway uses it. */
export const connectMqtt: MqttConnect = (url, options) => {
  const client = connect(url, {
    clientId: options.clientId,
    // Aedes speaks MQTT 3.1.1; a persistent session keeps unacknowledged QoS 1 publishes across a
    // reconnect, and MQTT.js sends them again ([MQTT-4.4.0-1]).
    protocolVersion: 4,
    clean: false,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.cert ? { cert: options.cert } : {}),
    ...(options.key ? { key: options.key } : {}),
    reconnectPeriod: options.reconnectPeriodMs,
    connectTimeout: options.connectTimeoutMs,
    will: { ...options.will, payload: Buffer.from(options.will.payload) },
  });
  return {
    get connected() {
      return client.connected;
    },
    publish(topic, payload, publishOptions, callback) {
      client.publish(topic, payload, publishOptions, (error) => callback(error ?? undefined));
    },
    on(event: 'connect' | 'close' | 'offline' | 'error', listener: (error: Error) => void) {
      client.on(event as 'error', listener);
    },
    end(force, callback) {
      client.end(force, {}, () => callback());
    },
  };
};

/** What a status says besides `online` (SPEC section 1; the schema ignores fields it does not know). */
export interface StatusFault {
  fault: 'sensor_fault';
  /** The poll time of the first failed poll of the streak, epoch ms. */
  sinceMs: number;
  failedPolls: number;
}

/**
 * The retained status of a meter the gateway serves. `fault` is an extra field: the status
 * schema (packages/schema status.ts) accepts and ignores unknown fields, so a broker validates
 * it as any status, and an operator watching `meters/+/status` sees why readings stopped.
 */
export function statusPayload(online: boolean, tsMs: number, fault: StatusFault | null = null): string {
  const status: Record<string, unknown> = { online, ts: new Date(tsMs).toISOString() };
  if (online && fault) {
    status.fault = fault.fault;
    status.faultSince = new Date(fault.sinceMs).toISOString();
    status.failedPolls = fault.failedPolls;
  }
  return JSON.stringify(status);
}

/** The will: `{"online": false}` without a time, so the broker stamps it when it publishes it. */
export const WILL_PAYLOAD = '{"online":false}';

export interface ChannelLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MeterChannelOptions {
  meterId: string;
  url: string;
  link: Omit<MqttLinkOptions, 'will'>;
  connect: MqttConnect;
  outbox: Outbox;
  clock: Clock;
  timers: Timers;
  log: ChannelLog;
  /** Readings per PUBLISH at most (SPEC section 1: 1000). */
  maxBatchReadings: number;
  /** Payload bytes per PUBLISH at most, under the broker's payload limit. */
  maxPayloadBytes: number;
  /** Pause after a failed PUBLISH before the pump tries again. */
  retryPauseMs: number;
}

export const DEFAULT_CHANNEL_LIMITS = {
  maxBatchReadings: MAX_BATCH_READINGS,
  // The broker's default payload limit is 512 KiB: a full array of long readings stays well under it.
  maxPayloadBytes: 256 * 1024,
  retryPauseMs: 1_000,
} as const;

export interface MeterChannel {
  readonly meterId: string;
  readonly connected: boolean;
  /** Readings whose PUBACK came, since start. */
  readonly published: number;
  /** PUBLISH packets whose PUBACK came, since start. */
  readonly publishes: number;
  /** Readings sent and not yet acknowledged. */
  readonly inFlight: number;
  start(): void;
  /** New readings were committed: send them when the connection allows. */
  wake(): void;
  /** The status to announce now and after each reconnect (null: no fault). */
  setFault(fault: StatusFault | null): void;
  /** Announces `online: false`, waits for its PUBACK at most `timeoutMs`, then disconnects. */
  stop(timeoutMs: number): Promise<void>;
}

const LOG_EVERY_MS = 60_000;
/** How long stop() lets a clean DISCONNECT wait for the PUBACKs of readings in flight. */
const END_WAIT_MS = 500;

export function createMeterChannel(options: MeterChannelOptions): MeterChannel {
  const { meterId, outbox, clock, timers, log } = options;
  const topics = { readings: readingsTopic(meterId), status: statusTopic(meterId) };
  let client: MqttLinkClient | null = null;
  let inFlight: { firstId: number; lastId: number; count: number } | null = null;
  let retryTimer: TimerHandle | null = null;
  let fault: StatusFault | null = null;
  let stopped = false;
  let published = 0;
  let publishes = 0;
  const lastLoggedAt = new Map<string, number>();

  function logOnce(key: string, level: 'warn' | 'error', fields: object, message: string): void {
    const now = clock.now();
    if (now - (lastLoggedAt.get(key) ?? Number.NEGATIVE_INFINITY) < LOG_EVERY_MS) return;
    lastLoggedAt.set(key, now);
    log[level]({ meterId, ...fields }, message);
  }

  function publishStatus(online: boolean, callback: (error?: Error) => void = () => {}): void {
    if (!client) return callback(new Error('not started'));
    client.publish(topics.status, statusPayload(online, clock.now(), fault), { qos: 1, retain: true }, callback);
  }

  function pump(): void {
    retryTimer = null;
    if (stopped || inFlight || !client?.connected) return;
    const rows = outbox.pending(meterId, options.maxBatchReadings, options.maxPayloadBytes);
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (!first || !last) return;
    // One reading waiting goes alone, as an object; several (the gateway is catching up) as one
    // array, so the pipeline counts them as store-and-forward backfill (SPEC sections 1 and 4).
    const payload = rows.length === 1 ? first.payload : `[${rows.map((row) => row.payload).join(',')}]`;
    const sent = { firstId: first.id, lastId: last.id, count: rows.length };
    inFlight = sent;
    client.publish(topics.readings, payload, { qos: 1, retain: false }, (error) => {
      inFlight = null;
      if (error) {
        if (!stopped) {
          logOnce('publish', 'warn', { err: error.message, readings: sent.count }, 'a PUBLISH of readings failed; they stay in the outbox and are sent again');
          retryTimer = timers.setTimeout(pump, options.retryPauseMs);
        }
        return;
      }
      // The PUBACK: the broker has the readings (SPEC section 6), so the outbox may let them go.
      outbox.remove(meterId, sent.firstId, sent.lastId);
      published += sent.count;
      publishes += 1;
      pump();
    });
  }

  return {
    meterId,
    get connected() {
      return client?.connected ?? false;
    },
    get published() {
      return published;
    },
    get publishes() {
      return publishes;
    },
    get inFlight() {
      return inFlight?.count ?? 0;
    },

    start() {
      if (client) return;
      const created = options.connect(options.url, { ...options.link, will: { topic: topics.status, payload: WILL_PAYLOAD, qos: 1, retain: true } });
      client = created;
      created.on('connect', () => {
        if (stopped) return;
        log.info({ meterId, clientId: options.link.clientId }, 'connected to the broker');
        // Every (re)connect announces the meter again, replacing the will's `online: false`.
        publishStatus(true);
        pump();
      });
      created.on('error', (error) => {
        logOnce('error', 'error', { err: error.message, url: options.url }, 'the broker refused or dropped the connection; retrying (readings wait in the outbox)');
      });
      created.on('offline', () => {
        if (!stopped) logOnce('offline', 'warn', { url: options.url }, 'the connection to the broker was lost (unreachable, or it refused a publish: check that the gateway login serves this meter); reconnecting, readings wait in the outbox');
      });
    },

    wake() {
      if (!inFlight && retryTimer === null) pump();
    },

    setFault(next) {
      const changed = (fault === null) !== (next === null);
      fault = next;
      if (changed && client?.connected && !stopped) publishStatus(true);
    },

    async stop(timeoutMs) {
      if (stopped) return;
      stopped = true;
      if (retryTimer !== null) timers.clearTimeout(retryTimer);
      retryTimer = null;
      const current = client;
      if (!current) return;
      let clean = current.connected;
      if (clean) {
        // A gateway stopped on purpose says so for each meter, then disconnects cleanly (the
        // broker then discards the will, which would say the same).
        const goodbye = new Promise<boolean>((resolve) => publishStatus(false, (error) => resolve(!error)));
        const outcome = await withDeadline(goodbye, timeoutMs, timers);
        clean = outcome === true;
      }
      // A clean DISCONNECT waits for the readings in flight; they are safe in the outbox, so not for long.
      const ended = new Promise<void>((resolve) => current.end(!clean, resolve));
      if ((await withDeadline(ended, END_WAIT_MS, timers)) === TIMED_OUT) {
        await withDeadline(new Promise<void>((resolve) => current.end(true, resolve)), END_WAIT_MS, timers);
      }
    },
  };
}
