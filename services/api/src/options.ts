import { FlowPilotError } from '@flowpilot/schema';
import type { InfluxClient } from '@flowpilot/influx';
import type { PilotConfig } from '@flowpilot/schema';
import type { Logger } from 'pino';
import type { ApiAlertsOptions } from './alerts/api-alerts.ts';
import type { TokenVerifier } from './api-tokens.ts';
import type { LiveFeed } from './live-feed.ts';
import type { RejectionsProvider } from './metrics-service.ts';
import type { ReadingCacheOptions } from './reading-cache.ts';
import type { DeadLetterAccess } from './routes/deadletters.ts';

/** createApi's options (STYLE habit 4: defaults merged once from DEFAULT_API_OPTIONS, checked once at start-up). */
export interface ApiOptions {
  /**
   * The validated day cache behind /metrics (reading-cache.ts; with it, each meter's computed
   * metrics are kept by the version of its days, metrics-result-cache.ts); false reads InfluxDB
   * and computes on every call. Its `writtenDays` (the durable store) is trusted only while an
   * ingest reads that store; its clock is the API's `clock` unless given.
   */
  readingCache?: false | Partial<ReadingCacheOptions>;
  /** Days the cache reads in the background once listening (0: none). */
  metricsWarmupDays?: number;
  pilot: PilotConfig;
  influx: InfluxClient;
  liveFeed: LiveFeed;
  /** A pino logger, or false for none (the default). */
  log?: Logger | false;
  /** The longest window `/readings` answers, in days. */
  maxWindowDays?: number;
  /** The version the OpenAPI document states. */
  version?: string;
  /** Raw readings one request may return; beyond it the caller must pass `every`. */
  maxRawReadings?: number;
  /** Buckets one aggregated request may return. */
  maxBuckets?: number;
  /** How long /readyz waits for the InfluxDB ping. */
  readyTimeoutMs?: number;
  sseHeartbeatMs?: number;
  /** Epoch ms now; injected so tests control time (STYLE habit 7). */
  clock?: () => number;
  /** More /readyz checks from the process around the API (the durable store's lag, the ingest). */
  readinessChecks?: Record<string, () => ReadinessCheck>;
  /**
   * Rejected messages per meter and reason code in [fromMs, toMs) (SPEC section 4 `rejected`):
   * the durable store's `rejectionCountsByMeter`. Absent: every meter reports `null` (unknown, never 0: SPEC section 4).
   */
  rejections?: RejectionsProvider;
  /** A Prometheus registry to serve at /metrics (prom-client's Registry fits). */
  metrics?: { metrics(): Promise<string>; contentType: string };
  /**
   * API tokens (SPEC section 8; `openApiTokenStore(path)` fits). From the first token on, every
   * route but /healthz and /readyz needs one; absent or empty, the API serves loopback clients only.
   */
  tokens?: TokenVerifier;
  /** Serve HTTPS with this PEM key and certificate; the sign-in cookie is then `Secure`. */
  https?: { key: Buffer | string; cert: Buffer | string };
  /**
   * Expensive requests per minute per token (per address without tokens): reports, metrics,
   * error curves, intervals, dead-letter replays and readings over windows longer than 2 days.
   * Shorter windows of those routes get 10 times as many.
   */
  expensiveRatePerMinute?: number;
  /** /api/v1/live streams open at once; beyond it 503 ERR_LIVE_FULL. */
  maxLiveConnections?: number;
  /** A client must send its whole request (headers and body) within this, ms (Fastify's requestTimeout). */
  requestTimeoutMs?: number;
  /** A socket with no traffic either way for this long is closed, ms (Fastify's connectionTimeout); above the SSE heartbeat. */
  connectionTimeoutMs?: number;
  /** The durable store's dead letters and their replay, for the admin routes; absent, those routes answer 404. */
  deadLetters?: DeadLetterAccess;
  /**
   * What the PDF report states about its origin (its traceability page), computed by the process
   * that read the pilot file (apps/flowpilot): the SHA-256 of the pilot file's bytes and the
   * software's commit. Absent: the report says `n/a` and `unknown`.
   */
  provenance?: ApiProvenance;
  /**
   * SPEC section 9's alerts, evaluated in this process (alerts/api-alerts.ts): kept in
   * `<dataDir>/alerts.sqlite`, told to `sinks`. Without a data dir (or with false) the API runs
   * without alerts and GET /api/v1/alerts answers an empty list with `disabled` saying why.
   */
  alerts?: ApiAlertsOptions | false;
}

export interface ApiProvenance {
  /** SHA-256 (hex) of the bytes of the pilot file this API was started with. */
  pilotFileSha256?: string;
  /** The git commit of the running software (FLOWPILOT_COMMIT or `git rev-parse HEAD`), else `unknown`. */
  commit?: string;
}

export interface ReadinessCheck {
  ok: boolean;
  /** What is wrong and what to do, when not ok. */
  reason?: string;
}

export const DEFAULT_API_OPTIONS = {
  log: false,
  maxWindowDays: 400,
  version: '0.1.0',
  maxRawReadings: 10_000,
  maxBuckets: 100_000,
  readyTimeoutMs: 2_000,
  sseHeartbeatMs: 15_000,
  clock: (): number => Date.now(),
  expensiveRatePerMinute: 30,
  maxLiveConnections: 200,
  requestTimeoutMs: 30_000,
  // Long enough for a cold year-long PDF, which writes nothing until it is done.
  connectionTimeoutMs: 300_000,
} as const satisfies Partial<ApiOptions>;

/** Bodies the API accepts are a token or a dead-letter filter. */
export const BODY_LIMIT_BYTES = 64 * 1024;

type NumericSetting = 'maxWindowDays' | 'maxRawReadings' | 'maxBuckets' | 'readyTimeoutMs' | 'sseHeartbeatMs' | 'expensiveRatePerMinute' | 'maxLiveConnections' | 'requestTimeoutMs' | 'connectionTimeoutMs';

/** Every numeric setting checked at once, one sentence per problem (STYLE habit 3). */
export function validateSettings(settings: Required<Pick<ApiOptions, NumericSetting>> & Pick<ApiOptions, 'https' | 'alerts'>): void {
  const problems: string[] = [];
  const positive = ['maxWindowDays', 'maxRawReadings', 'maxBuckets', 'readyTimeoutMs', 'sseHeartbeatMs', 'expensiveRatePerMinute', 'requestTimeoutMs', 'connectionTimeoutMs'] as const;
  for (const name of positive) {
    const value = settings[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) problems.push(`${name} must be a positive integer; got ${String(value)}`);
  }
  if (!Number.isInteger(settings.maxLiveConnections) || settings.maxLiveConnections < 0) {
    problems.push(`maxLiveConnections must be an integer ≥ 0; got ${String(settings.maxLiveConnections)}`);
  }
  if (settings.connectionTimeoutMs <= 2 * settings.sseHeartbeatMs) {
    problems.push(`connectionTimeoutMs (${settings.connectionTimeoutMs}) must exceed twice sseHeartbeatMs (${settings.sseHeartbeatMs}), or live streams would be cut between heartbeats`);
  }
  if (settings.https && (!settings.https.key || !settings.https.cert)) problems.push('https needs both a key and a cert (PEM)');
  for (const name of ['evaluateEveryMs', 'influxFactsEveryMs', 'rejectionsEveryMs'] as const) {
    const value = settings.alerts ? settings.alerts[name] : undefined;
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) problems.push(`alerts.${name} must be a positive integer (ms); got ${String(value)}`);
  }
  if (problems.length > 0) throw new FlowPilotError('ERR_CONFIG', `Invalid API options: ${problems.join('; ')}`);
}

/** The options with every default filled in: what the routes read. */
export type ApiSettings = Omit<ApiOptions, keyof typeof DEFAULT_API_OPTIONS> & { [K in keyof typeof DEFAULT_API_OPTIONS]: NonNullable<ApiOptions[K]> };

/** The caller's options over the defaults, validated: every problem at once (STYLE habit 3). */
export function resolveSettings(options: ApiOptions): ApiSettings {
  const settings = { ...DEFAULT_API_OPTIONS, ...definedOnly(options) } as ApiSettings;
  validateSettings(settings);
  return settings;
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
