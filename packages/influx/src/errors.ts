import type { ErrorCode } from '@flowpilot/schema';
import { ERROR_CATALOGUE } from '@flowpilot/schema';

/**
 * What went wrong talking to InfluxDB, as the ingest and the API need to know it (STYLE habit 6):
 * the caller asks `canRetry()` instead of matching message strings.
 */
export type InfluxErrorKind = 'unavailable' | 'bad-lines' | 'too-large' | 'auth' | 'database' | 'query';

/** The catalogue code each kind carries (STYLE habit 5). The catalogue has no "too large" code:
 * a line too large on its own is a refused line, and a batch too large is split by writeIsolating. */
const CODE_OF_KIND: Record<InfluxErrorKind, ErrorCode> = {
  unavailable: 'ERR_INFLUX_UNAVAILABLE',
  'bad-lines': 'ERR_INFLUX_REJECTED_LINE',
  'too-large': 'ERR_INFLUX_REJECTED_LINE',
  auth: 'ERR_INFLUX_AUTH',
  database: 'ERR_INFLUX_DATABASE',
  query: 'ERR_INFLUX_QUERY',
};

export interface InfluxErrorOptions {
  /** The HTTP status InfluxDB answered with; absent when no answer came. */
  status?: number;
  /** Milliseconds the server asked us to wait (Retry-After), if it said. */
  retryAfterMs?: number;
  cause?: unknown;
}

export class InfluxError extends Error {
  readonly kind: InfluxErrorKind;
  /** The catalogue code (ERR_INFLUX_*); the API maps it to its own HTTP status. */
  readonly code: ErrorCode;
  /** InfluxDB's HTTP status, not the status an API should answer with. */
  readonly status?: number;
  /** The specific part: InfluxDB's own words, or what failed on the way. writeIsolating reports it per line. */
  readonly detail: string;
  readonly #retryAfterMs: number | undefined;

  constructor(kind: InfluxErrorKind, detail: string, options: InfluxErrorOptions = {}) {
    const code = CODE_OF_KIND[kind];
    super(`${detail}${/[.?!]$/.test(detail) ? '' : '.'} ${ERROR_CATALOGUE[code].message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InfluxError';
    this.kind = kind;
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
    this.detail = detail;
    this.#retryAfterMs = options.retryAfterMs;
  }

  /** Only an unreachable or overloaded server is worth retrying: a refused line, bad credentials
   * or a missing database fail the same way every time. */
  canRetry(): boolean {
    return this.kind === 'unavailable';
  }

  /** What the server's Retry-After asked for, in ms; undefined when it did not say. */
  retryAfterMs(): number | undefined {
    return this.#retryAfterMs;
  }
}

/** Retry-After is either delay-seconds or an HTTP-date (RFC 9110 section 10.2.3). */
export function parseRetryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const dateMs = Date.parse(text);
  return Number.isFinite(dateMs) ? Math.max(0, dateMs - nowMs) : undefined;
}

/** InfluxDB's own words from an error response: 1.x and 3.x answer `{"error": "..."}`, 2.x
 * `{"code": "...", "message": "..."}`, 1.x also sets X-Influxdb-Error; proxies answer text or HTML. */
export function errorText(body: string, headers: Headers): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object') {
      const { error, message } = parsed as { error?: unknown; message?: unknown };
      if (typeof error === 'string' && error) return error;
      if (typeof message === 'string' && message) return message;
    }
  } catch {
    // Not JSON: fall through to the header and the raw text.
  }
  const header = headers.get('x-influxdb-error');
  if (header) return header;
  const text = body.trim().replace(/\s+/g, ' ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text || '(empty response)';
}

export type InfluxOperation = 'write' | 'query' | 'ping';

/**
 * Classifies a non-success HTTP answer (STYLE habit 6). `where` names the server (without
 * credentials) so the message tells the operator which InfluxDB refused.
 */
export function classifyResponse(operation: InfluxOperation, status: number, body: string, headers: Headers, where: string, nowMs: number): InfluxError {
  const said = errorText(body, headers);
  const prefix = `InfluxDB at ${where} answered ${operation} with HTTP ${status}: ${said}`;
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfterMs(headers.get('retry-after'), nowMs);
    return new InfluxError('unavailable', prefix, retryAfterMs === undefined ? { status } : { status, retryAfterMs });
  }
  if (status === 401 || status === 403) return new InfluxError('auth', prefix, { status });
  if (status === 404) return new InfluxError('database', prefix, { status });
  if (status === 413) return new InfluxError('too-large', prefix, { status });
  // 1.x answers a refused line with 400 ("partial write: ... dropped=N", "unable to parse '<line>': ...",
  // "field type conflict"); 2.x may answer 422 for points outside the retention or type conflicts.
  if (operation === 'write') {
    if (status === 400 || status === 422) return new InfluxError('bad-lines', prefix, { status });
    // Anything else (a 200 instead of 204, a 405 from something that is not InfluxDB) confirms
    // nothing: retry rather than drop, so an accepted reading is never lost (SPEC section 6).
    return new InfluxError('unavailable', `${prefix}; is FLOWPILOT_INFLUX_URL an InfluxDB v1 API?`, { status });
  }
  // 1.x answers an InfluxQL syntax error with 400.
  return new InfluxError('query', prefix, { status });
}

/** fetch rejected: refused, reset, DNS, or our own AbortSignal.timeout. All are worth retrying. */
export function classifyFetchFailure(operation: InfluxOperation, error: unknown, where: string, timeoutMs: number): InfluxError {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new InfluxError('unavailable', `InfluxDB at ${where} did not answer ${operation} within ${timeoutMs} ms`, { cause: error });
  }
  const cause = (error as { cause?: unknown } | null)?.cause;
  const code = (cause as { code?: unknown } | null)?.code ?? (error as { code?: unknown } | null)?.code;
  const why = typeof code === 'string' ? code : ((cause as Error | undefined)?.message ?? (error as Error | undefined)?.message ?? String(error));
  return new InfluxError('unavailable', `InfluxDB at ${where} could not be reached for ${operation} (${why})`, { cause: error });
}
