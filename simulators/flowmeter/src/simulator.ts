import { isSimulated, MAX_BATCH_READINGS, readingsTopic, statusTopic, toWireReading } from '@flowpilot/schema';
import type { PilotConfig, Reading } from '@flowpilot/schema';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import type { LeakOptions } from './demand.ts';
import { createMeterModel, resolveModelOptions } from './meter-model.ts';
import type { ErrorModel, FaultOptions, MeterModel } from './meter-model.ts';

/**
 * The simulated meters on the wire: one MQTT.js client per meter, publishing the readings of
 * the pure model (meter-model.ts) as SPEC section 1 describes. Only the meters whose pilot entry
 * says `simulate: true` are simulated (SPEC section 3): a real meter's series never gets invented
 * readings because its pilot file was handed to the simulator.
 *
 * Modes, all of which only ever publish timestamps ≤ now (the broker rejects readings more
 * than 5 minutes in the future, SPEC section 1):
 * - realtime (`speed` 1, the default): one reading per meter at each interval boundary, as
 *   soon as the boundary has passed.
 * - backfill (`backfillMs` > 0, `speed` 1): first the history [now − backfillMs, now] as JSON
 *   arrays of up to 1000 readings, the store-and-forward backfill of SPEC section 1, with a
 *   bounded number of unacknowledged publishes per meter; `start()` resolves once every
 *   array is acknowledged. Then realtime, starting with whatever fell due meanwhile.
 * - accelerated (`speed` N > 1, needs `backfillMs` > 0): the backfill window is replayed as
 *   single readings, as a live meter would have sent them, with a simulated clock that starts
 *   at now − backfillMs and runs N times faster than the wall clock. When it catches up with
 *   the wall clock (after backfillMs / (N − 1) of wall time) it runs at wall speed: realtime.
 *
 * Faults (seeded, off unless asked for): a dropped reading is never sent; a duplicated one is
 * sent twice; during an offline stretch a meter keeps its readings and, when it returns,
 * forwards them as arrays before its next live reading. A meter's connection stays up during
 * a stretch: the simulator publishes the retained `{"online": false}` the broker would publish
 * from the last will once the keepalive lapsed, and `{"online": true}` on return.
 */

export interface SimulatorLog {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface SimulatorOptions {
  pilot: PilotConfig;
  mqttUrl: string;
  /** A service login allowed to publish for any meter; client ids are `${username}:${meterId}`. */
  username: string;
  password: string;
  /** For an `mqtts://` broker: the CA to trust and, where the broker asks for one, the service's client certificate. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  seed?: number;
  /** 1 = realtime; N > 1 replays the backfill window N times faster (see the module comment). */
  speed?: number;
  /** History to send first, ms; 0 = none. */
  backfillMs?: number;
  /** A subset of the pilot's meters with `simulate: true`; all of those when absent. */
  meters?: string[];
  faults?: Partial<FaultOptions>;
  errorModel?: Partial<ErrorModel>;
  errorModelByMeter?: Record<string, Partial<ErrorModel>>;
  leak?: LeakOptions | null;
  /** Readings per backfill array, ≤ 1000 (SPEC section 1). */
  batchSize?: number;
  /** Unacknowledged publishes per meter before the next waits for a PUBACK. */
  maxInFlight?: number;
  /** How long stop() waits for outstanding PUBACKs before it closes anyway. */
  stopTimeoutMs?: number;
  clock?: { now(): number };
  log?: SimulatorLog;
  /** Called with the readings of each publish the broker acknowledged (SPEC section 6: accepted). */
  onAcked?: (meterId: string, readings: readonly Reading[]) => void;
}

export interface SimulatorStats {
  /** Readings handed to MQTT (a duplicate counts twice). */
  published: number;
  /** Readings whose publish got its PUBACK. */
  acked: number;
  /** Acknowledged readings that were sent in the initial backfill arrays. */
  backfilled: number;
}

export interface Simulator {
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): SimulatorStats;
  /** The ids of the meters it simulates, in pilot file order; empty when no meter says `simulate: true`. */
  meterIds(): readonly string[];
}

export const DEFAULT_SIMULATOR_OPTIONS = Object.freeze({
  seed: 1,
  speed: 1,
  backfillMs: 0,
  batchSize: MAX_BATCH_READINGS,
  maxInFlight: 8,
  stopTimeoutMs: 10_000,
});

export const FIRMWARE = 'sim-1.0';

/** Realtime timers wake at least this often, so a clock that jumps is noticed. */
const MAX_SLEEP_MS = 10_000;

const NOOP_LOG: SimulatorLog = { info() {}, warn() {}, error() {} };

interface MeterRunner {
  model: MeterModel;
  meterId: string;
  readingsTopic: string;
  statusTopic: string;
  client: MqttClient | null;
  nextK: number;
  /** Readings kept during an offline stretch, forwarded when the meter returns. */
  stored: Reading[];
  timer: NodeJS.Timeout | null;
  pumping: Promise<void>;
  inFlight: number;
  slotWaiters: (() => void)[];
  pending: Set<Promise<void>>;
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([promise.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

export function createSimulator(options: SimulatorOptions): Simulator {
  const { pilot, mqttUrl, username, password } = options;
  const seed = options.seed ?? DEFAULT_SIMULATOR_OPTIONS.seed;
  const speed = options.speed ?? DEFAULT_SIMULATOR_OPTIONS.speed;
  const backfillMs = options.backfillMs ?? DEFAULT_SIMULATOR_OPTIONS.backfillMs;
  const batchSize = options.batchSize ?? DEFAULT_SIMULATOR_OPTIONS.batchSize;
  const maxInFlight = options.maxInFlight ?? DEFAULT_SIMULATOR_OPTIONS.maxInFlight;
  const stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_SIMULATOR_OPTIONS.stopTimeoutMs;
  const clock = options.clock ?? { now: () => Date.now() };
  const log = options.log ?? NOOP_LOG;

  const problems: string[] = [];
  if (!(speed >= 1 && Number.isFinite(speed))) problems.push(`speed must be a number ≥ 1, got ${speed}`);
  if (!(backfillMs >= 0 && Number.isFinite(backfillMs))) problems.push(`backfillMs must be ≥ 0, got ${backfillMs}`);
  if (!(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= MAX_BATCH_READINGS)) problems.push(`batchSize must be 1…${MAX_BATCH_READINGS}, got ${batchSize}`);
  if (!(Number.isInteger(maxInFlight) && maxInFlight >= 1)) problems.push(`maxInFlight must be a whole number ≥ 1, got ${maxInFlight}`);
  const unknown = (options.meters ?? []).filter((id) => !pilot.meters.some((m) => m.id === id));
  if (unknown.length > 0) problems.push(`meters not in the pilot file: ${unknown.join(', ')}`);
  const real = (options.meters ?? []).filter((id) => pilot.meters.some((m) => m.id === id && !isSimulated(m)));
  if (real.length > 0) problems.push(`meters without simulate: true in the pilot file (SPEC section 3): ${real.join(', ')}`);
  if (problems.length > 0) throw new RangeError(`invalid simulator options: ${problems.join('; ')}`);

  const modelOptions = resolveModelOptions({
    seed,
    errorModel: options.errorModel,
    errorModelByMeter: options.errorModelByMeter,
    faults: options.faults,
    leak: options.leak ?? null,
  });
  const selected = pilot.meters.filter((m) => isSimulated(m) && (options.meters?.includes(m.id) ?? true));
  const runners: MeterRunner[] = selected.map((meter) => ({
    model: createMeterModel(meter, pilot, modelOptions),
    meterId: meter.id,
    readingsTopic: readingsTopic(meter.id),
    statusTopic: statusTopic(meter.id),
    client: null,
    nextK: 0,
    stored: [],
    timer: null,
    pumping: Promise.resolve(),
    inFlight: 0,
    slotWaiters: [],
    pending: new Set(),
  }));

  const stats: SimulatorStats = { published: 0, acked: 0, backfilled: 0 };
  let started = false;
  let stopping = false;
  let stopped: Promise<void> | null = null;
  /** The accelerated replay's clock, while it is behind the wall clock. */
  let replay: { simStartMs: number; wallStartMs: number } | null = null;

  function simNowMs(): number {
    const wallMs = clock.now();
    if (replay === null) return wallMs;
    const simMs = replay.simStartMs + (wallMs - replay.wallStartMs) * speed;
    if (simMs < wallMs) return simMs;
    replay = null;
    log.info({ speed }, 'accelerated replay caught up with the wall clock; continuing in realtime');
    return wallMs;
  }

  /** Publishes at QoS 1 once a slot is free; resolves when the publish is handed over, not acked. */
  async function publish(runner: MeterRunner, topic: string, payload: string, retain: boolean, onAck: () => void): Promise<void> {
    const client = runner.client;
    if (!client) throw new Error(`meter ${runner.meterId} is not connected`);
    while (runner.inFlight >= maxInFlight) await new Promise<void>((resolve) => runner.slotWaiters.push(resolve));
    runner.inFlight++;
    const done = new Promise<void>((resolve) => {
      client.publish(topic, payload, { qos: 1, retain }, (error) => {
        runner.inFlight--;
        runner.slotWaiters.shift()?.();
        if (error) log.warn({ meterId: runner.meterId, topic, err: error.message }, 'publish failed');
        else onAck();
        resolve();
      });
    });
    runner.pending.add(done);
    void done.then(() => runner.pending.delete(done));
  }

  function sendReadings(runner: MeterRunner, readings: Reading[], asArray: boolean, backfill: boolean): Promise<void> {
    const first = readings[0];
    const payload = JSON.stringify(asArray || first === undefined ? readings.map(toWireReading) : toWireReading(first));
    stats.published += readings.length;
    return publish(runner, runner.readingsTopic, payload, false, () => {
      stats.acked += readings.length;
      if (backfill) stats.backfilled += readings.length;
      options.onAcked?.(runner.meterId, readings);
    });
  }

  function sendStatus(runner: MeterRunner, online: boolean, tsMs: number): Promise<void> {
    const payload = JSON.stringify(online ? { online, ts: new Date(tsMs).toISOString(), firmware: FIRMWARE } : { online, ts: new Date(tsMs).toISOString() });
    return publish(runner, runner.statusTopic, payload, true, () => {});
  }

  /** Store-and-forward: stored readings as arrays of up to batchSize (SPEC section 1). */
  async function forwardStored(runner: MeterRunner): Promise<void> {
    const stored = runner.stored;
    runner.stored = [];
    for (let i = 0; i < stored.length; i += batchSize) await sendReadings(runner, stored.slice(i, i + batchSize), true, false);
  }

  function connectMeter(runner: MeterRunner): Promise<void> {
    const client = connect(mqttUrl, {
      clientId: `${username}:${runner.meterId}`,
      // Aedes speaks MQTT 3.1.1; a persistent session keeps unacknowledged QoS 1 publishes
      // across a reconnect, so the meter resends them (SPEC section 6).
      protocolVersion: 4,
      clean: false,
      username,
      password,
      ...options.tls,
      reconnectPeriod: 1000,
      will: { topic: runner.statusTopic, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
    });
    runner.client = client;
    client.on('error', (error) => log.warn({ meterId: runner.meterId, err: error.message }, 'MQTT connection error; retrying'));
    client.on('offline', () => log.warn({ meterId: runner.meterId }, 'MQTT connection lost; reconnecting'));
    return new Promise<void>((resolve) => {
      // stop() during start() must not leave start() waiting for a connection forever.
      client.once('end', resolve);
      client.on('connect', () => {
        // Every (re)connect announces the meter, overwriting the will's retained offline status.
        void sendStatus(runner, true, clock.now()).then(resolve);
      });
    });
  }

  async function backfill(runner: MeterRunner, fromMs: number, toMs: number): Promise<number> {
    const { model } = runner;
    let batch: Reading[] = [];
    let readings = 0;
    let arrays = 0;
    const add = async (reading: Reading): Promise<void> => {
      if (batch.length >= batchSize) {
        await sendReadings(runner, batch, true, true);
        batch = [];
        arrays++;
        if (arrays % 20 === 0) log.info({ meterId: runner.meterId, readings, upTo: new Date(reading.tsMs).toISOString() }, 'backfill progress');
      }
      batch.push(reading);
      readings++;
    };
    for (let k = model.indexAtOrAfter(fromMs); model.timestampOf(k) <= toMs; k++) {
      if (stopping) break;
      if (model.isDropped(k)) continue;
      const reading = model.reading(k);
      await add(reading);
      if (model.isDuplicated(k)) await add(reading);
    }
    if (batch.length > 0) await sendReadings(runner, batch, true, true);
    await Promise.all(runner.pending);
    return readings;
  }

  /** Sends what a meter produces at boundary k, according to its faults. */
  async function emit(runner: MeterRunner, k: number): Promise<void> {
    const { model } = runner;
    const offline = model.isOffline(k);
    if (offline && runner.stored.length === 0 && !model.isOffline(k - 1)) {
      log.info({ meterId: runner.meterId, at: new Date(model.timestampOf(k)).toISOString() }, 'meter went offline (simulated fault)');
      await sendStatus(runner, false, model.timestampOf(k));
    }
    if (!offline && model.isOffline(k - 1)) {
      log.info({ meterId: runner.meterId, stored: runner.stored.length }, 'meter back online; forwarding stored readings');
      await sendStatus(runner, true, model.timestampOf(k));
      await forwardStored(runner);
    }
    if (model.isDropped(k)) return;
    const reading = model.reading(k);
    if (offline) {
      runner.stored.push(reading);
      return;
    }
    await sendReadings(runner, [reading], false, false);
    if (model.isDuplicated(k)) await sendReadings(runner, [reading], false, false);
  }

  async function pump(runner: MeterRunner): Promise<void> {
    runner.timer = null;
    const nowMs = simNowMs();
    while (!stopping && runner.model.timestampOf(runner.nextK) <= nowMs) {
      const k = runner.nextK++;
      await emit(runner, k);
    }
    if (stopping) return;
    const dueMs = runner.model.timestampOf(runner.nextK);
    const sleepMs = replay !== null ? (dueMs - simNowMs()) / speed : dueMs - clock.now();
    runner.timer = setTimeout(
      () => {
        runner.pumping = pump(runner).catch((error: unknown) => log.error({ meterId: runner.meterId, err: (error as Error).message }, 'simulated meter failed'));
      },
      Math.min(MAX_SLEEP_MS, Math.max(1, Math.ceil(sleepMs))),
    );
  }

  return {
    async start() {
      if (started) throw new Error('the simulator was already started');
      started = true;
      if (runners.length === 0) {
        log.warn('no meter in the pilot file says simulate: true; nothing to simulate (SPEC section 3)');
        return;
      }
      log.info({ meters: runners.length, url: mqttUrl, speed, backfillMs }, 'connecting simulated meters');
      await Promise.all(runners.map(connectMeter));
      const nowMs = clock.now();

      if (backfillMs > 0 && speed > 1) {
        replay = { simStartMs: nowMs - backfillMs, wallStartMs: nowMs };
        for (const runner of runners) runner.nextK = runner.model.indexAtOrAfter(nowMs - backfillMs);
        log.info({ from: new Date(nowMs - backfillMs).toISOString(), speed }, 'replaying the backfill window at accelerated speed');
      } else {
        if (speed > 1) log.warn({ speed }, 'speed has no effect without a backfill window: running in realtime');
        if (backfillMs > 0) {
          const startedMs = Date.now();
          log.info({ from: new Date(nowMs - backfillMs).toISOString(), to: new Date(nowMs).toISOString() }, 'backfill started');
          const counts = await Promise.all(runners.map((runner) => backfill(runner, nowMs - backfillMs, nowMs)));
          log.info({ readings: counts.reduce((a, b) => a + b, 0), acked: stats.backfilled, ms: Date.now() - startedMs }, 'backfill done');
        }
        for (const runner of runners) runner.nextK = runner.model.indexAtOrBefore(nowMs) + 1;
      }
      if (stopping) return;
      for (const runner of runners) runner.pumping = pump(runner);
    },

    stop() {
      stopped ??= shutDown();
      return stopped;
    },

    stats: () => ({ ...stats }),

    meterIds: () => runners.map((runner) => runner.meterId),
  };

  async function shutDown(): Promise<void> {
    stopping = true;
    for (const runner of runners) if (runner.timer) clearTimeout(runner.timer);
    await withTimeout(Promise.all(runners.map((runner) => runner.pumping)), stopTimeoutMs);
    await Promise.all(
      runners.map(async (runner) => {
        const client = runner.client;
        if (!client) return;
        let clean = client.connected;
        if (clean) {
          // A meter powered down on purpose forwards what it stored and says it is offline,
          // then disconnects cleanly, so the broker does not publish its will.
          clean = await withTimeout(
            (async () => {
              await forwardStored(runner);
              await sendStatus(runner, false, clock.now());
              await Promise.all(runner.pending);
            })(),
            stopTimeoutMs,
          );
        }
        if (!clean) log.warn({ meterId: runner.meterId, inFlight: runner.inFlight }, 'closing without every PUBACK');
        await client.endAsync(!clean);
      }),
    );
    log.info({ ...stats }, 'simulated meters stopped');
  }
}
