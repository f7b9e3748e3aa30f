import type { FastifyPluginAsync } from 'fastify';
import type { ApiContext } from '../context.ts';

/** `GET /metrics`: the pipeline's own counters for Prometheus, when the process around the API has a registry (ApiOptions.metrics). */
export const prometheusRoutes: FastifyPluginAsync<ApiContext> = async (app, { settings }) => {
  const registry = settings.metrics;
  if (!registry) return;
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
};
