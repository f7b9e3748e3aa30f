import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { pilotViewSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { meterView, storedLatest } from '../meter-view.ts';

/** `GET /api/v1/pilot`: the pilot and its meters, each with its live status (SPEC section 5). */
export const pilotRoutes: FastifyPluginAsync<ApiContext> = async (app, { pilot, liveFeed, clock }) => {
  app.withTypeProvider<ZodTypeProvider>().get(
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
      const stored = await storedLatest(app.readings, liveFeed, pilot.meters.map((m) => m.id), request.log);
      const nowMs = clock();
      return {
        ...pilot.pilot,
        meters: pilot.meters.map((meter) => meterView(meter, liveFeed.state(meter.id), stored.get(meter.id) ?? null, nowMs)),
      };
    },
  );
};
