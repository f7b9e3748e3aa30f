import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.ts';

describe('parseDuration', () => {
  it.each([
    ['14d', 14 * 86_400_000],
    ['36h', 36 * 3_600_000],
    ['90m', 90 * 60_000],
    ['30s', 30_000],
    ['250ms', 250],
    ['1w', 604_800_000],
    ['1.5h', 5_400_000],
    ['0', 0],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '14', 'd', '-1h', '1y', '2 days'])('rejects %j with an error that names it', (text) => {
    expect(() => parseDuration(text)).toThrow(/is not a duration/);
  });
});
