/**
 * Computed metrics kept by the version of the columns they were computed from.
 *
 * Once the columns of a month are cached (reading-cache.ts), /api/v1/metrics over 100 meters
 * still spends ~0.3 s of CPU in computeMeterMetrics, and four requests at once queue behind each
 * other on the event loop (1.4 s each on two cores). A meter's result over a window depends only
 * on its columns (and its reference's), its pilot-file entry and its rejected counts; the
 * columns reader names what it read by a version (the generations of its days), so the result
 * is kept under a key of the window, the meter, those versions and the counts. A key whose days
 * were invalidated since is never asked again (their generations changed) and ages out, least
 * recently used first.
 *
 * Requests for a key being computed join that computation instead of starting their own, so
 * four identical requests cost one.
 */
export interface MetricsResultCache<T> {
  /**
   * The value kept or being computed under `key`, else what `compute` gives. `compute` answers
   * the value and the key it may be kept under (the versions it actually read, which can be
   * newer than those of `key`), or null not to keep it.
   */
  get(key: string, compute: () => Promise<{ value: T; key: string | null }>): Promise<T>;
  stats(): { entries: number; bytes: number; hits: number; joined: number; computed: number };
}

export interface MetricsResultCacheOptions {
  /**
   * Values kept beyond this many bytes (as measured by `sizeOf`) are evicted, least recently used
   * first. A meter's metrics are ~7 kB of JSON (a 30-day window of a 100-meter pilot: 0.7 MB).
   */
  maxBytes: number;
  /** The size a value counts for: by default twice the length of its JSON (UTF-16), a fair bound on what the heap holds of it. */
  sizeOf: (value: unknown) => number;
}

export const DEFAULT_METRICS_RESULT_CACHE_OPTIONS: MetricsResultCacheOptions = { maxBytes: 64 * 1024 * 1024, sizeOf: (value) => 2 * JSON.stringify(value).length };

export function createMetricsResultCache<T>(options: Partial<MetricsResultCacheOptions> = {}): MetricsResultCache<T> {
  const { maxBytes, sizeOf } = { ...DEFAULT_METRICS_RESULT_CACHE_OPTIONS, ...options };
  const kept = new Map<string, { value: T; bytes: number }>();
  const computing = new Map<string, Promise<T>>();
  const counts = { hits: 0, joined: 0, computed: 0 };
  let bytes = 0;

  function drop(key: string): void {
    const entry = kept.get(key);
    if (!entry) return;
    bytes -= entry.bytes;
    kept.delete(key);
  }

  function keep(key: string, value: T): void {
    drop(key);
    const entry = { value, bytes: sizeOf(value) + 2 * key.length };
    kept.set(key, entry);
    bytes += entry.bytes;
    for (const [oldest] of kept) {
      if (bytes <= maxBytes) break;
      drop(oldest);
    }
  }

  return {
    get(key, compute) {
      const entry = kept.get(key);
      if (entry) {
        // Least recently used goes first: re-insert on use.
        kept.delete(key);
        kept.set(key, entry);
        counts.hits += 1;
        return Promise.resolve(entry.value);
      }
      const running = computing.get(key);
      if (running) {
        counts.joined += 1;
        return running;
      }
      counts.computed += 1;
      // A compute that throws at once rejects like one that fails later.
      const computed = new Promise<{ value: T; key: string | null }>((resolve) => resolve(compute())).then(
        (result) => {
          computing.delete(key);
          if (result.key !== null) keep(result.key, result.value);
          return result.value;
        },
        (error: unknown) => {
          // A failure is not kept: the next request computes again.
          computing.delete(key);
          throw error;
        },
      );
      computing.set(key, computed);
      return computed;
    },
    stats: () => ({ entries: kept.size, bytes, ...counts }),
  };
}
