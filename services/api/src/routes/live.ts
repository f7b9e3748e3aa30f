import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { stillAuthorized } from '../access.ts';
import { errorBody } from '../api-errors.ts';
import { errorResponseSchema } from '../api-schemas.ts';
import type { LiveReading } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { toApiReading } from '../reading-json.ts';

/** A client that stops reading is dropped rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * `GET /api/v1/live`: Server-Sent Events, one `event: reading` per reading as it arrives (SPEC
 * section 5). A comment line every `heartbeatMs` keeps proxies from closing an idle stream and
 * lets the client notice a dead one. The listener goes away with the connection. Streams open at
 * once are limited (settings.maxLiveConnections): one more is refused with 503 ERR_LIVE_FULL, as
 * each holds a socket and a listener.
 */
export const liveRoutes: FastifyPluginAsync<ApiContext> = async (app, { liveFeed, pilot, settings }) => {
  const { sseHeartbeatMs: heartbeatMs, maxLiveConnections: maxConnections } = settings;
  const known = new Set(pilot.meters.map((m) => m.id));
  const openStreams = new Set<() => void>();

  const querystring = z.object({
    meter: z
      .string()
      .transform((text, ctx) => {
        const ids = text.split(',').map((id) => id.trim()).filter((id) => id !== '');
        const unknown = ids.filter((id) => !known.has(id));
        if (ids.length === 0 || unknown.length > 0) {
          ctx.addIssue({
            code: 'custom',
            message: `must name meters of the pilot (${[...known].join(', ')}), separated by commas; unknown: "${unknown.join(', ') || text}"`,
          });
          return z.NEVER;
        }
        return new Set(ids);
      })
      .optional()
      .describe('Only these meters: one id, or several separated by commas. Default: every meter.'),
  });

  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/v1/live',
    {
      schema: {
        tags: ['live'],
        summary: 'Readings as they arrive (Server-Sent Events)',
        description:
          'A `text/event-stream`. Each reading the broker delivers is one `event: reading` whose `data` is the reading as JSON ' +
          '(wire names and units of SPEC section 1: flow m³/h, total m³, velocity m/s, pressure bar, temperature °C, battery %, rssi dBm; ' +
          `plus \`meterId\`). A comment line \`: heartbeat\` comes every ${heartbeatMs / 1000} s. ` +
          `At most ${maxConnections} streams are open at once; beyond that, 503 \`ERR_LIVE_FULL\`.`,
        produces: ['text/event-stream'],
        querystring,
        response: { 400: errorResponseSchema, 503: errorResponseSchema },
      },
    },
    (request, reply) => {
      const filter = request.query.meter;
      if (openStreams.size >= maxConnections) {
        request.log.warn({ maxConnections }, 'live stream refused: at the limit of open streams');
        reply
          .code(503)
          .header('retry-after', '30')
          .send(errorBody('ERR_LIVE_FULL', `The API already serves ${maxConnections} live streams, its limit. Close another dashboard tab, or try again in a minute`));
        return;
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // nginx buffers responses by default, which would hold events back.
        'x-accel-buffering': 'no',
      });
      res.write('retry: 3000\n: connected\n\n');

      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
        openStreams.delete(close);
        res.end();
      };
      const unsubscribe = liveFeed.onReading((reading, receivedAtMs) => {
        if (filter && !filter.has(reading.meterId)) return;
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          request.log.warn('SSE client is not reading; closing its stream');
          close();
          return;
        }
        const data: LiveReading = { meterId: reading.meterId, ...toApiReading(reading, receivedAtMs) };
        res.write(`event: reading\ndata: ${JSON.stringify(data)}\n\n`);
      });
      const heartbeat = setInterval(() => {
        // A revoked token's stream ends at the next heartbeat; the browser's reconnect then meets the 401.
        if (!stillAuthorized(request)) {
          close();
          return;
        }
        res.write(': heartbeat\n\n');
      }, heartbeatMs);
      openStreams.add(close);
      // 'close' on the response: the client went away or the socket failed.
      res.on('close', close);
    },
  );

  // End open streams before the server waits for its connections to finish.
  app.addHook('preClose', async () => {
    for (const close of [...openStreams]) close();
  });
};
