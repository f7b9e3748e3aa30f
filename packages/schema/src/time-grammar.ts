/**
 * The grammars of time that people type (SPEC sections 5 and 7): instants in the API's query
 * strings and the command line's flags, durations in flags such as `--backfill 14d`. One
 * definition, so the API, the command line and the simulator accept exactly the same text.
 * Pure: each answers null for text it does not accept, and the caller says what was expected.
 */

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const EPOCH_MS = /^\d{1,15}$/;

/** What `parseTime` accepts, for error messages. */
export const TIME_GRAMMAR_HINT = 'an ISO 8601 time with an offset (e.g. 2026-11-25T10:00:00Z) or epoch milliseconds';

/**
 * Epoch ms of an instant: ISO 8601 with an offset, a bare date, or epoch milliseconds; null
 * otherwise. An ISO time needs its offset: a local time without one would be read in the
 * server's zone, which is nobody's intent. A date alone means 00:00 UTC, as in JavaScript.
 */
export function parseTime(text: string): number | null {
  const trimmed = text.trim();
  if (EPOCH_MS.test(trimmed)) return Number(trimmed);
  if (!ISO_DATETIME.test(trimmed) && !ISO_DATE.test(trimmed)) return null;
  const ms = Date.parse(trimmed);
  return Number.isFinite(ms) ? ms : null;
}

const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** What `parseDuration` accepts, for error messages. */
export const DURATION_GRAMMAR_HINT = 'a number with a unit, e.g. 14d, 36h, 90m, 30s, 500ms or 1w';

/** A duration such as `14d`, `36h`, `90m`, `30s`, `500ms` or `1w` in milliseconds; `0` alone means none; null otherwise. */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(trimmed);
  if (!match) return null;
  return Math.round(Number(match[1]) * DURATION_UNIT_MS[match[2] as keyof typeof DURATION_UNIT_MS]);
}
