import { describe, expect, it } from 'vitest';
import { parseDuration, parseTime } from './time-grammar.ts';

describe('parseTime', () => {
  it.each([
    ['2026-11-25T10:00:00Z', Date.UTC(2026, 10, 25, 10)],
    ['2026-11-25T15:00:00+05:00', Date.UTC(2026, 10, 25, 10)],
    ['2026-11-25T10:00Z', Date.UTC(2026, 10, 25, 10)],
    ['2026-11-25', Date.UTC(2026, 10, 25)],
    ['1796138564032', 1796138564032],
    ['  1000 ', 1000],
  ])('%s is %d', (text, ms) => expect(parseTime(text)).toBe(ms));

  it.each(['2026-11-25T10:00:00', 'yesterday', '', '1e12', '2026-13-45', '12345678901234567'])('refuses %j', (text) => expect(parseTime(text)).toBeNull());
});

describe('parseDuration', () => {
  it.each([
    ['14d', 14 * 86_400_000],
    ['36h', 36 * 3_600_000],
    ['90m', 5_400_000],
    ['30s', 30_000],
    ['500ms', 500],
    ['1w', 604_800_000],
    ['1.5h', 5_400_000],
    ['0', 0],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['14', 'd', '-1d', '1y', '', '14 days'])('refuses %j', (text) => expect(parseDuration(text)).toBeNull());
});
