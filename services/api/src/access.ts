import { parseTime } from '@flowpilot/schema';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from './api-errors.ts';
import { API_ROLES } from './api-tokens.ts';
import type { ApiRole, TokenVerifier } from './api-tokens.ts';
import { WINDOW_KINDS } from './window.ts';

/**
 * Who may call what (SPEC sections 5 and 8), as one Fastify hook: with any API token
 * configured, every route but the health checks needs one, as `Authorization: Bearer <token>`
 * or the dashboard's sign-in cookie; without tokens the API serves loopback clients only.
 */

/** `public` routes need nothing; the roles are ordered viewer < evaluator < admin. */
export type AccessLevel = 'public' | ApiRole;

/**
 * How costly a route is, for the expensive-request limit: `always`, or by its time window (a
 * window up to EXPENSIVE_WINDOW_DAYS is cheap: the dashboard's daily charts and sparklines).
 */
export type RouteCost = 'always' | { defaultWindowDays: number };

export interface RouteAccess {
  role: AccessLevel;
  expensive?: RouteCost;
}

/** Windows longer than this count against the expensive-request limit; shorter ones against a budget 10 times larger. */
export const EXPENSIVE_WINDOW_DAYS = 2;

/**
 * Every route and the least role that may call it: the API table of SPEC section 5 with the
 * access rules of its last paragraph. `*` ends a prefix. A route missing here needs `admin`
 * (app.test.ts checks none is missing); a URL with no route needs `viewer`, so an anonymous
 * caller learns nothing about which routes exist.
 */
export const ROUTE_ACCESS: Readonly<Record<string, RouteAccess>> = {
  // Liveness and readiness: for probes and load balancers, never behind a token.
  'GET /healthz': { role: 'public' },
  'GET /readyz': { role: 'public' },
  // The dashboard's sign-in (the token is the request) and sign-out; who am I.
  'POST /api/v1/session': { role: 'public' },
  'DELETE /api/v1/session': { role: 'public' },
  'GET /api/v1/session': { role: 'viewer' },
  // The dashboard, and the stylesheet its sign-in page shares; the API documents.
  'GET /': { role: 'viewer' },
  'GET /index.html': { role: 'viewer' },
  'GET /dashboard.js': { role: 'viewer' },
  'GET /dashboard.css': { role: 'public' },
  'GET /style.css': { role: 'public' },
  'GET /favicon.svg': { role: 'public' },
  'GET /docs*': { role: 'viewer' },

  // viewer: the pilot, meters, readings and the live feed.
  'GET /api/v1/pilot': { role: 'viewer' },
  'GET /api/v1/meters/:id': { role: 'viewer' },
  'GET /api/v1/meters/:id/readings': { role: 'viewer', expensive: { defaultWindowDays: WINDOW_KINDS.readings.defaultDays } },
  'GET /api/v1/live': { role: 'viewer' },
  'GET /api/v1/alerts': { role: 'viewer' },

  // evaluator: also metrics, error curves, intervals and reports.
  'GET /api/v1/metrics': { role: 'evaluator', expensive: { defaultWindowDays: WINDOW_KINDS.metrics.defaultDays } },
  'GET /api/v1/meters/:id/error-curve': { role: 'evaluator', expensive: { defaultWindowDays: WINDOW_KINDS.metrics.defaultDays } },
  'GET /api/v1/meters/:id/intervals.csv': { role: 'evaluator', expensive: 'always' },
  'GET /api/v1/reports/metrics.csv': { role: 'evaluator', expensive: 'always' },
  'GET /api/v1/reports/readings.csv': { role: 'evaluator', expensive: 'always' },
  'GET /api/v1/reports/pilot.pdf': { role: 'evaluator', expensive: 'always' },
  'GET /api/v1/reports/metrics.xlsx': { role: 'evaluator', expensive: 'always' },
  'GET /api/v1/reports/readings.xlsx': { role: 'evaluator', expensive: 'always' },
  // Prometheus: the pipeline's own counters.
  'GET /metrics': { role: 'evaluator' },

  // admin: also dead letters, and their replay.
  'GET /api/v1/deadletters': { role: 'admin' },
  'POST /api/v1/deadletters/replay': { role: 'admin', expensive: 'always' },
};

const UNDECLARED: RouteAccess = { role: 'admin' };
const NO_ROUTE: RouteAccess = { role: 'viewer' };

/** The entry of ROUTE_ACCESS for a route (`GET`, `/api/v1/meters/:id`), undefined when none. */
export function declaredAccess(method: string, url: string): RouteAccess | undefined {
  const verb = method === 'HEAD' ? 'GET' : method;
  const exact = ROUTE_ACCESS[`${verb} ${url}`];
  if (exact) return exact;
  for (const [key, access] of Object.entries(ROUTE_ACCESS)) {
    if (key.endsWith('*') && `${verb} ${url}`.startsWith(key.slice(0, -1))) return access;
  }
  return undefined;
}

/** Who is calling. `name` is the token's; null for a loopback client of an API without tokens. */
export interface Principal {
  name: string | null;
  role: ApiRole;
  via: 'bearer' | 'cookie' | 'loopback';
}

/** The dashboard's sign-in cookie: the token itself, HttpOnly so no script can read it. */
export const SESSION_COOKIE = 'flowpilot_token';

const principals = new WeakMap<FastifyRequest, Principal>();
/** The token a request was let in with, and the store that knew it: long requests (live streams) check it again. */
const credentials = new WeakMap<FastifyRequest, { token: string; tokens: TokenVerifier }>();

/** The caller of a request that passed the access hook; undefined on public routes without credentials. */
export function principalOf(request: FastifyRequest): Principal | undefined {
  return principals.get(request);
}

/**
 * Is the token this request came in with still valid? For a request that lasts (a live stream):
 * revoking a token ends its open streams too. True for requests let in without a token.
 */
export function stillAuthorized(request: FastifyRequest): boolean {
  const credential = credentials.get(request);
  if (!credential) return true;
  try {
    return credential.tokens.verify(credential.token) !== null;
  } catch {
    return false;
  }
}

export function isLoopbackAddress(ip: string | undefined): boolean {
  if (!ip) return false;
  return ip === '::1' || ip.startsWith('127.') || /^::ffff:127\./i.test(ip);
}

/** Is the Host header a name of this machine's loopback? Else a DNS-rebinding page may be talking to us. */
function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return true;
  const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

const rank = (role: ApiRole): number => API_ROLES.indexOf(role);

export const NO_TOKEN_HINT = 'flowpilot tokens add <name> --role viewer';

export interface AccessOptions {
  tokens: TokenVerifier | undefined;
  /** Expensive requests per minute and caller (token, or address without tokens); short windows get 10 times as many. */
  expensiveRatePerMinute: number;
  clock: () => number;
  /** Answers a browser that opens a page without a valid token: the sign-in page. */
  signInPage: (request: FastifyRequest, reply: FastifyReply, problem: 'missing' | 'failed') => FastifyReply;
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  // A malformed Authorization header is a wrong credential, not an absent one.
  return match ? match[1] : '';
}

function isPageRequest(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0] ?? '';
  return (
    request.method === 'GET' &&
    !path.startsWith('/api/') &&
    path !== '/metrics' &&
    request.headers.authorization === undefined &&
    String(request.headers.accept ?? '').includes('text/html')
  );
}

/** The route's entry, or the fail-closed defaults. */
function accessOf(request: FastifyRequest): RouteAccess {
  const url = request.routeOptions.url;
  if (url === undefined) return NO_ROUTE;
  return declaredAccess(request.method, url) ?? UNDECLARED;
}

/**
 * Installs the access hook (onRequest: before anything is parsed or computed) and the
 * expensive-request limit (preHandler: after validation, so the window is known). Returns the
 * routes registered afterwards that ROUTE_ACCESS does not declare (they need admin).
 */
export function registerAccess(app: FastifyInstance, options: AccessOptions): { undeclaredRoutes: string[] } {
  const { tokens, clock } = options;
  const undeclaredRoutes: string[] = [];

  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD' && !declaredAccess(method, route.url)) undeclaredRoutes.push(`${method} ${route.url}`);
    }
  });

  function deny(reply: FastifyReply, status: 401 | 403, message: string, bearerError?: 'invalid_token' | 'insufficient_scope'): FastifyReply {
    if (status === 401 || bearerError) {
      reply.header('www-authenticate', `Bearer realm="FlowPilot"${bearerError ? `, error="${bearerError}"` : ''}`);
    }
    return reply.code(status).header('cache-control', 'no-store').send(errorBody(status === 401 ? 'ERR_UNAUTHENTICATED' : 'ERR_FORBIDDEN', message));
  }

  /** Without tokens: this machine's clients only, and only when nothing relays or disguises them. */
  function loopbackProblem(request: FastifyRequest): string | null {
    if (!isLoopbackAddress(request.ip)) return 'this request came from another machine';
    if (request.headers.forwarded !== undefined || request.headers['x-forwarded-for'] !== undefined || request.headers['x-real-ip'] !== undefined) {
      return 'this request was relayed by a proxy, so its client may be anywhere';
    }
    if (!isLoopbackHost(request.headers.host)) return `this request was addressed to "${String(request.headers.host).slice(0, 100)}", not to a loopback name`;
    return null;
  }

  app.addHook('onRequest', async (request, reply) => {
    const access = accessOf(request);
    if (access.role === 'public') return;

    if (!tokens || !tokens.hasTokens()) {
      const problem = loopbackProblem(request);
      if (problem) {
        return deny(
          reply,
          403,
          `This FlowPilot has no API tokens yet, so it serves clients on its own machine only, and ${problem}. ` +
            `To open it to others, add a token on the server (${NO_TOKEN_HINT}) and send it as "Authorization: Bearer <token>", or sign in to the dashboard with it`,
        );
      }
      principals.set(request, { name: null, role: 'admin', via: 'loopback' });
      return;
    }

    const bearer = bearerToken(request);
    const cookie = bearer === undefined ? request.cookies?.[SESSION_COOKIE] : undefined;
    const presented = bearer ?? cookie;
    if (!presented) {
      if (isPageRequest(request)) return options.signInPage(request, reply, 'missing');
      return deny(reply, 401, `${request.method} ${request.routeOptions.url ?? 'this URL'} needs an API token: send "Authorization: Bearer <token>", or sign in to the dashboard. An administrator creates one with ${NO_TOKEN_HINT}`);
    }
    const found = tokens.verify(presented);
    if (!found) {
      if (cookie !== undefined) reply.clearCookie(SESSION_COOKIE, { path: '/' });
      if (isPageRequest(request)) return options.signInPage(request, reply, 'failed');
      return deny(reply, 401, 'The token is unknown or was revoked. Check it, or ask an administrator for a new one', 'invalid_token');
    }
    const principal: Principal = { name: found.name, role: found.role, via: bearer !== undefined ? 'bearer' : 'cookie' };
    if (rank(principal.role) < rank(access.role)) {
      const needed = API_ROLES.slice(rank(access.role as ApiRole)).join(' or ');
      return deny(
        reply,
        403,
        `Token "${principal.name}" has the role ${principal.role}; ${request.method} ${request.routeOptions.url ?? ''} needs ${needed}. ` +
          `An administrator can give you such a token: flowpilot tokens add <name> --role ${access.role}`,
        'insufficient_scope',
      );
    }
    // A cookie rides along with any request the browser makes: a state-changing one must come from our own pages.
    if (principal.via === 'cookie' && !['GET', 'HEAD', 'OPTIONS'].includes(request.method)) {
      const origin = request.headers.origin;
      if (origin !== undefined && originOf(origin) !== originOf(`${request.protocol}://${request.headers.host ?? ''}`)) {
        return deny(reply, 403, 'A request signed in by cookie must come from the dashboard\'s own pages');
      }
    }
    principals.set(request, principal);
    credentials.set(request, { token: presented, tokens });
  });

  registerExpensiveLimit(app, options.expensiveRatePerMinute, clock);
  return { undeclaredRoutes };
}

/** The origin of a URL, normalised (default ports dropped); a different string for anything unparsable. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return `invalid:${url}`;
  }
}

/**
 * Does this request count as expensive (true), or only against the larger budget of cheap windows
 * (false)? After validation a route's query holds its resolved `window` (window.ts); otherwise
 * `from` and `to` are read as the route would, with its default window.
 */
export function isExpensive(cost: RouteCost, query: unknown, nowMs: number): boolean {
  if (cost === 'always') return true;
  const q = (query ?? {}) as { from?: unknown; to?: unknown; window?: { fromMs: number; toMs: number } };
  if (q.window) return q.window.toMs - q.window.fromMs > EXPENSIVE_WINDOW_DAYS * 86_400_000;
  const ms = (value: unknown): number | undefined =>
    typeof value === 'number' ? value : typeof value === 'string' ? (parseTime(value) ?? undefined) : undefined;
  const toMs = ms(q.to) ?? nowMs;
  const fromMs = ms(q.from) ?? toMs - cost.defaultWindowDays * 86_400_000;
  return toMs - fromMs > EXPENSIVE_WINDOW_DAYS * 86_400_000;
}

/**
 * The expensive-request limit: one budget per caller shared by every expensive route (so
 * switching from PDFs to CSVs does not reset it), counted by @fastify/rate-limit's store.
 */
function registerExpensiveLimit(app: FastifyInstance, perMinute: number, clock: () => number): void {
  const key = (request: FastifyRequest): string => {
    const principal = principalOf(request);
    return principal?.name && principal.via !== 'loopback' ? `token:${principal.name}` : `address:${request.ip}`;
  };
  const heavy = app.createRateLimit({ max: perMinute, timeWindow: 60_000, keyGenerator: key });
  const light = app.createRateLimit({ max: perMinute * 10, timeWindow: 60_000, keyGenerator: key });

  app.addHook('preHandler', async (request, reply) => {
    const cost = accessOf(request).expensive;
    if (!cost) return;
    const expensive = isExpensive(cost, request.query, clock());
    const outcome = await (expensive ? heavy : light)(request);
    if (outcome.isAllowed || !outcome.isExceeded) return;
    const principal = principalOf(request);
    const who = principal?.name && principal.via !== 'loopback' ? `token "${principal.name}"` : 'this address';
    const what = expensive ? 'expensive requests (metrics, error curves, reports, windows over 2 days)' : 'requests for short windows';
    return reply
      .code(429)
      .header('retry-after', String(outcome.ttlInSeconds))
      .header('cache-control', 'no-store')
      .send(errorBody('ERR_RATE_LIMITED', `More than ${outcome.max} ${what} a minute from ${who}. Try again in ${outcome.ttlInSeconds} s`));
  });
}
