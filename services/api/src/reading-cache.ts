import { emptyReadingColumns, READING_COLUMN_NAMES as COLUMN_NAMES } from '@flowpilot/influx';
import type { ColumnsQuery, ReadingColumns, ReadingsRepository } from '@flowpilot/influx';

/**
 * A validated cache of each meter's reading columns, one entry per meter and UTC day.
 *
 * Reading a month of one-minute data out of InfluxDB 1.6 costs ~0.25 s per meter (its JSON
 * encoding, measured in packages/influx readings-repository.ts), so /api/v1/metrics over 20 meters would take
 * seconds. Most of those days do not change between two requests, so they are kept here — but
 * never trusted blindly. Each request first validates the days it will read, one of two ways:
 *
 * - **The ingest's log** of the meter-days it wrote (the durable store's `writtenDaysSince`),
 *   used only while that store's ingest is alive (`ingestAliveSince`): then it names every day any
 *   FlowPilot write touched, and costs one SQLite read. A store without a live ingest (a file left
 *   over on the API's host, an ingest stopped) would name nothing while another ingest writes, so
 *   the cache falls back to the second way; and when an ingest comes (back) to life, every cached
 *   day is checked that second way once, for what was written while none logged.
 * - **InfluxDB's stamps**: ONE aggregate query over all meters asks for each day's
 *   `count(total)` and `max(received_at)`. Every write FlowPilot makes either adds a point (count
 *   changes) or rewrites one with a later receive time (max changes), or rewrites identical data
 *   (a replayed batch). Points written by other tools without `received_at` are its blind spot:
 *   such a rewrite is seen only if it changes the count.
 *
 * In both ways a day is also read again once its entry is `maxAgeMs` old: the bound on what the
 * blind spots (writes by other tools) can hide.
 *
 * **Generations.** Every meter-day has a generation number, and each invalidation (a day in the
 * log, a changed stamp, the age limit) gives it a new one, unique over the cache's life. A fetch
 * records the generations of its days when it starts; when it ends it stores a day only if that
 * day's generation is still the one it started under, and a read joins a fetch in flight only if
 * the fetch's generation of the day is the current one. So a request never answers with columns
 * read before an invalidation that its own validation made or saw, a slow fetch that started
 * before a write never stores what it read, and of two fetches under the same generation the
 * later one's columns are kept. The version of a read (`readVersioned`) is the list of its days'
 * generations: metrics-result-cache.ts keys computed results by it.
 */
export interface ColumnsReader {
  /** Checks the cached days of these meters over [fromMs, toMs] (to inclusive); call once per request, before reading. */
  validate(meterIds: readonly string[], fromMs: number, toMs: number): Promise<void>;
  read(query: ColumnsQuery): Promise<ReadingColumns>;
  /** The columns with the version they were read under; null where the reader keeps no versions. */
  readVersioned(query: ColumnsQuery): Promise<VersionedColumns>;
  /**
   * The version a read of this query would answer now, without reading (null where the reader
   * keeps no versions). Two reads of the same query with the same version answer the same columns.
   */
  version(query: ColumnsQuery): string | null;
  stats(): ReadingCacheStats;
}

export interface VersionedColumns {
  columns: ReadingColumns;
  version: string | null;
}

export interface ReadingCacheStats {
  entries: number;
  bytes: number;
  /** Days answered from an entry. */
  hits: number;
  /** Days that needed a fetch of their own. */
  misses: number;
  /** Days answered by a fetch another read had started under the same generation. */
  joined: number;
  /** Days a fetch read but did not store: they were invalidated while it ran. */
  discarded: number;
  /** How the last validation was made: the ingest's log, InfluxDB's stamps, or none yet. */
  validatedBy: 'log' | 'stamps' | null;
}

/** The ingest's log of the meter-days it wrote (the durable store fits: `writtenDaysSince`, `ingestAliveSince`). */
export interface WrittenDaysLog {
  writtenDaysSince(version: number): { version: number; days: { meterId: string; dayMs: number }[] };
  /**
   * When the current stretch of life of the ingest consuming this store began (any value that
   * names that stretch), or null while none is alive: the log names every day FlowPilot writes
   * only while an ingest is alive, and only what was written since its stretch began. Absent:
   * always alive, one stretch (a log its owner keeps complete, as the tests' logs are).
   */
  ingestAliveSince?(): number | null;
}

export interface ReadingCacheOptions {
  /** Entries beyond this many bytes are evicted, least recently used first. */
  maxBytes: number;
  /**
   * Where the ingest logs what it wrote. While its ingest is alive, validation reads that log
   * instead of InfluxDB's stamps (a 100-meter month costs ~1.4 s to scan on influxd 1.6).
   */
  writtenDays?: WrittenDaysLog;
  /** A day is read again once its entry is this old (in both modes): the bound on what other tools' writes can hide. */
  maxAgeMs: number;
  /** Epoch ms now, for the age limit (STYLE habit 7). */
  clock: () => number;
  /**
   * Consecutive days missing from the cache are read this many per query at most. Six days of a
   * meter reporting every minute are 8,640 rows: under InfluxDB 1.x's `max-row-limit` of 10,000
   * (the default of early 1.x releases, still set on some servers), whose cut answers the client
   * refuses; and no single answer of a long window holds the event loop for long while it is parsed.
   */
  maxDaysPerQuery: number;
}

export const DEFAULT_READING_CACHE_OPTIONS: ReadingCacheOptions = { maxBytes: 768 * 1024 * 1024, maxAgeMs: 10 * 60_000, clock: () => Date.now(), maxDaysPerQuery: 6 };

const DAY_MS = 86_400_000;
/** Days' states kept beyond those holding an entry or a fetch before the idle ones are swept (they only hold a generation and a stamp). */
const IDLE_STATES_SWEPT_ABOVE = 100_000;

/** What identifies a stored day's content to InfluxDB's stamps (readings-repository.ts `dayStamps`). */
interface Stamp {
  count: number;
  maxReceivedAtMs: number | null;
}

const NO_POINTS: Stamp = { count: 0, maxReceivedAtMs: null };
const sameStamp = (a: Stamp, b: Stamp) => a.count === b.count && a.maxReceivedAtMs === b.maxReceivedAtMs;

interface DayEntry {
  /** The sequence number of the fetch that read it: of two under one generation, the later one stays. */
  fetchSeq: number;
  /** When that fetch started: its columns are at least this recent. */
  fetchedAtMs: number;
  stamp: Stamp;
  columns: ReadingColumns;
  bytes: number;
}

interface PendingDay {
  gen: number;
  fetchSeq: number;
  columns: Promise<ReadingColumns>;
}

/** One meter-day: its generation, and what is cached or being read of it under that generation. */
interface DayState {
  gen: number;
  /** Always of the current generation: an invalidation drops it (or, for an unchanged stamp, keeps it under the new one). */
  entry: DayEntry | null;
  /** The latest fetch in flight for this day; joinable only while `pending.gen === gen`. */
  pending: PendingDay | null;
  /** Stamps mode: the stamp InfluxDB last gave, and the number of the validation that asked for it. */
  seenStamp: Stamp | null;
  seenBy: number;
}

/** Reads without a cache: what the API did before, and what tests compare against. */
export function createDirectColumnsReader(readings: ReadingsRepository): ColumnsReader {
  return {
    validate: async () => {},
    read: (query) => readings.columns(query),
    readVersioned: async (query) => ({ columns: await readings.columns(query), version: null }),
    version: () => null,
    stats: () => ({ entries: 0, bytes: 0, hits: 0, misses: 0, joined: 0, discarded: 0, validatedBy: null }),
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

/** The stamp InfluxDB gives a day holding these columns: `count(total)` and `max(received_at)` (readings-repository.ts). */
function stampOf(columns: ReadingColumns): Stamp {
  let count = 0;
  let maxReceivedAtMs: number | null = null;
  for (let i = 0; i < columns.tsMs.length; i++) {
    if (Number.isFinite(columns.totalM3[i])) count += 1;
    const t = columns.receivedAtMs[i]!;
    if (Number.isFinite(t) && (maxReceivedAtMs === null || t > maxReceivedAtMs)) maxReceivedAtMs = t;
  }
  return { count, maxReceivedAtMs: count > 0 ? maxReceivedAtMs : null };
}

const dayOf = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;

/** The UTC days a query reads, first and last: a `to` exclusive at midnight reads nothing of that day. */
function daysOf(query: ColumnsQuery): { firstDayMs: number; lastDayMs: number } {
  return { firstDayMs: dayOf(query.fromMs), lastDayMs: dayOf(query.toInclusive ? query.toMs : query.toMs - 1) };
}

export function createCachedColumnsReader(readings: ReadingsRepository, options: Partial<ReadingCacheOptions> = {}): ColumnsReader {
  const settings = { ...DEFAULT_READING_CACHE_OPTIONS, ...options };
  const { clock } = settings;
  const states = new Map<string, DayState>();
  /** The states holding an entry, least recently used first (a use re-inserts). */
  const lru = new Map<string, DayState>();
  let bytes = 0;
  const counts = { hits: 0, misses: 0, joined: 0, discarded: 0 };
  let validatedBy: ReadingCacheStats['validatedBy'] = null;
  /** The last generation given: every new one is above every one before, so a generation names one state of one day forever. */
  let lastGen = 0;
  let lastFetchSeq = 0;
  let lastValidation = 0;
  let loggedVersion = 0;
  /** The stretch of the ingest's life in which every cached day was last checked against InfluxDB (undefined: never). */
  let caughtUpWith: number | undefined;
  const key = (meterId: string, dayMs: number) => `${meterId}\u0000${dayMs}`;

  function stateOf(k: string): DayState {
    let state = states.get(k);
    if (!state) {
      // A fresh generation, never a reused one: a fetch that recorded the generation of a state
      // since swept can never mistake a new state for its own.
      state = { gen: ++lastGen, entry: null, pending: null, seenStamp: null, seenBy: 0 };
      states.set(k, state);
    }
    return state;
  }

  function dropEntry(k: string, state: DayState): void {
    if (!state.entry) return;
    bytes -= state.entry.bytes;
    state.entry = null;
    lru.delete(k);
  }

  /** A new generation for the day: fetches under the old one neither store nor are joined; its entry goes unless `keepEntry`. */
  function invalidate(k: string, state: DayState, keepEntry = false): void {
    state.gen = ++lastGen;
    if (!keepEntry) dropEntry(k, state);
  }

  function sweepIdleStates(): void {
    if (states.size <= lru.size + IDLE_STATES_SWEPT_ABOVE) return;
    for (const [k, state] of states) if (!state.entry && !state.pending) states.delete(k);
  }

  function storeEntry(k: string, state: DayState, columns: ReadingColumns, fetchSeq: number, fetchedAtMs: number): void {
    if (state.entry && state.entry.fetchSeq > fetchSeq) return;
    dropEntry(k, state);
    state.entry = { fetchSeq, fetchedAtMs, stamp: stampOf(columns), columns, bytes: columns.tsMs.length * 8 * COLUMN_NAMES.length + 128 };
    lru.set(k, state);
    bytes += state.entry.bytes;
    for (const [oldestKey, oldest] of lru) {
      if (bytes <= settings.maxBytes) break;
      dropEntry(oldestKey, oldest);
    }
  }

  /**
   * Reads the days [firstDayMs, firstDayMs + n days) of one meter in one query, under the
   * generations their states have now; answers one promise per day.
   */
  function fetchDays(meterId: string, firstDayMs: number, dayStates: readonly DayState[]): Promise<ReadingColumns>[] {
    const fetchSeq = ++lastFetchSeq;
    const fetchedAtMs = clock();
    const gens = dayStates.map((s) => s.gen);
    const fetched = readings
      .columns({ meterId, fromMs: firstDayMs, toMs: firstDayMs + dayStates.length * DAY_MS, temperature: true })
      .then((columns) => splitByDay(columns, firstDayMs, dayStates.length));
    const days = dayStates.map((state, i) => {
      const day = fetched.then((all) => all[i]!);
      // Handled here: a day nobody awaits (every reader of it gone to a newer fetch) must not be an unhandled rejection.
      day.catch(() => undefined);
      state.pending = { gen: gens[i]!, fetchSeq, columns: day };
      return day;
    });
    const settle = (all: ReadingColumns[] | null) => {
      dayStates.forEach((state, i) => {
        const k = key(meterId, firstDayMs + i * DAY_MS);
        if (state.pending?.fetchSeq === fetchSeq) state.pending = null;
        if (!all) return;
        // Only under the generation it started with: a day invalidated meanwhile is not stored (its columns may predate the write).
        if (states.get(k) === state && state.gen === gens[i]) storeEntry(k, state, all[i]!, fetchSeq, fetchedAtMs);
        else counts.discarded += 1;
      });
    };
    fetched.then(settle, () => settle(null));
    return days;
  }

  /** Stamps mode: a new generation for each day whose stamp changed since the last validation that saw it (or was never seen). */
  async function validateByStamps(validation: number, meterIds: readonly string[], fromMs: number, toMs: number): Promise<void> {
    const stamps = new Map<string, Stamp>();
    for (const s of await readings.dayStamps({ fromMs, toMs })) stamps.set(key(s.meterId, s.dayMs), s);
    for (const meterId of meterIds) {
      for (let day = dayOf(fromMs); day <= dayOf(toMs); day += DAY_MS) {
        const k = key(meterId, day);
        // A day InfluxDB reports nothing for holds no point (or lost them all: dropped data).
        const stamp = stamps.get(k) ?? NO_POINTS;
        const state = stateOf(k);
        // Answers can arrive out of order: a validation that began later has seen a newer stamp.
        if (state.seenBy > validation) continue;
        state.seenBy = validation;
        if (state.seenStamp && sameStamp(state.seenStamp, stamp)) continue;
        // Changed, or seen for the first time (a fetch may have started before any stamp was
        // known): a new generation. An entry whose own columns give this very stamp holds what
        // InfluxDB holds and stays, under the new generation.
        state.seenStamp = { count: stamp.count, maxReceivedAtMs: stamp.maxReceivedAtMs };
        invalidate(k, state, state.entry !== null && sameStamp(state.entry.stamp, stamp));
      }
    }
  }

  /** Stamps mode over every day cached or being read, all meters in one query. */
  async function validateCachedByStamps(validation: number): Promise<void> {
    const meterIds = new Set<string>();
    let fromMs = Infinity;
    let toMs = -Infinity;
    for (const [k, state] of states) {
      if (!state.entry && !state.pending) continue;
      const [meterId, day] = k.split('\u0000') as [string, string];
      meterIds.add(meterId);
      fromMs = Math.min(fromMs, Number(day));
      toMs = Math.max(toMs, Number(day));
    }
    if (meterIds.size > 0) await validateByStamps(validation, [...meterIds], fromMs, toMs);
  }

  return {
    async validate(meterIds, fromMs, toMs) {
      // Numbered when they begin: stamps that arrive out of order are applied by this number.
      const validation = ++lastValidation;
      const log = settings.writtenDays;
      if (log) {
        // Read in both modes, so the log is current when the ingest comes (back) to life.
        const changes = log.writtenDaysSince(loggedVersion);
        loggedVersion = changes.version;
        for (const day of changes.days) {
          const k = key(day.meterId, day.dayMs);
          const state = states.get(k);
          if (state) invalidate(k, state);
        }
      }
      const aliveSince = !log ? null : log.ingestAliveSince ? log.ingestAliveSince() : 0;
      if (aliveSince === null) {
        validatedBy = 'stamps';
        await validateByStamps(validation, meterIds, fromMs, toMs);
      } else {
        if (aliveSince !== caughtUpWith) {
          // The first validation in this stretch of the ingest's life: a day cached before it may
          // miss what another writer put there while no ingest logged, so every cached day is
          // checked against InfluxDB once. Only a check that began in this stretch counts.
          await validateCachedByStamps(validation);
          caughtUpWith = aliveSince;
        }
        validatedBy = 'log';
      }
      const oldest = clock() - settings.maxAgeMs;
      for (const meterId of meterIds) {
        for (let day = dayOf(fromMs); day <= dayOf(toMs); day += DAY_MS) {
          const k = key(meterId, day);
          const state = states.get(k);
          if (state?.entry && state.entry.fetchedAtMs < oldest) invalidate(k, state);
        }
      }
      sweepIdleStates();
    },

    async read(query) {
      return (await this.readVersioned(query)).columns;
    },

    async readVersioned(query) {
      const { firstDayMs: firstDay, lastDayMs: lastDay } = daysOf(query);
      const parts: (ReadingColumns | Promise<ReadingColumns>)[] = [];
      const gens: number[] = [];
      // Consecutive days with nothing to use: read together, maxDaysPerQuery to a query.
      let missing: { firstDayMs: number; states: DayState[]; at: number } | null = null;
      const fetchMissing = () => {
        const run = missing;
        if (!run) return;
        fetchDays(query.meterId, run.firstDayMs, run.states).forEach((day, i) => (parts[run.at + i] = day));
        missing = null;
      };
      const missingDay = (day: number, state: DayState) => {
        if (missing && missing.states.length >= settings.maxDaysPerQuery) fetchMissing();
        missing ??= { firstDayMs: day, states: [], at: parts.length };
        missing.states.push(state);
        parts.push(emptyReadingColumns(0));
      };
      for (let day = firstDay; day <= lastDay; day += DAY_MS) {
        const k = key(query.meterId, day);
        const state = stateOf(k);
        gens.push(state.gen);
        if (state.entry) {
          counts.hits += 1;
          // Least recently used goes first: re-insert on use.
          lru.delete(k);
          lru.set(k, state);
          fetchMissing();
          parts.push(state.entry.columns);
        } else if (state.pending && state.pending.gen === state.gen) {
          counts.joined += 1;
          fetchMissing();
          parts.push(state.pending.columns);
        } else {
          counts.misses += 1;
          missingDay(day, state);
        }
      }
      fetchMissing();
      const days = await Promise.all(parts);
      return { columns: concatSlice(days, query.fromMs, query.toMs, query.toInclusive ?? false), version: gens.join('.') };
    },

    version(query) {
      const gens: number[] = [];
      const { firstDayMs, lastDayMs } = daysOf(query);
      for (let day = firstDayMs; day <= lastDayMs; day += DAY_MS) gens.push(stateOf(key(query.meterId, day)).gen);
      return gens.join('.');
    },

    stats: () => ({ entries: lru.size, bytes, ...counts, validatedBy }),
  };
}
