import { describe, expect, it } from 'vitest';
import { nextBackoffMs } from './backoff.ts';

const options = { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.2 };
const middle = () => 0.5; // no jitter

describe('nextBackoffMs', () => {
  it.each([
    [1, 250],
    [2, 500],
    [3, 1000],
    [8, 30_000],
    [50, 30_000],
  ])('attempt %i waits %i ms', (attempt, expected) => {
    expect(nextBackoffMs(attempt, options, undefined, middle)).toBe(expected);
  });

  it('spreads by the jitter share', () => {
    expect(nextBackoffMs(3, options, undefined, () => 0)).toBe(800);
    expect(nextBackoffMs(3, options, undefined, () => 1)).toBe(1200);
  });

  it('honours a longer Retry-After, capped at the maximum', () => {
    expect(nextBackoffMs(1, options, 5000, middle)).toBe(5000);
    expect(nextBackoffMs(3, options, 10, middle)).toBe(1000);
    expect(nextBackoffMs(1, options, 3_600_000, middle)).toBe(30_000);
  });
});
