import { createHash } from 'node:crypto';
import type { ErrorCurveBin, MeterMetrics, TimeWindow } from '@flowpilot/metrics';
import { ERROR_CATALOGUE, FlowPilotError } from '@flowpilot/schema';
import type { ErrorCode } from '@flowpilot/schema';
import { metersFromMetricsJson } from './metrics-json.ts';

/**
 * Where the report gets its numbers (SPEC section 4), typed: the API's metrics service in the
 * same process (`createInProcessMetricsSource` of @flowpilot/api, for GET /reports/pilot.pdf), or
 * a running API over HTTP (`createHttpMetricsSource`, for `flowpilot report --api URL`). Both run
 * the contract suite of metrics-source-contract.ts (STYLE habit 8).
 *
 * Failures reject with a FlowPilotError carrying the catalogue's code: ERR_VALIDATION for a
 * window the API refuses, ERR_METER_NOT_FOUND, and a dependency's own code (503
 * ERR_INFLUX_UNAVAILABLE) unchanged, so the caller answers or prints what really happened.
 */

/** One meter's metrics as the API serves them: computeMeterMetrics without `duplicates` and `errorCurve` (its own route). */
export type SourceMeterMetrics = Omit<MeterMetrics, 'duplicates' | 'errorCurve'>;

export interface WindowMetrics {
  /** The window the figures are for: the one asked for, `to` clamped to now when it was later (SPEC section 4). */
  window: TimeWindow;
  /** In the order of the pilot file. */
  meters: SourceMeterMetrics[];
}

export interface DayMetrics {
  /** YYYY-MM-DD in the pilot's zone. */
  date: string;
  /** The local day, cut to the window. */
  window: TimeWindow;
  meters: SourceMeterMetrics[];
}

export interface DailyMetrics {
  window: TimeWindow;
  /** Every local day the window touches, oldest first. */
  days: DayMetrics[];
}

export interface MetricsSource {
  /** GET /api/v1/metrics?from&to: every meter over the window. */
  metrics(window: TimeWindow): Promise<WindowMetrics>;
  /** GET /api/v1/metrics?from&to&per=day: every meter for each local day of the window, in one call. */
  dailyMetrics(window: TimeWindow): Promise<DailyMetrics>;
  /** GET /api/v1/meters/{id}/error-curve?from&to&bins: a test meter's error curve (default 12 bins). */
  errorCurve(meterId: string, window: TimeWindow, bins?: number): Promise<ErrorCurveBin[]>;
  /**
   * SHA-256 (hex) of the bytes GET /api/v1/meters/{id}/intervals.csv?from&to sends: a test meter's
   * paired intervals over the window (SPEC sections 4 and 5), printed in the PDF so an evaluator
   * can tell that the CSV they recompute from is the one the report was made from.
   */
  intervalsSha256(meterId: string, window: TimeWindow): Promise<string>;
}

export interface HttpMetricsSourceOptions {
  /** An API token (SPEC section 8), sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** What the caller's user can do when the API is not reachable, appended to that error (e.g. the command line's flag). */
  unreachableHint?: string;
}

interface WindowBody {
  from: string;
  to: string;
}

const windowOf = (body: WindowBody): TimeWindow => ({ fromMs: Date.parse(body.from), toMs: Date.parse(body.to) });

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

/**
 * The API's answers over HTTP, for the command line. `baseUrl` is the API's origin, e.g.
 * `http://127.0.0.1:8080`. An error answer becomes a FlowPilotError with the API's code and
 * message; no answer at all becomes ERR_UNREACHABLE naming the address.
 */
export function createHttpMetricsSource(baseUrl: string, options: HttpMetricsSourceOptions = {}): MetricsSource {
  const base = baseUrl.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? fetch;
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};

  /** GET path?from&to&…: the response when it is a 2xx, else the API's error as a FlowPilotError. */
  async function send(path: string, window: TimeWindow, extra: Record<string, string>, accept: string): Promise<Response> {
    const query = new URLSearchParams({ from: String(window.fromMs), to: String(window.toMs), ...extra });
    const url = `${base}${path}?${query}`;
    let response: Response;
    try {
      response = await fetchImpl(url, { headers: { ...headers, accept } });
    } catch (error) {
      const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
      const hint = options.unreachableHint ? `: ${options.unreachableHint}` : '';
      throw new FlowPilotError('ERR_UNREACHABLE', `the FlowPilot API at ${base} is not reachable (${cause?.code ?? cause?.message ?? (error as Error).message})${hint}`, { cause: error });
    }
    if (!response.ok) throw refusal(path, response.status, await response.text());
    return response;
  }

  /** An error answer as the API's own code and message; anything else (a proxy's page) as ERR_UNREACHABLE with its status. */
  function refusal(path: string, status: number, text: string): FlowPilotError {
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: a proxy's error page, say; reported below with its status.
    }
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (error && isErrorCode(error.code)) {
      const message = typeof error.message === 'string' ? error.message : '';
      // The API's message for a 5xx is the catalogue's own; a 4xx says what to change.
      return new FlowPilotError(error.code, message && message !== ERROR_CATALOGUE[error.code].message ? message.replace(/\.$/, '') : undefined);
    }
    return new FlowPilotError('ERR_UNREACHABLE', `GET ${path} at ${base} answered HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }

  async function get<T>(path: string, window: TimeWindow, extra: Record<string, string> = {}): Promise<T> {
    const response = await send(path, window, extra, 'application/json');
    const text = await response.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: reported below with its status.
    }
    if (body === null) throw refusal(path, response.status, text);
    return body as T;
  }

  return {
    async metrics(window) {
      const body = await get<WindowBody>('/api/v1/metrics', window);
      return { window: windowOf(body), meters: metersFromMetricsJson(body) };
    },
    async dailyMetrics(window) {
      const body = await get<WindowBody & { days: Array<WindowBody & { date: string; meters: unknown }> }>('/api/v1/metrics', window, { per: 'day' });
      return { window: windowOf(body), days: body.days.map((day) => ({ date: day.date, window: windowOf(day), meters: metersFromMetricsJson(day) })) };
    },
    async errorCurve(meterId, window, bins) {
      const body = await get<{ bins: ErrorCurveBin[] }>(`/api/v1/meters/${encodeURIComponent(meterId)}/error-curve`, window, bins === undefined ? {} : { bins: String(bins) });
      return body.bins;
    },
    async intervalsSha256(meterId, window) {
      const path = `/api/v1/meters/${encodeURIComponent(meterId)}/intervals.csv`;
      const response = await send(path, window, {}, 'text/csv');
      // Hashed as the bytes arrive: a month of minute intervals is megabytes of CSV.
      const hash = createHash('sha256');
      try {
        const reader = response.body?.getReader();
        if (reader) for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) hash.update(chunk.value);
      } catch (error) {
        throw new FlowPilotError('ERR_UNREACHABLE', `GET ${path} at ${base} stopped before the end of the CSV (${(error as Error).message}); try again`, { cause: error });
      }
      const sha256 = hash.digest('hex');
      // The API states the hash of what it meant to send: a download cut short (the API streams,
      // so a failure after the first bytes cannot change the status) does not match it.
      const stated = response.headers.get('x-content-sha256');
      if (stated !== null && stated.toLowerCase() !== sha256) {
        throw new FlowPilotError('ERR_UNREACHABLE', `GET ${path} at ${base} sent bytes with SHA-256 ${sha256}, not the ${stated} its X-Content-SHA256 header states (a download cut short); try again`);
      }
      return sha256;
    },
  };
}
