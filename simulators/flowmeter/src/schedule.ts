import type { Reading } from '@flowpilot/schema';
import type { MeterModel } from './meter-model.ts';

/**
 * What the simulated meters send and when: the three modes (simulator.ts's module comment), the
 * backfill arrays and the faults' effect on the wire. Pure: no I/O and no clock; every answer
 * is computed from the time it is given, so it is unit-tested with hand-computed expectations.
 * The MQTT side (mqtt-link.ts) and the timers (simulator.ts) only carry out its steps.
 */

interface PlanBase {
  /** The wall-clock instant of the start (after the meters connected). */
  startMs: number;
  /** How many times faster than the wall clock simulated time runs until it catches up: 1 unless accelerated. */
  speed: number;
  /** speed > 1 was asked for without a backfill window, where it has no effect. */
  speedIgnored: boolean;
}

export type StartPlan =
  | (PlanBase & { mode: 'realtime'; window: null })
  /** The history [fromMs, toMs], both ends included: sent as arrays first (backfill), or replayed as live readings (accelerated). */
  | (PlanBase & { mode: 'backfill' | 'accelerated'; window: { fromMs: number; toMs: number } });

/** The mode for the options `speed` and `backfillMs`, at wall-clock instant `startMs`. */
export function planStart(speed: number, backfillMs: number, startMs: number): StartPlan {
  if (backfillMs <= 0) return { mode: 'realtime', startMs, window: null, speed: 1, speedIgnored: speed > 1 };
  const window = { fromMs: startMs - backfillMs, toMs: startMs };
  return speed > 1 ? { mode: 'accelerated', startMs, window, speed, speedIgnored: false } : { mode: 'backfill', startMs, window, speed: 1, speedIgnored: false };
}

/** Timers wake at least this often, so a clock that jumps is noticed. */
export const MAX_SLEEP_MS = 10_000;

/** Simulated time as a function of wall time. */
export interface Timeline {
  /**
   * Simulated time at wall time `wallMs`. An accelerated replay starts at the window's start
   * and runs `speed` times faster than the wall clock until it reaches it; from then on (and in
   * the other modes) simulated time is wall time.
   */
  nowMs(wallMs: number): number;
  /** Whether simulated time has reached the wall clock (from the start, outside a replay). It stays so once it has. */
  readonly caughtUp: boolean;
  /** Wall ms from `wallMs` until simulated time reaches `dueMs`, rounded up, within [1, maxSleepMs]. */
  delayMs(dueMs: number, wallMs: number): number;
}

export function createTimeline(plan: StartPlan, maxSleepMs = MAX_SLEEP_MS): Timeline {
  const simStartMs = plan.window?.fromMs ?? plan.startMs;
  let caughtUp = plan.mode !== 'accelerated';
  const nowMs = (wallMs: number): number => {
    if (caughtUp) return wallMs;
    const simMs = simStartMs + (wallMs - plan.startMs) * plan.speed;
    if (simMs < wallMs) return simMs;
    caughtUp = true;
    return wallMs;
  };
  return {
    nowMs,
    get caughtUp() {
      return caughtUp;
    },
    delayMs(dueMs, wallMs) {
      const simMs = nowMs(wallMs);
      const ms = caughtUp ? dueMs - wallMs : (dueMs - simMs) / plan.speed;
      return Math.min(maxSleepMs, Math.max(1, Math.ceil(ms)));
    },
  };
}

/** One thing a meter sends, in order. */
export type MeterStep =
  /**
   * The meter went offline (a simulated fault): its connection stays up, and it publishes the
   * retained `{"online": false}` the broker would publish from its will once the keepalive lapsed.
   */
  | { kind: 'offline'; tsMs: number }
  /** The meter is back: its online status; the `stored` readings it kept follow as arrays. */
  | { kind: 'online'; tsMs: number; stored: number }
  /** One publish of readings: a single reading as an object, or an array (SPEC section 1). */
  | { kind: 'readings'; readings: Reading[]; asArray: boolean };

/** What the schedule asks of a meter's model. */
export type ScheduledModel = Pick<MeterModel, 'indexAtOrAfter' | 'indexAtOrBefore' | 'timestampOf' | 'reading' | 'isDropped' | 'isDuplicated' | 'isOffline'>;

/** One meter's schedule: the boundaries it has sent up to, and the readings it keeps while offline. */
export interface MeterSchedule {
  /**
   * Places the first live boundary for `plan`: the window's first boundary when accelerated (the
   * replay sends the history as live readings), else the first boundary after the start (a
   * backfill covered the window up to it).
   */
  start(plan: StartPlan): void;
  /**
   * The history [fromMs, toMs] (both ends included) as arrays of at most batchSize readings,
   * oldest first, each built when it is taken: dropped readings are left out, duplicated ones
   * appear twice. Offline stretches do not apply: the history is what the meter stored.
   */
  backfill(fromMs: number, toMs: number): Iterable<Reading[]>;
  /** The simulated instant the next boundary falls due. */
  nextDueMs(): number;
  /**
   * The steps of the next boundary when it is due at simulated time `nowMs`, and moves past it;
   * null when it is not due yet. One boundary at a time, so a stop between two loses nothing.
   */
  takeDue(nowMs: number): MeterStep[] | null;
  /** The readings kept during an offline stretch as arrays, emptying the store (a meter powered down on purpose forwards them). */
  takeStored(): MeterStep[];
}

export function createMeterSchedule(model: ScheduledModel, batchSize: number): MeterSchedule {
  let nextK = 0;
  /** Readings kept during an offline stretch, forwarded when the meter returns. */
  let stored: Reading[] = [];

  /** Store-and-forward: stored readings as arrays of up to batchSize (SPEC section 1). */
  function takeStored(): MeterStep[] {
    const steps: MeterStep[] = [];
    for (let i = 0; i < stored.length; i += batchSize) steps.push({ kind: 'readings', readings: stored.slice(i, i + batchSize), asArray: true });
    stored = [];
    return steps;
  }

  /** What the meter sends at boundary k, according to its faults. */
  function stepsAt(k: number): MeterStep[] {
    const steps: MeterStep[] = [];
    const offline = model.isOffline(k);
    const wasOffline = model.isOffline(k - 1);
    if (offline && !wasOffline && stored.length === 0) steps.push({ kind: 'offline', tsMs: model.timestampOf(k) });
    if (!offline && wasOffline) steps.push({ kind: 'online', tsMs: model.timestampOf(k), stored: stored.length }, ...takeStored());
    if (model.isDropped(k)) return steps;
    const reading = model.reading(k);
    if (offline) {
      stored.push(reading);
      return steps;
    }
    steps.push({ kind: 'readings', readings: [reading], asArray: false });
    if (model.isDuplicated(k)) steps.push({ kind: 'readings', readings: [reading], asArray: false });
    return steps;
  }

  return {
    start(plan) {
      nextK = plan.mode === 'accelerated' ? model.indexAtOrAfter(plan.window.fromMs) : model.indexAtOrBefore(plan.startMs) + 1;
    },

    *backfill(fromMs, toMs) {
      let batch: Reading[] = [];
      for (let k = model.indexAtOrAfter(fromMs); model.timestampOf(k) <= toMs; k++) {
        if (model.isDropped(k)) continue;
        const reading = model.reading(k);
        for (let copies = model.isDuplicated(k) ? 2 : 1; copies > 0; copies--) {
          batch.push(reading);
          if (batch.length === batchSize) {
            yield batch;
            batch = [];
          }
        }
      }
      if (batch.length > 0) yield batch;
    },

    nextDueMs: () => model.timestampOf(nextK),

    takeDue(nowMs) {
      if (model.timestampOf(nextK) > nowMs) return null;
      return stepsAt(nextK++);
    },

    takeStored,
  };
}
