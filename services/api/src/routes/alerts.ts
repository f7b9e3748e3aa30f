import { WINDOW_TIME_HINT } from '@flowpilot/metrics';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ALERT_RULES } from '../alerts/types.ts';
import { validationError } from '../api-errors.ts';
import { errorResponseSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { windowTimeSchema } from '../window.ts';

export const DEFAULT_ALERTS_LIMIT = 500;
export const MAX_ALERTS_LIMIT = 10_000;

const isoTime = (description: string) => z.string().describe(`${description} (ISO 8601, UTC)`);

export const alertSchema = z
  .object({
    id: z.string().describe('Stable over the alert\'s life: a condition that returns within `flapMinutes` of its resolution reopens the same alert'),
    rule: z.enum(ALERT_RULES).describe('The rule of SPEC section 9 that raised it'),
    meterId: z.string().nullable().describe('The meter; null for a rule about the pipeline (store_lag, influx_down)'),
    state: z.enum(['firing', 'resolved']),
    since: isoTime('When its condition began to hold'),
    until: isoTime('When it was resolved; null while firing').nullable(),
    message: z.string().describe('What is wrong, in English'),
    details: z.record(z.string(), z.union([z.string(), z.number(), z.null()])).describe('The figures behind it: threshold, value, alarm, night, date, …'),
  })
  .describe('An alert (SPEC section 9)');

export const alertsResponseSchema = z.object({
  alerts: z.array(alertSchema).describe('Newest first (by `since`)'),
  disabled: z
    .string()
    .optional()
    .describe('Present only when this API process evaluates no alerts (started without a data dir to keep them in): why. `alerts` is then empty'),
});

/** `GET /api/v1/alerts?state&from&to` (SPEC sections 5 and 9): active and past alerts, newest first. */
export const alertRoutes: FastifyPluginAsync<ApiContext> = async (app, { alerts, alertsOff, pilot }) => {
  const time = (description: string) => windowTimeSchema(pilot.pilot.timezone, description);

  const thresholds = pilot.alerts;
  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/v1/alerts',
    {
      schema: {
        tags: ['alerts'],
        summary: 'Active and past alerts, newest first',
        description:
          'The alerts of SPEC section 9, evaluated continuously by this API process and kept across its restarts: `stale` (no reading for ' +
          `${thresholds.staleIntervals} of the meter's intervals), \`offline\` (its status says online: false), \`leak\` (the latest night's mean flow ` +
          'above the meter\'s `leakM3h`), `alarm` (its newest reading carries reverse_flow, empty_pipe, leak, tamper, sensor_fault or overload), ' +
          `\`low_battery\` (below ${thresholds.lowBatteryPct} %), \`totalizer\` (|totalizer consistency| of the last local day above ${thresholds.totalizerPct} %), ` +
          `\`rejected\` (more than ${thresholds.rejectedPerHour} dead letters of a meter in the last hour), \`store_lag\` (a reading waited over ` +
          `${thresholds.storeLagSec} s for InfluxDB) and \`influx_down\`; thresholds from the pilot file's \`alerts:\` section, per meter where it says so. ` +
          `A condition that returns within ${thresholds.flapMinutes} minutes of its resolution reopens the same alert. ` +
          'With `from` and/or `to`: the alerts firing at some time in [from, to). ' +
          'An API process started without a data dir evaluates no alerts: it answers an empty list with `disabled` saying why.',
        querystring: z.object({
          state: z.enum(['firing', 'resolved', 'all']).optional().describe('`firing` (active), `resolved` (past) or `all` (default)'),
          from: time(`Only alerts still firing at or after this time: ${WINDOW_TIME_HINT}`),
          to: time(`Only alerts that began before this time: ${WINDOW_TIME_HINT}`),
          limit: z.coerce.number().int().min(1).max(MAX_ALERTS_LIMIT).optional().describe(`At most this many, newest first; default ${DEFAULT_ALERTS_LIMIT}`),
        }),
        response: { 200: alertsResponseSchema, 400: errorResponseSchema },
      },
    },
    async (request) => {
      const { state, from, to, limit } = request.query;
      if (from !== undefined && to !== undefined && to <= from) {
        throw validationError(`Query parameter "to" (${new Date(to).toISOString()}) must be after "from" (${new Date(from).toISOString()})`);
      }
      // Not an error of the caller's (the dashboard asks on every page): an empty list that says why.
      if (!alerts) return { alerts: [], disabled: alertsOff ?? 'Alerts are not evaluated by this API process' };
      const list = alerts.engine.list({
        limit: limit ?? DEFAULT_ALERTS_LIMIT,
        ...(state === 'firing' || state === 'resolved' ? { state } : {}),
        ...(from !== undefined ? { fromMs: from } : {}),
        ...(to !== undefined ? { toMs: to } : {}),
      });
      return { alerts: list };
    },
  );
};
