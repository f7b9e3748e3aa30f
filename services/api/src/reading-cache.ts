import { emptyReadingColumns, READING_COLUMN_NAMES as COLUMN_NAMES } from '@flowpilot/influx';
import type { ColumnsQuery, ReadingColumns, ReadingsRepository } from '@flowpilot/influx';

/**
 * A validated cache of each meter's reading columns, one entry per meter and UTC day.
 *
 * Reading a month of one-minute data out of InfluxDB 1.6 costs ~0.25 s per meter (its JSON
 * encoding, measured in packages/influx readings-repository.ts), so /api/v1/metrics over 20 meters would take
 * seconds. Most of those days do not change between two requests, so they are kept here — but
 * never trusted blindly: before each use, ONE aggregate query over all meters asks InfluxDB for
 * each day's `count(total)` and `max(received_at)`, and a day whose pair differs from the cached
 * one is read again. Every write FlowPilot makes either adds a point (count changes) or rewrites
 * one with a later receive time (max changes), or rewrites identical data (a replayed batch),
 * so a stale day cannot go unnoticed. Points written by other tools without `received_at` are
 * the one blind spot: such a rewrite is seen only if it changes the count.
 *
 * Where the durable store is at hand (the API on the ingest's host), the ingest's own log of the
 * meter-days it wrote replaces that query: cheaper, and exact for every write FlowPilot makes.
 */
export interface ColumnsReader {
  /** Checks the cached days of these meters over [fromMs, toMs] against InfluxDB; call once per request. */
  validate(meterIds: readonly string[], fromMs: number, toMs: number): Promise<void>;
  read(query: ColumnsQuery): Promise<ReadingColumns>;
  stats(): { entries: number; bytes: number; hits: number; misses: number };
}

/** The ingest's log of the meter-days it wrote (the durable store's `writtenDaysSince`). */
export interface WrittenDaysLog {
  writtenDaysSince(version: number): { version: number; days: { meterId: string; dayMs: number }[] };
}

export interface ReadingCacheOptions {
  /** Entries beyond this many bytes are evicted, least recently used first. */
  maxBytes: number;
  /**
   * Where the ingest logs what it wrote. With it, validation reads that log instead of scanning
   * InfluxDB (a 100-meter month costs ~1.4 s to scan on influxd 1.6); writes into the database by
   * anything other than FlowPilot's ingest are then seen only when an entry reaches maxAgeMs.
   */
  writtenDays?: WrittenDaysLog;
  maxAgeMs: number;
}

export const DEFAULT_READING_CACHE_OPTIONS: ReadingCacheOptions = { maxBytes: 768 * 1024 * 1024, maxAgeMs: 10 * 60_000 };

const DAY_MS = 86_400_000;

interface DayEntry {
  fetchedAtMs: number;
  count: number;
  maxReceivedAtMs: number | null;
  columns: ReadingColumns;
  bytes: number;
}

/** Reads without a cache: what the API did before, and what tests compare against. */
export function createDirectColumnsReader(readings: ReadingsRepository): ColumnsReader {
  return {
    validate: async () => {},
    read: (query) => readings.columns(query),
    stats: () => ({ entries: 0, bytes: 0, hits: 0, misses: 0 }),
  };
}

/** The first index whose time is ≥ t (or > t when `after`), by binary search. */
function lowerBound(times: Float64Array, t: number, after = false): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid]! < t || (after && times[mid] === t)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function concatSlice(days: readonly ReadingColumns[], fromMs: number, toMs: number, toInclusive: boolean): ReadingColumns {
  const ranges = days.map((day) => [lowerBound(day.tsMs, fromMs), lowerBound(day.tsMs, toMs, toInclusive)] as const);
  const n = ranges.reduce((sum, [a, b]) => sum + Math.max(0, b - a), 0);
  const out = emptyReadingColumns(n);
  let offset = 0;
  days.forEach((day, d) => {
    const [a, b] = ranges[d]!;
    if (b <= a) return;
    for (const name of COLUMN_NAMES) out[name].set(day[name].subarray(a, b), offset);
    offset += b - a;
  });
  return out;
}

function splitByDay(columns: ReadingColumns, firstDayMs: number, dayCount: number): ReadingColumns[] {
  const days: ReadingColumns[] = [];
  for (let d = 0; d < dayCount; d++) {
    const start = firstDayMs + d * DAY_MS;
    const a = lowerBound(columns.tsMs, start);
    const b = lowerBound(columns.tsMs, start + DAY_MS);
    const day = emptyReadingColumns(b - a);
    for (const name of COLUMN_NAMES) day[name].set(columns[name].subarray(a, b));
    days.push(day);
  }
  return days;
}

export function createCachedColumnsReader(readings: ReadingsRepository, options: Partial<ReadingCacheOptions> = {}): ColumnsReader {
  const settings = { ...DEFAULT_READING_CACHE_OPTIONS, ...options };
  const entries = new Map<string, DayEntry>();
  const inflight = new Map<string, Promise<ReadingColumns[]>>();
  let bytes = 0;
  let hits = 0;
  let misses = 0;
  const key = (meterId: string, dayMs: number) => `${meterId}\u0000${dayMs}`;

  function drop(k: string): void {
    const entry = entries.get(k);
    if (!entry) return;
    bytes -= entry.bytes;
    entries.delete(k);
  }

  function store(k: string, columns: ReadingColumns): void {
    drop(k);
    let maxReceivedAtMs: number | null = null;
    for (const t of columns.receivedAtMs) if (Number.isFinite(t) && (maxReceivedAtMs === null || t > maxReceivedAtMs)) maxReceivedAtMs = t;
    const entry: DayEntry = { fetchedAtMs: Date.now(), count: columns.tsMs.length, maxReceivedAtMs, columns, bytes: columns.tsMs.length * 8 * COLUMN_NAMES.length + 128 };
    entries.set(k, entry);
    bytes += entry.bytes;
    for (const [oldest] of entries) {
      if (bytes <= settings.maxBytes) break;
      drop(oldest);
    }
  }

  /** Reads the days [firstDayMs, firstDayMs + n days) of one meter in one query. */
  async function fetchDays(meterId: string, firstDayMs: number, dayCount: number): Promise<ReadingColumns[]> {
    const columns = await readings.columns({ meterId, fromMs: firstDayMs, toMs: firstDayMs + dayCount * DAY_MS, temperature: true });
    return splitByDay(columns, firstDayMs, dayCount);
  }

  let loggedVersion = 0;

  return {
    async validate(meterIds, fromMs, toMs) {
      const log = settings.writtenDays;
      if (log) {
        const changes = log.writtenDaysSince(loggedVersion);
        loggedVersion = changes.version;
        for (const day of changes.days) drop(key(day.meterId, day.dayMs));
        const oldest = Date.now() - settings.maxAgeMs;
        for (const [k, entry] of entries) if (entry.fetchedAtMs < oldest) drop(k);
        return;
      }
      const firstDay = Math.floor(fromMs / DAY_MS) * DAY_MS;
      const endDay = Math.floor(toMs / DAY_MS) * DAY_MS + DAY_MS;
      const wanted = new Set(meterIds);
      const seen = new Set<string>();
      for (const stamp of await readings.dayStamps({ fromMs, toMs })) {
        if (!wanted.has(stamp.meterId)) continue;
        const k = key(stamp.meterId, stamp.dayMs);
        seen.add(k);
        const entry = entries.get(k);
        if (entry && (entry.count !== stamp.count || entry.maxReceivedAtMs !== stamp.maxReceivedAtMs)) drop(k);
      }
      // A cached day InfluxDB no longer reports any point for (dropped data) is stale too.
      for (const meterId of wanted) {
        for (let day = firstDay; day < endDay; day += DAY_MS) {
          const k = key(meterId, day);
          const entry = entries.get(k);
          if (entry && entry.count > 0 && !seen.has(k)) drop(k);
        }
      }
    },

    async read(query) {
      const firstDay = Math.floor(query.fromMs / DAY_MS) * DAY_MS;
      const lastDay = Math.floor(query.toMs / DAY_MS) * DAY_MS;
      const days: ReadingColumns[] = [];
      let missingStart: number | null = null;
      const pending: Promise<void>[] = [];
      const slots: (ReadingColumns | null)[] = [];
      const flushMissing = (endDayMs: number) => {
        if (missingStart === null) return;
        const start = missingStart;
        const count = (endDayMs - start) / DAY_MS;
        const slotIndex = slots.length - count;
        const k = `${query.meterId}\u0000${start}\u0000${count}`;
        let fetch = inflight.get(k);
        if (!fetch) {
          fetch = fetchDays(query.meterId, start, count).finally(() => inflight.delete(k));
          inflight.set(k, fetch);
        }
        pending.push(
          fetch.then((fetched) => {
            fetched.forEach((columns, i) => {
              store(key(query.meterId, start + i * DAY_MS), columns);
              slots[slotIndex + i] = columns;
            });
          }),
        );
        missingStart = null;
      };
      for (let day = firstDay; day <= lastDay; day += DAY_MS) {
        const k = key(query.meterId, day);
        const entry = entries.get(k);
        if (entry) {
          hits += 1;
          // Least recently used goes first: re-insert on use.
          entries.delete(k);
          entries.set(k, entry);
          flushMissing(day);
          slots.push(entry.columns);
        } else {
          misses += 1;
          missingStart ??= day;
          slots.push(null);
        }
      }
      flushMissing(lastDay + DAY_MS);
      await Promise.all(pending);
      for (const slot of slots) days.push(slot!);
      return concatSlice(days, query.fromMs, query.toMs, query.toInclusive ?? false);
    },

    stats: () => ({ entries: entries.size, bytes, hits, misses }),
  };
}
