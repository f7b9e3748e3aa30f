import { ERROR_CONVENTION } from '@flowpilot/metrics';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponseSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { dailyMetricsResponseSchema, metricsResponseSchema, perSchema } from '../metrics-schemas.ts';
import { windowQuerySchema, windowText } from '../window.ts';

const DAY_MS = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();

/** `GET /api/v1/metrics?from&to&per`: SPEC section 4 for every meter, over the window or per local day. */
export const metricsRoutes: FastifyPluginAsync<ApiContext> = async (app, { pilot, windows, metrics, clock, settings }) => {
  const warmupDays = settings.metricsWarmupDays ?? 0;
  if (warmupDays > 0 && metrics.cached) {
    app.addHook('onListen', async () => {
      const toMs = clock();
      // Not awaited: the API answers meanwhile; a failure only means a slower first request.
      void metrics.metrics({ fromMs: toMs - warmupDays * DAY_MS, toMs }).catch((error: unknown) => app.log.debug({ err: (error as Error).message }, 'metrics cache warm-up failed'));
    });
  }
  const freshness = metrics.cached
    ? 'Computed from what InfluxDB holds at the time of the request: days already read are kept in memory, and every request first checks them ' +
      'against InfluxDB (or the ingest\'s log of the days it wrote) and reads again any day that changed, so no answer rests on stale data.'
    : 'Computed from what InfluxDB holds at the time of the request, read on every request.';

  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/v1/metrics',
    {
      schema: {
        tags: ['metrics'],
        summary: 'SPEC section 4 performance metrics of every meter over [from, to), or per local day',
        description:
          'Per meter: expected, received, completeness, delivery, gaps, latency (nearest-rank p50/p95/p99, max), volume, flow, ' +
          'minimum night flow (forward flow over local nights of the pilot\'s time zone, each night\'s reverse volume beside it), ' +
          'totalizer consistency, alarms and rejected messages (null when this API has no dead-letter store at hand: unknown, not 0); ' +
          `for test meters, accuracy against the reference per OIML R49 zone with its MPE and verdict. Error convention: ${ERROR_CONVENTION}, ` +
          `i.e. indicated minus reference, over reference, in % (positive: the meter under test reads high). ${windowText(windows, 'metrics')} ` +
          'With `per=day`: the same figures for each local day of the window (`days`), each exactly what the window of that day alone gives. ' +
          freshness,
        querystring: windowQuerySchema(windows, 'metrics', { per: perSchema }),
        response: { 200: metricsResponseSchema.or(dailyMetricsResponseSchema), 400: errorResponseSchema, 404: errorResponseSchema, 503: errorResponseSchema },
      },
    },
    async (request) => {
      const { window, per } = request.query;
      const envelope = { pilotId: pilot.pilot.id, from: iso(window.fromMs), to: iso(window.toMs), clamped: window.clamped, convention: ERROR_CONVENTION };
      if (per === 'day') {
        const days = await metrics.dailyMetrics(window);
        return {
          ...envelope,
          per: 'day' as const,
          timezone: pilot.pilot.timezone,
          days: days.map((day) => ({ date: day.date, from: iso(day.window.fromMs), to: iso(day.window.toMs), meters: day.meters })),
        };
      }
      return { ...envelope, meters: await metrics.metrics(window) };
    },
  );
};
