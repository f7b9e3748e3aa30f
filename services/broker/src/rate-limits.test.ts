import { describe, expect, it } from 'vitest';
import { createKeyedRateLimiter, createLoginThrottle, TokenBucket } from './rate-limits.ts';

describe('TokenBucket', () => {
  it('spends its burst, then refills at its rate', () => {
    const bucket = new TokenBucket(2, 4, 0);
    expect([1, 2, 3, 4, 5].map(() => bucket.take(1, 0))).toEqual([true, true, true, true, false]);
    expect(bucket.take(1, 400)).toBe(false); // 0.8 of a token
    expect(bucket.take(1, 500)).toBe(true); // 1.0
    expect(bucket.take(2, 10_000)).toBe(true); // refilled to the burst, never beyond
    expect(bucket.take(3, 10_000)).toBe(false);
  });

  it('reserves into debt and says how long to wait, in order', () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect([bucket.reserve(1, 0), bucket.reserve(1, 0), bucket.reserve(1, 0), bucket.reserve(1, 0)]).toEqual([0, 0, 100, 200]);
    expect(bucket.reserve(1, 300)).toBe(0); // the debt of 2 is repaid after 200 ms, then 1 token
  });

  it('takes nothing when a cost is more than it holds', () => {
    const bucket = new TokenBucket(1, 10, 0);
    expect(bucket.take(11, 0)).toBe(false);
    expect(bucket.take(10, 0)).toBe(true);
  });
});

describe('keyed rate limiter', () => {
  it('limits each key apart and forgets keys beyond maxKeys', () => {
    const limiter = createKeyedRateLimiter({ ratePerSec: 1, burst: 2, maxKeys: 3 });
    expect([limiter.allow('a', 0), limiter.allow('a', 0), limiter.allow('a', 0)]).toEqual([true, true, false]);
    expect(limiter.allow('b', 0)).toBe(true);
    for (let i = 0; i < 100; i++) limiter.allow(`spoofed-${i}`, 0);
    expect(limiter.size()).toBe(3);
  });
});

describe('login throttle', () => {
  const options = { maxFailures: 3, windowMs: 600_000, blockMs: 60_000, baseDelayMs: 250, maxDelayMs: 1000, maxKeys: 100 };

  it('delays more after each failure, then refuses for the block period, logged once', () => {
    const throttle = createLoginThrottle(options);
    expect(throttle.decide('M1', '10.0.0.1', 0)).toEqual({ kind: 'check', delayMs: 0 });
    throttle.failed('M1', '10.0.0.1', 0);
    expect(throttle.decide('M1', '10.0.0.1', 0)).toEqual({ kind: 'check', delayMs: 250 });
    throttle.failed('M1', '10.0.0.1', 0);
    expect(throttle.decide('M1', '10.0.0.1', 0)).toEqual({ kind: 'check', delayMs: 500 });
    throttle.failed('M1', '10.0.0.1', 0);
    expect(throttle.decide('M1', '10.0.0.2', 1)).toEqual({ kind: 'refuse', key: 'user:M1', untilMs: 60_000, firstRefusal: true });
    expect(throttle.decide('M1', '10.0.0.2', 2)).toMatchObject({ kind: 'refuse', firstRefusal: false });
    // The address is blocked for every username.
    expect(throttle.decide('M2', '10.0.0.1', 2)).toMatchObject({ kind: 'refuse', key: 'addr:10.0.0.1' });
    expect(throttle.decide('M2', '10.0.0.3', 2)).toEqual({ kind: 'check', delayMs: 0 });
    // After the block and the window, a clean slate.
    expect(throttle.decide('M1', '10.0.0.1', 700_000)).toEqual({ kind: 'check', delayMs: 0 });
  });

  it('clears a username on success but not the address that guessed', () => {
    const throttle = createLoginThrottle(options);
    throttle.failed('M1', '10.0.0.1', 0);
    throttle.failed('M1', '10.0.0.1', 0);
    throttle.succeeded('M1');
    expect(throttle.decide('M1', '10.0.0.9', 0)).toEqual({ kind: 'check', delayMs: 0 });
    expect(throttle.decide('M3', '10.0.0.1', 0)).toEqual({ kind: 'check', delayMs: 500 });
  });

  it('stays bounded when usernames and addresses are spoofed', () => {
    const throttle = createLoginThrottle(options);
    for (let i = 0; i < 1000; i++) throttle.failed(`user-${i}`, `10.1.${i >> 8}.${i & 255}`, 0);
    expect(throttle.size()).toBeLessThanOrEqual(100);
  });
});
