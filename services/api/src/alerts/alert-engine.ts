import { randomUUID } from 'node:crypto';
import type { PilotConfig } from '@flowpilot/schema';
import type { AlertFilter, AlertStore, StoredAlert } from './alert-store.ts';
import { evaluateRules, LIVE_RULES } from './rules.ts';
import type { AlertFacts, Condition, EvaluateOptions } from './rules.ts';
import type { Alert, AlertRule, AlertSink, AlertTransition } from './types.ts';

/**
 * SPEC section 9's alerts over time: the rules (rules.ts) evaluated every `evaluateEveryMs` and
 * on each live reading, each (rule, meter) at most one alert at a time, kept in the AlertStore.
 *
 * - A condition that starts to hold opens an alert (`firing`, `since`) and sends one "fired".
 * - A condition that stops resolves it at once in the store and the API (`resolved`, `until`).
 *   Its "resolved" notification is held back until it stayed resolved for `flapMinutes`.
 * - A condition that returns within `flapMinutes` of the resolution REOPENS the same alert (same
 *   id, `until` cleared) without a second "fired", and the held-back "resolved" is never sent.
 *   So an alert that flaps is one alert, one "fired" and one "resolved": never a storm.
 * - A restart loads the alerts still tracked (firing, or resolved with the "resolved" held back)
 *   and continues them: no second "fired" for an alert that was already firing.
 * - An unknown fact (rules.ts) changes nothing.
 */

export interface AlertFactsSource {
  /** Brings the facts that need I/O up to date, each at its own pace; never rejects. */
  refresh(nowMs: number): Promise<void>;
  /** The facts as known now, without I/O. */
  snapshot(nowMs: number): AlertFacts;
  /** Calls `listener` with the meter of each live reading; returns the function that removes it. */
  onReading(listener: (meterId: string) => void): () => void;
}

/** The timers the engine schedules its evaluation with (STYLE habit 7: tests pass fake ones). */
export interface AlertTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** What the engine logs: pino's or Fastify's logger fits. */
export interface AlertLog {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface AlertEngineOptions {
  pilot: PilotConfig;
  store: AlertStore;
  /** Told of every "fired" and "resolved" (the notifier, the log); each must not throw, and a throw is logged. */
  sinks?: readonly AlertSink[];
  /** Epoch ms now. */
  clock?: () => number;
  timers?: AlertTimers;
  facts: AlertFactsSource;
  /** How often the rules are evaluated, ms (also on each live reading). */
  evaluateEveryMs?: number;
  log?: AlertLog | false;
  /** The id of a new alert. */
  newId?: () => string;
}

export const DEFAULT_ALERT_ENGINE_OPTIONS = {
  evaluateEveryMs: 15_000,
  clock: (): number => Date.now(),
  timers: {
    setInterval: (callback: () => void, ms: number): unknown => {
      const handle = setInterval(callback, ms);
      // Alerts never keep a process alive on their own.
      handle.unref();
      return handle;
    },
    clearInterval: (handle: unknown): void => clearInterval(handle as NodeJS.Timeout),
  } satisfies AlertTimers,
  newId: (): string => randomUUID(),
} as const;

export interface AlertEngine {
  /** Loads the alerts still tracked, subscribes to live readings, schedules the evaluation; resolves after the first one. */
  start(): Promise<void>;
  /** One scheduled round: refresh the facts, evaluate every rule. Never rejects; a round already running is not started twice. */
  tick(): Promise<void>;
  /** Evaluates the rules (all, or some) from the facts as known now, without I/O. */
  evaluate(options?: EvaluateOptions): void;
  /** Alerts in the store, newest first. */
  list(filter: AlertFilter): Alert[];
  /** The alerts firing now. */
  firing(): Alert[];
  /** Stops evaluating (the store stays open: its owner closes it). */
  stop(): Promise<void>;
}

const keyOf = (rule: AlertRule, meterId: string | null): string => `${rule}\u0000${meterId ?? ''}`;

const publicAlert = ({ resolveNotified: _resolveNotified, ...alert }: StoredAlert): Alert => ({ ...alert, details: { ...alert.details } });

export function createAlertEngine(options: AlertEngineOptions): AlertEngine {
  const defaults = DEFAULT_ALERT_ENGINE_OPTIONS;
  const { pilot, store, facts } = options;
  const sinks = options.sinks ?? [];
  const clock = options.clock ?? defaults.clock;
  const timers = options.timers ?? defaults.timers;
  const evaluateEveryMs = options.evaluateEveryMs ?? defaults.evaluateEveryMs;
  const newId = options.newId ?? defaults.newId;
  const log = options.log || undefined;
  const flapMs = pilot.alerts.flapMinutes * 60_000;
  if (!(Number.isInteger(evaluateEveryMs) && evaluateEveryMs > 0)) throw new Error(`evaluateEveryMs must be a positive whole number of ms; got ${String(evaluateEveryMs)}`);

  /** The latest alert of each (rule, meter) that may still change: firing, or resolved with its "resolved" held back. */
  const tracked = new Map<string, StoredAlert>();
  /** Alerts whose last save failed (a full disk, a locked file): saved again on the next round. */
  const unsaved = new Map<string, StoredAlert>();
  let interval: unknown = null;
  let unsubscribe: (() => void) | null = null;
  let running: Promise<void> | null = null;
  let stopped = false;

  function save(alert: StoredAlert): void {
    try {
      store.save(alert);
      unsaved.delete(alert.id);
    } catch (error) {
      unsaved.set(alert.id, alert);
      log?.error({ err: error, alertId: alert.id }, 'could not save an alert; trying again on the next evaluation');
    }
  }

  function notify(kind: AlertTransition['kind'], alert: StoredAlert): void {
    const transition: AlertTransition = { kind, alert: publicAlert(alert) };
    if (kind === 'fired') log?.warn({ alert: transition.alert }, `alert fired: ${alert.message}`);
    else log?.info({ alert: transition.alert }, `alert resolved: ${alert.rule}${alert.meterId ? ` on ${alert.meterId}` : ''}`);
    for (const sink of sinks) {
      try {
        sink.notify(transition);
      } catch (error) {
        log?.error({ err: error, alertId: alert.id }, 'an alert sink threw; it must not');
      }
    }
  }

  function open(rule: AlertRule, meterId: string | null, condition: Extract<Condition, { state: 'firing' }>, nowMs: number): void {
    const alert: StoredAlert = {
      id: newId(),
      rule,
      meterId,
      state: 'firing',
      // From when the condition holds, when the rule knows it (stale: N intervals after the last reading).
      since: new Date(Math.min(nowMs, condition.sinceMs ?? nowMs)).toISOString(),
      until: null,
      message: condition.message,
      details: { ...condition.details },
      resolveNotified: false,
    };
    tracked.set(keyOf(rule, meterId), alert);
    save(alert);
    notify('fired', alert);
  }

  function resolve(alert: StoredAlert, nowMs: number): void {
    alert.state = 'resolved';
    alert.until = new Date(nowMs).toISOString();
    alert.resolveNotified = false;
    save(alert);
  }

  /** Sends the "resolved" of alerts that stayed resolved for flapMinutes, and stops tracking them. */
  function flushResolved(nowMs: number): void {
    for (const [key, alert] of tracked) {
      if (alert.state !== 'resolved' || alert.until === null) continue;
      if (nowMs - Date.parse(alert.until) < flapMs) continue;
      alert.resolveNotified = true;
      save(alert);
      tracked.delete(key);
      notify('resolved', alert);
    }
  }

  function apply(rule: AlertRule, meterId: string | null, condition: Condition, nowMs: number): void {
    if (condition.state === 'unknown') return;
    const key = keyOf(rule, meterId);
    const current = tracked.get(key);
    if (condition.state === 'ok') {
      if (current?.state === 'firing') resolve(current, nowMs);
      return;
    }
    if (!current) return open(rule, meterId, condition, nowMs);
    if (current.state === 'resolved') {
      if (current.until !== null && nowMs - Date.parse(current.until) < flapMs) {
        // A flap: the same alert again, with no second "fired"; its held-back "resolved" is dropped.
        current.state = 'firing';
        current.until = null;
        current.message = condition.message;
        current.details = { ...condition.details };
        save(current);
        return;
      }
      // Resolved for flapMinutes already: its "resolved" goes out first, then a new alert.
      flushResolved(nowMs);
      return open(rule, meterId, condition, nowMs);
    }
    // Still firing: keep what the rule says now (the alarm raised, the count), without a notification.
    if (current.message !== condition.message || JSON.stringify(current.details) !== JSON.stringify(condition.details)) {
      current.message = condition.message;
      current.details = { ...condition.details };
      save(current);
    }
  }

  function evaluate(evaluateOptions: EvaluateOptions = {}): void {
    if (stopped) return;
    const nowMs = clock();
    try {
      const snapshot = facts.snapshot(nowMs);
      for (const outcome of evaluateRules(pilot, snapshot, evaluateOptions)) apply(outcome.rule, outcome.meterId, outcome.condition, nowMs);
      flushResolved(nowMs);
    } catch (error) {
      log?.error({ err: error }, 'alert evaluation failed; trying again on the next round');
    }
  }

  async function round(): Promise<void> {
    for (const alert of [...unsaved.values()]) save(alert);
    try {
      await facts.refresh(clock());
    } catch (error) {
      log?.error({ err: error }, 'alert facts could not be refreshed');
    }
    evaluate();
  }

  function load(): void {
    const nowMs = clock();
    const meterIds = new Set(pilot.meters.map((m) => m.id));
    // Oldest first: where a (rule, meter) has two (a crash between two saves), the newest wins.
    for (const alert of store.active().sort((a, b) => Date.parse(a.since) - Date.parse(b.since))) {
      const key = keyOf(alert.rule, alert.meterId);
      const older = tracked.get(key);
      if (older) {
        older.state = 'resolved';
        older.until ??= alert.since;
        older.resolveNotified = true;
        save(older);
      }
      tracked.set(key, alert);
      // A meter no longer in the pilot file: no rule will look at it again.
      if (alert.meterId !== null && !meterIds.has(alert.meterId) && alert.state === 'firing') resolve(alert, nowMs);
    }
  }

  function tick(): Promise<void> {
    if (stopped) return Promise.resolve();
    running ??= round().finally(() => {
      running = null;
    });
    return running;
  }

  return {
    async start() {
      if (interval !== null || stopped) return;
      load();
      unsubscribe = facts.onReading((meterId) => evaluate({ meterId, rules: LIVE_RULES }));
      interval = timers.setInterval(() => void tick(), evaluateEveryMs);
      await tick();
    },

    tick,

    evaluate,

    list: (filter) => store.list(filter),

    firing: () => [...tracked.values()].filter((a) => a.state === 'firing').map(publicAlert),

    async stop() {
      stopped = true;
      if (interval !== null) timers.clearInterval(interval);
      unsubscribe?.();
      await running;
    },
  };
}
