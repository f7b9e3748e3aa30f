import { describe, expect, it, vi } from 'vitest';
import { mapLimit, TIMED_OUT, withTimeout } from './index.ts';

describe('mapLimit', () => {
  it('keeps input order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapLimit([30, 10, 20, 5, 1], 2, async (ms, index) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, ms));
      running -= 1;
      return `${index}:${ms}`;
    });
    expect(results).toEqual(['0:30', '1:10', '2:20', '3:5', '4:1']);
    expect(peak).toBe(2);
  });

  it('answers an empty list at once', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });
});

describe('withTimeout', () => {
  it('answers the work when it settles first, TIMED_OUT otherwise', async () => {
    vi.useFakeTimers();
    try {
      const fast = withTimeout(Promise.resolve('done'), 1000);
      await expect(fast).resolves.toBe('done');
      const slow = withTimeout(new Promise((resolve) => setTimeout(resolve, 5000, 'late')), 1000);
      await vi.advanceTimersByTimeAsync(1000);
      await expect(slow).resolves.toBe(TIMED_OUT);
    } finally {
      vi.useRealTimers();
    }
  });

  it('passes the work\'s failure through', async () => {
    await expect(withTimeout(Promise.reject(new Error('refused')), 1000)).rejects.toThrow('refused');
  });
});
