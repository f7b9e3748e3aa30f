import { FlowPilotError, type DeadLetter } from '@flowpilot/schema';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { principalOf } from '../access.ts';
import { errorResponseSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';

/** A dead letter as the durable store keeps it. */
export type DeadLetterRecord = DeadLetter;

export interface DeadLetterFilter {
  code?: string;
  meterId?: string;
}

export interface ReplayOutcome {
  replayed: number;
  records: number;
  stillRejected: Record<string, number>;
}

/**
 * Dead letters for the admin routes (createApi's `deadLetters` option): the CLI wires the
 * durable store's listing and `flowpilot deadletters replay`'s function.
 */
export interface DeadLetterAccess {
  /** The newest first or oldest first, as the store lists them; at most `limit`. */
  list(filter: DeadLetterFilter & { limit: number }): readonly DeadLetterRecord[] | Promise<readonly DeadLetterRecord[]>;
  /** Validates the matching dead letters again and moves those that now pass into the spool. */
  replay(filter: DeadLetterFilter): Promise<ReplayOutcome>;
}

export const DEFAULT_DEAD_LETTER_LIMIT = 50;
export const MAX_DEAD_LETTER_LIMIT = 1000;

const CODE = /^ERR_[A-Z_]{1,60}$/;

const filterShape = {
  code: z.string().regex(CODE, 'must be an error code such as ERR_METER_UNKNOWN').optional().describe('Only letters rejected with this code'),
  meter: z.string().min(1).max(200).optional().describe('Only letters of this meter (from the topic)'),
};

const deadLetterSchema = z.object({
  id: z.number().int(),
  receivedAt: z.string().describe('When the broker received it (ISO 8601, UTC)'),
  topic: z.string(),
  meterId: z.string().nullable(),
  clientId: z.string().nullable(),
  code: z.string().describe('Why it was rejected: a code of the error catalogue'),
  reason: z.string(),
  payload: z.string().describe('The message as received (UTF-8)'),
  replayedAt: z.string().nullable().describe('When a replay moved it into the spool, or null'),
});

const replayOutcomeSchema = z.object({
  replayed: z.number().int().describe('Letters that passed validation and now wait in the durable store for InfluxDB'),
  records: z.number().int().describe('Readings those letters held'),
  stillRejected: z.record(z.string(), z.number().int()).describe('Letters that still fail, per code'),
});

const notConfigured = (): FlowPilotError =>
  new FlowPilotError(
    'ERR_NOT_FOUND',
    'Dead letters are not available from this API process: it runs without the durable store. Use the API of `flowpilot start`, or `flowpilot deadletters list|replay` on the host',
  );

/** `GET /api/v1/deadletters` and `POST /api/v1/deadletters/replay` (admin, SPEC section 8). */
export const deadLetterRoutes: FastifyPluginAsync<ApiContext> = async (app, { deadLetters }) => {
  const api = app.withTypeProvider<ZodTypeProvider>();
  // One replay at a time: two at once would both read the same letters before either marks them.
  let replaying: Promise<unknown> = Promise.resolve();

  api.get(
    '/api/v1/deadletters',
    {
      schema: {
        tags: ['dead letters'],
        summary: 'Messages the broker rejected, with their reasons (admin)',
        description:
          'Each rejected MQTT message (SPEC section 6) with its topic, code, reason and payload as received. ' +
          `At most \`limit\` (default ${DEFAULT_DEAD_LETTER_LIMIT}, at most ${MAX_DEAD_LETTER_LIMIT}).`,
        querystring: z.object({
          ...filterShape,
          limit: z.coerce.number().int().min(1).max(MAX_DEAD_LETTER_LIMIT).optional().describe(`How many; default ${DEFAULT_DEAD_LETTER_LIMIT}`),
        }),
        response: { 200: z.object({ deadLetters: z.array(deadLetterSchema) }), 400: errorResponseSchema, 404: errorResponseSchema },
      },
    },
    async (request) => {
      if (!deadLetters) throw notConfigured();
      const { code, meter, limit } = request.query;
      const letters = await deadLetters.list({ limit: limit ?? DEFAULT_DEAD_LETTER_LIMIT, ...(code ? { code } : {}), ...(meter ? { meterId: meter } : {}) });
      return {
        deadLetters: letters.map((letter) => ({
          id: letter.id,
          receivedAt: new Date(letter.receivedAtMs).toISOString(),
          topic: letter.topic,
          meterId: letter.meterId,
          clientId: letter.clientId,
          code: letter.code,
          reason: letter.reason,
          payload: letter.payload,
          replayedAt: letter.replayedAtMs === null ? null : new Date(letter.replayedAtMs).toISOString(),
        })),
      };
    },
  );

  api.post(
    '/api/v1/deadletters/replay',
    {
      schema: {
        tags: ['dead letters'],
        summary: 'Validate dead letters again and accept those that now pass (admin)',
        description:
          'After fixing the cause (say, adding an unknown meter to the pilot file), replays the matching dead letters through the broker\'s ' +
          'validation; those that pass go into the durable store and on to InfluxDB, each at most once. Body: `{code?, meter?}` (JSON, optional).',
        body: z.object(filterShape).nullish(),
        response: { 200: replayOutcomeSchema, 400: errorResponseSchema, 404: errorResponseSchema },
      },
    },
    async (request) => {
      if (!deadLetters) throw notConfigured();
      const { code, meter } = request.body ?? {};
      const filter: DeadLetterFilter = { ...(code ? { code } : {}), ...(meter ? { meterId: meter } : {}) };
      const run = replaying.then(() => deadLetters.replay(filter));
      replaying = run.catch(() => undefined);
      const outcome = await run;
      request.log.warn({ token: principalOf(request)?.name ?? null, filter, outcome }, 'dead letters replayed over the API');
      return outcome;
    },
  );
};
