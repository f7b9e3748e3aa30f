import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { FlowPilotError, createMeterRegistry } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
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
import { registerDashboardRoutes } from './dashboard-route.ts';
import type { InfluxClient } from '@flowpilot/influx';
import { queryBuckets, queryLatestReading, queryLatestReadings, queryRawReadings } from './influx-readings.ts';
import type { LiveFeed } from './live-feed.ts';
import { registerLiveRoute } from './live-route.ts';
import { meterView } from './meter-view.ts';
import { registerMetricsRoutes } from './metrics-routes.ts';
import { reportRoute } from './report-route.ts';
import type { RejectionsProvider } from './metrics-routes.ts';
import type { ReadingCacheOptions } from './reading-cache.ts';

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
} as const satisfies Partial<ApiOptions>;

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
  const { pilot, influx, liveFeed, clock } = settings;
  const registry = createMeterRegistry(pilot);

  // With `loggerInstance` fastify types the instance by the logger's type; callers need only the
  // base FastifyInstance, whose `log` is the same pino logger.
  const base = { frameworkErrors: frameworkErrorHandler };
  const app = (settings.log ? Fastify({ ...base, loggerInstance: settings.log }) : Fastify({ ...base, logger: false })) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'FlowPilot API',
        version: settings.version,
        description:
          `Live flow and history of the flowmeter demonstration pilot "${pilot.pilot.name}". ` +
          'Times are ISO 8601 (with an offset) or epoch milliseconds; readings use the field names and units of the MQTT wire format. ' +
          'Errors are `{"error": {"code", "message"}}`.',
      },
      tags: [
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'pilot', description: 'The pilot, its meters and their live status' },
        { name: 'readings', description: 'Time series from InfluxDB' },
        { name: 'live', description: 'Readings as they arrive' },
        { name: 'metrics', description: 'SPEC section 4 performance metrics and OIML R49 accuracy' },
        { name: 'reports', description: 'The evaluator\'s exports (CSV)' },
      ],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: errorResponseSchema, 404: errorResponseSchema, 503: errorResponseSchema };

  api.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: healthSchema } } },
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
        response: { 200: readinessSchema, 503: readinessSchema },
      },
    },
    async (_request, reply) => {
      const influxCheck = await pingInflux(influx, settings.readyTimeoutMs);
      const brokerOk = liveFeed.connected();
      const extra = Object.fromEntries(Object.entries(options.readinessChecks ?? {}).map(([name, check]) => [name, check()]));
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
  registerLiveRoute(app, { liveFeed, meterIds: pilot.meters.map((m) => m.id), heartbeatMs: settings.sseHeartbeatMs });
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
  });
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
    // The InfluxDB client's messages name the server and the failure, never credentials.
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
