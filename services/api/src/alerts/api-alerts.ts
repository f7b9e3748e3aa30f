import type { InfluxClient, ReadingsRepository } from '@flowpilot/influx';
import type { PilotConfig } from '@flowpilot/schema';
import type { LiveFeed } from '../live-feed.ts';
import type { MetricsService, RejectionsProvider } from '../metrics-service.ts';
import type { ReadinessCheck } from '../options.ts';
import { createAlertEngine } from './alert-engine.ts';
import type { AlertEngine, AlertLog, AlertTimers } from './alert-engine.ts';
import { createApiAlertFacts } from './alert-facts.ts';
import type { ApiAlertFacts } from './alert-facts.ts';
import { openAlertStore } from './alert-store.ts';
import type { AlertStore } from './alert-store.ts';
import type { AlertSink } from './types.ts';

/**
 * The alerts of one API process (SPEC section 9): the engine, its facts and its store, built
 * from createApi's `alerts` option. Alerts must survive restarts, so they run only where they
 * can be kept: with `dataDir` (`<dataDir>/alerts.sqlite`) or, in tests, a `store` of their own.
 * Without either, the API runs without alerts and GET /api/v1/alerts answers an empty list with
 * `disabled` saying why.
 */
export interface ApiAlertsOptions {
  /** The data dir the alerts are kept in (`alerts.sqlite`); `flowpilot` passes FLOWPILOT_DATA_DIR. */
  dataDir?: string;
  /** Told of each "fired" and "resolved" (the notifier of the pilot file's `notify:` section). */
  sinks?: AlertSink[];
  /** How often the rules are evaluated, ms (default 15 s); they are also evaluated on each live reading. */
  evaluateEveryMs?: number;
  /**
   * The age of the oldest accepted reading waiting for InfluxDB, ms (0 when none waits): the
   * `store_lag` rule's fact where the durable store is at hand. Without it, `store_lag` follows
   * the `store` readiness check, if any.
   */
  storeLagMs?: () => number | null;
  /** How often night flow, totalizer consistency and the stored latest readings are read from InfluxDB, ms (default 10 min). */
  influxFactsEveryMs?: number;
  /** How often the dead-letter counts are read, ms (default 1 min). */
  rejectionsEveryMs?: number;
  /** For tests: a store instead of `dataDir` (createMemoryAlertStore, or one to reopen). Not closed by the API. */
  store?: AlertStore;
  /** For tests: the timers of the evaluation. */
  timers?: AlertTimers;
}

export interface ApiAlertsDependencies {
  pilot: PilotConfig;
  liveFeed: LiveFeed;
  metrics: MetricsService;
  readings: ReadingsRepository;
  influx: InfluxClient;
  clock: () => number;
  rejections?: RejectionsProvider | undefined;
  readinessChecks?: Record<string, () => ReadinessCheck> | undefined;
  readyTimeoutMs: number;
  log?: AlertLog | undefined;
}

export interface ApiAlerts {
  engine: AlertEngine;
  facts: ApiAlertFacts;
  /** Whether the alerts survive a restart (false only with a test store). */
  durable: boolean;
  /** Starts evaluating (the first round in the background). */
  start(): void;
  /** Stops evaluating and closes the store it opened. */
  close(): Promise<void>;
}

/** Why the API runs without alerts, for GET /api/v1/alerts's `disabled`; null when it runs them. */
export function alertsOffReason(options: ApiAlertsOptions | false | undefined): string | null {
  if (options === false) return 'Alerts are switched off in this API process (createApi\'s `alerts: false`)';
  if (!options?.dataDir && !options?.store) {
    return 'Alerts are not evaluated by this API process: it was started without a data dir to keep them in. Use the API of `flowpilot start` or `flowpilot api`, which keep them in FLOWPILOT_DATA_DIR';
  }
  return null;
}

export function createApiAlerts(options: ApiAlertsOptions | false | undefined, deps: ApiAlertsDependencies): ApiAlerts | null {
  if (options === false || alertsOffReason(options) !== null || !options) return null;
  const ownStore = options.store === undefined;
  const store = options.store ?? openAlertStore(options.dataDir as string);
  const facts = createApiAlertFacts({
    pilot: deps.pilot,
    liveFeed: deps.liveFeed,
    metrics: deps.metrics,
    readings: deps.readings,
    influx: deps.influx,
    rejections: deps.rejections,
    readinessChecks: deps.readinessChecks,
    storeLagMs: options.storeLagMs,
    pingTimeoutMs: deps.readyTimeoutMs,
    ...(options.influxFactsEveryMs !== undefined ? { influxFactsEveryMs: options.influxFactsEveryMs } : {}),
    ...(options.rejectionsEveryMs !== undefined ? { rejectionsEveryMs: options.rejectionsEveryMs } : {}),
    log: deps.log,
  });
  const engine = createAlertEngine({
    pilot: deps.pilot,
    store,
    facts,
    clock: deps.clock,
    sinks: options.sinks ?? [],
    ...(options.evaluateEveryMs !== undefined ? { evaluateEveryMs: options.evaluateEveryMs } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    ...(deps.log ? { log: deps.log } : {}),
  });
  let started = false;
  return {
    engine,
    facts,
    durable: store.durable,
    start() {
      if (started) return;
      started = true;
      // The first round runs in the background: a slow InfluxDB must not hold back the API's start.
      engine.start().catch((error: unknown) => deps.log?.error({ err: error }, 'the alert engine could not start (its store?); alerts are not evaluated'));
    },
    async close() {
      await engine.stop();
      if (ownStore) store.close();
    },
  };
}
