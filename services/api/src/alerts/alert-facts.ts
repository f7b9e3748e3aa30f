import { TIMED_OUT, withTimeout } from '@flowpilot/async';
import type { InfluxClient, ReadingsRepository } from '@flowpilot/influx';
import { addDays, localDate, localMidnightMs } from '@flowpilot/metrics';
import type { AlarmName, PilotConfig, Reading } from '@flowpilot/schema';
import type { LiveFeed } from '../live-feed.ts';
import type { MetricsService, RejectionsProvider } from '../metrics-service.ts';
import type { ReadinessCheck } from '../options.ts';
import type { AlertFactsSource, AlertLog } from './alert-engine.ts';
import type { AlertFacts, MeterFacts, PipelineFacts } from './rules.ts';

/**
 * The facts the rules need, gathered inside the API process (SPEC section 9), each from where it
 * lives and at the pace it changes:
 *
 * | fact | from | how often |
 * |---|---|---|
 * | last reading, its battery and alarms; status | the live feed (LiveState) | every evaluation, and each reading (no I/O) |
 * | last reading of a meter the feed has not heard from | InfluxDB (`latestOfEvery`) | with the InfluxDB facts below |
 * | latest night's mean flow; last local day's totalizer consistency | InfluxDB through the MetricsService (its day cache) | every `influxFactsEveryMs` (10 min), in the background |
 * | dead letters per meter in the last hour | the durable store (`rejections`) when the API has it | every `rejectionsEveryMs` (1 min) |
 * | store lag | `storeLagMs` (the durable store), else the `store` readiness check | every evaluation |
 * | InfluxDB reachable | a ping (as /readyz) and the `ingest` readiness check | every evaluation |
 *
 * Nothing here throws out of `refresh`: a source that fails leaves its facts as they were, or
 * unknown, and is logged once per failure streak.
 */

export interface ApiAlertFactsOptions {
  pilot: PilotConfig;
  liveFeed: LiveFeed;
  metrics: MetricsService;
  readings: ReadingsRepository;
  influx: InfluxClient;
  /** The durable store's dead-letter counts; absent: `rejected` is unknown. */
  rejections?: RejectionsProvider | undefined;
  /** The process's readiness checks (ApiOptions.readinessChecks): `store` and `ingest` are read. */
  readinessChecks?: Record<string, () => ReadinessCheck> | undefined;
  /** The age of the oldest accepted reading waiting for InfluxDB, ms (0 when none waits); null or absent: not at hand. */
  storeLagMs?: (() => number | null) | undefined;
  /** How long a ping of InfluxDB may take. */
  pingTimeoutMs?: number;
  /** How often night flow, totalizer consistency and the stored latest readings are read from InfluxDB. */
  influxFactsEveryMs?: number;
  /** How often the dead-letter counts are read. */
  rejectionsEveryMs?: number;
  log?: AlertLog | undefined;
}

export const DEFAULT_ALERT_FACTS_OPTIONS = {
  pingTimeoutMs: 2_000,
  influxFactsEveryMs: 10 * 60_000,
  rejectionsEveryMs: 60_000,
} as const;

/** After a failed read, the next try comes after at most this long, not a whole period later. */
const RETRY_AFTER_FAILURE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** The night-flow window: long enough to hold a whole night of any night window (at most 24 h) and the one before. */
const NIGHT_LOOKBACK_MS = 50 * HOUR_MS;
/** How far back the stored latest reading is looked for, as /api/v1/pilot does. */
const LATEST_LOOKBACK_DAYS = 30;

interface LastReading {
  atMs: number;
  reading: MeterFacts['lastReading'];
}

const readingFacts = (reading: Reading): NonNullable<MeterFacts['lastReading']> => ({
  tsMs: reading.tsMs,
  batteryPct: reading.batteryPct ?? null,
  alarms: reading.alarms as readonly AlarmName[],
});

/** The API's facts, and the one the Prometheus gauge needs. */
export interface ApiAlertFacts extends AlertFactsSource {
  /** When the meter's last reading arrived (live, else its newest in InfluxDB), epoch ms; null when unknown. */
  lastReadingAtMs(meterId: string): number | null;
}

export function createApiAlertFacts(options: ApiAlertFactsOptions): ApiAlertFacts {
  const { pilot, liveFeed, metrics, readings, influx, log } = options;
  const settings = { ...DEFAULT_ALERT_FACTS_OPTIONS, ...definedOnly(options) };
  const meterIds = pilot.meters.map((m) => m.id);

  let watchingSinceMs: number | null = null;
  const stored = new Map<string, LastReading>();
  const nights = new Map<string, MeterFacts['night']>();
  const totalizers = new Map<string, MeterFacts['totalizer']>();
  let rejected: Map<string, number> | null = null;
  let influxState: PipelineFacts['influx'] = null;
  let influxFactsDueMs = -Infinity;
  let rejectionsDueMs = -Infinity;
  let influxFactsRunning: Promise<void> | null = null;
  const failing = new Set<string>();

  /** Logs a source's failure once per streak, and its recovery. */
  const failed = (source: string, error: unknown): void => {
    if (!failing.has(source)) log?.warn({ err: error instanceof Error ? error.message : String(error) }, `alert facts: ${source} failed; its facts stay as they were`);
    failing.add(source);
  };
  const succeeded = (source: string): void => {
    if (failing.delete(source)) log?.info({}, `alert facts: ${source} answers again`);
  };

  /** The live feed's connection: silence is evidence only while it is connected (rules.ts `watchingSinceMs`). */
  const watch = (nowMs: number): void => {
    if (!liveFeed.connected()) watchingSinceMs = null;
    else watchingSinceMs ??= nowMs;
  };

  async function readInfluxFacts(nowMs: number): Promise<void> {
    try {
      const latest = await readings.latestOfEvery(LATEST_LOOKBACK_DAYS);
      for (const [meterId, reading] of latest) stored.set(meterId, { atMs: reading.receivedAtMs ?? reading.tsMs, reading: readingFacts(reading) });
      succeeded('InfluxDB latest readings');
    } catch (error) {
      failed('InfluxDB latest readings', error);
    }
    try {
      // The latest counted night of the last 50 hours (SPEC section 4 minNightFlow, `latest`).
      const nightMetrics = await metrics.metrics({ fromMs: nowMs - NIGHT_LOOKBACK_MS, toMs: nowMs });
      for (const m of nightMetrics) {
        const { latestM3h, latestNight } = m.minNightFlow;
        nights.set(m.meterId, latestM3h === null || latestNight === null ? null : { night: latestNight, meanM3h: latestM3h });
      }
      // The last complete local day: a fixed window all day long, so the metrics cache keeps its result.
      const today = localDate(pilot.pilot.timezone, nowMs);
      const yesterday = addDays(today, -1);
      const dayMetrics = await metrics.metrics({ fromMs: localMidnightMs(pilot.pilot.timezone, yesterday), toMs: localMidnightMs(pilot.pilot.timezone, today) });
      for (const m of dayMetrics) {
        const percent = m.totalizerConsistency.percent;
        totalizers.set(m.meterId, percent === null ? null : { date: yesterday, percent });
      }
      succeeded('InfluxDB metrics');
      influxFactsDueMs = nowMs + settings.influxFactsEveryMs;
    } catch (error) {
      failed('InfluxDB metrics', error);
      influxFactsDueMs = nowMs + Math.min(settings.influxFactsEveryMs, RETRY_AFTER_FAILURE_MS);
    }
  }

  function readRejections(nowMs: number): void {
    if (!options.rejections) return;
    try {
      const counts = options.rejections(nowMs - HOUR_MS, nowMs);
      const next = new Map<string, number>();
      for (const [meterId, byCode] of Object.entries(counts)) next.set(meterId, Object.values(byCode).reduce((sum, n) => sum + n, 0));
      rejected = next;
      rejectionsDueMs = nowMs + settings.rejectionsEveryMs;
      succeeded('dead-letter counts');
    } catch (error) {
      failed('dead-letter counts', error);
      rejected = null;
      rejectionsDueMs = nowMs + Math.min(settings.rejectionsEveryMs, RETRY_AFTER_FAILURE_MS);
    }
  }

  const check = (name: string): ReadinessCheck | null => {
    const run = options.readinessChecks?.[name];
    if (!run) return null;
    try {
      return run();
    } catch (error) {
      return { ok: false, reason: `the ${name} check failed: ${error instanceof Error ? error.message : String(error)}` };
    }
  };

  async function readInfluxReachability(): Promise<void> {
    let ping: { ok: boolean; reason?: string };
    try {
      const answer = await withTimeout(influx.ping(), settings.pingTimeoutMs);
      ping = answer === TIMED_OUT ? { ok: false, reason: `no answer to ping within ${settings.pingTimeoutMs} ms` } : { ok: true };
    } catch (error) {
      ping = { ok: false, reason: error instanceof Error ? error.message : String(error) };
    }
    const ingest = check('ingest');
    if (!ping.ok) influxState = ping;
    else if (ingest && !ingest.ok) influxState = { ok: false, reason: ingest.reason ?? 'the ingest\'s writes fail' };
    else influxState = { ok: true };
  }

  function storeLagSec(): number | null {
    if (!options.storeLagMs) return null;
    try {
      const lagMs = options.storeLagMs();
      return lagMs === null ? null : lagMs / 1000;
    } catch (error) {
      failed('store lag', error);
      return null;
    }
  }

  const lastReadingAtMs = (meterId: string): number | null => liveFeed.state(meterId)?.lastSeenMs ?? stored.get(meterId)?.atMs ?? null;

  return {
    lastReadingAtMs,

    async refresh(nowMs) {
      watch(nowMs);
      if (nowMs >= influxFactsDueMs && !influxFactsRunning) {
        // In the background: heavy reads must not hold back the live rules (stale waits for nobody).
        influxFactsRunning = readInfluxFacts(nowMs).finally(() => {
          influxFactsRunning = null;
        });
      }
      if (nowMs >= rejectionsDueMs) readRejections(nowMs);
      await readInfluxReachability();
    },

    snapshot(nowMs) {
      watch(nowMs);
      const meters = new Map<string, MeterFacts>();
      for (const meterId of meterIds) {
        const live = liveFeed.state(meterId);
        const fallback = stored.get(meterId);
        meters.set(meterId, {
          meterId,
          lastReadingAtMs: lastReadingAtMs(meterId),
          lastReading: live?.lastReading ? readingFacts(live.lastReading) : (fallback?.reading ?? null),
          status: live?.status
            ? { online: live.status.online, tsMs: live.status.tsMs, ...(live.statusReceivedAtMs !== undefined ? { receivedAtMs: live.statusReceivedAtMs } : {}) }
            : null,
          night: nights.get(meterId) ?? null,
          totalizer: totalizers.get(meterId) ?? null,
          rejectedLastHour: rejected === null ? null : (rejected.get(meterId) ?? 0),
        });
      }
      const lag = storeLagSec();
      const pipeline: PipelineFacts = { storeLagSec: lag, storeCheck: lag === null ? check('store') : null, influx: influxState };
      const facts: AlertFacts = { nowMs, watchingSinceMs, meters, pipeline };
      return facts;
    },

    onReading(listener) {
      return liveFeed.onReading((reading) => listener(reading.meterId));
    },
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
