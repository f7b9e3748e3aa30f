import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FlowPilotError } from '@flowpilot/schema';
import { createInfluxClient, redactUrl } from './client.ts';
import type { InfluxErrorKind } from './errors.ts';
import { InfluxError, parseRetryAfterMs } from './errors.ts';

interface Call {
  url: URL;
  init: RequestInit;
}

/** A fetch that records each request and answers with the given response (or rejection). */
function fakeFetch(answer: () => Response | Promise<Response>): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: new URL(String(input)), init: init ?? {} });
    return answer();
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });

function refused(): never {
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  throw new TypeError('fetch failed', { cause });
}

async function caught(promise: Promise<unknown>): Promise<InfluxError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(InfluxError);
    return error as InfluxError;
  }
  throw new Error('expected an InfluxError');
}

const config = { url: 'http://influx.test:8086', database: 'flowpilot' };

describe('write: classification of the answer (STYLE habit 6)', () => {
  it('resolves on 204 and sends the lines joined by newlines, ms precision', async () => {
    const fake = fakeFetch(() => new Response(null, { status: 204 }));
    await createInfluxClient(config, fake).write(['a f=1 1', 'a f=2 2']);
    expect(fake.calls).toHaveLength(1);
    const [call] = fake.calls;
    expect(call?.init.method).toBe('POST');
    expect(call?.url.pathname).toBe('/write');
    expect(call?.url.searchParams.get('db')).toBe('flowpilot');
    expect(call?.url.searchParams.get('precision')).toBe('ms');
    expect(call?.init.body).toBe('a f=1 1\na f=2 2');
  });

  it('sends nothing for no lines', async () => {
    const fake = fakeFetch(() => new Response(null, { status: 204 }));
    await createInfluxClient(config, fake).write([]);
    expect(fake.calls).toHaveLength(0);
  });

  it.each<[string, () => Response, InfluxErrorKind, string, boolean, number | undefined]>([
    [
      '400 partial write',
      () => json(400, { error: 'partial write: field type conflict: input field "flow" on measurement "reading" is type integer, already exists as type float dropped=1' }),
      'bad-lines',
      'ERR_INFLUX_REJECTED_LINE',
      false,
      undefined,
    ],
    [
      '400 unable to parse',
      () => json(400, { error: "partial write: unable to parse 'reading,meter=b flow= 1': missing field value dropped=0" }),
      'bad-lines',
      'ERR_INFLUX_REJECTED_LINE',
      false,
      undefined,
    ],
    ['413 request entity too large', () => json(413, { error: 'Request Entity Too Large' }), 'too-large', 'ERR_INFLUX_REJECTED_LINE', false, undefined],
    ['401 unauthorized', () => json(401, { error: 'authorization failed' }), 'auth', 'ERR_INFLUX_AUTH', false, undefined],
    ['403 forbidden', () => json(403, { error: 'user not authorized to write to database' }), 'auth', 'ERR_INFLUX_AUTH', false, undefined],
    ['404 database not found', () => json(404, { error: 'database not found: "flowpilot"' }), 'database', 'ERR_INFLUX_DATABASE', false, undefined],
    ['500 engine error', () => json(500, { error: 'timeout' }), 'unavailable', 'ERR_INFLUX_UNAVAILABLE', true, undefined],
    ['503 with Retry-After seconds', () => json(503, { error: 'busy' }, { 'Retry-After': '7' }), 'unavailable', 'ERR_INFLUX_UNAVAILABLE', true, 7000],
    ['429 with Retry-After', () => json(429, { message: 'too many requests' }, { 'Retry-After': '30' }), 'unavailable', 'ERR_INFLUX_UNAVAILABLE', true, 30_000],
    ['200 instead of 204 (not InfluxDB?)', () => new Response('ok', { status: 200 }), 'unavailable', 'ERR_INFLUX_UNAVAILABLE', true, undefined],
  ])('%s → %s', async (_name, answer, kind, code, retriable, retryAfterMs) => {
    const error = await caught(createInfluxClient(config, fakeFetch(answer)).write(['reading,meter=a flow=1 1']));
    expect(error.kind).toBe(kind);
    expect(error.code).toBe(code);
    expect(error.canRetry()).toBe(retriable);
    expect(error.retryAfterMs()).toBe(retryAfterMs);
    expect(error.status).toBe(answer().status);
  });

  it('keeps InfluxDB\'s own words in detail and adds what to do in the message', async () => {
    const error = await caught(createInfluxClient(config, fakeFetch(() => json(400, { error: 'field type conflict' }))).write(['x f=1 1']));
    expect(error.detail).toBe('InfluxDB at http://influx.test:8086 answered write with HTTP 400: field type conflict');
    expect(error.message).toContain('It is kept as a dead letter');
  });

  it('falls back to X-Influxdb-Error, then to the text of a non-JSON answer', async () => {
    const header = await caught(
      createInfluxClient(config, fakeFetch(() => new Response('', { status: 400, headers: { 'X-Influxdb-Error': 'field type conflict' } }))).write(['x f=1 1']),
    );
    expect(header.detail).toMatch(/: field type conflict$/);
    const html = await caught(createInfluxClient(config, fakeFetch(() => new Response('<h1>Bad Gateway</h1>', { status: 502 }))).write(['x f=1 1']));
    expect(html.detail).toMatch(/HTTP 502: <h1>Bad Gateway<\/h1>$/);
    expect(html.kind).toBe('unavailable');
  });

  it('a refused connection (fetch rejects) is unavailable and retriable', async () => {
    const error = await caught(createInfluxClient(config, fakeFetch(refused)).write(['x f=1 1']));
    expect(error.kind).toBe('unavailable');
    expect(error.canRetry()).toBe(true);
    expect(error.status).toBeUndefined();
    expect(error.detail).toBe('InfluxDB at http://influx.test:8086 could not be reached for write (ECONNREFUSED)');
  });

  it('a timeout (AbortSignal.timeout) is unavailable and names the timeout', async () => {
    const timeout = () => {
      throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    };
    const error = await caught(createInfluxClient({ ...config, timeoutMs: 250 }, fakeFetch(timeout)).write(['x f=1 1']));
    expect(error.kind).toBe('unavailable');
    expect(error.detail).toBe('InfluxDB at http://influx.test:8086 did not answer write within 250 ms');
  });

  it('passes an AbortSignal on every request', async () => {
    const fake = fakeFetch(() => new Response(null, { status: 204 }));
    await createInfluxClient(config, fake).write(['x f=1 1']);
    expect(fake.calls[0]?.init.signal).toBeInstanceOf(AbortSignal);
  });
});

describe('query', () => {
  const series = [{ name: 'reading', tags: { meter: 'a' }, columns: ['time', 'flow'], values: [[1000, 1.5]] }];

  it('GETs a read with db, q, epoch=ms and chunked=true and returns the first statement\'s series', async () => {
    const fake = fakeFetch(() => json(200, { results: [{ statement_id: 0, series }, { statement_id: 1, series: [] }] }));
    expect(await createInfluxClient(config, fake).query('SELECT flow FROM reading')).toEqual(series);
    const [call] = fake.calls;
    expect(call?.init.method).toBe('GET');
    expect(call?.url.pathname).toBe('/query');
    expect(Object.fromEntries(call?.url.searchParams ?? [])).toEqual({ db: 'flowpilot', q: 'SELECT flow FROM reading', epoch: 'ms', chunked: 'true', chunk_size: '10000' });
  });

  it('returns [] when the first statement has no series', async () => {
    const fake = fakeFetch(() => json(200, { results: [{ statement_id: 0 }] }));
    expect(await createInfluxClient(config, fake).query('SELECT flow FROM reading')).toEqual([]);
  });

  it('POSTs statements that change something (1.x warns on GET), the query in a form body', async () => {
    const fake = fakeFetch(() => json(200, { results: [{ statement_id: 0 }] }));
    const client = createInfluxClient(config, fake);
    await client.query('DROP DATABASE "x"');
    await client.query('SELECT * INTO other FROM reading');
    expect(fake.calls.map((call) => call.init.method)).toEqual(['POST', 'POST']);
    expect(fake.calls[0]?.url.searchParams.get('q')).toBeNull();
    expect(fake.calls[0]?.init.body).toBe('q=DROP+DATABASE+%22x%22');
  });

  it.each<[string, () => Response, InfluxErrorKind]>([
    ['a statement-level error', () => json(200, { results: [{ statement_id: 0, error: 'unsupported call: nope' }] }), 'query'],
    ['a missing database, reported per statement by 1.x', () => json(200, { results: [{ statement_id: 0, error: 'database not found: zz' }] }), 'database'],
    ['a syntax error (HTTP 400)', () => json(400, { error: 'error parsing query: found SELEC, expected SELECT' }), 'query'],
    ['a top-level error with HTTP 200', () => json(200, { error: 'something' }), 'query'],
    ['an answer that is not JSON', () => new Response('<html>', { status: 200 }), 'query'],
    ['401', () => json(401, { error: 'authorization failed' }), 'auth'],
    ['500', () => json(500, { error: 'boom' }), 'unavailable'],
  ])('%s → %s', async (_name, answer, kind) => {
    const error = await caught(createInfluxClient(config, fakeFetch(answer)).query('SELECT flow FROM reading'));
    expect(error.kind).toBe(kind);
  });
});

describe('query: chunked answers merged; one that ends while "partial" is refused, never returned', () => {
  // An answer whose last chunk still says a series goes on: the stream ended early.
  const cut = { results: [{ statement_id: 0, series: [{ name: 'reading', columns: ['time', 'flow'], values: [[1000, 1.5], [2000, 1.6]], partial: true }], partial: true }] };
  const lines = (...chunks: unknown[]) => new Response(chunks.map((c) => JSON.stringify(c)).join('\n') + '\n', { status: 200, headers: { 'Content-Type': 'application/json' } });

  it('asks for chunks and merges a series continued over them (1.x marks it partial until its last chunk)', async () => {
    const fake = fakeFetch(() =>
      lines(
        { results: [{ statement_id: 0, series: [{ name: 'reading', tags: { meter: 'A' }, columns: ['time', 'flow'], values: [[1000, 1.5], [2000, 1.6]], partial: true }], partial: true }] },
        { results: [{ statement_id: 0, series: [{ name: 'reading', tags: { meter: 'A' }, columns: ['time', 'flow'], values: [[3000, 1.7]] }], partial: true }] },
        { results: [{ statement_id: 0, series: [{ name: 'reading', tags: { meter: 'B' }, columns: ['time', 'flow'], values: [[1000, 9]] }] }] },
      ),
    );
    const series = await createInfluxClient(config, fake).query('SELECT flow FROM reading GROUP BY meter');
    expect(series).toEqual([
      { name: 'reading', tags: { meter: 'A' }, columns: ['time', 'flow'], values: [[1000, 1.5], [2000, 1.6], [3000, 1.7]] },
      { name: 'reading', tags: { meter: 'B' }, columns: ['time', 'flow'], values: [[1000, 9]] },
    ]);
    expect(fake.calls[0]?.url.searchParams.get('chunked')).toBe('true');
    expect(fake.calls[0]?.url.searchParams.get('chunk_size')).toBe('10000');
  });

  it('an answer whose last chunk is partial → ERR_INFLUX_QUERY saying it ended early and what to do', async () => {
    const error = await caught(createInfluxClient(config, fakeFetch(() => lines(cut))).query('SELECT flow FROM reading'));
    expect(error).toMatchObject({ kind: 'query', code: 'ERR_INFLUX_QUERY', status: 200 });
    expect(error.message).toMatch(/ended its answer after 2 rows with more to come/);
  });

  it('an error in a later chunk refuses the whole query', async () => {
    const error = await caught(
      createInfluxClient(config, fakeFetch(() => lines({ results: [{ statement_id: 0, series: [{ name: 'reading', columns: ['time'], values: [[1000]], partial: true }], partial: true }] }, { results: [{ statement_id: 0, error: 'query interrupted' }] }))).query(
        'SELECT flow FROM reading',
      ),
    );
    expect(error.code).toBe('ERR_INFLUX_QUERY');
    expect(error.message).toMatch(/query interrupted/);
  });

  it('refuses it over a real loopback HTTP server as well', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json', 'X-Influxdb-Version': '1.8.10' });
      response.end(JSON.stringify(cut));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const error = await caught(createInfluxClient({ url: `http://127.0.0.1:${port}`, database: 'flowpilot' }).query('SELECT flow FROM reading'));
      expect(error.code).toBe('ERR_INFLUX_QUERY');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('ping', () => {
  it('returns the version header', async () => {
    const fake = fakeFetch(() => new Response(null, { status: 204, headers: { 'X-Influxdb-Version': '1.6.7~rc0' } }));
    expect(await createInfluxClient(config, fake).ping()).toEqual({ version: '1.6.7~rc0' });
  });

  it('reads the version from a JSON body when there is no header (3.x)', async () => {
    const fake = fakeFetch(() => json(200, { version: '3.0.1', revision: 'abc' }));
    expect(await createInfluxClient(config, fake).ping()).toEqual({ version: '3.0.1' });
  });

  it.each<[string, () => Response]>([
    ['refused', refused],
    ['404 (not an InfluxDB)', () => new Response('not found', { status: 404 })],
    ['503', () => new Response('', { status: 503 })],
  ])('%s → unavailable', async (_name, answer) => {
    const error = await caught(createInfluxClient(config, fakeFetch(answer)).ping());
    expect(error.kind).toBe('unavailable');
    expect(error.canRetry()).toBe(true);
  });
});

describe('ensureDatabase', () => {
  it('POSTs CREATE DATABASE with the quoted name', async () => {
    const fake = fakeFetch(() => json(200, { results: [{ statement_id: 0 }] }));
    await createInfluxClient({ ...config, database: 'my "db"' }, fake).ensureDatabase();
    expect(fake.calls[0]?.init.method).toBe('POST');
    expect(new URLSearchParams(String(fake.calls[0]?.init.body)).get('q')).toBe('CREATE DATABASE "my \\"db\\""');
  });

  it.each<[string, () => Response]>([
    ['a server without CREATE DATABASE (statement error)', () => json(200, { results: [{ statement_id: 0, error: 'not implemented: CREATE DATABASE' }] })],
    ['a server that refuses the statement (400)', () => json(400, { error: 'error parsing query' })],
    ['a 405', () => new Response('', { status: 405 })],
    ['a user without admin rights (403)', () => json(403, { error: 'requires admin privilege' })],
  ])('tolerates %s', async (_name, answer) => {
    await expect(createInfluxClient(config, fakeFetch(answer)).ensureDatabase()).resolves.toBeUndefined();
  });

  it.each<[string, () => Response, InfluxErrorKind]>([
    ['refused', refused, 'unavailable'],
    ['401', () => json(401, { error: 'authorization failed' }), 'auth'],
  ])('throws when %s', async (_name, answer, kind) => {
    expect((await caught(createInfluxClient(config, fakeFetch(answer)).ensureDatabase())).kind).toBe(kind);
  });
});

describe('authentication (credentials never in a URL, SPEC section 8)', () => {
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
  const authOf = (call: Call | undefined): string | null => new Headers(call?.init.headers).get('authorization');
  /** Neither the URL's userinfo nor its query carries a credential. */
  const expectCleanUrl = (call: Call | undefined, ...secrets: string[]): void => {
    expect(call?.url.username).toBe('');
    expect(call?.url.password).toBe('');
    expect(call?.url.searchParams.has('u')).toBe(false);
    expect(call?.url.searchParams.has('p')).toBe(false);
    for (const secret of secrets) expect(call?.url.href).not.toContain(encodeURIComponent(secret));
  };

  it('sends username/password as Authorization: Basic on write, query and ping, never as u and p', async () => {
    const fake = fakeFetch(() => new Response(null, { status: 204 }));
    const client = createInfluxClient({ ...config, username: 'ingest', password: 'p&ss wörd' }, fake);
    await client.write(['x f=1 1']);
    await client.ping();
    const queries = fakeFetch(() => json(200, { results: [{ statement_id: 0 }] }));
    const querying = createInfluxClient({ ...config, username: 'ingest', password: 'p&ss wörd' }, queries);
    await querying.query('SHOW DATABASES');
    await querying.query('CREATE DATABASE "x"');
    const calls = [...fake.calls, ...queries.calls];
    expect(calls).toHaveLength(4);
    for (const call of calls) {
      // base64 of the UTF-8 of "ingest:p&ss wörd", computed by hand: aW5nZXN0OnAmc3Mgd8O2cmQ=
      expect(authOf(call)).toBe('Basic aW5nZXN0OnAmc3Mgd8O2cmQ=');
      expectCleanUrl(call, 'p&ss wörd');
    }
    expect(basic('ingest', 'p&ss wörd')).toBe('Basic aW5nZXN0OnAmc3Mgd8O2cmQ=');
  });

  it('sends a token as Authorization: Token, which wins over a username and password', async () => {
    const fake = fakeFetch(() => json(200, { results: [{ statement_id: 0 }] }));
    await createInfluxClient({ ...config, token: 'abc==' }, fake).query('SHOW DATABASES');
    await createInfluxClient({ ...config, token: 'abc==', username: 'u', password: 'pw' }, fake).query('SHOW DATABASES');
    for (const call of fake.calls) {
      expect(authOf(call)).toBe('Token abc==');
      expectCleanUrl(call, 'abc==');
    }
  });

  it('sends no Authorization without credentials', async () => {
    const fake = fakeFetch(() => new Response(null, { status: 204 }));
    await createInfluxClient(config, fake).write(['x f=1 1']);
    expect(authOf(fake.calls[0])).toBeNull();
  });

  it('moves credentials out of the URL into the header, out of config.url, and never puts them in messages', async () => {
    const fake = fakeFetch(refused);
    const client = createInfluxClient({ ...config, url: 'http://ingest:s3cr%40t@influx.test:8086/' }, fake);
    const error = await caught(client.write(['x f=1 1']));
    expectCleanUrl(fake.calls[0], 's3cr@t');
    expect(authOf(fake.calls[0])).toBe(basic('ingest', 's3cr@t'));
    expect(client.config.url).toBe('http://influx.test:8086/');
    expect(client.config.url).not.toContain('s3cr');
    expect(error.message).not.toContain('s3cr');
    expect(JSON.stringify(error)).not.toContain('s3cr');
  });

  it('keeps credentials out of the messages of refusals, timeouts and bad configuration', async () => {
    const secrets = { username: 'ingest', password: 'hunter2', token: 'tok-secret' };
    for (const answer of [() => json(401, { error: 'authorization failed' }), () => json(500, { error: 'boom' }), refused]) {
      const error = await caught(createInfluxClient({ ...config, ...secrets }, fakeFetch(answer)).write(['x f=1 1']));
      expect(error.message).not.toMatch(/hunter2|tok-secret/);
    }
    for (const url of ['ftp://ingest:hunter2@influx.test', 'http://ingest:hunter2@[bad']) {
      expect(() => createInfluxClient({ ...config, url })).toThrow(/\*\*\*@/);
      expect(() => createInfluxClient({ ...config, url })).not.toThrow(/hunter2/);
    }
  });

  it('keeps a path prefix of the URL (InfluxDB behind a reverse proxy)', async () => {
    const fake = fakeFetch(() => new Response(null, { status: 204 }));
    await createInfluxClient({ ...config, url: 'https://proxy.test/influx' }, fake).write(['x f=1 1']);
    expect(fake.calls[0]?.url.pathname).toBe('/influx/write');
  });
});

describe('redactUrl', () => {
  it.each([
    ['http://u:p@host:8086/x', 'http://***@host:8086/x'],
    ['https://only-user@host', 'https://***@host'],
    ['http://host:8086/?q=a@b', 'http://host:8086/?q=a@b'],
    ['http://host:8086', 'http://host:8086'],
    ['not a url', 'not a url'],
  ])('%s → %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});

describe('configuration', () => {
  it.each(['not a url', 'ftp://influx.test'])('refuses url %j with ERR_CONFIG', (url) => {
    expect(() => createInfluxClient({ ...config, url })).toThrow(FlowPilotError);
  });

  it('freezes the config with the default timeout merged in', () => {
    const client = createInfluxClient(config);
    expect(client.config.timeoutMs).toBe(10_000);
    expect(Object.isFrozen(client.config)).toBe(true);
  });
});

describe('parseRetryAfterMs', () => {
  it.each<[string | null, number | undefined]>([
    [null, undefined],
    ['0', 0],
    ['120', 120_000],
    ['Wed, 25 Nov 2026 10:00:05 GMT', 5_000],
    ['Wed, 25 Nov 2026 09:59:00 GMT', 0],
    ['soon', undefined],
  ])('%j → %j', (header, ms) => {
    expect(parseRetryAfterMs(header, Date.parse('2026-11-25T10:00:00Z'))).toBe(ms);
  });
});
