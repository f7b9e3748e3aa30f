import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { PilotConfig } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { ApiSettings } from '../options.ts';

/** The OpenAPI document at /docs/json, generated from the routes' zod schemas, and Swagger UI at /docs (SPEC section 5). */
export async function registerOpenApi(app: FastifyInstance, settings: ApiSettings, pilot: PilotConfig): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'FlowPilot API',
        version: settings.version,
        description:
          `Live flow and history of the flowmeter demonstration pilot "${pilot.pilot.name}". ` +
          'Times are ISO 8601 (with an offset) or epoch milliseconds, and a date (YYYY-MM-DD) is the start of that day in the pilot\'s time zone; ' +
          'readings use the field names and units of the MQTT wire format. ' +
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
        { name: 'alerts', description: 'Alerts of SPEC section 9: stale, offline, leak, alarm, low_battery, totalizer, rejected, store_lag, influx_down' },
        { name: 'access', description: 'Signing in to the dashboard with an API token (SPEC section 8)' },
        { name: 'dead letters', description: 'Messages the broker rejected, and their replay (admin)' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token: `flowpilot tokens add <name> --role viewer|evaluator|admin`' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
}
