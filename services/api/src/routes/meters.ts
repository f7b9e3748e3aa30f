import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponseSchema, meterIdParamsSchema, meterViewSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { meterView, storedLatest } from '../meter-view.ts';

/** `GET /api/v1/meters/{id}`: one meter with its latest reading (SPEC section 5). */
export const meterRoutes: FastifyPluginAsync<ApiContext> = async (app, { liveFeed, clock, meterOr404 }) => {
  app.withTypeProvider<ZodTypeProvider>().get(
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
      const stored = await storedLatest(app.readings, liveFeed, [meter.id], request.log);
      return meterView(meter, liveFeed.state(meter.id), stored.get(meter.id) ?? null, clock());
    },
  );
};
