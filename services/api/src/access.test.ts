import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InfluxClient, InfluxSeries } from '@flowpilot/influx';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXPENSIVE_WINDOW_DAYS, ROUTE_ACCESS, isExpensive } from './access.ts';
import { openApiTokenStore } from './api-tokens.ts';
import type { ApiTokenStore } from './api-tokens.ts';
import { createApi, undeclaredRoutesOf } from './app.ts';
import type { ApiOptions } from './app.ts';
import type { DeadLetterAccess, DeadLetterRecord } from './routes/deadletters.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import { acceptedLanguages, safeNext } from './sign-in-page.ts';
import { testPilot } from './test-pilot.ts';
import { runTokensCommand } from './tokens-command.ts';

// SPEC section 8 over inject(): who may call what with tokens, loopback only without them, the
// dashboard's sign-in cookie, and the limits (expensive requests, live streams, points per request).

const NOW_MS = Date.parse('2026-11-25T12:00:00.000Z');
const HOUR_MS = 3_600_000;

let dir: string;
let tokensPath: string;
let store: ApiTokenStore;
let app: FastifyInstance;
let tokens: { viewer: string; evaluator: string; admin: string };
let replays: Array<Record<string, unknown>>;

const letter: DeadLetterRecord = {
  id: 7,
  receivedAtMs: NOW_MS - HOUR_MS,
  topic: 'meters/X-9/readings',
  meterId: 'X-9',
  clientId: 'X-9',
  code: 'ERR_METER_UNKNOWN',
  reason: 'meter "X-9" is not in the pilot',
  payload: '{"v":1,"meterId":"X-9","bad":"\u0007"}',
  payloadBytes: 38,
  truncated: false,
  replayedAtMs: null,
};

const deadLetters: DeadLetterAccess = {
  list: (filter) => [letter].filter((l) => (!filter.code || l.code === filter.code) && (!filter.meterId || l.meterId === filter.meterId)).slice(0, filter.limit),
  replay: async (filter) => {
    replays.push({ ...filter });
    return { replayed: 1, records: 1, stillRejected: { ERR_TS_TOO_OLD: 2 } };
  },
};

function fakeInflux(rows: (influxql: string) => InfluxSeries[] = () => []): InfluxClient {
  return {
    config: { url: 'http://influx.invalid', database: 'test' },
    ping: async () => ({ version: 'fake' }),
    ensureDatabase: async () => {},
    write: async () => {},
    query: async (influxql) => rows(influxql),
  };
}

async function build(options: Partial<ApiOptions> = {}): Promise<FastifyInstance> {
  await app?.close();
  app = await createApi({
    pilot: testPilot(),
    influx: fakeInflux(),
    liveFeed: createMemoryLiveFeed(() => NOW_MS),
    clock: () => NOW_MS,
    maxWindowDays: 30,
    tokens: store,
    deadLetters,
    metrics: { contentType: 'text/plain; version=0.0.4', metrics: async () => 'flowpilot_up 1\n' },
    ...options,
  });
  return app;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowpilot-access-'));
  tokensPath = join(dir, 'api-tokens.json');
  store = openApiTokenStore(tokensPath);
  tokens = { viewer: store.add('vera', 'viewer'), evaluator: store.add('evan', 'evaluator'), admin: store.add('ada', 'admin') };
  replays = [];
  await build();
});
afterEach(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const inject = (options: InjectOptions) => app.inject(options);

describe('with tokens: 401 without one, 403 below the route\'s role, 200 from it on (SPEC section 8)', () => {
  const day = `from=${NOW_MS - 6 * HOUR_MS}&to=${NOW_MS}`;
  // One representative of each level, including the dashboard, the documents and Prometheus.
  const routes: Array<[string, string, 'viewer' | 'evaluator' | 'admin']> = [
    ['GET', '/api/v1/pilot', 'viewer'],
    ['GET', '/api/v1/meters/T-REF', 'viewer'],
    ['GET', `/api/v1/meters/T-REF/readings?${day}`, 'viewer'],
    ['GET', '/', 'viewer'],
    ['GET', '/dashboard.js', 'viewer'],
    ['GET', '/docs/json', 'viewer'],
    ['GET', `/api/v1/metrics?${day}`, 'evaluator'],
    ['GET', `/api/v1/meters/T-DUT/error-curve?${day}`, 'evaluator'],
    ['GET', `/api/v1/reports/metrics.csv?${day}`, 'evaluator'],
    ['GET', '/metrics', 'evaluator'],
    ['GET', '/api/v1/deadletters', 'admin'],
    ['POST', '/api/v1/deadletters/replay', 'admin'],
  ];
  const order = ['viewer', 'evaluator', 'admin'] as const;

  it.each(routes)('%s %s needs %s', async (method, url, least) => {
    const anonymous = await inject({ method: method as 'GET', url });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ error: { code: 'ERR_UNAUTHENTICATED', message: expect.stringContaining('Authorization: Bearer <token>') } });
    expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="FlowPilot"');

    const unknown = await inject({ method: method as 'GET', url, headers: bearer('fpt_not-a-token') });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().error.message).toMatch(/unknown or was revoked/);

    for (const role of order) {
      const response = await inject({ method: method as 'GET', url, headers: bearer(tokens[role]) });
      if (order.indexOf(role) < order.indexOf(least)) {
        expect(response.statusCode, role).toBe(403);
        expect(response.json()).toMatchObject({ error: { code: 'ERR_FORBIDDEN', message: expect.stringContaining(`needs ${order.slice(order.indexOf(least)).join(' or ')}`) } });
      } else {
        expect(response.statusCode, `${role}: ${response.body.slice(0, 200)}`).toBe(200);
      }
    }
  });

  it('keeps /healthz and /readyz open to anyone, anywhere', async () => {
    for (const url of ['/healthz', '/readyz']) {
      expect((await inject({ url })).statusCode).toBe(200);
      expect((await inject({ url, remoteAddress: '203.0.113.9' })).statusCode).toBe(200);
    }
  });

  it('answers 401, not 404, to an anonymous caller of a URL with no route', async () => {
    expect((await inject({ url: '/api/v1/secret-admin-thing' })).statusCode).toBe(401);
    expect((await inject({ url: '/api/v1/secret-admin-thing', headers: bearer(tokens.viewer) })).statusCode).toBe(404);
  });

  it('takes the token from any address, loopback or not', async () => {
    const response = await inject({ url: '/api/v1/pilot', remoteAddress: '203.0.113.9', headers: bearer(tokens.viewer) });
    expect(response.statusCode).toBe(200);
  });

  it('refuses a revoked token from the next request on, without a restart', async () => {
    expect((await inject({ url: '/api/v1/pilot', headers: bearer(tokens.viewer) })).statusCode).toBe(200);
    runTokensCommand(['revoke', 'vera'], tokensPath, () => {});
    expect((await inject({ url: '/api/v1/pilot', headers: bearer(tokens.viewer) })).statusCode).toBe(401);
    // A token added meanwhile by the CLI works at once, too.
    const lines: string[] = [];
    runTokensCommand(['add', 'vera2', '--role', 'viewer'], tokensPath, (line) => lines.push(line));
    const fresh = lines.map((l) => l.trim()).find((l) => l.startsWith('fpt_')) as string;
    expect((await inject({ url: '/api/v1/pilot', headers: bearer(fresh) })).statusCode).toBe(200);
  });

  it('declares every route\'s role in ROUTE_ACCESS, the table SPEC section 5 reads like', () => {
    expect(undeclaredRoutesOf(app)).toEqual([]);
    for (const [route, access] of Object.entries(ROUTE_ACCESS)) {
      expect(route).toMatch(/^(GET|POST|DELETE) \//);
      expect(['public', 'viewer', 'evaluator', 'admin']).toContain(access.role);
    }
  });
});

describe('without tokens: loopback clients only', () => {
  beforeEach(async () => {
    for (const name of ['vera', 'evan', 'ada']) store.revoke(name);
  });

  it('serves every route to a loopback client, admin routes included', async () => {
    for (const url of ['/api/v1/pilot', '/', '/api/v1/metrics', '/api/v1/deadletters', '/docs/json']) {
      expect((await inject({ url })).statusCode, url).toBe(200);
      expect((await inject({ url, remoteAddress: '::1' })).statusCode, url).toBe(200);
    }
    expect((await inject({ url: '/api/v1/session' })).json()).toEqual({ name: null, role: 'admin', via: 'loopback' });
  });

  it('answers 403 to another machine, saying how to add a token', async () => {
    const response = await inject({ url: '/api/v1/pilot', remoteAddress: '192.168.1.20' });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ error: { code: 'ERR_FORBIDDEN', message: expect.stringContaining('flowpilot tokens add <name> --role viewer') } });
    expect((await inject({ url: '/healthz', remoteAddress: '192.168.1.20' })).statusCode).toBe(200);
  });

  it('treats a proxied request, or one addressed to a foreign host name (DNS rebinding), as not loopback', async () => {
    const proxied = await inject({ url: '/api/v1/pilot', headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(proxied.statusCode).toBe(403);
    expect(proxied.json().error.message).toMatch(/relayed by a proxy/);
    const rebound = await inject({ url: '/api/v1/pilot', headers: { host: 'attacker.example:8080' } });
    expect(rebound.statusCode).toBe(403);
    expect(rebound.json().error.message).toMatch(/addressed to "attacker.example:8080"/);
    expect((await inject({ url: '/api/v1/pilot', headers: { host: '127.0.0.1:8080' } })).statusCode).toBe(200);
    expect((await inject({ url: '/api/v1/pilot', headers: { host: '[::1]:8080' } })).statusCode).toBe(200);
  });

  it('also without a token store at all', async () => {
    await build({ tokens: undefined });
    expect((await inject({ url: '/api/v1/pilot' })).statusCode).toBe(200);
    expect((await inject({ url: '/api/v1/pilot', remoteAddress: '10.1.2.3' })).statusCode).toBe(403);
  });
});

describe('dashboard sign-in with a cookie', () => {
  const html = { accept: 'text/html,application/xhtml+xml' };
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const cookieOf = (setCookie: string | string[] | undefined): string => String([setCookie].flat()[0] ?? '').split(';')[0] as string;

  it('serves a browser without a cookie the sign-in page, labelled, in its language', async () => {
    const page = await inject({ url: '/', headers: html });
    expect(page.statusCode).toBe(401);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).toContain('<form method="post" action="/api/v1/session"');
    expect(page.body).toMatch(/<label for="token">Access token<\/label>/);
    expect(page.body).toMatch(/<input id="token" name="token" type="password" required/);
    expect(page.body).not.toContain('role="alert"');
    const docs = await inject({ url: '/docs', headers: html });
    expect(docs.body).toContain('name="next" value="/docs"');
    const russian = await inject({ url: '/', headers: { ...html, 'accept-language': 'ru-RU,ru;q=0.9,en;q=0.5' } });
    expect(russian.body).toContain('<html lang="ru">');
    expect(russian.body).toContain('Токен доступа');
    expect((await inject({ url: '/?lang=ru', headers: html })).body).toContain('Токен доступа');
  });

  it('signs in through the form: a cookie that is HttpOnly, SameSite=Strict, Path=/ and, over HTTP, not Secure; then back to the page', async () => {
    const response = await inject({ method: 'POST', url: '/api/v1/session', headers: form, payload: new URLSearchParams({ token: tokens.viewer, next: '/docs' }).toString() });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe('/docs');
    const setCookie = String(response.headers['set-cookie']);
    expect(setCookie).toMatch(/^flowpilot_token=fpt_/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\//);
    expect(setCookie).not.toMatch(/Secure/);
    const cookie = cookieOf(response.headers['set-cookie']);

    expect((await inject({ url: '/', headers: { ...html, cookie } })).statusCode).toBe(200);
    expect((await inject({ url: '/api/v1/pilot', headers: { cookie } })).statusCode).toBe(200);
    expect((await inject({ url: '/api/v1/session', headers: { cookie } })).json()).toEqual({ name: 'vera', role: 'viewer', via: 'cookie' });
    // A viewer's cookie is no evaluator's.
    expect((await inject({ url: '/api/v1/metrics', headers: { cookie } })).statusCode).toBe(403);
  });

  it('signs in with JSON too, and signs out', async () => {
    const response = await inject({ method: 'POST', url: '/api/v1/session', payload: { token: tokens.evaluator } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ name: 'evan', role: 'evaluator', via: 'cookie' });
    const cookie = cookieOf(response.headers['set-cookie']);
    expect((await inject({ url: '/api/v1/metrics', headers: { cookie } })).statusCode).toBe(200);
    const out = await inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^flowpilot_token=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/);
  });

  it('answers a wrong token with the page again: the error tied to the field and announced', async () => {
    const response = await inject({ method: 'POST', url: '/api/v1/session', headers: form, payload: 'token=fpt_wrong&next=%2F&lang=en' });
    expect(response.statusCode).toBe(401);
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(response.body).toMatch(/<p id="token-error" class="error" role="alert">This token is unknown or was revoked/);
    expect(response.body).toMatch(/aria-describedby="token-error token-hint" aria-invalid="true"/);
    expect(response.body).toMatch(/<title>Error: Sign in · FlowPilot<\/title>/);
    const empty = await inject({ method: 'POST', url: '/api/v1/session', headers: form, payload: 'token=+&lang=ru' });
    expect(empty.body).toContain('Введите токен.');
    const json = await inject({ method: 'POST', url: '/api/v1/session', payload: { token: 'fpt_wrong' } });
    expect(json.statusCode).toBe(401);
    expect(json.json().error.code).toBe('ERR_UNAUTHENTICATED');
  });

  it('never sends the browser off-site after sign-in', async () => {
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      const response = await inject({ method: 'POST', url: '/api/v1/session', headers: form, payload: new URLSearchParams({ token: tokens.viewer, next }).toString() });
      expect(response.headers.location, next).toBe('/');
    }
    expect(safeNext('/#/results?from=1')).toBe('/#/results?from=1');
  });

  it('forgets a cookie whose token was revoked, and shows the sign-in page again', async () => {
    const signedIn = await inject({ method: 'POST', url: '/api/v1/session', payload: { token: tokens.viewer } });
    const cookie = cookieOf(signedIn.headers['set-cookie']);
    store.revoke('vera');
    const page = await inject({ url: '/', headers: { ...html, cookie } });
    expect(page.statusCode).toBe(401);
    expect(page.body).toContain('role="alert"');
    expect(String(page.headers['set-cookie'])).toMatch(/^flowpilot_token=;/);
    expect((await inject({ url: '/api/v1/pilot', headers: { cookie } })).statusCode).toBe(401);
  });

  it('refuses a cookie-signed state change from another site (defence beside SameSite=Strict)', async () => {
    const signedIn = await inject({ method: 'POST', url: '/api/v1/session', payload: { token: tokens.admin } });
    const cookie = cookieOf(signedIn.headers['set-cookie']);
    const forged = await inject({ method: 'POST', url: '/api/v1/deadletters/replay', headers: { cookie, origin: 'https://evil.example' } });
    expect(forged.statusCode).toBe(403);
    const own = await inject({ method: 'POST', url: '/api/v1/deadletters/replay', headers: { cookie, origin: 'http://localhost:80', host: 'localhost:80' } });
    expect(own.statusCode).toBe(200);
  });

  it('reads Accept-Language by preference', () => {
    expect(acceptedLanguages('en;q=0.5, ru-RU, *;q=0.1, kk;q=0')).toEqual(['ru-RU', 'en']);
  });
});

describe('limits', () => {
  it('answers 429 with Retry-After after expensiveRatePerMinute expensive requests of one token; others keep theirs', async () => {
    await build({ expensiveRatePerMinute: 3 });
    const week = `from=${NOW_MS - 7 * 24 * HOUR_MS}&to=${NOW_MS}`;
    const urls = [`/api/v1/reports/metrics.csv?${week}`, `/api/v1/metrics?${week}`, `/api/v1/reports/metrics.csv?${week}`];
    for (const url of urls) expect((await inject({ url, headers: bearer(tokens.evaluator) })).statusCode, url).toBe(200);
    const limited = await inject({ url: `/api/v1/metrics?${week}`, headers: bearer(tokens.evaluator) });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ error: { code: 'ERR_RATE_LIMITED', message: expect.stringMatching(/More than 3 expensive requests .* a minute from token "evan"/) } });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another token, cheap windows and cheap routes are not held back.
    expect((await inject({ url: `/api/v1/metrics?${week}`, headers: bearer(tokens.admin) })).statusCode).toBe(200);
    expect((await inject({ url: `/api/v1/metrics?from=${NOW_MS - 24 * HOUR_MS}&to=${NOW_MS}`, headers: bearer(tokens.evaluator) })).statusCode).toBe(200);
    expect((await inject({ url: '/api/v1/pilot', headers: bearer(tokens.evaluator) })).statusCode).toBe(200);
  });

  it('lets the PDF report read /metrics for itself: one request of the caller\'s budget, past access checks', async () => {
    await build({ expensiveRatePerMinute: 1 });
    const pdf = await inject({ url: `/api/v1/reports/pilot.pdf?from=${NOW_MS - 7 * 24 * HOUR_MS}&to=${NOW_MS}`, headers: bearer(tokens.evaluator) });
    expect(pdf.statusCode, pdf.body.slice(0, 300)).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    expect((await inject({ url: '/api/v1/reports/metrics.csv', headers: bearer(tokens.evaluator) })).statusCode).toBe(429);
    // The secret header is this process's own: a guessed one is just ignored.
    const guessed = await inject({ url: '/api/v1/metrics', headers: { 'x-flowpilot-internal': 'guess' } });
    expect(guessed.statusCode).toBe(401);
  });

  it('counts per address without tokens, and readings only over long windows', async () => {
    for (const name of ['vera', 'evan', 'ada']) store.revoke(name);
    await build({ expensiveRatePerMinute: 2 });
    const long = `/api/v1/meters/T-REF/readings?from=${NOW_MS - 10 * 24 * HOUR_MS}&to=${NOW_MS}&every=1h`;
    const short = `/api/v1/meters/T-REF/readings?from=${NOW_MS - 6 * HOUR_MS}&to=${NOW_MS}&every=5m`;
    for (let i = 0; i < 5; i++) expect((await inject({ url: short })).statusCode).toBe(200);
    expect((await inject({ url: long })).statusCode).toBe(200);
    expect((await inject({ url: long })).statusCode).toBe(200);
    expect((await inject({ url: long })).statusCode).toBe(429);
    expect((await inject({ url: long, remoteAddress: '127.0.0.2' })).statusCode).toBe(200);
  });

  it('classes windows: over EXPENSIVE_WINDOW_DAYS is expensive; the default window counts', () => {
    const day = 86_400_000;
    expect(isExpensive('always', {}, NOW_MS)).toBe(true);
    expect(isExpensive({ defaultWindowDays: 7 }, {}, NOW_MS)).toBe(true);
    expect(isExpensive({ defaultWindowDays: 1 }, {}, NOW_MS)).toBe(false);
    expect(isExpensive({ defaultWindowDays: 7 }, { from: NOW_MS - EXPENSIVE_WINDOW_DAYS * day, to: NOW_MS }, NOW_MS)).toBe(false);
    expect(isExpensive({ defaultWindowDays: 7 }, { from: String(NOW_MS - 3 * day) }, NOW_MS)).toBe(true);
  });

  it('refuses a live stream beyond maxLiveConnections with 503 ERR_LIVE_FULL', async () => {
    await build({ maxLiveConnections: 0 });
    const response = await inject({ url: '/api/v1/live', headers: bearer(tokens.viewer) });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ error: { code: 'ERR_LIVE_FULL', message: expect.stringContaining('0 live streams') } });
    expect(response.headers['retry-after']).toBe('30');
  });

  it('answers 400 naming the limit when one request would produce too many points', async () => {
    const row = (i: number) => [NOW_MS - HOUR_MS + i * 60_000, 1, 100 + i, i, 0, NOW_MS];
    const influx = fakeInflux((q) => (q.includes('LIMIT') ? [{ name: 'reading', columns: ['time', 'flow', 'total', 'seq', 'alarms', 'received_at'], values: Array.from({ length: 6 }, (_, i) => row(i)) }] : []));
    await build({ influx, maxRawReadings: 5, maxBuckets: 10 });
    const raw = await inject({ url: `/api/v1/meters/T-REF/readings?from=${NOW_MS - HOUR_MS}&to=${NOW_MS}`, headers: bearer(tokens.viewer) });
    expect(raw.statusCode).toBe(400);
    expect(raw.json()).toMatchObject({ error: { code: 'ERR_VALIDATION', message: expect.stringMatching(/^More than 5 readings between .* Pass "every"/) } });
    const buckets = await inject({ url: `/api/v1/meters/T-REF/readings?from=${NOW_MS - HOUR_MS}&to=${NOW_MS}&every=1m`, headers: bearer(tokens.viewer) });
    expect(buckets.statusCode).toBe(400);
    expect(buckets.json().error.message).toMatch(/splits the window into 60 buckets, more than 10/);
  });

  it('refuses invalid limits at start-up, naming each', async () => {
    await expect(build({ expensiveRatePerMinute: 0, maxLiveConnections: -1, connectionTimeoutMs: 20_000 })).rejects.toThrow(
      /expensiveRatePerMinute must be a positive integer; got 0; maxLiveConnections must be an integer ≥ 0; got -1; connectionTimeoutMs \(20000\) must exceed twice sseHeartbeatMs/,
    );
    await build();
  });
});

describe('security headers and caching', () => {
  it('sends helmet\'s headers with a CSP that allows only this origin, on pages, API answers and errors alike', async () => {
    for (const [url, headers] of [['/', bearer(tokens.viewer)], ['/api/v1/pilot', bearer(tokens.viewer)], ['/api/v1/pilot', {}]] as const) {
      const response = await inject({ url, headers });
      const csp = String(response.headers['content-security-policy']);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("object-src 'none'");
      // Over plain HTTP (a LAN address), upgrading requests would break the dashboard.
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['strict-transport-security']).toBeUndefined();
    }
  });

  it('gives the dashboard bundle a strong ETag, no-cache, and 304 when it has not changed', async () => {
    const first = await inject({ url: '/dashboard.js', headers: bearer(tokens.viewer) });
    expect(first.statusCode).toBe(200);
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{32}"$/);
    expect(first.headers['cache-control']).toBe('no-cache');
    const again = await inject({ url: '/dashboard.js', headers: { ...bearer(tokens.viewer), 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    const other = await inject({ url: '/dashboard.js', headers: { ...bearer(tokens.viewer), 'if-none-match': '"something-else"' } });
    expect(other.statusCode).toBe(200);
  });

  it('compresses the bundle once, with an ETag per coding', async () => {
    const plain = await inject({ url: '/dashboard.js', headers: bearer(tokens.viewer) });
    const br = await inject({ url: '/dashboard.js', headers: { ...bearer(tokens.viewer), 'accept-encoding': 'gzip, deflate, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toContain('accept-encoding');
    expect(br.headers.etag).toBe(String(plain.headers.etag).replace(/"$/, '-br"'));
    expect(br.rawPayload.length).toBeLessThan(plain.rawPayload.length / 2);
    const gz = await inject({ url: '/dashboard.js', headers: { ...bearer(tokens.viewer), 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    const revalidated = await inject({ url: '/dashboard.js', headers: { ...bearer(tokens.viewer), 'accept-encoding': 'br', 'if-none-match': String(br.headers.etag) } });
    expect(revalidated.statusCode).toBe(304);
  });

  it('compresses large API answers when asked', async () => {
    const response = await inject({ url: '/docs/json', headers: { ...bearer(tokens.viewer), 'accept-encoding': 'gzip' } });
    expect(response.headers['content-encoding']).toBe('gzip');
  });
});

describe('dead letters over the API (admin)', () => {
  it('lists them with ISO times and filters, and replays with the filter given', async () => {
    const list = await inject({ url: '/api/v1/deadletters?code=ERR_METER_UNKNOWN&meter=X-9&limit=5', headers: bearer(tokens.admin) });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({
      deadLetters: [
        {
          id: 7,
          receivedAt: new Date(NOW_MS - HOUR_MS).toISOString(),
          topic: 'meters/X-9/readings',
          meterId: 'X-9',
          clientId: 'X-9',
          code: 'ERR_METER_UNKNOWN',
          reason: 'meter "X-9" is not in the pilot',
          payload: '{"v":1,"meterId":"X-9","bad":"\u0007"}',
          replayedAt: null,
        },
      ],
    });
    // Control characters leave JSON-escaped.
    expect(list.body).toContain('\\u0007');
    expect((await inject({ url: '/api/v1/deadletters?code=ERR_TS_FUTURE', headers: bearer(tokens.admin) })).json()).toEqual({ deadLetters: [] });
    expect((await inject({ url: '/api/v1/deadletters?limit=0', headers: bearer(tokens.admin) })).statusCode).toBe(400);
    expect((await inject({ url: '/api/v1/deadletters?code=DROP', headers: bearer(tokens.admin) })).statusCode).toBe(400);

    const replay = await inject({ method: 'POST', url: '/api/v1/deadletters/replay', headers: bearer(tokens.admin), payload: { code: 'ERR_METER_UNKNOWN', meter: 'X-9' } });
    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toEqual({ replayed: 1, records: 1, stillRejected: { ERR_TS_TOO_OLD: 2 } });
    expect(replays).toEqual([{ code: 'ERR_METER_UNKNOWN', meterId: 'X-9' }]);
    expect((await inject({ method: 'POST', url: '/api/v1/deadletters/replay', headers: bearer(tokens.admin) })).statusCode).toBe(200);
    expect(replays[1]).toEqual({});
  });

  it('answers 404 with what to do when the process has no durable store', async () => {
    await build({ deadLetters: undefined });
    for (const [method, url] of [['GET', '/api/v1/deadletters'], ['POST', '/api/v1/deadletters/replay']] as const) {
      const response = await inject({ method, url, headers: bearer(tokens.admin) });
      expect(response.statusCode).toBe(404);
      expect(response.json().error.message).toMatch(/not available from this API process.*flowpilot deadletters list\|replay/);
    }
  });

  it('documents both routes in OpenAPI', async () => {
    const doc = (await inject({ url: '/docs/json', headers: bearer(tokens.viewer) })).json() as { paths: Record<string, Record<string, unknown>>; components: { securitySchemes: unknown } };
    expect(Object.keys(doc.paths['/api/v1/deadletters'] ?? {})).toContain('get');
    expect(Object.keys(doc.paths['/api/v1/deadletters/replay'] ?? {})).toContain('post');
    expect(doc.components.securitySchemes).toEqual({ bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }) });
  });
});
