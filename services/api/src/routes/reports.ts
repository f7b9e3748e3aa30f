import { PassThrough, Readable } from 'node:stream';
import { ERROR_CONVENTION } from '@flowpilot/metrics';
import { createPilotReportPdf, reportLanguages } from '@flowpilot/report';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { everySchema } from '../api-schemas.ts';
import type { ApiContext } from '../context.ts';
import { attachment, EXCEL_SEMICOLON, RFC4180 } from '../csv.ts';
import { metricsCsv, readingsCsv } from '../reports-csv.ts';
import { metricsWorkbook, writeReadingsXlsx, XLSX_CONTENT_TYPE } from '../reports-xlsx.ts';
import type { XlsxReportInfo } from '../reports-xlsx.ts';
import { windowQuerySchema, windowText } from '../window.ts';

const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** `excel=true` of the CSV routes (issue 14): the dialect of csv.ts EXCEL_SEMICOLON instead of RFC 4180. */
const excelSchema = z
  .enum(['true', 'false'])
  .transform((value) => value === 'true')
  .optional()
  .describe(
    '`true`: CSV for Excel in a locale whose decimal separator is a comma (Russian, Kazakh, most of Europe): a UTF-8 byte-order mark, ' +
      'a first line `sep=;`, `;` between fields and a decimal comma in numbers (`1,5`). This is not RFC 4180. Default `false`: RFC 4180 as described.',
  );

/**
 * The evaluator's exports (SPEC section 5): `GET /api/v1/reports/metrics.csv` and `.xlsx`,
 * `readings.csv` and `.xlsx` (both streamed) and `pilot.pdf` (rendered by @flowpilot/report from
 * the in-process MetricsSource).
 */
export const reportRoutes: FastifyPluginAsync<ApiContext> = async (app, context) => {
  const { pilot, windows, metrics, meterOr404 } = context;
  const api = app.withTypeProvider<ZodTypeProvider>();
  const xlsxInfo = (window: XlsxReportInfo['window']): XlsxReportInfo => ({
    pilot: { id: pilot.pilot.id, name: pilot.pilot.name, timezone: pilot.pilot.timezone },
    window,
    generatedAtMs: context.clock(),
    softwareVersion: context.settings.version,
  });

  api.get(
    '/api/v1/reports/metrics.csv',
    {
      schema: {
        tags: ['reports'],
        summary: 'The metrics table as CSV, one row per meter',
        description:
          `The numbers of /api/v1/metrics as RFC 4180 CSV (CRLF, UTF-8); test meters add each zone's error, MPE, verdict and interval count (${ERROR_CONVENTION}). ` +
          `Text cells that start with = + - @ tab or CR are prefixed with ' (formula injection). ${windowText(windows, 'metrics')}`,
        querystring: windowQuerySchema(windows, 'metrics', { excel: excelSchema }),
        produces: ['text/csv'],
      },
    },
    async (request, reply) => {
      const { window, excel } = request.query;
      const meters = await metrics.metrics(window);
      const body = metricsCsv(meters, excel ? EXCEL_SEMICOLON : RFC4180);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', attachment(`${pilot.pilot.id}_metrics_${isoDate(window.fromMs)}_${isoDate(window.toMs)}.csv`))
        .send(body);
    },
  );

  api.get(
    '/api/v1/reports/readings.csv',
    {
      schema: {
        tags: ['reports'],
        summary: 'Readings as CSV, streamed',
        description:
          'The raw readings (or, with `every`, per-bucket mean/min/max flow, last total and count) of one meter or all, oldest first, ' +
          'as RFC 4180 CSV. Streamed: InfluxDB is read one day at a time and each day is written as it comes, so any window fits in memory. ' +
          `${windowText(windows, 'readingsExport')} A failure after the first bytes ends the download early (the status is already sent).`,
        querystring: windowQuerySchema(windows, 'readingsExport', {
          meter: z.string().min(1).optional().describe('Meter id; all meters of the pilot when absent.'),
          every: everySchema,
          excel: excelSchema,
        }),
        produces: ['text/csv'],
      },
    },
    async (request, reply) => {
      const { window, meter, every, excel } = request.query;
      const meters = meter === undefined ? pilot.meters : [meterOr404(meter)];
      const name = `${meter ?? pilot.pilot.id}_readings_${isoDate(window.fromMs)}_${isoDate(window.toMs)}${every ? `_${every.literal}` : ''}.csv`;
      const stream = Readable.from(readingsCsv(app.readings, meters, window.fromMs, window.toMs, every, excel ? EXCEL_SEMICOLON : RFC4180));
      stream.on('error', (error) => request.log.error({ err: error }, 'readings.csv stopped early'));
      return reply.type('text/csv; charset=utf-8').header('content-disposition', attachment(name)).send(stream);
    },
  );

  api.get(
    '/api/v1/reports/metrics.xlsx',
    {
      schema: {
        tags: ['reports'],
        summary: 'The metrics table as an Excel workbook',
        description:
          'The table of metrics.csv as an Excel workbook (.xlsx): sheet "Metrics", one row per meter with the numbers of /api/v1/metrics as numbers ' +
          '(ratios shown as %, units in the number formats), `from` and `to` as Excel dates in the pilot\'s local time (the header names the zone: ' +
          `Excel stores none), the header row frozen; sheet "About": the pilot, the window in local time and UTC, the error convention (${ERROR_CONVENTION}), ` +
          `when it was generated. ${windowText(windows, 'metrics')}`,
        querystring: windowQuerySchema(windows, 'metrics'),
        produces: [XLSX_CONTENT_TYPE],
      },
    },
    async (request, reply) => {
      const { window } = request.query;
      const meters = await metrics.metrics(window);
      const body = Buffer.from(await metricsWorkbook(meters, xlsxInfo(window)).xlsx.writeBuffer());
      return reply
        .type(XLSX_CONTENT_TYPE)
        .header('content-disposition', attachment(`${pilot.pilot.id}_metrics_${isoDate(window.fromMs)}_${isoDate(window.toMs)}.xlsx`))
        .send(body);
    },
  );

  api.get(
    '/api/v1/reports/readings.xlsx',
    {
      schema: {
        tags: ['reports'],
        summary: 'Readings as an Excel workbook, a sheet per meter, streamed',
        description:
          'The readings of readings.csv as an Excel workbook (.xlsx): a sheet per meter (named by its id, cut to Excel\'s 31 characters), raw readings ' +
          'or, with `every`, per-bucket mean/min/max flow, last total and count; numbers as numbers, times as Excel dates in the pilot\'s local time ' +
          '(the header names the zone: Excel stores none); a last sheet "About" names the pilot, the window in local time and UTC and each sheet\'s meter. ' +
          'Streamed: InfluxDB is read one day at a time, one meter after another, and written as it comes, so any window fits in memory. ' +
          `${windowText(windows, 'readingsExport')} A failure after the first bytes ends the download early (the status is already sent).`,
        querystring: windowQuerySchema(windows, 'readingsExport', {
          meter: z.string().min(1).optional().describe('Meter id: a workbook of its sheet only. Default: every meter of the pilot.'),
          every: everySchema,
        }),
        produces: [XLSX_CONTENT_TYPE],
      },
    },
    async (request, reply) => {
      const { window, meter, every } = request.query;
      const meters = meter === undefined ? pilot.meters : [meterOr404(meter)];
      const name = `${meter ?? pilot.pilot.id}_readings_${isoDate(window.fromMs)}_${isoDate(window.toMs)}${every ? `_${every.literal}` : ''}.xlsx`;
      reply.type(XLSX_CONTENT_TYPE).header('content-disposition', attachment(name));
      // Fastify answers HEAD by reading the body and dropping it: a whole export for nothing.
      if (request.method === 'HEAD') return reply.send();
      // A megabyte of room between the zip and the socket; writeReadingsXlsx waits when it is full.
      const body = new PassThrough({ highWaterMark: 1 << 20 });
      writeReadingsXlsx(body, { readings: app.readings, meters, window, every, info: xlsxInfo(window) }).catch((error: unknown) => {
        request.log.error({ err: error }, 'readings.xlsx stopped early');
        body.destroy(error instanceof Error ? error : new Error(String(error)));
      });
      return reply.send(body);
    },
  );

  const languages = reportLanguages();
  // The cover names the data source; a URL's credentials never reach a report.
  const source = new URL(context.influx.config.url);
  source.username = '';
  source.password = '';
  const dataSource = `InfluxDB ${source.origin}, database ${context.influx.config.database}`;

  api.get(
    '/api/v1/reports/pilot.pdf',
    {
      schema: {
        tags: ['reports'],
        summary: 'The evaluator\'s report as PDF',
        description:
          'An archival PDF (PDF/A-2b, fonts embedded): cover, summary of the verdicts per meter under test, one section per meter (the evidence of each ' +
          'zone\'s and test-flow bin\'s verdict: intervals, reference volume, error, MPE, expanded uncertainty U and its budget, water temperature, ' +
          'the rule that decided; exclusions by reason; register resolutions; the reference\'s calibration; the error curve against the MPE of each ' +
          'bin; daily volume and completeness; key figures), data-quality notes, traceability (software version and commit, SHA-256 of the pilot ' +
          'file and of each test meter\'s intervals.csv for the window, when the data was read), the methodology of SPEC section 4 and a ' +
          'signature block. Computed from InfluxDB without the API\'s reading cache. Days are local to the pilot\'s time zone. ' +
          windowText(windows, 'metrics'),
        produces: ['application/pdf'],
        querystring: windowQuerySchema(windows, 'metrics', {
          lang: z
            .enum(languages.map((l) => l.code) as [string, ...string[]])
            .optional()
            .describe(`The report's language: ${languages.map((l) => `\`${l.code}\` (${l.name})`).join(', ')}. Default: \`en\``),
        }),
      },
    },
    async (request, reply) => {
      const { window } = request.query;
      const lang = request.query.lang ?? 'en';
      const pdf = await createPilotReportPdf({
        pilot: { ...pilot.pilot, meters: pilot.meters },
        metrics: context.reportMetricsSource(),
        fromMs: window.fromMs,
        toMs: window.toMs,
        lang,
        softwareVersion: context.settings.version,
        commit: context.settings.provenance?.commit ?? 'unknown',
        pilotFileSha256: context.settings.provenance?.pilotFileSha256 ?? null,
        dataSource,
        clock: context.clock,
        languages,
      });
      const filename = `flowpilot-${pilot.pilot.id}-${isoDate(window.fromMs)}-${isoDate(window.toMs)}-${lang}.pdf`;
      return reply.type('application/pdf').header('content-disposition', `attachment; filename="${filename}"`).header('cache-control', 'no-store').send(pdf);
    },
  );
};
