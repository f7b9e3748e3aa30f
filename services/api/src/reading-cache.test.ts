import { emptyReadingColumns } from '@flowpilot/influx';
import type { ColumnsQuery, DayStamp, ReadingColumns, ReadingsRepository, TimeRange } from '@flowpilot/influx';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCachedColumnsReader } from './reading-cache.ts';
import type { ColumnsReader, ReadingCacheOptions, WrittenDaysLog } from './reading-cache.ts';

// The day cache's race (issue 11): no answer is ever older than the last invalidation that
// preceded the request. InfluxDB here is a hand-controlled ReadingsRepository: each query takes
// its snapshot when it is asked (the oldest a real influxd could answer) and answers when the test
// says so, in any order; time is a fake clock. No influxd, no timers.

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);
const METER = 'M1';
const MAX_AGE_MS = 10 * 60_000;

interface Point {
  seq: number;
  flowM3h: number;
  receivedAtMs: number;
}

/** A query asked of the hand-controlled InfluxDB, with the snapshot it answers. */
interface Call<T> {
  kind: 'columns' | 'dayStamps';
  answer(): void;
  fail(error: Error): void;
  snapshot: T;
}

/**
 * What InfluxDB holds (one point per meter and time, SPEC section 2) and the log the ingest keeps
 * of the days it wrote; `columns` and `dayStamps` answer through `defer`, which decides when.
 */
function handInflux(defer: <T>(call: Omit<Call<T>, 'answer' | 'fail'>) => Promise<T>) {
  const points = new Map<string, Map<number, Point>>();
  const logged: { meterId: string; dayMs: number }[] = [];
  let alive = true;
  /** The stretch of the ingest's life: a new one each time it comes back. */
  let stretch = 1;

  const columnsOf = (query: ColumnsQuery): ReadingColumns => {
    const inRange = [...(points.get(query.meterId) ?? new Map<number, Point>())]
      .filter(([ts]) => ts >= query.fromMs && (query.toInclusive ? ts <= query.toMs : ts < query.toMs))
      .sort(([a], [b]) => a - b);
    const out = emptyReadingColumns(inRange.length);
    inRange.forEach(([ts, p], i) => {
      out.tsMs[i] = ts;
      out.seq[i] = p.seq;
      out.flowM3h[i] = p.flowM3h;
      out.totalM3[i] = p.seq;
      out.receivedAtMs[i] = p.receivedAtMs;
      out.temperatureC[i] = NaN;
    });
    return out;
  };

  const stampsOf = (range: TimeRange): DayStamp[] => {
    const stamps = new Map<string, DayStamp>();
    for (const [meterId, byTs] of points) {
      for (const [ts, p] of byTs) {
        const dayMs = Math.floor(ts / DAY_MS) * DAY_MS;
        if (dayMs < Math.floor(range.fromMs / DAY_MS) * DAY_MS || dayMs > range.toMs) continue;
        const stamp = stamps.get(`${meterId} ${dayMs}`) ?? { meterId, dayMs, count: 0, maxReceivedAtMs: null };
        stamp.count += 1;
        stamp.maxReceivedAtMs = Math.max(stamp.maxReceivedAtMs ?? -Infinity, p.receivedAtMs);
        stamps.set(`${meterId} ${dayMs}`, stamp);
      }
    }
    return [...stamps.values()];
  };

  const unused = () => Promise.reject(new Error('not used by the cache'));
  const readings: ReadingsRepository = {
    readings: unused,
    buckets: unused,
    latest: unused,
    latestOfEvery: unused,
    count: unused,
    seqs: unused,
    maxSeqs: unused,
    columns: (query) => defer({ kind: 'columns', snapshot: columnsOf(query) }),
    dayStamps: (range) => defer({ kind: 'dayStamps', snapshot: stampsOf(range) }),
  };

  const log: WrittenDaysLog = {
    writtenDaysSince: (version) => ({ version: logged.length, days: logged.slice(version) }),
    ingestAliveSince: () => (alive ? stretch : null),
  };

  return {
    readings,
    log,
    get ingestAlive() {
      return alive;
    },
    setIngestAlive(value: boolean) {
      if (value && !alive) stretch += 1;
      alive = value;
    },
    /** Stores a point; `logged` as the ingest does after InfluxDB confirmed it (false: another tool wrote it). */
    write(meterId: string, tsMs: number, point: Point, options: { logged: boolean }) {
      let byTs = points.get(meterId);
      if (!byTs) points.set(meterId, (byTs = new Map()));
      byTs.set(tsMs, point);
      if (options.logged) logged.push({ meterId, dayMs: Math.floor(tsMs / DAY_MS) * DAY_MS });
    },
  };
}

/** The hand-controlled InfluxDB whose answers the test gives one by one (`calls`, oldest first). */
function manualWorld(options: { logMode: boolean }) {
  const calls: Call<unknown>[] = [];
  const influx = handInflux(<T,>(call: Omit<Call<T>, 'answer' | 'fail'>) => {
    return new Promise<T>((resolve, reject) => {
      calls.push({ ...call, answer: () => resolve(call.snapshot), fail: reject });
    });
  });
  let nowMs = T0 + 40 * DAY_MS;
  const settings: Partial<ReadingCacheOptions> = { maxAgeMs: MAX_AGE_MS, clock: () => nowMs, ...(options.logMode ? { writtenDays: influx.log } : {}) };
  const reader = createCachedColumnsReader(influx.readings, settings);
  let seq = 0;
  /** A point of day `day` (0, 1, 2 from T0) at `minute`, with a new seq and receive time; `flowM3h` to tell versions apart. */
  const write = (day: number, minute: number, flowM3h: number, writeOptions = { logged: true }) => {
    seq += 1;
    influx.write(METER, T0 + day * DAY_MS + minute * 60_000, { seq, flowM3h, receivedAtMs: T0 + seq }, writeOptions);
  };
  const pendingOf = (kind: Call<unknown>['kind']) => calls.filter((c) => c.kind === kind);
  /** Waits until the cache has asked `n` queries of this kind in all, or fails. */
  const asked = async (kind: Call<unknown>['kind'], n: number) => {
    for (let i = 0; i < 20 && pendingOf(kind).length < n; i++) await Promise.resolve();
    expect(pendingOf(kind)).toHaveLength(n);
    return pendingOf(kind)[n - 1]!;
  };
  const query: ColumnsQuery = { meterId: METER, fromMs: T0, toMs: T0 + 3 * DAY_MS };
  /** A request as the metrics service makes it: validate, then read (stamps answered at once when `answerStamps`). */
  const request = (r: ColumnsReader = reader, q: ColumnsQuery = query) => {
    const validated = r.validate([q.meterId], q.fromMs, q.toMs);
    return validated.then(() => r.read(q));
  };
  const flows = (columns: ReadingColumns) => Array.from(columns.flowM3h);
  return {
    influx,
    reader,
    calls,
    write,
    asked,
    request,
    flows,
    query,
    advance: (ms: number) => (nowMs += ms),
    /** Answers the dayStamps queries asked so far, oldest first. */
    answerStamps: async () => {
      await Promise.resolve();
      for (const call of pendingOf('dayStamps')) call.answer();
    },
  };
}

/** Lets every promise chain that can move on, move on (the hand-controlled answers are the only waits). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('the day cache under concurrent requests and writes (issue 11)', () => {
  describe.each([
    { mode: 'the ingest\'s log', logMode: true },
    { mode: 'InfluxDB\'s stamps', logMode: false },
  ])('validated by $mode', ({ logMode }) => {
    it.each([
      { order: 'the newer fetch answers first', newerFirst: true },
      { order: 'the older fetch answers first', newerFirst: false },
    ])('a request validated after a write neither joins a fetch that started before it nor lets that fetch store its columns ($order)', async ({ newerFirst }) => {
      const w = manualWorld({ logMode });
      w.write(0, 10, 1);
      w.write(1, 10, 1);
      // R1 validates and starts reading; InfluxDB has not answered yet.
      const r1 = w.request();
      if (!logMode) (await w.asked('dayStamps', 1)).answer();
      const older = await w.asked('columns', 1);

      // A write into a day R1 is reading, then R2.
      w.write(1, 20, 2);
      const r2 = w.request();
      if (!logMode) (await w.asked('dayStamps', 2)).answer();
      // R2 started a fetch of its own: it did not join the older one.
      const newer = await w.asked('columns', 2);

      for (const call of newerFirst ? [newer, older] : [older, newer]) {
        call.answer();
        await settle();
      }
      // R1's validation preceded the write: the old columns are a right answer for it, and R2 sees the write.
      expect(w.flows(await r1)).toEqual([1, 1]);
      expect(w.flows(await r2)).toEqual([1, 1, 2]);

      // The older fetch stored nothing over the newer one: R3 is answered from the cache, with the write.
      const r3 = w.request();
      if (!logMode) (await w.asked('dayStamps', 3)).answer();
      expect(w.flows(await r3)).toEqual([1, 1, 2]);
      expect(w.calls.filter((c) => c.kind === 'columns')).toHaveLength(2);
      expect(w.reader.stats().discarded).toBeGreaterThan(0);
    });

    it('lets a request join a fetch under the current generation, so concurrent requests read InfluxDB once', async () => {
      const w = manualWorld({ logMode });
      w.write(0, 10, 1);
      const requests = [w.request(), w.request(), w.request()];
      if (!logMode) {
        await w.asked('dayStamps', 3);
        await w.answerStamps();
      }
      (await w.asked('columns', 1)).answer();
      for (const columns of await Promise.all(requests)) expect(w.flows(columns)).toEqual([1]);
      expect(w.calls.filter((c) => c.kind === 'columns')).toHaveLength(1);
      expect(w.reader.stats().joined).toBe(6);
    });

    it('hands a failed fetch to every request that joined it, keeps nothing, and reads again next time', async () => {
      const w = manualWorld({ logMode });
      w.write(0, 10, 1);
      const requests = [w.request(), w.request()];
      if (!logMode) {
        await w.asked('dayStamps', 2);
        await w.answerStamps();
      }
      (await w.asked('columns', 1)).fail(new Error('influxd went away'));
      for (const request of requests) await expect(request).rejects.toThrow('influxd went away');
      const again = w.request();
      if (!logMode) (await w.asked('dayStamps', 3)).answer();
      (await w.asked('columns', 2)).answer();
      expect(w.flows(await again)).toEqual([1]);
    });
  });

  it('validated by stamps, does not go back when an older validation answers after a newer one', async () => {
    const w = manualWorld({ logMode: false });
    w.write(0, 10, 1);
    const r1 = w.request();
    const oldStamps = await w.asked('dayStamps', 1);
    w.write(0, 20, 2);
    const r2 = w.request();
    // The newer validation answers first, then R2's read; the older validation last.
    (await w.asked('dayStamps', 2)).answer();
    (await w.asked('columns', 1)).answer();
    expect(w.flows(await r2)).toEqual([1, 2]);
    oldStamps.answer();
    // R1's validation changed nothing: it reads the cached day, which is newer than its validation.
    expect(w.flows(await r1)).toEqual([1, 2]);
    const r3 = w.request();
    (await w.asked('dayStamps', 3)).answer();
    expect(w.flows(await r3)).toEqual([1, 2]);
    expect(w.calls.filter((c) => c.kind === 'columns')).toHaveLength(1);
  });

  it('validated by stamps, keeps an entry whose own columns match a changed stamp (a fetch that already saw the write)', async () => {
    const w = manualWorld({ logMode: false });
    w.write(0, 10, 1);
    const r1 = w.request();
    (await w.asked('dayStamps', 1)).answer();
    // The write lands after R1's validation and before its fetch: the fetch reads it.
    w.write(0, 20, 2);
    (await w.asked('columns', 1)).answer();
    expect(w.flows(await r1)).toEqual([1, 2]);
    const r2 = w.request();
    (await w.asked('dayStamps', 2)).answer();
    expect(w.flows(await r2)).toEqual([1, 2]);
    expect(w.calls.filter((c) => c.kind === 'columns')).toHaveLength(1);
  });

  describe('the age limit', () => {
    it('validated by stamps, reads a day again once maxAgeMs old: another tool\'s rewrite that keeps the count and the receive time is seen then', async () => {
      const w = manualWorld({ logMode: false });
      w.write(0, 10, 1);
      const first = w.request();
      (await w.asked('dayStamps', 1)).answer();
      (await w.asked('columns', 1)).answer();
      expect(w.flows(await first)).toEqual([1]);
      // The blind spot of the stamps: same point, same seq and receive time, another value.
      w.influx.write(METER, T0 + 10 * 60_000, { seq: 1, flowM3h: 9, receivedAtMs: T0 + 1 }, { logged: false });

      w.advance(MAX_AGE_MS);
      const young = w.request();
      (await w.asked('dayStamps', 2)).answer();
      expect(w.flows(await young)).toEqual([1]);

      w.advance(1);
      const aged = w.request();
      (await w.asked('dayStamps', 3)).answer();
      (await w.asked('columns', 2)).answer();
      expect(w.flows(await aged)).toEqual([9]);
    });

    it('validated by the log, sees a write by another tool (not in the log) once the day is maxAgeMs old', async () => {
      const w = manualWorld({ logMode: true });
      w.write(0, 10, 1);
      const first = w.request();
      (await w.asked('columns', 1)).answer();
      expect(w.flows(await first)).toEqual([1]);
      w.write(0, 20, 2, { logged: false });
      w.advance(MAX_AGE_MS);
      expect(w.flows(await w.request())).toEqual([1]);
      w.advance(1);
      const aged = w.request();
      (await w.asked('columns', 2)).answer();
      expect(w.flows(await aged)).toEqual([1, 2]);
      expect(w.calls.filter((c) => c.kind === 'dayStamps')).toHaveLength(0);
    });
  });

  describe('the log, only while the store\'s ingest is alive', () => {
    it('validates by InfluxDB\'s stamps while no ingest reads the store (a file left over), so a write elsewhere is seen at once', async () => {
      const w = manualWorld({ logMode: true });
      w.influx.setIngestAlive(false);
      w.write(0, 10, 1, { logged: false });
      const first = w.request();
      (await w.asked('dayStamps', 1)).answer();
      (await w.asked('columns', 1)).answer();
      expect(w.flows(await first)).toEqual([1]);
      expect(w.reader.stats().validatedBy).toBe('stamps');

      // Another host's ingest writes into the same database: this store's log names nothing.
      w.write(0, 20, 2, { logged: false });
      const second = w.request();
      (await w.asked('dayStamps', 2)).answer();
      (await w.asked('columns', 2)).answer();
      expect(w.flows(await second)).toEqual([1, 2]);
    });

    it('moves to the log when the ingest comes alive and back to the stamps when it stops, keeping the days whose stamps did not change', async () => {
      const w = manualWorld({ logMode: true });
      w.write(0, 10, 1);
      w.write(1, 10, 1);
      const first = w.request();
      (await w.asked('columns', 1)).answer();
      expect(w.flows(await first)).toEqual([1, 1]);
      expect(w.reader.stats().validatedBy).toBe('log');

      w.influx.setIngestAlive(false);
      w.write(1, 20, 2, { logged: false });
      const stopped = w.request();
      (await w.asked('dayStamps', 1)).answer();
      // Only the changed day is read again.
      const reread = await w.asked('columns', 2);
      reread.answer();
      expect(w.flows(await stopped)).toEqual([1, 1, 2]);
      expect(w.reader.stats().validatedBy).toBe('stamps');

      // Back: one check of the cached days against InfluxDB (for what was written while none logged), then the log.
      w.influx.setIngestAlive(true);
      w.write(0, 30, 3);
      const alive = w.request();
      (await w.asked('dayStamps', 2)).answer();
      (await w.asked('columns', 3)).answer();
      expect(w.flows(await alive)).toEqual([1, 3, 1, 2]);
      expect(w.flows(await w.request())).toEqual([1, 3, 1, 2]);
      expect(w.calls.filter((c) => c.kind === 'dayStamps')).toHaveLength(2);
      expect(w.calls.filter((c) => c.kind === 'columns')).toHaveLength(3);
    });
  });

  it('checks every cached day against InfluxDB once when the ingest comes back: what another wrote while none logged is seen, though no request asked meanwhile', async () => {
    const w = manualWorld({ logMode: true });
    w.write(0, 10, 1);
    w.write(1, 10, 1);
    const first = w.request();
    (await w.asked('columns', 1)).answer();
    expect(w.flows(await first)).toEqual([1, 1]);

    // The ingest stops, another writes, the ingest comes back: no validation saw the silence.
    w.influx.setIngestAlive(false);
    w.write(1, 20, 2, { logged: false });
    w.influx.setIngestAlive(true);

    const back = w.request();
    (await w.asked('dayStamps', 1)).answer();
    (await w.asked('columns', 2)).answer();
    expect(w.flows(await back)).toEqual([1, 1, 2]);
    // Once per stretch of the ingest's life: the next request asks the log only.
    expect(w.flows(await w.request())).toEqual([1, 1, 2]);
    expect(w.calls.filter((c) => c.kind === 'dayStamps')).toHaveLength(1);
  });
});

describe('the day cache\'s queries', () => {
  it('reads consecutive missing days maxDaysPerQuery to a query (a month of one-minute data stays under max-row-limit 10,000)', async () => {
    const queries: ColumnsQuery[] = [];
    const influx = handInflux(async <T,>(call: Omit<Call<T>, 'answer' | 'fail'>) => call.snapshot);
    const readings = { ...influx.readings, columns: (query: ColumnsQuery) => (queries.push(query), influx.readings.columns(query)) };
    for (let day = 0; day < 14; day++) influx.write(METER, T0 + day * DAY_MS + 1000, { seq: day, flowM3h: day, receivedAtMs: T0 + day }, { logged: true });
    const reader = createCachedColumnsReader(readings, { writtenDays: influx.log });
    const all = { meterId: METER, fromMs: T0, toMs: T0 + 14 * DAY_MS };
    await reader.validate([METER], all.fromMs, all.toMs);
    expect(Array.from((await reader.read(all)).seq)).toEqual(Array.from({ length: 14 }, (_, day) => day));
    expect(queries.map((q) => (q.toMs - q.fromMs) / DAY_MS)).toEqual([6, 6, 2]);
  });
});

describe('the day cache\'s versions', () => {
  it('names what it read by a version that changes with every invalidation of its days and only then', async () => {
    const w = manualWorld({ logMode: true });
    w.write(0, 10, 1);
    await w.reader.validate([METER], w.query.fromMs, w.query.toMs);
    const before = w.reader.version(w.query);
    const reading = w.reader.readVersioned(w.query);
    (await w.asked('columns', 1)).answer();
    expect((await reading).version).toBe(before);
    await w.reader.validate([METER], w.query.fromMs, w.query.toMs);
    expect(w.reader.version(w.query)).toBe(before);
    w.write(2, 10, 1);
    await w.reader.validate([METER], w.query.fromMs, w.query.toMs);
    expect(w.reader.version(w.query)).not.toBe(before);
    // A day outside the query changes nothing of its version.
    const dayOne = { ...w.query, toMs: T0 + DAY_MS - 1 };
    const dayOneVersion = w.reader.version(dayOne);
    w.write(1, 10, 1);
    await w.reader.validate([METER], w.query.fromMs, w.query.toMs);
    expect(w.reader.version(dayOne)).toBe(dayOneVersion);
  });
});

describe('the day cache under any order of answers (fast-check scheduler)', () => {
  type Op = { write: number } | { request: [number, number] } | { ingestAlive: boolean };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ write: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ request: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })) }),
    fc.record({ ingestAlive: fc.boolean() }),
  );

  it.each([
    { mode: 'the log', logMode: true, flipping: false },
    { mode: 'the stamps', logMode: false, flipping: false },
    { mode: 'the log or the stamps as the ingest comes and goes (another writes meanwhile)', logMode: true, flipping: true },
  ])('answers no request with columns older than a write that preceded it, validated by $mode', async ({ logMode, flipping }) => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(op, { minLength: 1, maxLength: 25 }), async (s, ops) => {
        const influx = handInflux((call) => s.schedule(Promise.resolve(call.snapshot), call.kind));
        const reader = createCachedColumnsReader(influx.readings, { maxAgeMs: MAX_AGE_MS, clock: () => T0, ...(logMode ? { writtenDays: influx.log } : {}) });
        let writes = 0;
        /** The seq of each write, by day: what a request must see of the writes made before it. */
        const writtenSeqs: number[][] = [[], [], []];
        const checks: Promise<void>[] = [];
        const tsOf = (day: number, seq: number) => T0 + day * DAY_MS + seq * 1000;
        const run = (o: Op) => {
          if ('write' in o) {
            writes += 1;
            // While this store's ingest is not alive, the writes come from another ingest (another host): nobody logs them here.
            influx.write(METER, tsOf(o.write, writes), { seq: writes, flowM3h: writes, receivedAtMs: T0 + writes }, { logged: logMode && influx.ingestAlive });
            writtenSeqs[o.write]!.push(writes);
          } else if ('ingestAlive' in o) {
            if (flipping) influx.setIngestAlive(o.ingestAlive);
          } else {
            const [a, b] = [Math.min(...o.request), Math.max(...o.request)];
            const query = { meterId: METER, fromMs: T0 + a * DAY_MS, toMs: T0 + (b + 1) * DAY_MS };
            // Everything written before the request's validation began.
            const mustSee = writtenSeqs.slice(a, b + 1).flat();
            const validated = reader.validate([METER], query.fromMs, query.toMs);
            checks.push(
              validated
                .then(() => reader.read(query))
                .then((columns) => {
                  expect(Array.from(columns.seq)).toEqual(expect.arrayContaining(mustSee));
                }),
            );
          }
        };
        // The requests and writes themselves interleave with InfluxDB's answers as the scheduler picks.
        for (const o of ops) checks.push(s.schedule(Promise.resolve(o), 'op').then(run));
        await s.waitIdle();
        await Promise.all(checks);
        // Settled: a last request answers exactly what is stored (nothing stale stayed in the cache).
        const all = { meterId: METER, fromMs: T0, toMs: T0 + 3 * DAY_MS };
        const last = reader.validate([METER], all.fromMs, all.toMs).then(() => reader.read(all));
        await s.waitIdle();
        expect(Array.from((await last).seq).sort((x, y) => x - y)).toEqual(writtenSeqs.flat().sort((x, y) => x - y));
      }),
      { numRuns: 300 },
    );
  });
});
