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
  const headers: Record<string, string> = { accept: 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) };

  async function get<T>(path: string, window: TimeWindow, extra: Record<string, string> = {}): Promise<T> {
    const query = new URLSearchParams({ from: String(window.fromMs), to: String(window.toMs), ...extra });
    const url = `${base}${path}?${query}`;
    let response: Response;
    try {
      response = await fetchImpl(url, { headers });
    } catch (error) {
      const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
      const hint = options.unreachableHint ? `: ${options.unreachableHint}` : '';
      throw new FlowPilotError('ERR_UNREACHABLE', `the FlowPilot API at ${base} is not reachable (${cause?.code ?? cause?.message ?? (error as Error).message})${hint}`, { cause: error });
    }
    const text = await response.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: a proxy's error page, say; reported below with its status.
    }
    if (response.ok && body !== null) return body as T;
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (error && isErrorCode(error.code)) {
      const message = typeof error.message === 'string' ? error.message : '';
      // The API's message for a 5xx is the catalogue's own; a 4xx says what to change.
      throw new FlowPilotError(error.code, message && message !== ERROR_CATALOGUE[error.code].message ? message.replace(/\.$/, '') : undefined);
    }
    throw new FlowPilotError('ERR_UNREACHABLE', `GET ${path} at ${base} answered HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
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
  };
}
