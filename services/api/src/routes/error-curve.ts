import { ERROR_CONVENTION } from '@flowpilot/metrics';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponseSchema, meterIdParamsSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { binsSchema, DEFAULT_ERROR_CURVE_BINS, errorCurveResponseSchema } from '../metrics-schemas.ts';
import { windowQuerySchema, windowText } from '../window.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** `GET /api/v1/meters/{id}/error-curve?from&to&bins`: a test meter's error curve against its reference (SPEC section 4). */
export const errorCurveRoutes: FastifyPluginAsync<ApiContext> = async (app, { windows, metrics }) => {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/v1/meters/:id/error-curve',
    {
      schema: {
        tags: ['metrics'],
        summary: 'The error curve of a test meter against its reference',
        description:
          'Intervals of the test meter\'s Δ binned by the reference flow rate q into log-spaced bins from Q1 to Q4; each bin\'s error ' +
          `(${ERROR_CONVENTION}), interval count and the MPE at its mid-point (OIML R49). ${windowText(windows, 'metrics')}`,
        params: meterIdParamsSchema,
        querystring: windowQuerySchema(windows, 'metrics', { bins: binsSchema }),
        response: { 200: errorCurveResponseSchema, 400: errorResponseSchema, 404: errorResponseSchema, 503: errorResponseSchema },
      },
    },
    async (request) => {
      const { window, bins } = request.query;
      const curve = await metrics.errorCurve(request.params.id, window, bins ?? DEFAULT_ERROR_CURVE_BINS);
      return { meterId: curve.meter.id, reference: curve.reference.id, from: iso(window.fromMs), to: iso(window.toMs), clamped: window.clamped, convention: ERROR_CONVENTION, bins: curve.bins };
    },
  );
};
