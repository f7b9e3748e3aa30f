/** Exponential backoff with jitter, capped; a server's Retry-After wins when it asks for longer. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: the delay is spread by ± this share so that restarted writers do not retry in step. */
  jitter: number;
}

export function nextBackoffMs(attempt: number, options: BackoffOptions, retryAfterMs?: number, random: () => number = Math.random): number {
  const exponential = Math.min(options.maxMs, options.initialMs * options.factor ** Math.max(0, attempt - 1));
  const spread = exponential * options.jitter * (2 * random() - 1);
  const delay = Math.round(Math.min(options.maxMs, Math.max(0, exponential + spread)));
  return retryAfterMs !== undefined ? Math.max(delay, Math.min(retryAfterMs, options.maxMs)) : delay;
}
