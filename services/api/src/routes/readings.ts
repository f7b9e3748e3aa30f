import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { validationError } from '../api-errors.ts';
import { bucketedReadingsSchema, errorResponseSchema, everySchema, meterIdParamsSchema, rawReadingsSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { toApiBucket, toApiReading } from '../reading-json.ts';
import { windowQuerySchema, windowText } from '../window.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** `GET /api/v1/meters/{id}/readings?from&to&every`: a meter's time series, raw or per bucket (SPEC section 5). */
export const readingsRoutes: FastifyPluginAsync<ApiContext> = async (app, { settings, windows, meterOr404 }) => {
  const { maxRawReadings, maxBuckets } = settings;
  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/v1/meters/:id/readings',
    {
      schema: {
        tags: ['readings'],
        summary: 'A meter\'s time series over [from, to)',
        description:
          'Without `every`: the raw readings, oldest first (wire names and units of SPEC section 1: flow m³/h, total m³, ' +
          `velocity m/s, pressure bar, temperature °C, battery %, rssi dBm), at most ${maxRawReadings}. ` +
          'With `every`: one point per non-empty bucket with mean, min and max flow (m³/h), the last total (m³) and the count. ' +
          windowText(windows, 'readings'),
        params: meterIdParamsSchema,
        querystring: windowQuerySchema(windows, 'readings', { every: everySchema }),
        response: { 200: rawReadingsSchema.or(bucketedReadingsSchema), 400: errorResponseSchema, 404: errorResponseSchema, 503: errorResponseSchema },
      },
    },
    async (request) => {
      const meter = meterOr404(request.params.id);
      const { window, every } = request.query;
      const base = { meterId: meter.id, from: iso(window.fromMs), to: iso(window.toMs) };

      if (every) {
        const bucketCount = Math.ceil((window.toMs - window.fromMs) / every.ms);
        if (bucketCount > maxBuckets) {
          throw validationError(`Query parameter "every" (${every.literal}) splits the window into ${bucketCount} buckets, more than ${maxBuckets}. Pass a longer "every" or a shorter window`);
        }
        const buckets = await app.readings.buckets(meter.id, window, every.ms);
        return { ...base, every: every.literal, buckets: buckets.map(toApiBucket) };
      }

      // One more than the cap tells "exactly the cap" from "over it" in one query.
      const readings = await app.readings.readings(meter.id, window, maxRawReadings + 1);
      if (readings.length > maxRawReadings) {
        throw validationError(`More than ${maxRawReadings} readings between ${base.from} and ${base.to}. Pass "every" (e.g. every=1h) to aggregate them, or narrow "from" and "to"`);
      }
      return { ...base, every: null, readings: readings.map((r) => toApiReading(r, r.receivedAtMs)) };
    },
  );
};
