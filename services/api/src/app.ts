import { createReadingsRepository } from '@flowpilot/influx';
import { FlowPilotError, createMeterRegistry } from '@flowpilot/schema';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { alertsOffReason, createApiAlerts } from './alerts/api-alerts.ts';
import { frameworkErrorHandler, installErrorHandlers } from './api-errors.ts';
import type { ApiContext } from './context.ts';
import { createMetricsService } from './metrics-service.ts';
import { createInProcessMetricsSource } from './metrics-source.ts';
import type { MetricsSource } from '@flowpilot/report';
import { BODY_LIMIT_BYTES, resolveSettings } from './options.ts';
import type { ApiOptions, ApiSettings } from './options.ts';
import { registerOpenApi } from './plugins/openapi.ts';
import { registerSecurity } from './plugins/security.ts';
import { ROUTES } from './routes/index.ts';
import { createSignInPageRenderer } from './sign-in-page.ts';

export { DEFAULT_API_OPTIONS } from './options.ts';
export type { ApiOptions, ReadinessCheck } from './options.ts';

/**
 * Builds the HTTP API of SPEC section 5 without listening (STYLE habit 1): `main` listens,
 * tests use `inject()` or listen on port 0. Options, then the plugins every route shares, then
 * the routes, one plugin per resource (routes/).
 */
export async function createApi(options: ApiOptions): Promise<FastifyInstance> {
  const settings = resolveSettings(options);
  const { pilot, influx, clock } = settings;
  const app = createFastify(settings);

  const readings = createReadingsRepository(influx);
  app.decorate('readings', readings);
  const signIn = createSignInPageRenderer();
  const access = await registerSecurity(app, settings, signIn);
  undeclared.set(app, access.undeclaredRoutes);
  await registerOpenApi(app, settings, pilot);

  const registry = createMeterRegistry(pilot);
  const windows = { clock, maxWindowDays: settings.maxWindowDays, timezone: pilot.pilot.timezone };
  // The day cache's age limit runs on the API's clock, like every other time here (STYLE habit 7).
  const readingCache = settings.readingCache === false ? false : { clock, ...settings.readingCache };
  const metrics = createMetricsService({ pilot, readings, rejections: settings.rejections, readingCache });
  // The PDF report reads InfluxDB itself, never the API's reading cache (issue 11): a report an
  // evaluator signs must not rest on days kept in memory between requests, however carefully they
  // are validated. Each report gets a day cache of its own that starts empty and is dropped with the
  // report, so its window, its local days, the error curves and the intervals' hashes read each
  // meter-day from InfluxDB once, at the time of the report (without it a 100-meter week took 8.6 s).
  const reportMetricsSource = (): MetricsSource =>
    createInProcessMetricsSource(
      createMetricsService({ pilot, readings, rejections: settings.rejections, readingCache: settings.readingCache === false ? false : { clock } }),
      windows,
    );
  // SPEC section 9: evaluated from the ready app on (so inject() and listen() both start it), stopped with it.
  const alerts = createApiAlerts(settings.alerts, {
    pilot,
    liveFeed: settings.liveFeed,
    metrics,
    readings,
    influx,
    clock,
    rejections: settings.rejections,
    readinessChecks: settings.readinessChecks,
    readyTimeoutMs: settings.readyTimeoutMs,
    log: app.log,
  });
  if (alerts) {
    app.addHook('onReady', async () => alerts.start());
    app.addHook('onClose', async () => alerts.close());
  }
  const context: ApiContext = {
    pilot,
    meterOr404: (id) => {
      const meter = registry.get(id);
      if (!meter) throw new FlowPilotError('ERR_METER_NOT_FOUND', `No meter "${id}" in pilot ${pilot.pilot.id}. GET /api/v1/pilot lists its meters`);
      return meter;
    },
    liveFeed: settings.liveFeed,
    clock,
    settings,
    windows,
    metrics,
    reportMetricsSource,
    influx,
    tokens: settings.tokens,
    signIn,
    deadLetters: settings.deadLetters,
    alerts,
    alertsOff: alertsOffReason(settings.alerts),
  };
  for (const routes of ROUTES) await app.register(routes, context);
  return app;
}

/** The Fastify instance with the limits of the settings, zod for validation and serialization, and the error shape of SPEC section 5. */
function createFastify(settings: ApiSettings): FastifyInstance {
  // Node checks request timeouts every 30 s by default; check often enough that the timeout means what it says.
  const checkingIntervalMs = Math.max(100, Math.min(30_000, Math.floor(settings.requestTimeoutMs / 3)));
  const base = {
    frameworkErrors: frameworkErrorHandler,
    // A client that trickles its request (slow loris) or idles is cut off instead of holding a socket.
    requestTimeout: settings.requestTimeoutMs,
    connectionTimeout: settings.connectionTimeoutMs,
    bodyLimit: BODY_LIMIT_BYTES,
    ...(settings.https
      ? { https: { key: settings.https.key, cert: settings.https.cert, connectionsCheckingInterval: checkingIntervalMs } }
      : { http: { connectionsCheckingInterval: checkingIntervalMs } }),
  };
  // With `loggerInstance` fastify types the instance by the logger's type; callers need only the
  // base FastifyInstance, whose `log` is the same pino logger.
  const app = (settings.log ? Fastify({ ...base, loggerInstance: settings.log }) : Fastify({ ...base, logger: false })) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);
  return app;
}

const undeclared = new WeakMap<FastifyInstance, string[]>();

/** Routes of an app that ROUTE_ACCESS does not declare (they need admin): app.test.ts expects none. */
export function undeclaredRoutesOf(app: FastifyInstance): readonly string[] {
  return undeclared.get(app) ?? [];
}
