import { createPilotReportPdf, reportLanguages } from '@flowpilot/report';
import type { FetchErrorCurve, FetchMetrics } from '@flowpilot/report';
import type { PilotConfig } from '@flowpilot/schema';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { validationError } from './api-errors.ts';
import { parseTimeParam } from './api-schemas.ts';

export interface ReportRouteOptions {
  pilot: PilotConfig;
  /** FlowPilot's version, printed on the cover. */
  version: string;
  /** Where the data comes from, printed on the cover, e.g. "InfluxDB http://127.0.0.1:8086, database flowpilot" (never credentials). */
  dataSource: string;
  /**
   * The body of `GET /api/v1/metrics?from&to` for a window. Default: that route itself, through
   * `inject`, so the PDF shows exactly the numbers the API and the dashboard show.
   */
  fetchMetrics?: FetchMetrics;
  /** The body of `GET /api/v1/meters/{id}/error-curve?from&to`. Default: that route, through `inject`. */
  fetchErrorCurve?: FetchErrorCurve;
  /** Epoch ms now (STYLE habit 7). */
  clock?: () => number;
  /** The longest period one report covers, in days. */
  maxWindowDays?: number;
  /** Headers of the route's own requests to /metrics and /error-curve: createApi's secret that lets them past access and rate limits. */
  internalHeaders?: Record<string, string>;
}

const DAY_MS = 86_400_000;
const DEFAULT_REPORT_DAYS = 7;

/**
 * `GET /api/v1/reports/pilot.pdf?from&to&lang` (SPEC section 5): the evaluator's report, rendered
 * by @flowpilot/report. A Fastify plugin: `await app.register(reportRoute, options)`.
 */
export async function reportRoute(app: FastifyInstance, options: ReportRouteOptions): Promise<void> {
  const languages = reportLanguages();
  const clock = options.clock ?? Date.now;
  const maxWindowDays = options.maxWindowDays ?? 400;
  const get = async (url: string, window: { fromMs: number; toMs: number }): Promise<unknown> => {
    const response = await app.inject({ method: 'GET', url, query: { from: String(window.fromMs), to: String(window.toMs) }, headers: options.internalHeaders ?? {} });
    const body: unknown = response.json();
    if (response.statusCode !== 200) {
      const message = (body as { error?: { message?: string } })?.error?.message ?? `HTTP ${response.statusCode}`;
      throw new Error(`GET ${url} answered ${response.statusCode}: ${message}`);
    }
    return body;
  };
  const fetchMetrics: FetchMetrics = options.fetchMetrics ?? ((window) => get('/api/v1/metrics', window));
  const fetchErrorCurve: FetchErrorCurve = options.fetchErrorCurve ?? ((meterId, window) => get(`/api/v1/meters/${encodeURIComponent(meterId)}/error-curve`, window));

  const time = (description: string) =>
    z
      .string()
      .optional()
      .describe(`${description}: an ISO 8601 time with an offset (e.g. 2026-11-25T00:00:00+05:00) or epoch milliseconds`);
  const querystring = z.object({
    from: time(`Start of the period, inclusive. Default: ${DEFAULT_REPORT_DAYS} days before \`to\``),
    to: time('End of the period, exclusive. Default: now'),
    lang: z
      .enum(languages.map((l) => l.code) as [string, ...string[]])
      .optional()
      .describe(`The report's language: ${languages.map((l) => `\`${l.code}\` (${l.name})`).join(', ')}. Default: \`en\``),
  });

  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/v1/reports/pilot.pdf',
    {
      schema: {
        tags: ['reports'],
        summary: 'The evaluator\'s report as PDF',
        description:
          'Cover, summary of the verdicts per meter under test, one section per meter (error curve against the MPE envelope, daily volume and ' +
          'completeness, key figures), data-quality notes, the methodology of SPEC section 4 and a signature block. Days are local to the pilot\'s time zone.',
        produces: ['application/pdf'],
        querystring,
      },
    },
    async (request, reply) => {
      const parse = (name: 'from' | 'to', text: string | undefined): number | undefined => {
        if (text === undefined) return undefined;
        const ms = parseTimeParam(text);
        if (ms === null) throw validationError(`Query parameter "${name}" must be an ISO 8601 time with an offset or epoch milliseconds; got "${text}"`);
        return ms;
      };
      const toMs = parse('to', request.query.to) ?? clock();
      const fromMs = parse('from', request.query.from) ?? toMs - DEFAULT_REPORT_DAYS * DAY_MS;
      if (toMs <= fromMs) throw validationError(`Query parameter "to" (${new Date(toMs).toISOString()}) must be after "from" (${new Date(fromMs).toISOString()})`);
      if (toMs - fromMs > maxWindowDays * DAY_MS) throw validationError(`The report covers at most ${maxWindowDays} days; narrow "from" and "to"`);
      const lang = request.query.lang ?? 'en';
      const pdf = await createPilotReportPdf({
        pilot: { ...options.pilot.pilot, meters: options.pilot.meters },
        fetchMetrics,
        fetchErrorCurve,
        fromMs,
        toMs,
        lang,
        softwareVersion: options.version,
        dataSource: options.dataSource,
        clock,
        languages,
      });
      const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
      const filename = `flowpilot-${options.pilot.pilot.id}-${day(fromMs)}-${day(toMs)}-${lang}.pdf`;
      return reply.type('application/pdf').header('content-disposition', `attachment; filename="${filename}"`).header('cache-control', 'no-store').send(pdf);
    },
  );
}
