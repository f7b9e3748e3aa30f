/**
 * The gateway's view of time (STYLE habit 7): everything that waits or reads the time goes
 * through these, so the tests drive the schedule with fake timers instead of sleeping.
 */

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export type TimerHandle = unknown;

export interface Timers {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

// The globals are looked up at each call, not captured here: a test's fake timers installed
// after this module loaded still drive a gateway built with the defaults.
export const SYSTEM_CLOCK: Clock = { now: () => Date.now() };

export const SYSTEM_TIMERS: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Resolves after `ms` on `timers`. */
export function sleep(timers: Timers, ms: number): Promise<void> {
  return new Promise((resolve) => timers.setTimeout(resolve, ms));
}

export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * `work`, or TIMED_OUT after `ms` on `timers`, whichever settles first. The work goes on (a
 * Modbus request cannot be recalled); its later rejection is swallowed, never unhandled.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, timers: Timers): Promise<T | typeof TIMED_OUT> {
  let handle: TimerHandle;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    handle = timers.setTimeout(() => resolve(TIMED_OUT), ms);
  });
  work.catch(() => {});
  return Promise.race([work, timeout]).finally(() => timers.clearTimeout(handle));
}

/**
 * The first multiple of `intervalMs` on the wall clock strictly after `afterMs` (epoch ms):
 * a device with intervalSec 60 is polled at hh:mm:00.000 (SPEC section 10: "on the interval's
 * clock boundary"), so its readings line up with every other meter's of the same interval.
 */
export function nextBoundaryMs(afterMs: number, intervalMs: number): number {
  return (Math.floor(afterMs / intervalMs) + 1) * intervalMs;
}
