import { TIMED_OUT, withTimeout } from '@flowpilot/async';
import { isSimulated, MAX_BATCH_READINGS } from '@flowpilot/schema';
import type { PilotConfig, Reading } from '@flowpilot/schema';
import { formatConditions, placeConditions } from './conditions.ts';
import type { ConditionSpec } from './conditions.ts';
import type { LeakOptions } from './demand.ts';
import { createMeterModel, resolveModelOptions } from './meter-model.ts';
import type { ErrorModel, FaultOptions } from './meter-model.ts';
import { createMeterLink } from './mqtt-link.ts';
import type { MeterLink } from './mqtt-link.ts';
import { createMeterSchedule, createTimeline, planStart } from './schedule.ts';
import type { MeterSchedule, MeterStep, Timeline } from './schedule.ts';

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
 *
 * Conditions (conditions.ts, off unless asked for) are played from the simulator's creation
 * on: a silent meter sends nothing, an empty pipe reads 0 with its alarm, a leak adds flow on
 * its pipe, a low battery reports it; each over its window, in the history as in live readings.
 *
 * Three parts: schedule.ts decides what is due when (pure, time passed in), mqtt-link.ts is each
 * meter's connection, and this file runs the timers between them and shuts down. Every time it
 * reads comes from the injected clock.
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
  /** Conditions to play (conditions.ts), their times relative to the simulator's creation. */
  conditions?: readonly ConditionSpec[];
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

const NOOP_LOG: SimulatorLog = { info() {}, warn() {}, error() {} };

interface SimulatedMeter {
  meterId: string;
  schedule: MeterSchedule;
  link: MeterLink;
  timer: NodeJS.Timeout | null;
  pumping: Promise<void>;
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
  const conditions = options.conditions ?? [];
  const playable = new Set(pilot.meters.filter((m) => isSimulated(m) && (options.meters?.includes(m.id) ?? true)).map((m) => m.id));
  const unplayable = [...new Set(conditions.map((c) => c.meterId).filter((id) => !playable.has(id)))];
  if (unplayable.length > 0) problems.push(`conditions on meters it does not simulate: ${unplayable.join(', ')}`);
  if (problems.length > 0) throw new RangeError(`invalid simulator options: ${problems.join('; ')}`);

  const modelOptions = resolveModelOptions({
    seed,
    errorModel: options.errorModel,
    errorModelByMeter: options.errorModelByMeter,
    faults: options.faults,
    leak: options.leak ?? null,
    conditions: placeConditions(conditions, clock.now()),
  });
  const selected = pilot.meters.filter((m) => isSimulated(m) && (options.meters?.includes(m.id) ?? true));
  const meters: SimulatedMeter[] = selected.map((meter) => ({
    meterId: meter.id,
    schedule: createMeterSchedule(createMeterModel(meter, pilot, modelOptions), batchSize),
    link: createMeterLink({ meterId: meter.id, mqttUrl, username, password, ...(options.tls ? { tls: options.tls } : {}), maxInFlight, clock, log }),
    timer: null,
    pumping: Promise.resolve(),
  }));

  const stats: SimulatorStats = { published: 0, acked: 0, backfilled: 0 };
  let started = false;
  let stopping = false;
  let stopped: Promise<void> | null = null;
  /** An accelerated replay that has not yet said it caught up with the wall clock. */
  let catchUpPending = false;

  /** Simulated time now; says so once when an accelerated replay has caught up with the wall clock. */
  function simNowMs(line: Timeline): number {
    const nowMs = line.nowMs(clock.now());
    if (catchUpPending && line.caughtUp) {
      catchUpPending = false;
      log.info({ speed }, 'accelerated replay caught up with the wall clock; continuing in realtime');
    }
    return nowMs;
  }

  function sendReadings(meter: SimulatedMeter, readings: Reading[], asArray: boolean, backfill: boolean): Promise<void> {
    stats.published += readings.length;
    return meter.link.publishReadings(readings, asArray, () => {
      stats.acked += readings.length;
      if (backfill) stats.backfilled += readings.length;
      options.onAcked?.(meter.meterId, readings);
    });
  }

  function perform(meter: SimulatedMeter, step: MeterStep): Promise<void> {
    switch (step.kind) {
      case 'offline':
        log.info({ meterId: meter.meterId, at: new Date(step.tsMs).toISOString() }, 'meter went offline (simulated fault)');
        return meter.link.publishStatus(false, step.tsMs);
      case 'online':
        log.info({ meterId: meter.meterId, stored: step.stored }, 'meter back online; forwarding stored readings');
        return meter.link.publishStatus(true, step.tsMs);
      case 'readings':
        return sendReadings(meter, step.readings, step.asArray, false);
    }
  }

  async function backfill(meter: SimulatedMeter, fromMs: number, toMs: number): Promise<number> {
    let readings = 0;
    let arrays = 0;
    for (const batch of meter.schedule.backfill(fromMs, toMs)) {
      if (stopping) break;
      await sendReadings(meter, batch, true, true);
      readings += batch.length;
      arrays++;
      if (arrays % 20 === 0) log.info({ meterId: meter.meterId, readings, upTo: new Date(batch[batch.length - 1]!.tsMs).toISOString() }, 'backfill progress');
    }
    await meter.link.settled();
    return readings;
  }

  /** Sends every boundary due now, then sleeps until the next one. */
  async function pump(meter: SimulatedMeter, line: Timeline): Promise<void> {
    meter.timer = null;
    const nowMs = simNowMs(line);
    while (!stopping) {
      const steps = meter.schedule.takeDue(nowMs);
      if (steps === null) break;
      for (const step of steps) await perform(meter, step);
    }
    if (stopping) return;
    const delayMs = line.delayMs(meter.schedule.nextDueMs(), clock.now());
    meter.timer = setTimeout(() => startPump(meter, line), delayMs);
  }

  function startPump(meter: SimulatedMeter, line: Timeline): void {
    meter.pumping = pump(meter, line).catch((error: unknown) => log.error({ meterId: meter.meterId, err: (error as Error).message }, 'simulated meter failed'));
  }

  return {
    async start() {
      if (started) throw new Error('the simulator was already started');
      started = true;
      if (meters.length === 0) {
        log.warn('no meter in the pilot file says simulate: true; nothing to simulate (SPEC section 3)');
        return;
      }
      log.info({ meters: meters.length, url: mqttUrl, speed, backfillMs }, 'connecting simulated meters');
      if (conditions.length > 0) log.info({ play: formatConditions(conditions) }, 'playing conditions (from now; negative starts are in the history)');
      await Promise.all(meters.map((meter) => meter.link.connect()));
      const plan = planStart(speed, backfillMs, clock.now());
      const line = createTimeline(plan);
      catchUpPending = plan.mode === 'accelerated';
      if (plan.speedIgnored) log.warn({ speed }, 'speed has no effect without a backfill window: running in realtime');
      if (plan.mode === 'accelerated') {
        log.info({ from: new Date(plan.window.fromMs).toISOString(), speed }, 'replaying the backfill window at accelerated speed');
      }
      if (plan.mode === 'backfill') {
        const { fromMs, toMs } = plan.window;
        const startedMs = clock.now();
        log.info({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() }, 'backfill started');
        const counts = await Promise.all(meters.map((meter) => backfill(meter, fromMs, toMs)));
        log.info({ readings: counts.reduce((a, b) => a + b, 0), acked: stats.backfilled, ms: clock.now() - startedMs }, 'backfill done');
      }
      for (const meter of meters) meter.schedule.start(plan);
      if (stopping) return;
      for (const meter of meters) startPump(meter, line);
    },

    stop() {
      stopped ??= shutDown();
      return stopped;
    },

    stats: () => ({ ...stats }),

    meterIds: () => meters.map((meter) => meter.meterId),
  };

  async function shutDown(): Promise<void> {
    stopping = true;
    for (const meter of meters) if (meter.timer) clearTimeout(meter.timer);
    await withTimeout(Promise.all(meters.map((meter) => meter.pumping)), stopTimeoutMs);
    await Promise.all(
      meters.map(async (meter) => {
        const { link } = meter;
        if (!link.opened) return;
        let clean = link.connected;
        if (clean) {
          // A meter powered down on purpose forwards what it stored and says it is offline,
          // then disconnects cleanly, so the broker does not publish its will.
          const goodbye = (async () => {
            for (const step of meter.schedule.takeStored()) await perform(meter, step);
            await link.publishStatus(false, clock.now());
            await link.settled();
          })();
          clean = (await withTimeout(goodbye, stopTimeoutMs)) !== TIMED_OUT;
        }
        if (!clean) log.warn({ meterId: meter.meterId, inFlight: link.inFlight }, 'closing without every PUBACK');
        await link.close(!clean);
      }),
    );
    log.info({ ...stats }, 'simulated meters stopped');
  }
}
