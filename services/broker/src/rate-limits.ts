/**
 * Rate limits of the broker (SPEC section 8, "the limits"): pure, with the time passed in
 * (STYLE habit 7), and bounded in memory themselves: an attacker who cycles through source
 * addresses or usernames cannot grow these tables past `maxKeys`.
 */

/** A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  #tokens: number;
  #updatedAtMs: number;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    nowMs: number,
  ) {
    this.#tokens = burst;
    this.#updatedAtMs = nowMs;
  }

  /** Takes `cost` tokens if the bucket holds them; false (and nothing taken) otherwise. */
  take(cost: number, nowMs: number): boolean {
    this.#refill(nowMs);
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /**
   * Takes `cost` tokens now, going into debt if it must, and says how long the caller should
   * wait before acting (0: at once). Debts queue callers in order, each `cost / rate` apart.
   */
  reserve(cost: number, nowMs: number): number {
    this.#refill(nowMs);
    this.#tokens -= cost;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.ratePerSec) * 1000);
  }

  /** True when the bucket is back to its burst: forgetting it changes nothing. */
  isFull(nowMs: number): boolean {
    this.#refill(nowMs);
    return this.#tokens >= this.burst;
  }

  #refill(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - this.#updatedAtMs);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsedMs / 1000) * this.ratePerSec);
    this.#updatedAtMs = nowMs;
  }
}

export interface KeyedRateLimiterOptions {
  ratePerSec: number;
  burst: number;
  /** Keys remembered at most; the least recently used is forgotten first. */
  maxKeys: number;
}

/** One token bucket per key (a source address), in a bounded map. */
export function createKeyedRateLimiter(options: KeyedRateLimiterOptions) {
  const buckets = new Map<string, TokenBucket>();
  return {
    allow(key: string, nowMs: number, cost = 1): boolean {
      let bucket = buckets.get(key);
      if (bucket) buckets.delete(key);
      else bucket = new TokenBucket(options.ratePerSec, options.burst, nowMs);
      buckets.set(key, bucket); // most recently used last
      if (buckets.size > options.maxKeys) evict(nowMs);
      return bucket.take(cost, nowMs);
    },
    size: () => buckets.size,
  };

  function evict(nowMs: number): void {
    // Full buckets first (forgetting them is free), then the least recently used.
    for (const [key, bucket] of buckets) {
      if (buckets.size <= options.maxKeys) return;
      if (bucket.isFull(nowMs)) buckets.delete(key);
    }
    for (const key of buckets.keys()) {
      if (buckets.size <= options.maxKeys) return;
      buckets.delete(key);
    }
  }
}

export interface LoginThrottleOptions {
  /** Failures per username, and per source address, within `windowMs` before a block. */
  maxFailures: number;
  windowMs: number;
  /** How long a blocked username or address is refused without checking its password. */
  blockMs: number;
  /** The delay before answering grows from this, doubling per failure, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  maxKeys: number;
}

export const DEFAULT_LOGIN_THROTTLE_OPTIONS: LoginThrottleOptions = {
  maxFailures: 5,
  windowMs: 10 * 60_000,
  blockMs: 10 * 60_000,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  maxKeys: 10_000,
};

interface FailureRecord {
  failures: number;
  firstFailureAtMs: number;
  blockedUntilMs: number;
  /** A block is logged once: set when it has been. */
  blockLogged: boolean;
}

export type LoginDecision =
  | { kind: 'refuse'; key: string; untilMs: number; firstRefusal: boolean }
  | { kind: 'check'; delayMs: number };

/**
 * Failed logins per username and per source address: each failure makes the next answer
 * slower; `maxFailures` within the window blocks the username (or address) for `blockMs`,
 * during which no password is checked (a wrong password costs a 32 MiB scrypt).
 */
export function createLoginThrottle(options: Partial<LoginThrottleOptions> = {}) {
  const settings = { ...DEFAULT_LOGIN_THROTTLE_OPTIONS, ...options };
  const records = new Map<string, FailureRecord>();

  function current(key: string, nowMs: number): FailureRecord | undefined {
    const record = records.get(key);
    if (!record) return undefined;
    if (record.blockedUntilMs <= nowMs && nowMs - record.firstFailureAtMs > settings.windowMs) {
      records.delete(key);
      return undefined;
    }
    return record;
  }

  return {
    /** Before checking a password: refuse now, or check after `delayMs`. */
    decide(username: string, address: string, nowMs: number): LoginDecision {
      let failures = 0;
      for (const key of [`user:${username}`, `addr:${address}`]) {
        const record = current(key, nowMs);
        if (!record) continue;
        if (record.blockedUntilMs > nowMs) {
          const firstRefusal = !record.blockLogged;
          record.blockLogged = true;
          return { kind: 'refuse', key, untilMs: record.blockedUntilMs, firstRefusal };
        }
        failures = Math.max(failures, record.failures);
      }
      const delayMs = failures === 0 ? 0 : Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (failures - 1));
      return { kind: 'check', delayMs };
    },
    failed(username: string, address: string, nowMs: number): void {
      for (const key of [`user:${username}`, `addr:${address}`]) {
        const record = current(key, nowMs) ?? { failures: 0, firstFailureAtMs: nowMs, blockedUntilMs: 0, blockLogged: false };
        record.failures += 1;
        if (record.failures >= settings.maxFailures) {
          record.blockedUntilMs = nowMs + settings.blockMs;
          record.blockLogged = false;
          record.failures = 0;
          record.firstFailureAtMs = nowMs;
        }
        records.delete(key);
        records.set(key, record);
      }
      while (records.size > settings.maxKeys) records.delete(records.keys().next().value as string);
    },
    /** The address keeps its record: one right password must not clear an address that guesses others. */
    succeeded(username: string): void {
      records.delete(`user:${username}`);
    },
    size: () => records.size,
  };
}
