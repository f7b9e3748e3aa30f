import { describe, expect, it } from 'vitest';
import { parseWindowTime } from '@flowpilot/metrics';
import { windowFor, windowQuerySchema, WINDOW_KINDS } from './window.ts';

const NOW_MS = Date.parse('2026-11-25T12:00:00.000Z');
const DAY_MS = 86_400_000;
const policy = { clock: () => NOW_MS, maxWindowDays: 30, timezone: 'Asia/Almaty' };

describe('the window of a request (SPEC sections 4 and 5)', () => {
  it('reads the schema\'s time grammar, and a bare date as the start of that local day', () => {
    expect(parseWindowTime('2026-11-25T10:00:00Z', policy.timezone)).toBe(Date.parse('2026-11-25T10:00:00Z'));
    expect(parseWindowTime('1764064800000', policy.timezone)).toBe(1764064800000);
    expect(parseWindowTime('2026-11-25', policy.timezone)).toBe(Date.parse('2026-11-25T00:00:00+05:00'));
    expect(parseWindowTime('2026-13-45', policy.timezone)).toBeNull();
    expect(parseWindowTime('yesterday', policy.timezone)).toBeNull();
  });

  it('defaults by kind, and clamps a future `to` to now only where the metrics depend on it', () => {
    expect(windowFor({}, policy, 'readings')).toEqual({ fromMs: NOW_MS - WINDOW_KINDS.readings.defaultDays * DAY_MS, toMs: NOW_MS, clamped: false });
    expect(windowFor({}, policy, 'metrics')).toEqual({ fromMs: NOW_MS - 7 * DAY_MS, toMs: NOW_MS, clamped: false });
    const future = { from: NOW_MS - DAY_MS, to: NOW_MS + DAY_MS };
    expect(windowFor(future, policy, 'metrics')).toEqual({ fromMs: NOW_MS - DAY_MS, toMs: NOW_MS, clamped: true });
    expect(windowFor(future, policy, 'readings')).toEqual({ fromMs: NOW_MS - DAY_MS, toMs: NOW_MS + DAY_MS, clamped: false });
    // Clamped, `to` is now: a `from` after now is then an error that says so.
    expect(() => windowFor({ from: NOW_MS + 1000, to: NOW_MS + DAY_MS }, policy, 'metrics')).toThrow(/"to" \(now, 2026-11-25T12:00:00.000Z\) must be after "from"/);
  });

  it('resolves a querystring into `window`, or one sentence naming both parameters', () => {
    const schema = windowQuerySchema(policy, 'metrics');
    expect(schema.parse({ from: '2026-11-24', to: '2026-11-25' }).window).toEqual({
      fromMs: Date.parse('2026-11-24T00:00:00+05:00'),
      toMs: Date.parse('2026-11-25T00:00:00+05:00'),
      clamped: false,
    });
    const refused = schema.safeParse({ from: '2026-01-01T00:00:00Z' });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues).toMatchObject([{ message: expect.stringMatching(/spans 329 days; the longest is 30 days/), params: { sentence: true } }]);
  });
});
