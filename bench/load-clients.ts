import { connectAsync, type MqttClient } from 'mqtt';
import { mapLimit, withTimeout } from '@flowpilot/async';
import { sleep } from './harness.ts';

/**
 * The load generator: MQTT.js clients that behave like FlowPilot's meters (MQTT 3.1.1,
 * persistent session, QoS 1), connected as the `flowpilot-simulator` service login with client
 * id `flowpilot-simulator:{meterId}`. A publish counts as accepted when its callback fires:
 * MQTT.js calls it on the PUBACK (SPEC section 6), and only accepted pairs enter the check.
 *
 * Each client keeps a bounded number of unacknowledged publishes (its window), so "as fast as
 * the broker accepts" means exactly that, and nothing queues without bound in the bench.
 */

export interface LoadClient {
  meterId: string;
  topic: string;
  client: MqttClient;
  nextSeq: number;
  inFlight: number;
  dead: boolean;
  /** seq of every reading the broker acknowledged (a batch adds all its seqs). */
  ackedSeqs: number[];
  /** Publish time (epoch ms) by seq, when the driver tracks it (latency). */
  publishedAtMs: Map<number, number>;
}

export interface MqttLogin {
  username: string;
  password: string;
}

export async function connectLoadClients(mqttUrl: string, login: MqttLogin, meterIds: readonly string[], concurrency = 16): Promise<LoadClient[]> {
  // Each CONNECT costs the broker an scrypt hash; a bounded number at once keeps it honest.
  return mapLimit(meterIds, concurrency, async (meterId) => {
    const client = await connectAsync(mqttUrl, {
      clientId: `${login.username}:${meterId}`,
      username: login.username,
      password: login.password,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: 60_000,
      keepalive: 120,
    });
    return { meterId, topic: `meters/${meterId}/readings`, client, nextSeq: 0, inFlight: 0, dead: false, ackedSeqs: [], publishedAtMs: new Map() };
  });
}

export async function closeLoadClients(clients: readonly LoadClient[]): Promise<void> {
  await mapLimit(clients, 50, async (c) => {
    await withTimeout(c.client.endAsync(true).catch(() => undefined), 5_000);
  });
}

/** What one publish carries: its payload and how many readings (1, or a batch's length). */
export interface Message {
  payload: string;
  readings: number;
}

export type MessageFactory = (client: LoadClient, firstSeq: number, nowMs: number) => Message;

export interface DriveResult {
  startedAtMs: number;
  /** When publishing stopped (the end of the measured window). */
  stoppedAtMs: number;
  /** When the last outstanding PUBACK arrived (or the drain gave up). */
  drainedAtMs: number;
  messagesPublished: number;
  /** Readings acknowledged inside the measured window. */
  readingsAckedInWindow: number;
  /** Readings acknowledged in all, the drain included. */
  readingsAcked: number;
  publishErrors: number;
  deadClients: number;
  /** Readings acknowledged per bucket of `bucketMs`, over the window. */
  ackedPerBucket: number[];
  bucketMs: number;
  /** First PUBACK time per message (ms after its publish), when `trackAckLatency` is set. */
  ackLatencyMs: number[];
  /** Paced mode: publishes that could not go out on time because every window was full. */
  behind: number;
}

export interface DriveOptions {
  durationMs: number;
  windowPerClient: number;
  message: MessageFactory;
  /** Paced mode: readings per second across all clients; absent: as fast as the broker accepts. */
  ratePerSec?: number;
  /** Stop early after this many messages (backfill); absent: only the duration bounds it. */
  maxMessages?: number;
  /** Keep every publish time by seq in LoadClient.publishedAtMs. */
  trackPublishTimes?: boolean;
  bucketMs?: number;
  /** How long to wait for outstanding PUBACKs after the window. */
  drainTimeoutMs?: number;
  onTick?: (nowMs: number) => void;
}

/**
 * Publishes from every client until the duration (or maxMessages) is reached, then waits for the
 * outstanding PUBACKs. Saturating mode refills a client's window from its PUBACK callback;
 * paced mode releases `ratePerSec` readings per second from a 5 ms ticker, round-robin over
 * the clients whose window has room.
 */
export async function drive(clients: readonly LoadClient[], options: DriveOptions): Promise<DriveResult> {
  const bucketMs = options.bucketMs ?? 10_000;
  const startedAtMs = Date.now();
  const endAtMs = startedAtMs + options.durationMs;
  const maxMessages = options.maxMessages ?? Number.POSITIVE_INFINITY;
  const result: DriveResult = {
    startedAtMs,
    stoppedAtMs: 0,
    drainedAtMs: 0,
    messagesPublished: 0,
    readingsAckedInWindow: 0,
    readingsAcked: 0,
    publishErrors: 0,
    deadClients: 0,
    ackedPerBucket: new Array<number>(Math.ceil(options.durationMs / bucketMs)).fill(0),
    bucketMs,
    ackLatencyMs: [],
    behind: 0,
  };
  let stopped = false;
  let outstanding = 0;
  let onIdle: (() => void) | null = null;
  const paced = options.ratePerSec !== undefined;

  const stop = () => {
    if (stopped) return;
    stopped = true;
    result.stoppedAtMs = Date.now();
  };

  const publish = (c: LoadClient): void => {
    const nowMs = Date.now();
    const firstSeq = c.nextSeq;
    const message = options.message(c, firstSeq, nowMs);
    c.nextSeq += message.readings;
    if (options.trackPublishTimes) for (let s = firstSeq; s < c.nextSeq; s++) c.publishedAtMs.set(s, nowMs);
    c.inFlight += 1;
    outstanding += 1;
    result.messagesPublished += 1;
    if (result.messagesPublished >= maxMessages) stop();
    c.client.publish(c.topic, message.payload, { qos: 1 }, (error) => {
      c.inFlight -= 1;
      outstanding -= 1;
      const ackAt = Date.now();
      if (error) {
        result.publishErrors += 1;
        if (!c.dead) {
          c.dead = true;
          result.deadClients += 1;
        }
      } else {
        for (let s = firstSeq; s < firstSeq + message.readings; s++) c.ackedSeqs.push(s);
        result.readingsAcked += message.readings;
        if (ackAt <= endAtMs && !stopped) {
          result.readingsAckedInWindow += message.readings;
          const bucket = Math.floor((ackAt - startedAtMs) / bucketMs);
          if (bucket < result.ackedPerBucket.length) result.ackedPerBucket[bucket] = (result.ackedPerBucket[bucket] ?? 0) + message.readings;
        }
        if (result.ackLatencyMs.length < 500_000) result.ackLatencyMs.push(ackAt - nowMs);
      }
      if (ackAt >= endAtMs) stop();
      if (!stopped && !paced && !c.dead) publish(c);
      if (stopped && outstanding === 0) onIdle?.();
    });
  };

  if (!paced) {
    for (const c of clients) for (let i = 0; i < options.windowPerClient && !stopped; i++) publish(c);
    // Saturating mode is driven by PUBACKs; this ticker only ends the window if they stall.
    while (!stopped) {
      await sleep(Math.min(100, Math.max(1, endAtMs - Date.now())));
      options.onTick?.(Date.now());
      if (Date.now() >= endAtMs) stop();
    }
  } else {
    const rate = options.ratePerSec as number;
    let released = 0;
    let cursor = 0;
    while (!stopped) {
      const nowMs = Date.now();
      if (nowMs >= endAtMs) {
        stop();
        break;
      }
      // Readings due by now; a stall is made up, but never by more than one second's worth.
      let due = Math.floor(((nowMs - startedAtMs) / 1000) * rate) - released;
      if (due > rate) {
        result.behind += due - rate;
        released += due - rate;
        due = rate;
      }
      let scanned = 0;
      while (due > 0 && scanned < clients.length) {
        const c = clients[cursor]!;
        cursor = (cursor + 1) % clients.length;
        if (c.dead || c.inFlight >= options.windowPerClient) {
          scanned += 1;
          continue;
        }
        scanned = 0;
        publish(c);
        released += 1;
        due -= 1;
      }
      options.onTick?.(nowMs);
      await sleep(5);
    }
  }

  const drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
  if (outstanding > 0) {
    await withTimeout(new Promise<void>((done) => (onIdle = done)), drainTimeoutMs);
  }
  result.drainedAtMs = Date.now();
  return result;
}

/** One v1 reading (SPEC section 1), as a meter sends it. */
export function readingJson(meterId: string, seq: number, tsMs: number): string {
  const flow = 40 + (seq % 7) + 0.25;
  const total = Math.round((1000 + seq * 0.7) * 1000) / 1000;
  return `{"v":1,"meterId":"${meterId}","seq":${seq},"ts":"${new Date(tsMs).toISOString()}","flow":${flow},"total":${total}}`;
}

/** A backfill batch: `count` consecutive readings as a JSON array (SPEC section 1, up to 1000). */
export function batchJson(meterId: string, firstSeq: number, count: number, tsOf: (seq: number) => number): string {
  const parts = new Array<string>(count);
  for (let i = 0; i < count; i++) parts[i] = readingJson(meterId, firstSeq + i, tsOf(firstSeq + i));
  return `[${parts.join(',')}]`;
}
