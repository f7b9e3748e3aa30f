import { endpointKey, ModbusReadError, type DeviceFailureKind, type ModbusClientFactory, type ModbusEndpoint } from './modbus-link.ts';
import type { MqttConnect, MqttLinkClient, MqttLinkOptions } from './publisher.ts';
import type { ReadRequest } from './registers.ts';
import type { Timers } from './time.ts';

/**
 * Fakes for the gateway's unit tests (STYLE habit 9: each test owns its world): Modbus devices
 * whose registers and failures a test sets, and MQTT connections whose CONNACKs and PUBACKs it
 * gives by hand. Not exported from index.ts.
 */

export interface FakeRead {
  endpoint: string;
  unitId: number;
  request: ReadRequest;
  startedAtMs: number;
  endedAtMs: number | null;
  outcome: 'ok' | DeviceFailureKind | 'pending';
}

export interface FakeModbus {
  factory: ModbusClientFactory;
  reads: FakeRead[];
  /** Sets registers of a unit behind an endpoint key (`tcp host:port`, `rtu /dev/…`). */
  setWords(endpoint: string, unitId: number, table: 'holding' | 'input', address: number, words: readonly number[]): void;
  /** The next reads of this unit fail with these kinds, one per read ('timeout' never answers). */
  failNext(endpoint: string, unitId: number, ...kinds: DeviceFailureKind[]): void;
  /** Every read of this unit fails with `kind` until cleared with null. */
  failAlways(endpoint: string, unitId: number, kind: DeviceFailureKind | null): void;
  closed: string[];
  abandoned: string[];
}

/** A fake bus: each read answers after `latencyMs` on `timers`, from registers a test set. */
export function createFakeModbus(options: { timers: Timers; clock: { now(): number }; latencyMs?: number }): FakeModbus {
  const latencyMs = options.latencyMs ?? 10;
  const registers = new Map<string, number>();
  const queued = new Map<string, DeviceFailureKind[]>();
  const always = new Map<string, DeviceFailureKind>();
  const reads: FakeRead[] = [];
  const closed: string[] = [];
  const abandoned: string[] = [];
  const unitKey = (endpoint: string, unitId: number) => `${endpoint}#${unitId}`;
  const registerKey = (endpoint: string, unitId: number, table: string, address: number) => `${endpoint}#${unitId}#${table}#${address}`;

  const factory: ModbusClientFactory = (endpoint: ModbusEndpoint) => {
    const name = endpointKey(endpoint);
    return {
      name,
      read(unitId, request) {
        const read: FakeRead = { endpoint: name, unitId, request, startedAtMs: options.clock.now(), endedAtMs: null, outcome: 'pending' };
        reads.push(read);
        const key = unitKey(name, unitId);
        const failure = queued.get(key)?.shift() ?? always.get(key) ?? null;
        if (failure === 'timeout') return new Promise<number[]>(() => {});
        return new Promise<number[]>((resolve, reject) => {
          options.timers.setTimeout(() => {
            read.endedAtMs = options.clock.now();
            if (failure) {
              read.outcome = failure;
              reject(new ModbusReadError(failure, `fake ${failure} from ${name} unit ${unitId}`));
              return;
            }
            read.outcome = 'ok';
            resolve(Array.from({ length: request.count }, (_, i) => registers.get(registerKey(name, unitId, request.table, request.address + i)) ?? 0));
          }, latencyMs);
        });
      },
      abandon() {
        abandoned.push(name);
      },
      async close() {
        closed.push(name);
      },
    };
  };

  return {
    factory,
    reads,
    closed,
    abandoned,
    setWords(endpoint, unitId, table, address, words) {
      words.forEach((word, i) => registers.set(registerKey(endpoint, unitId, table, address + i), word));
    },
    failNext(endpoint, unitId, ...kinds) {
      const key = unitKey(endpoint, unitId);
      queued.set(key, [...(queued.get(key) ?? []), ...kinds]);
    },
    failAlways(endpoint, unitId, kind) {
      if (kind === null) always.delete(unitKey(endpoint, unitId));
      else always.set(unitKey(endpoint, unitId), kind);
    },
  };
}

export interface FakePublish {
  topic: string;
  payload: string;
  retain: boolean;
  /** Gives the PUBACK (no argument) or fails the publish. */
  settle(error?: Error): void;
  settled: boolean;
}

export interface FakeMqttClient extends MqttLinkClient {
  readonly url: string;
  readonly options: MqttLinkOptions;
  readonly publishes: FakePublish[];
  /** Publishes not yet settled. */
  unacked(): FakePublish[];
  /** The broker accepts the connection: 'connect'. */
  accept(): void;
  /** The connection drops: 'offline' (unsettled publishes stay, as in MQTT.js's store). */
  drop(): void;
  ended: { force: boolean } | null;
}

export interface FakeMqtt {
  connect: MqttConnect;
  clients: FakeMqttClient[];
  client(meterId: string): FakeMqttClient;
  /** Every PUBLISH on a topic, in order, across clients. */
  published(topic: string): FakePublish[];
}

/**
 * Fake MQTT connections. With `autoAck`, the broker is reachable: each client connects at once
 * and every publish gets its PUBACK in the next microtask; without, the test accepts and acks.
 */
export function createFakeMqtt(options: { autoAck: boolean }): FakeMqtt {
  const clients: FakeMqttClient[] = [];
  const all: FakePublish[] = [];
  const connect: MqttConnect = (url, linkOptions) => {
    const listeners = new Map<string, ((arg?: unknown) => void)[]>();
    const emit = (event: string, arg?: unknown) => {
      for (const listener of listeners.get(event) ?? []) listener(arg);
    };
    let connected = false;
    const publishes: FakePublish[] = [];
    const client: FakeMqttClient = {
      url,
      options: linkOptions,
      publishes,
      ended: null,
      get connected() {
        return connected;
      },
      publish(topic, payload, publishOptions, callback) {
        const publish: FakePublish = {
          topic,
          payload,
          retain: publishOptions.retain,
          settled: false,
          settle(error) {
            if (publish.settled) return;
            publish.settled = true;
            callback(error);
          },
        };
        publishes.push(publish);
        all.push(publish);
        if (options.autoAck && connected) queueMicrotask(() => publish.settle());
      },
      on(event: 'connect' | 'close' | 'offline' | 'error', listener: (error: Error) => void) {
        listeners.set(event, [...(listeners.get(event) ?? []), listener as (arg?: unknown) => void]);
      },
      end(force, callback) {
        client.ended = { force };
        connected = false;
        for (const publish of publishes) if (!publish.settled) publish.settle(new Error('client disconnecting'));
        callback();
      },
      unacked: () => publishes.filter((p) => !p.settled),
      accept() {
        connected = true;
        emit('connect');
        if (options.autoAck) for (const publish of publishes) if (!publish.settled) queueMicrotask(() => publish.settle());
      },
      drop() {
        connected = false;
        emit('offline');
      },
    };
    clients.push(client);
    if (options.autoAck) queueMicrotask(() => client.accept());
    return client;
  };
  return {
    connect,
    clients,
    client(meterId) {
      const found = clients.find((c) => c.options.clientId.endsWith(`:${meterId}`));
      if (!found) throw new Error(`no MQTT client for ${meterId}`);
      return found;
    },
    published: (topic) => all.filter((p) => p.topic === topic),
  };
}

/** A log that keeps its lines, for tests that check what the operator is told. */
export function createRecordingLog(): { lines: { level: string; msg: string; obj: object }[]; debug(obj: object, msg: string): void; info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void } {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, msg, obj });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
