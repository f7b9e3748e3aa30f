import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import fastifyCompress from '@fastify/compress';
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { FlowPilotError, createMeterRegistry } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { INTERNAL_HEADER, registerAccess } from './access.ts';
import { frameworkErrorHandler, installErrorHandlers, validationError } from './api-errors.ts';
import {
  bucketedReadingsSchema,
  errorResponseSchema,
  healthSchema,
  meterIdParamsSchema,
  meterViewSchema,
  pilotViewSchema,
  rawReadingsSchema,
  readinessSchema,
  readingsQuerySchema,
} from './api-schemas.ts';
import type { ApiReading, Readiness } from './api-schemas.ts';
import type { TokenVerifier } from './api-tokens.ts';
import { registerDashboardRoutes } from './dashboard-route.ts';
import { deadLetterRoutes } from './deadletters-routes.ts';
import type { DeadLetterAccess } from './deadletters-routes.ts';
import type { InfluxClient } from '@flowpilot/influx';
import { queryBuckets, queryLatestReading, queryLatestReadings, queryRawReadings } from './influx-readings.ts';
import type { LiveFeed } from './live-feed.ts';
import { registerLiveRoute } from './live-route.ts';
import { meterView } from './meter-view.ts';
import { registerMetricsRoutes } from './metrics-routes.ts';
import { reportRoute } from './report-route.ts';
import type { RejectionsProvider } from './metrics-routes.ts';
import type { ReadingCacheOptions } from './reading-cache.ts';
import { sendSignInPage, sessionRoutes } from './session-routes.ts';
import { createSignInPageRenderer } from './sign-in-page.ts';

export interface ApiOptions {
  /** The validated day cache behind /metrics (reading-cache.ts); false reads InfluxDB on every call. */
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
   * the durable store's `rejectionCountsByMeter`. Absent: every meter reports `{}`.
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
const BODY_LIMIT_BYTES = 64 * 1024;

type NumericSetting = 'maxWindowDays' | 'maxRawReadings' | 'maxBuckets' | 'readyTimeoutMs' | 'sseHeartbeatMs' | 'expensiveRatePerMinute' | 'maxLiveConnections' | 'requestTimeoutMs' | 'connectionTimeoutMs';

/** Every numeric setting checked at once, one sentence per problem (STYLE habit 3). */
function validateSettings(settings: Required<Pick<ApiOptions, NumericSetting>> & Pick<ApiOptions, 'https'>): void {
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
  if (problems.length > 0) throw new FlowPilotError('ERR_CONFIG', `Invalid API options: ${problems.join('; ')}`);
}

const DAY_MS = 86_400_000;
const DEFAULT_WINDOW_MS = DAY_MS;
/** How far back /pilot and /meters/{id} look in InfluxDB for a meter the live feed has not heard from. */
const LATEST_LOOKBACK_DAYS = 30;

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Builds the HTTP API of SPEC section 5 without listening (STYLE habit 1): `main` listens,
 * tests use `inject()` or listen on port 0.
 */
export async function createApi(options: ApiOptions): Promise<FastifyInstance> {
  const settings = { ...DEFAULT_API_OPTIONS, ...definedOnly(options) };
  validateSettings(settings);
  const { pilot, influx, liveFeed, clock } = settings;
  const registry = createMeterRegistry(pilot);

  const checkingIntervalMs = Math.max(100, Math.min(30_000, Math.floor(settings.requestTimeoutMs / 3)));
  // With `loggerInstance` fastify types the instance by the logger's type; callers need only the
  // base FastifyInstance, whose `log` is the same pino logger.
  const base = {
    frameworkErrors: frameworkErrorHandler,
    // A client that trickles its request (slow loris) or idles is cut off instead of holding a socket.
    requestTimeout: settings.requestTimeoutMs,
    connectionTimeout: settings.connectionTimeoutMs,
    bodyLimit: BODY_LIMIT_BYTES,
    // Node checks request timeouts every 30 s by default; check often enough that the timeout means what it says.
    ...(settings.https
      ? { https: { key: settings.https.key, cert: settings.https.cert, connectionsCheckingInterval: checkingIntervalMs } }
      : { http: { connectionsCheckingInterval: checkingIntervalMs } }),
  };
  const app = (settings.log ? Fastify({ ...base, loggerInstance: settings.log }) : Fastify({ ...base, logger: false })) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);

  await app.register(fastifyHelmet, helmetOptions(Boolean(settings.https)));
  // Responses compressed when the client asks (the dashboard's files are compressed once, by their route);
  // request bodies are never inflated: the API takes small JSON only, and a zip bomb is not one.
  await app.register(fastifyCompress, { global: true, requestEncodings: ['identity'] });
  await app.register(fastifyCookie);
  await app.register(fastifyRateLimit, { global: false });
  // The API's own requests to itself (the PDF report reads /metrics) carry a secret of this process.
  const internalKey = randomBytes(32).toString('base64url');
  const signIn = createSignInPageRenderer();
  const access = registerAccess(app, {
    tokens: settings.tokens,
    internalKey,
    expensiveRatePerMinute: settings.expensiveRatePerMinute,
    clock,
    signInPage: (request, reply, problem) => sendSignInPage(signIn, request, reply, problem),
  });
  undeclared.set(app, access.undeclaredRoutes);
  app.addHook('onReady', async () => {
    if (access.undeclaredRoutes.length > 0) app.log.warn({ routes: access.undeclaredRoutes }, 'routes missing from ROUTE_ACCESS need admin');
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'FlowPilot API',
        version: settings.version,
        description:
          `Live flow and history of the flowmeter demonstration pilot "${pilot.pilot.name}". ` +
          'Times are ISO 8601 (with an offset) or epoch milliseconds; readings use the field names and units of the MQTT wire format. ' +
          'Errors are `{"error": {"code", "message"}}`. ' +
          'Access (SPEC section 8): once an API token exists, every route but /healthz and /readyz needs `Authorization: Bearer <token>` ' +
          '(or the dashboard\'s sign-in cookie): `viewer` reads the pilot, meters, readings and the live feed; `evaluator` also metrics, ' +
          'error curves and reports; `admin` also dead letters. Without tokens the API serves clients on its own machine only. ' +
          `Expensive requests are limited to ${settings.expensiveRatePerMinute} a minute per token (429 \`ERR_RATE_LIMITED\` with Retry-After).`,
      },
      tags: [
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'pilot', description: 'The pilot, its meters and their live status' },
        { name: 'readings', description: 'Time series from InfluxDB' },
        { name: 'live', description: 'Readings as they arrive' },
        { name: 'metrics', description: 'SPEC section 4 performance metrics and OIML R49 accuracy' },
        { name: 'reports', description: 'The evaluator\'s exports (CSV, PDF)' },
        { name: 'access', description: 'Signing in to the dashboard with an API token (SPEC section 8)' },
        { name: 'dead letters', description: 'Messages the broker rejected, and their replay (admin)' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token: `flowpilot tokens add <name> --role viewer|evaluator|admin`' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: errorResponseSchema, 404: errorResponseSchema, 503: errorResponseSchema };

  api.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Liveness: the process answers', security: [], response: { 200: healthSchema } } },
    async () => ({ status: 'ok' as const }),
  );

  const metrics = options.metrics;
  if (metrics) {
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  }

  api.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: InfluxDB answers its ping and the live feed is connected to the broker',
        description: 'Open to anyone, like /healthz: its reasons name no address (URLs, hosts and ports read "<address>"); the log has them.',
        security: [],
        response: { 200: readinessSchema, 503: readinessSchema },
      },
    },
    async (_request, reply) => {
      const influxCheck = await pingInflux(influx, settings.readyTimeoutMs);
      const brokerOk = liveFeed.connected();
      // Public, so it names no address: the reasons say what failed, the log says where.
      const extra = Object.fromEntries(
        Object.entries(options.readinessChecks ?? {}).map(([name, check]) => {
          const result = check();
          return [name, result.reason === undefined ? result : { ...result, reason: withoutAddresses(result.reason) }];
        }),
      );
      const ok = influxCheck.ok && brokerOk && Object.values(extra).every((check) => check.ok);
      const body: Readiness = { status: ok ? 'ok' : 'degraded', checks: { ...extra, influx: influxCheck, broker: { ok: brokerOk } } };
      return reply.code(ok ? 200 : 503).send(body);
    },
  );

  /**
   * The newest stored reading of every meter the live feed has not heard from. InfluxDB being
   * down must not blank the field engineer's view of what is live, so this degrades to null.
   */
  async function storedLatest(meterIds: readonly string[], log: FastifyInstance['log']): Promise<Map<string, ApiReading>> {
    const missing = meterIds.filter((id) => !liveFeed.state(id)?.lastReading);
    if (missing.length === 0) return new Map();
    try {
      if (missing.length === 1) {
        const only = missing[0] as string;
        const reading = await queryLatestReading(influx, only, LATEST_LOOKBACK_DAYS);
        return new Map(reading ? [[only, reading]] : []);
      }
      return await queryLatestReadings(influx, LATEST_LOOKBACK_DAYS);
    } catch (error) {
      log.warn({ err: error }, 'could not read the latest readings from InfluxDB; answering with live data only');
      return new Map();
    }
  }

  api.get(
    '/api/v1/pilot',
    {
      schema: {
        tags: ['pilot'],
        summary: 'The pilot and its meters, each with its live status',
        description:
          'Each meter\'s configuration (SPEC section 3) with `online`, `lastSeen` and `lastReading`. If InfluxDB is unreachable, ' +
          'meters the live feed has not heard from since the API started have `lastReading: null`.',
        response: { 200: pilotViewSchema },
      },
    },
    async (request) => {
      const stored = await storedLatest(pilot.meters.map((m) => m.id), request.log);
      const nowMs = clock();
      return {
        ...pilot.pilot,
        meters: pilot.meters.map((meter) => meterView(meter, liveFeed.state(meter.id), stored.get(meter.id) ?? null, nowMs)),
      };
    },
  );

  function meterOr404(id: string) {
    const meter = registry.get(id);
    if (!meter) throw new FlowPilotError('ERR_METER_NOT_FOUND', `No meter "${id}" in pilot ${pilot.pilot.id}. GET /api/v1/pilot lists its meters`);
    return meter;
  }

  api.get(
    '/api/v1/meters/:id',
    {
      schema: {
        tags: ['pilot'],
        summary: 'One meter with its live status and latest reading',
        params: meterIdParamsSchema,
        response: { 200: meterViewSchema, 400: errorResponseSchema, 404: errorResponseSchema },
      },
    },
    async (request) => {
      const meter = meterOr404(request.params.id);
      const stored = await storedLatest([meter.id], request.log);
      return meterView(meter, liveFeed.state(meter.id), stored.get(meter.id) ?? null, clock());
    },
  );

  api.get(
    '/api/v1/meters/:id/readings',
    {
      schema: {
        tags: ['readings'],
        summary: 'A meter\'s time series over [from, to)',
        description:
          'Without `every`: the raw readings, oldest first (wire names and units of SPEC section 1: flow m³/h, total m³, ' +
          `velocity m/s, pressure bar, temperature °C, battery %, rssi dBm), at most ${settings.maxRawReadings}. ` +
          'With `every`: one point per non-empty bucket with mean, min and max flow (m³/h), the last total (m³) and the count. ' +
          `The window is at most ${settings.maxWindowDays} days.`,
        params: meterIdParamsSchema,
        querystring: readingsQuerySchema,
        response: { 200: rawReadingsSchema.or(bucketedReadingsSchema), ...errors },
      },
    },
    async (request) => {
      const meter = meterOr404(request.params.id);
      const { from, to, every } = request.query;
      const toMs = to ?? clock();
      const fromMs = from ?? toMs - DEFAULT_WINDOW_MS;
      if (toMs <= fromMs) {
        const toText = to === undefined ? `now, ${iso(toMs)}` : iso(toMs);
        throw validationError(`Query parameter "to" (${toText}) must be after "from" (${iso(fromMs)})`);
      }
      const windowDays = (toMs - fromMs) / DAY_MS;
      if (windowDays > settings.maxWindowDays) {
        throw validationError(
          `The window from "from" (${iso(fromMs)}) to "to" (${iso(toMs)}) spans ${Math.ceil(windowDays)} days; the longest is ${settings.maxWindowDays} days. Narrow it`,
        );
      }
      const base = { meterId: meter.id, from: iso(fromMs), to: iso(toMs) };

      if (every) {
        const buckets = Math.ceil((toMs - fromMs) / every.ms);
        if (buckets > settings.maxBuckets) {
          throw validationError(`Query parameter "every" (${every.literal}) splits the window into ${buckets} buckets, more than ${settings.maxBuckets}. Pass a longer "every" or a shorter window`);
        }
        return { ...base, every: every.literal, buckets: await queryBuckets(influx, meter.id, fromMs, toMs, every) };
      }

      // One more than the cap tells "exactly the cap" from "over it" in one query.
      const readings = await queryRawReadings(influx, meter.id, fromMs, toMs, settings.maxRawReadings + 1);
      if (readings.length > settings.maxRawReadings) {
        throw validationError(
          `More than ${settings.maxRawReadings} readings between ${base.from} and ${base.to}. Pass "every" (e.g. every=1h) to aggregate them, or narrow "from" and "to"`,
        );
      }
      return { ...base, every: null, readings };
    },
  );

  registerMetricsRoutes(app, {
    pilot,
    influx,
    clock,
    maxWindowDays: settings.maxWindowDays,
    rejections: options.rejections,
    meterOr404,
    ...(options.readingCache !== undefined ? { readingCache: options.readingCache } : {}),
    ...(options.metricsWarmupDays !== undefined ? { warmupDays: options.metricsWarmupDays } : {}),
  });
  registerLiveRoute(app, { liveFeed, meterIds: pilot.meters.map((m) => m.id), heartbeatMs: settings.sseHeartbeatMs, maxConnections: settings.maxLiveConnections });
  // The cover names the data source; a URL's credentials never reach a report.
  const source = new URL(influx.config.url);
  source.username = '';
  source.password = '';
  await app.register(reportRoute, {
    pilot,
    version: settings.version,
    clock,
    maxWindowDays: settings.maxWindowDays,
    dataSource: `InfluxDB ${source.origin}, database ${influx.config.database}`,
    internalHeaders: { [INTERNAL_HEADER]: internalKey },
  });
  await app.register(sessionRoutes, { tokens: settings.tokens, signIn });
  await app.register(deadLetterRoutes, { deadLetters: settings.deadLetters });
  await registerDashboardRoutes(app);

  return app;
}

async function pingInflux(influx: InfluxClient, timeoutMs: number): Promise<Readiness['checks']['influx']> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to ping within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const { version } = await Promise.race([influx.ping(), timeout]);
    return { ok: true, version };
  } catch (error) {
    // The InfluxDB client's messages name the server and the failure; /readyz is public, so the address goes.
    return { ok: false, error: withoutAddresses(error instanceof Error ? error.message : String(error)) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The text with every URL, IP address, host:port and resolver host name replaced by
 * "<address>": /readyz answers anyone, and must not map the network behind the API for them.
 */
export function withoutAddresses(text: string): string {
  const isAddress = (word: string): boolean => {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(word)) return true;
    const bare = word.replace(/^\[(.*)\](:\d+)?$/, '$1');
    if (isIP(bare) || isIP(bare.replace(/:\d+$/, ''))) return true;
    // host:port, with a letter somewhere so that a time such as 12:00 stays.
    return /^(?=[^:]*[a-z])[a-z0-9.-]+:\d{1,5}$/i.test(word);
  };
  return text
    .replace(/\b(ENOTFOUND|EAI_AGAIN|EAI_NONAME)\s+[^\s,;()"']+/g, '$1 <address>')
    .replace(/[^\s,;()"'<>]+/g, (word) => {
      const trimmed = word.replace(/[.:]+$/, '');
      return isAddress(trimmed) ? `<address>${word.slice(trimmed.length)}` : word;
    });
}

/**
 * Security headers (helmet): a CSP that allows this origin's scripts, styles and data URIs
 * (Swagger UI's icons) and nothing else; no frames. HSTS and upgrade-insecure-requests only
 * over HTTPS: on plain HTTP to a LAN address they would send the browser to a port that has no TLS.
 */
function helmetOptions(https: boolean) {
  return {
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // uPlot and Swagger UI set style attributes.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        baseUri: ["'self'"],
        upgradeInsecureRequests: https ? [] : null,
      },
    },
    frameguard: { action: 'deny' as const },
    hsts: https ? { maxAge: 180 * 86_400, includeSubDomains: false } : false,
  };
}

const undeclared = new WeakMap<FastifyInstance, string[]>();

/** Routes of an app that ROUTE_ACCESS does not declare (they need admin): app.test.ts expects none. */
export function undeclaredRoutesOf(app: FastifyInstance): readonly string[] {
  return undeclared.get(app) ?? [];
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
