import { randomUUID } from 'node:crypto';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  READINGS_SUBSCRIPTION,
  STATUS_SUBSCRIPTION,
  createMeterRegistry,
  parseMeterTopic,
  validateReadingPayload,
  validateStatusPayload,
} from '@flowpilot/schema';
import type { MeterRegistry, MeterStatus, PilotConfig, Reading } from '@flowpilot/schema';

/** What the API knows about one meter from the broker since it started. */
export interface MeterLiveState {
  /** The newest reading (by `tsMs`) seen since start. */
  lastReading?: Reading;
  /** When `lastReading` arrived, epoch ms. */
  lastReadingReceivedAtMs?: number;
  /** When the API last received a reading of this meter, epoch ms (its "last seen"). */
  lastSeenMs?: number;
  /** The last status message; retained, so the broker hands it over at subscription. */
  status?: MeterStatus;
  /** When `status` arrived, epoch ms (a last will carries no `ts`: its `tsMs` is this too). */
  statusReceivedAtMs?: number;
}

export type ReadingListener = (reading: Reading, receivedAtMs: number) => void;

/**
 * The live side of the API: what meters publish right now. An interface so that `createApi`
 * does not depend on MQTT (tests hand it an in-memory feed).
 */
export interface LiveFeed {
  /** Is the feed connected to the broker? (readiness, SPEC section 5) */
  connected(): boolean;
  state(meterId: string): MeterLiveState | undefined;
  /** Calls `listener` for each reading as it arrives; returns the function that removes it. */
  onReading(listener: ReadingListener): () => void;
  /** How many listeners are attached (lets tests prove SSE clients do not leak). */
  listenerCount(): number;
  close(): Promise<void>;
}

export interface MqttLiveFeedOptions {
  mqttUrl: string;
  username?: string;
  password?: string;
  clientId?: string;
  pilot: PilotConfig;
  log?: Logger | false;
  /** Epoch ms now; injected so tests control time (STYLE habit 7). */
  clock?: () => number;
  /** Readings older than this are ignored (the broker dead-letters them anyway). */
  retentionMs?: number;
  maxPayloadBytes?: number;
  reconnectPeriodMs?: number;
  /** For an `mqtts://` broker: the CA to trust and, where the broker asks for one, this service's client certificate. */
  tls?: MqttTlsOptions;
}

export interface MqttTlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export const DEFAULT_MQTT_LIVE_FEED_OPTIONS = {
  clock: (): number => Date.now(),
  retentionMs: 400 * 86_400_000,
  // A batch of 1000 readings (SPEC section 1) stays well under this.
  maxPayloadBytes: 1024 * 1024,
  reconnectPeriodMs: 1000,
} as const;

/**
 * Keeps per-meter state and fans readings out to listeners. Shared by the MQTT feed and the
 * in-memory feed of the tests, so both behave the same.
 */
export class LiveState {
  readonly #meters = new Map<string, MeterLiveState>();
  readonly #listeners = new Set<ReadingListener>();
  readonly #log: Logger | undefined;

  constructor(log?: Logger | false) {
    this.#log = log || undefined;
  }

  state(meterId: string): MeterLiveState | undefined {
    return this.#meters.get(meterId);
  }

  #entry(meterId: string): MeterLiveState {
    let entry = this.#meters.get(meterId);
    if (!entry) {
      entry = {};
      this.#meters.set(meterId, entry);
    }
    return entry;
  }

  recordReading(reading: Reading, receivedAtMs: number): void {
    const entry = this.#entry(reading.meterId);
    entry.lastSeenMs = receivedAtMs;
    // A store-and-forward backfill (SPEC section 1) delivers old readings after new ones:
    // the newest by measurement time stays the "last reading".
    if (!entry.lastReading || reading.tsMs >= entry.lastReading.tsMs) {
      entry.lastReading = reading;
      entry.lastReadingReceivedAtMs = receivedAtMs;
    }
    for (const listener of this.#listeners) {
      try {
        listener(reading, receivedAtMs);
      } catch (error) {
        this.#log?.error({ err: error }, 'a live reading listener failed');
      }
    }
  }

  recordStatus(status: MeterStatus, receivedAtMs: number): void {
    const entry = this.#entry(status.meterId);
    entry.status = status;
    entry.statusReceivedAtMs = receivedAtMs;
  }

  onReading(listener: ReadingListener): () => void {
    // Wrap so that the same function added twice is two subscriptions, each removed once.
    const wrapped: ReadingListener = (reading, receivedAtMs) => listener(reading, receivedAtMs);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  listenerCount(): number {
    return this.#listeners.size;
  }
}

/**
 * A live feed subscribed to the broker as a service client (SPEC section 1 topics). Readings
 * are validated like the broker does; a rejected one is skipped without a word because the
 * broker already dead-letters and counts it (SPEC section 6).
 */
export function createMqttLiveFeed(options: MqttLiveFeedOptions): LiveFeed {
  const defaults = DEFAULT_MQTT_LIVE_FEED_OPTIONS;
  const clock = options.clock ?? defaults.clock;
  const retentionMs = options.retentionMs ?? defaults.retentionMs;
  const maxPayloadBytes = options.maxPayloadBytes ?? defaults.maxPayloadBytes;
  const log = options.log || undefined;
  const registry = createMeterRegistry(options.pilot);
  const live = new LiveState(options.log);

  const client: MqttClient = connect(options.mqttUrl, {
    // Aedes speaks MQTT 3.1.1 (SPEC section 6).
    protocolVersion: 4,
    // Unique per feed: two clients with one id would keep kicking each other off [MQTT-3.1.4-2].
    clientId: options.clientId ?? `flowpilot-api-${randomUUID().slice(0, 8)}`,
    username: options.username,
    password: options.password,
    ...options.tls,
    // A live view needs no session: the retained status messages are re-sent on each subscription.
    clean: true,
    reconnectPeriod: options.reconnectPeriodMs ?? defaults.reconnectPeriodMs,
    connectTimeout: 10_000,
  });

  client.on('connect', () => {
    log?.info({ mqttUrl: options.mqttUrl }, 'live feed connected to the broker');
    // QoS 0 is enough for a live view: history comes from InfluxDB, not from this feed.
    client.subscribe([READINGS_SUBSCRIPTION, STATUS_SUBSCRIPTION], { qos: 0 }, (error) => {
      if (error) log?.error({ err: error }, 'live feed could not subscribe');
    });
  });
  client.on('offline', () => log?.warn('live feed lost the broker; reconnecting'));
  client.on('error', (error) => log?.warn({ err: error }, 'live feed MQTT error'));

  // Nothing a client publishes may stop a service (SPEC section 8): the handler never throws.
  client.on('message', createLiveMessageHandler({ registry, live, clock, retentionMs, maxPayloadBytes, log }));

  return {
    connected: () => client.connected,
    state: (meterId) => live.state(meterId),
    onReading: (listener) => live.onReading(listener),
    listenerCount: () => live.listenerCount(),
    close: async () => {
      await client.endAsync(true);
    },
  };
}

export interface LiveMessageContext {
  registry: MeterRegistry;
  live: LiveState;
  clock: () => number;
  retentionMs: number;
  maxPayloadBytes: number;
  log?: Logger | undefined;
}

/** Failures of the message handler are logged at most this often (a flood must not flood the log too). */
const HANDLER_FAILURE_LOG_MS = 60_000;

/**
 * The live feed's MQTT message handler: validates like the broker and records what passes.
 * It never throws, whatever the topic and payload: a failure is logged (at most once a minute,
 * with the count since) and the message skipped, so no message can stop the API (SPEC section 8).
 */
export function createLiveMessageHandler(context: LiveMessageContext): (topic: string, payload: Buffer) => void {
  const { registry, live, clock, retentionMs, maxPayloadBytes, log } = context;
  let failures = 0;
  let lastLoggedMs = -Infinity;
  const handle = (topic: string, payload: Buffer): void => {
    const parsed = parseMeterTopic(topic);
    if (!parsed) return;
    const nowMs = clock();
    if (parsed.kind === 'status') {
      const status = validateStatusPayload(parsed.meterId, payload, { nowMs, retentionMs, isRegistered: registry.has });
      if ('online' in status && registry.has(parsed.meterId)) live.recordStatus(status, nowMs);
      return;
    }
    const { readings } = validateReadingPayload(parsed.meterId, payload, {
      nowMs,
      isRegistered: registry.has,
      retentionMs,
      maxPayloadBytes,
    });
    for (const reading of readings) live.recordReading(reading, nowMs);
  };
  return (topic, payload) => {
    try {
      handle(topic, payload);
    } catch (error) {
      failures += 1;
      // The wall clock: the injected one may be what failed.
      const nowMs = Date.now();
      if (nowMs - lastLoggedMs >= HANDLER_FAILURE_LOG_MS) {
        lastLoggedMs = nowMs;
        log?.error({ err: error, topic: String(topic).slice(0, 200), failures }, 'the live feed skipped a message it could not handle');
        failures = 0;
      }
    }
  };
}

/** A live feed fed by hand: for tests, and for running the API without a broker. */
export interface MemoryLiveFeed extends LiveFeed {
  publishReading(reading: Reading, receivedAtMs?: number): void;
  publishStatus(status: MeterStatus): void;
  setConnected(connected: boolean): void;
}

export interface MemoryLiveFeedOptions {
  /** The pilot's meters: readings and statuses of any other meter are ignored, as the MQTT feed does. All meters when absent. */
  meterIds?: Iterable<string>;
}

export function createMemoryLiveFeed(clock: () => number = () => Date.now(), options: MemoryLiveFeedOptions = {}): MemoryLiveFeed {
  const live = new LiveState();
  const known = options.meterIds ? new Set(options.meterIds) : null;
  const accepts = (meterId: string) => !closed && (known === null || known.has(meterId));
  let isConnected = true;
  let closed = false;
  return {
    connected: () => isConnected,
    state: (meterId) => live.state(meterId),
    onReading: (listener) => live.onReading(listener),
    listenerCount: () => live.listenerCount(),
    close: async () => {
      // Like the MQTT feed: nothing is recorded or fanned out once closed.
      closed = true;
      isConnected = false;
    },
    publishReading: (reading, receivedAtMs = clock()) => {
      if (accepts(reading.meterId)) live.recordReading(reading, receivedAtMs);
    },
    publishStatus: (status) => {
      if (accepts(status.meterId)) live.recordStatus(status, clock());
    },
    setConnected: (connected) => {
      isConnected = connected && !closed;
    },
  };
}
