import { FlowPilotError } from '@flowpilot/schema';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/**
 * A CLI duration such as `14d`, `36h`, `90m`, `30s`, `500ms` or `1w` in milliseconds; `0`
 * alone means none (`--backfill 0`). Anything else is an ERR_CONFIG that names the text.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(trimmed);
  if (!match) {
    throw new FlowPilotError('ERR_CONFIG', `"${text}" is not a duration: use a number with a unit, e.g. 14d, 36h, 90m, 30s`);
  }
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}
