import { parseWindowTime, WINDOW_TIME_HINT } from '@flowpilot/metrics';
import type { TimeWindow } from '@flowpilot/metrics';
import { FlowPilotError } from '@flowpilot/schema';
import { z } from 'zod';
import { validationError } from './api-errors.ts';

/**
 * The one definition of a request's time window (SPEC sections 4 and 5), for every route that
 * takes `from` and `to`, the PDF report and the dashboard's links: the time grammar of
 * @flowpilot/schema plus bare dates as local days, the defaults, the longest window, and `to`
 * clamped to now where the numbers depend on it.
 */

const DAY_MS = 86_400_000;

/**
 * What each kind of route does with a window. Readings are not clamped: a meter's clock may run
 * up to 5 minutes ahead of the server's (SPEC section 1), and its latest readings must still show.
 */
export const WINDOW_KINDS = {
  /** GET /meters/{id}/readings: the last 24 hours by default. */
  readings: { defaultDays: 1, clampToNow: false },
  /** GET /reports/readings.csv: a week by default. */
  readingsExport: { defaultDays: 7, clampToNow: false },
  /** Metrics, error curves, metrics.csv and the PDF: a week by default; a future `to` would count readings not yet due as missing. */
  metrics: { defaultDays: 7, clampToNow: true },
} as const satisfies Record<string, { defaultDays: number; clampToNow: boolean }>;
export type WindowKind = keyof typeof WINDOW_KINDS;

export interface WindowPolicy {
  /** Epoch ms now. */
  clock: () => number;
  /** The longest window any route answers, in days. */
  maxWindowDays: number;
  /** The pilot's IANA zone: a bare date is the start of that local day. */
  timezone: string;
}

/** A resolved window [from, to), and whether `to` was later than now and clamped to it. */
export interface ResolvedWindow extends TimeWindow {
  clamped: boolean;
}


const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * [from, to) of a request: `to` defaults to now, `from` to `defaultDays` before `to`; `to` must be
 * after `from` and the window at most maxWindowDays. Throws ERR_VALIDATION with a sentence that
 * names the parameters.
 */
export function resolveWindow(query: { from?: number; to?: number }, nowMs: number, defaultDays: number, maxWindowDays: number): TimeWindow {
  const toMs = query.to ?? nowMs;
  const fromMs = query.from ?? toMs - defaultDays * DAY_MS;
  if (toMs <= fromMs) {
    const toText = query.to === undefined ? `now, ${iso(toMs)}` : iso(toMs);
    throw validationError(`Query parameter "to" (${toText}) must be after "from" (${iso(fromMs)})`);
  }
  const windowDays = (toMs - fromMs) / DAY_MS;
  if (windowDays > maxWindowDays) {
    throw validationError(`The window from "from" (${iso(fromMs)}) to "to" (${iso(toMs)}) spans ${Math.ceil(windowDays)} days; the longest is ${maxWindowDays} days. Narrow it`);
  }
  return { fromMs, toMs };
}

/** The window of a route of this kind, with the clamp of SPEC section 4 applied first ("`to` later than now is clamped to now"). */
export function windowFor(query: { from?: number; to?: number }, policy: WindowPolicy, kind: WindowKind): ResolvedWindow {
  const { defaultDays, clampToNow } = WINDOW_KINDS[kind];
  const nowMs = policy.clock();
  const clamped = clampToNow && query.to !== undefined && query.to > nowMs;
  const { fromMs, toMs } = resolveWindow(clamped ? { from: query.from } : query, nowMs, defaultDays, policy.maxWindowDays);
  return { fromMs, toMs, clamped };
}

/** The sentence of a route's description about its window. */
export function windowText(policy: WindowPolicy, kind: WindowKind): string {
  const { defaultDays, clampToNow } = WINDOW_KINDS[kind];
  const defaults = `without \`from\` it is the ${defaultDays === 1 ? '24 hours' : `${defaultDays} days`} before \`to\` (default now)`;
  return `The window is at most ${policy.maxWindowDays} days; ${defaults}${clampToNow ? '; a `to` later than now is clamped to now (`clamped: true`)' : ''}.`;
}

/** An optional `from` or `to` query parameter in the window grammar (a bare date is local to `timezone`), parsed to epoch ms. */
export function windowTimeSchema(timezone: string, description: string) {
  return z
    .string()
    .transform((text, ctx) => {
      const ms = parseWindowTime(text, timezone);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: `must be ${WINDOW_TIME_HINT}; got "${text}"` });
        return z.NEVER;
      }
      return ms;
    })
    .optional()
    .describe(description);
}

/**
 * The querystring schema of a route with a window: `from` and `to` in the window grammar plus
 * the route's own parameters, resolved into `window` (or a 400 naming what to change).
 */
export function windowQuerySchema<Shape extends z.ZodRawShape = Record<never, never>>(policy: WindowPolicy, kind: WindowKind, extra?: Shape) {
  const { defaultDays, clampToNow } = WINDOW_KINDS[kind];
  const time = (description: string) => windowTimeSchema(policy.timezone, description);
  const shape = {
    from: time(`Start of the window, inclusive: ${WINDOW_TIME_HINT}. Default: ${defaultDays === 1 ? '24 hours' : `${defaultDays} days`} before \`to\`.`),
    to: time(`End of the window, exclusive: ${WINDOW_TIME_HINT}. Default: now.${clampToNow ? ' A later time is clamped to now.' : ''}`),
    ...(extra ?? ({} as Shape)),
  };
  return z.object(shape).transform((query, ctx) => {
    try {
      return { ...query, window: windowFor(query as { from?: number; to?: number }, policy, kind) };
    } catch (error) {
      if (!(error instanceof FlowPilotError)) throw error;
      // A sentence of its own (api-errors.ts prints it as it is): it names both parameters.
      ctx.addIssue({ code: 'custom', message: error.detail, params: { sentence: true } });
      return z.NEVER;
    }
  });
}
