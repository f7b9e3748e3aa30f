import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Bounded polling: the one way the end-to-end tests, the packages' int tests and the bench
 * wait for something that happens elsewhere (another process, a socket, InfluxDB). Every wait
 * has a deadline and says what it was waiting for when it runs out.
 */

export interface PollOptions {
  timeoutMs: number;
  /**
   * A fixed pause between probes. Absent: 10 ms, doubling up to 200 ms, so an in-process event
   * is seen at once and a slow one (a query to InfluxDB) is not probed in a tight loop.
   */
  intervalMs?: number;
}

export interface PollResult<T> {
  /** The last value probed. */
  value: T;
  /** Whether `check` held for it; false when the time ran out first. */
  finished: boolean;
}

const FIRST_PAUSE_MS = 10;
const MAX_PAUSE_MS = 200;

/**
 * Probes until `check(value)` holds or `timeoutMs` has passed (the probe runs at least once);
 * answers the last value and whether it held. Running out of time is an answer, not an error
 * (the bench reports it); an error of the probe passes through.
 */
export async function pollUntil<T>(probe: () => T | Promise<T>, check: (value: T) => boolean, options: PollOptions): Promise<PollResult<T>> {
  const deadline = Date.now() + options.timeoutMs;
  let pauseMs = options.intervalMs ?? FIRST_PAUSE_MS;
  for (;;) {
    const value = await probe();
    if (check(value)) return { value, finished: true };
    if (Date.now() >= deadline) return { value, finished: false };
    await sleep(pauseMs);
    if (options.intervalMs === undefined) pauseMs = Math.min(2 * pauseMs, MAX_PAUSE_MS);
  }
}

/**
 * Polls until `check` holds and answers the value, or fails after `timeoutMs` with
 * "timed out after N ms: describe(last value)", or "… waiting for <describe>" when it is text.
 */
export async function eventually<T>(
  probe: () => T | Promise<T>,
  check: (value: T) => boolean,
  timeoutMs: number,
  describe: string | ((value: T) => string),
  intervalMs?: number,
): Promise<T> {
  const { value, finished } = await pollUntil(probe, check, intervalMs === undefined ? { timeoutMs } : { timeoutMs, intervalMs });
  if (finished) return value;
  throw new Error(typeof describe === 'string' ? `timed out after ${timeoutMs} ms waiting for ${describe}` : `timed out after ${timeoutMs} ms: ${describe(value)}`);
}
