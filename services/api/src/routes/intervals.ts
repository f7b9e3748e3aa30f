import { Readable } from 'node:stream';
import { ERROR_CONVENTION } from '@flowpilot/metrics';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { meterIdParamsSchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { attachment } from '../csv.ts';
import { intervalsCsv, intervalsCsvSha256 } from '../intervals-csv.ts';
import { windowQuerySchema, windowText } from '../window.ts';

const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** `GET /api/v1/meters/{id}/intervals.csv?from&to`: a test meter's paired intervals, the evidence of its accuracy (SPEC sections 4 and 5). */
export const intervalsRoutes: FastifyPluginAsync<ApiContext> = async (app, { windows, metrics }) => {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/v1/meters/:id/intervals.csv',
    {
      schema: {
        tags: ['metrics'],
        summary: "A test meter's paired intervals as CSV (the exclusion log)",
        description:
          'Every interval between two consecutive readings of the slower meter (the grid) inside W: both totals at both ends, both volumes, the ' +
          "interval's error, the reference's flow at both ends, the temperature and whose it is, the zone, the R49 test-flow bin, the MPE, and, " +
          `for an interval that does not count, why (gap, missing, reset, alarm, reverse, belowQ1, overload, unstable). ${ERROR_CONVENTION}. ` +
          'Summing volume_test_m3 and volume_ref_m3 over the rows of a zone or bin with no `excluded` gives its error. RFC 4180, streamed; ' +
          `the X-Content-SHA256 header and the PDF report carry the SHA-256 of the bytes. ${windowText(windows, 'metrics')}`,
        params: meterIdParamsSchema,
        querystring: windowQuerySchema(windows, 'metrics'),
        produces: ['text/csv'],
      },
    },
    async (request, reply) => {
      const { window } = request.query;
      const { meter, paired } = await metrics.pairedIntervals(request.params.id, window);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', attachment(`${meter.id}_intervals_${isoDate(window.fromMs)}_${isoDate(window.toMs)}.csv`))
        .header('x-content-sha256', intervalsCsvSha256(paired))
        .send(Readable.from(intervalsCsv(paired)));
    },
  );
};
