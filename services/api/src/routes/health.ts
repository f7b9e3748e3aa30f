import { isIP } from 'node:net';
import { TIMED_OUT, withTimeout } from '@flowpilot/async';
import type { InfluxClient } from '@flowpilot/influx';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { healthSchema, readinessSchema } from '../api-schemas.ts';
import type { Readiness } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';

/** `GET /healthz` (liveness) and `GET /readyz` (readiness: InfluxDB and the broker reachable), SPEC section 5. Open to anyone (SPEC section 8). */
export const healthRoutes: FastifyPluginAsync<ApiContext> = async (app, { influx, liveFeed, settings }) => {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Liveness: the process answers', security: [], response: { 200: healthSchema } } },
    async () => ({ status: 'ok' as const }),
  );

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
        Object.entries(settings.readinessChecks ?? {}).map(([name, check]) => {
          const result = check();
          return [name, result.reason === undefined ? result : { ...result, reason: withoutAddresses(result.reason) }];
        }),
      );
      const ok = influxCheck.ok && brokerOk && Object.values(extra).every((check) => check.ok);
      const body: Readiness = { status: ok ? 'ok' : 'degraded', checks: { ...extra, influx: influxCheck, broker: { ok: brokerOk } } };
      return reply.code(ok ? 200 : 503).send(body);
    },
  );
};

async function pingInflux(influx: InfluxClient, timeoutMs: number): Promise<Readiness['checks']['influx']> {
  try {
    const answer = await withTimeout(influx.ping(), timeoutMs);
    if (answer === TIMED_OUT) return { ok: false, error: `no answer to ping within ${timeoutMs} ms` };
    return { ok: true, version: answer.version };
  } catch (error) {
    // The InfluxDB client's messages name the server and the failure; /readyz is public, so the address goes.
    return { ok: false, error: withoutAddresses(error instanceof Error ? error.message : String(error)) };
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

