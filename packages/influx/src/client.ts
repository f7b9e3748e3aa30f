import { FlowPilotError } from '@flowpilot/schema';
import type { InfluxOperation } from './errors.ts';
import { classifyFetchFailure, classifyResponse, errorText, InfluxError } from './errors.ts';
import { quoteIdentifier } from './influxql.ts';

export interface InfluxConfig {
  url: string;
  database: string;
  username?: string;
  password?: string;
  token?: string;
  /** Per request, including reading the answer. Default DEFAULT_INFLUX_TIMEOUT_MS. */
  timeoutMs?: number;
}

export const DEFAULT_INFLUX_TIMEOUT_MS = 10_000;

/** A configured URL as it may be shown: userinfo (http://user:password@host) replaced by `***@`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@');
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
  /** Set by the server on a series it cut (see `query`); a series this client returns never has it. */
  partial?: boolean;
}

/** The v1 HTTP API that 1.x, 2.x (compatibility API) and 3.x Core all serve (SPEC section 2). */
export interface InfluxClient {
  readonly config: Readonly<InfluxConfig>;
  /** Throws InfluxError kind 'unavailable' when the server cannot be reached. */
  ping(): Promise<{ version: string }>;
  /** CREATE DATABASE; tolerated where the server lacks it (3.x creates a database on first write). */
  ensureDatabase(): Promise<void>;
  /** Writes line protocol with ms precision; resolves once InfluxDB answered 204. */
  write(lines: readonly string[]): Promise<void>;
  /** The series of the first statement's result ([] when it has none). */
  query(influxql: string): Promise<InfluxSeries[]>;
}

export interface InfluxClientDeps {
  fetch?: typeof fetch;
}

interface StatementResult {
  statement_id?: number;
  series?: InfluxSeries[];
  error?: string;
  partial?: boolean;
}

// Reads (SELECT without INTO, SHOW) go as GET; everything else must be a POST on 1.x (GET only
// warns today, "deprecated use of ... in a read only context") and on the compatibility APIs.
const READ_ONLY = /^\s*(SELECT|SHOW)\b/i;
const SELECT_INTO = /\bINTO\b/i;

/** Rows per chunk of a read's answer: InfluxDB 1.x's own default chunk size. */
export const QUERY_CHUNK_ROWS = 10_000;

const seriesKey = (s: InfluxSeries): string => JSON.stringify([s.name ?? '', (s as { tags?: unknown }).tags ?? null]);

/**
 * The series of a read's answer, its chunks merged. Reads ask for `chunked=true` because only
 * then does `"partial"` mean one thing. In a non-chunked answer InfluxDB 1.x (1.6 here) runs the
 * query in internal chunks of 10,000 rows and merges them, and the merged series keeps the
 * `"partial": true` of its first chunk even when every row is there; a `max-row-limit` cut
 * ([http] section) is marked the same way and cannot be told apart. A chunked answer has no row
 * limit, and `"partial": true` on a series or result says "continued in the next chunk" (1.x;
 * 2.x's v1 compatibility API and 3.x Core's v1 /query answer chunked reads the same way). So:
 * - a series continued in the next chunk is appended to (same name and tags);
 * - an error in any chunk refuses the whole query (1.x reports a missing database per statement,
 *   with HTTP 200);
 * - an answer whose last chunk still says `partial` ended before its data did (a connection cut,
 *   a server stopping): refused, never returned as if whole, since every metric computed from it
 *   would be silently wrong (a week's volume from its first days).
 */
export function mergeChunks(chunks: readonly { results?: StatementResult[]; error?: string }[], where: string, status: number): InfluxSeries[] {
  const merged: InfluxSeries[] = [];
  // Whether the last series read goes on in the next chunk, and whether the statement does.
  let seriesContinues = false;
  let resultContinues = false;
  let rows = 0;
  for (const chunk of chunks) {
    if (typeof chunk.error === 'string') throw new InfluxError('query', `InfluxDB at ${where} refused the query: ${chunk.error}`, { status });
    const result = chunk.results?.[0];
    if (result === undefined) continue;
    if (typeof result.error === 'string') {
      const kind = /database not found/i.test(result.error) ? 'database' : 'query';
      throw new InfluxError(kind, `InfluxDB at ${where} refused the query: ${result.error}`, { status });
    }
    for (const series of result.series ?? []) {
      const last = merged[merged.length - 1];
      const values = series.values ?? [];
      rows += values.length;
      if (seriesContinues && last && seriesKey(last) === seriesKey(series)) {
        for (const row of values) last.values.push(row);
      } else {
        const { partial: _partial, ...whole } = series;
        merged.push({ ...whole, values: [...values] });
      }
      seriesContinues = series.partial === true;
    }
    resultContinues = result.partial === true;
  }
  if (seriesContinues || resultContinues) {
    throw new InfluxError(
      'query',
      `InfluxDB at ${where} ended its answer after ${rows} rows with more to come ("partial": true in the last chunk): the result is incomplete. ` +
        'Check that InfluxDB is up and not restarting, then ask again',
      { status },
    );
  }
  return merged;
}

export function createInfluxClient(config: InfluxConfig, deps: InfluxClientDeps = {}): InfluxClient {
  let base: URL;
  try {
    base = new URL(config.url);
  } catch {
    throw new FlowPilotError('ERR_CONFIG', `FLOWPILOT_INFLUX_URL "${redactUrl(config.url)}" is not a URL such as http://127.0.0.1:8086`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new FlowPilotError('ERR_CONFIG', `FLOWPILOT_INFLUX_URL "${redactUrl(config.url)}" must start with http:// or https://`);
  }
  if (!config.database) throw new FlowPilotError('ERR_CONFIG', 'FLOWPILOT_INFLUX_DB is empty: name the InfluxDB database');
  const settings: InfluxConfig = { ...config, timeoutMs: config.timeoutMs ?? DEFAULT_INFLUX_TIMEOUT_MS };
  // http://user:pass@host:8086 works too: fetch refuses credentials in a URL, so they move to the
  // Authorization header, and config.url (shown in banners and logs) keeps no trace of them.
  if (base.username || base.password) {
    if (base.username && settings.username === undefined) settings.username = decodeURIComponent(base.username);
    if (base.password && settings.password === undefined) settings.password = decodeURIComponent(base.password);
    base.username = '';
    base.password = '';
    settings.url = base.href;
  }
  const frozen: Readonly<InfluxConfig> = Object.freeze(settings);
  const timeoutMs = frozen.timeoutMs ?? DEFAULT_INFLUX_TIMEOUT_MS;
  const doFetch = deps.fetch ?? globalThis.fetch;
  // Credentials never appear in messages or logs: name the server by origin and path only.
  const where = `${base.origin}${base.pathname.replace(/\/$/, '')}`;
  const basePath = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;

  function endpoint(path: 'ping' | 'write' | 'query', params: Record<string, string>): URL {
    const url = new URL(basePath + path, base.origin);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    return url;
  }

  // Credentials go in the Authorization header, never in the URL (the u and p query parameters of
  // v1 end up in proxies' access logs and in error messages that quote a URL; SPEC section 8).
  // 1.x reads `Basic` on /write and /query (and /ping with auth on), 2.x's v1 compatibility API
  // too (user: anything, password: the token), and `Token` is 2.x's and 3.x's; a token wins.
  const authorization =
    frozen.token !== undefined
      ? `Token ${frozen.token}`
      : frozen.username !== undefined || frozen.password !== undefined
        ? `Basic ${Buffer.from(`${frozen.username ?? ''}:${frozen.password ?? ''}`, 'utf8').toString('base64')}`
        : undefined;

  function headers(extra: Record<string, string> = {}): Record<string, string> {
    return authorization === undefined ? extra : { ...extra, Authorization: authorization };
  }

  /** One request; the timeout covers reading the body too, since a half-sent answer is no answer. */
  async function request(operation: InfluxOperation, url: URL, init: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
    try {
      const response = await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      const body = await response.text();
      return { status: response.status, body, headers: response.headers };
    } catch (error) {
      throw classifyFetchFailure(operation, error, where, timeoutMs);
    }
  }

  async function ping(): Promise<{ version: string }> {
    const answer = await request('ping', endpoint('ping', {}), { method: 'GET', headers: headers() });
    if (answer.status < 200 || answer.status > 299) {
      if (answer.status === 401 || answer.status === 403) throw classifyResponse('ping', answer.status, answer.body, answer.headers, where, Date.now());
      // Anything else on /ping means no InfluxDB answers there (yet): unavailable, worth retrying.
      throw new InfluxError('unavailable', `InfluxDB at ${where} answered ping with HTTP ${answer.status}: ${errorText(answer.body, answer.headers)}`, {
        status: answer.status,
      });
    }
    let version = answer.headers.get('x-influxdb-version') ?? '';
    if (!version && answer.body) {
      // 3.x answers /ping with a JSON body carrying the version.
      try {
        const parsed = JSON.parse(answer.body) as { version?: unknown };
        if (typeof parsed.version === 'string') version = parsed.version;
      } catch {
        // No version in the body either.
      }
    }
    return { version: version || 'unknown' };
  }

  async function write(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    const answer = await request('write', endpoint('write', { db: frozen.database, precision: 'ms' }), {
      method: 'POST',
      headers: headers({ 'Content-Type': 'text/plain; charset=utf-8' }),
      body: lines.join('\n'),
    });
    // Only 204 confirms the points are stored (and in the WAL, fsynced): the ingest advances its
    // checkpoint on it (SPEC section 6), so nothing else counts as success.
    if (answer.status === 204) return;
    throw classifyResponse('write', answer.status, answer.body, answer.headers, where, Date.now());
  }

  async function query(influxql: string): Promise<InfluxSeries[]> {
    const readOnly = READ_ONLY.test(influxql) && !SELECT_INTO.test(influxql);
    // Reads ask for a chunked answer (see mergeChunks for why); the one statement's chunks come as
    // JSON objects one per line.
    const params = { db: frozen.database, epoch: 'ms' };
    const answer = readOnly
      ? await request('query', endpoint('query', { ...params, chunked: 'true', chunk_size: String(QUERY_CHUNK_ROWS), q: influxql }), { method: 'GET', headers: headers() })
      : await request('query', endpoint('query', params), {
          method: 'POST',
          headers: headers({ 'Content-Type': 'application/x-www-form-urlencoded' }),
          body: new URLSearchParams({ q: influxql }).toString(),
        });
    if (answer.status !== 200) throw classifyResponse('query', answer.status, answer.body, answer.headers, where, Date.now());
    const chunks: { results?: StatementResult[]; error?: string }[] = [];
    for (const line of answer.body.split('\n')) {
      if (line.trim() === '') continue;
      try {
        chunks.push(JSON.parse(line) as (typeof chunks)[number]);
      } catch {
        throw new InfluxError('query', `InfluxDB at ${where} answered a query with something that is not JSON: ${errorText(answer.body, answer.headers)}`, {
          status: answer.status,
        });
      }
    }
    return mergeChunks(chunks, where, answer.status);
  }

  async function ensureDatabase(): Promise<void> {
    try {
      await query(`CREATE DATABASE ${quoteIdentifier(frozen.database)}`);
    } catch (error) {
      if (!(error instanceof InfluxError)) throw error;
      // Unreachable, or credentials refused outright (401): the caller must know. A 403 (a user
      // without admin rights on 1.x), an unknown statement (2.x, 3.x) or a 404/405 is tolerated:
      // the database may exist already or be created by the first write (SPEC section 2); a write
      // to a database that is really missing fails with kind 'database' and says so.
      if (error.kind === 'unavailable' || (error.kind === 'auth' && error.status === 401)) throw error;
    }
  }

  return { config: frozen, ping, ensureDatabase, write, query };
}
