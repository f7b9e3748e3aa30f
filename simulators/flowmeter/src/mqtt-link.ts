import { readingsTopic, statusTopic, toWireReading } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';

/**
 * One simulated meter's MQTT connection (one MQTT.js client per meter, as each real meter has
 * its own): connecting with a persistent session and a last will, publishing at QoS 1 with a
 * bounded number of unacknowledged publishes, and closing. It decides nothing about what to
 * send or when (schedule.ts does); the only time it reads is the clock it is given.
 */

export const FIRMWARE = 'sim-1.0';

export interface LinkLog {
  warn(obj: object | string, msg?: string): void;
}

export interface MeterLinkOptions {
  meterId: string;
  mqttUrl: string;
  /** A service login allowed to publish for any meter; the client id is `${username}:${meterId}`. */
  username: string;
  password: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Unacknowledged publishes before the next waits for a PUBACK. */
  maxInFlight: number;
  clock: { now(): number };
  log: LinkLog;
}

export interface MeterLink {
  readonly meterId: string;
  /** Whether connect() was called, i.e. there is a client to close. */
  readonly opened: boolean;
  /** Whether the broker accepted the connection and it is up now. */
  readonly connected: boolean;
  /** Publishes handed over whose PUBACK has not come yet. */
  readonly inFlight: number;
  /**
   * Connects, retrying every second; resolves once the broker accepted the connection and the
   * meter's online status is handed over, or when the link is closed first. Every reconnect
   * announces the meter again.
   */
  connect(): Promise<void>;
  /** Publishes readings (an array, or one reading as an object) once a slot is free; resolves when handed over; `onAck` on the PUBACK. */
  publishReadings(readings: readonly Reading[], asArray: boolean, onAck: () => void): Promise<void>;
  /** Publishes the meter's retained status, as of `tsMs`. */
  publishStatus(online: boolean, tsMs: number): Promise<void>;
  /** Resolves once every publish handed over so far got its PUBACK or failed. */
  settled(): Promise<void>;
  /** Disconnects: cleanly (a DISCONNECT, so the broker does not publish the will), or at once with `force`. */
  close(force: boolean): Promise<void>;
}

export function statusPayload(online: boolean, tsMs: number): string {
  const ts = new Date(tsMs).toISOString();
  return JSON.stringify(online ? { online, ts, firmware: FIRMWARE } : { online, ts });
}

export function createMeterLink(options: MeterLinkOptions): MeterLink {
  const { meterId, log } = options;
  const topics = { readings: readingsTopic(meterId), status: statusTopic(meterId) };
  let client: MqttClient | null = null;
  let inFlight = 0;
  const slotWaiters: (() => void)[] = [];
  const pending = new Set<Promise<void>>();

  /** QoS 1 once a slot is free; resolves when the publish is handed over, not acked. */
  async function publish(topic: string, payload: string, retain: boolean, onAck: () => void): Promise<void> {
    const current = client;
    if (!current) throw new Error(`meter ${meterId} is not connected`);
    while (inFlight >= options.maxInFlight) await new Promise<void>((resolve) => slotWaiters.push(resolve));
    inFlight++;
    const done = new Promise<void>((resolve) => {
      current.publish(topic, payload, { qos: 1, retain }, (error) => {
        inFlight--;
        slotWaiters.shift()?.();
        if (error) log.warn({ meterId, topic, err: error.message }, 'publish failed');
        else onAck();
        resolve();
      });
    });
    pending.add(done);
    void done.then(() => pending.delete(done));
  }

  const publishStatus = (online: boolean, tsMs: number): Promise<void> => publish(topics.status, statusPayload(online, tsMs), true, () => {});

  return {
    meterId,
    get opened() {
      return client !== null;
    },
    get connected() {
      return client?.connected ?? false;
    },
    get inFlight() {
      return inFlight;
    },

    connect() {
      const created = connect(options.mqttUrl, {
        clientId: `${options.username}:${meterId}`,
        // Aedes speaks MQTT 3.1.1; a persistent session keeps unacknowledged QoS 1 publishes
        // across a reconnect, so the meter resends them (SPEC section 6).
        protocolVersion: 4,
        clean: false,
        username: options.username,
        password: options.password,
        ...options.tls,
        reconnectPeriod: 1000,
        will: { topic: topics.status, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
      });
      client = created;
      created.on('error', (error) => log.warn({ meterId, err: error.message }, 'MQTT connection error; retrying'));
      created.on('offline', () => log.warn({ meterId }, 'MQTT connection lost; reconnecting'));
      return new Promise<void>((resolve) => {
        // stop() during start() must not leave start() waiting for a connection forever.
        created.once('end', resolve);
        created.on('connect', () => {
          // Every (re)connect announces the meter, overwriting the will's retained offline status.
          void publishStatus(true, options.clock.now()).then(resolve);
        });
      });
    },

    publishReadings(readings, asArray, onAck) {
      const first = readings[0];
      const payload = JSON.stringify(asArray || first === undefined ? readings.map(toWireReading) : toWireReading(first));
      return publish(topics.readings, payload, false, onAck);
    },

    publishStatus,

    settled: () => Promise.all(pending).then(() => undefined),

    async close(force) {
      await client?.endAsync(force);
    },
  };
}
