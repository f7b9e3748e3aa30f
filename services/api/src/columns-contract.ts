import { emptyReadingColumns, readingLine } from '@flowpilot/influx';
import type { ColumnsQuery, InfluxClient, ReadingColumns } from '@flowpilot/influx';
import { localMidnightMs } from '@flowpilot/metrics';
import { alarmMask } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import type { ColumnsReader } from './reading-cache.ts';
import { testPilot } from './test-pilot.ts';

/**
 * The contract of a reader of the reading columns /api/v1/metrics computes from (STYLE habit 8):
 * InfluxDB read straight through the readings repository, and the API's validated day cache
 * (reading-cache.ts), run in columns-readers.int.test.ts against the real influxd. Every reader
 * must answer, for any window, exactly the points stored in it, oldest first — so all answer
 * the same columns — and must see a point written after it first read a day.
 *
 * The expected columns are worked out here from what the suite wrote (InfluxDB keeps one point
 * per meter and time, SPEC section 2), not taken from one of the readers.
 */

export interface ColumnsWorld {
  /** The world's own InfluxDB database: the suite writes its readings there through the line protocol. */
  influx: InfluxClient;
  /** The reader under test, over that database. */
  reader: ColumnsReader;
  /** Told of every write the suite makes, after it succeeded (as the ingest logs the meter-days it wrote). */
  written?(readings: readonly Reading[]): void;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const SITE = 'S1';
const ZONE = testPilot().pilot.timezone;
/** A local midnight of the pilot's zone (Asia/Almaty, UTC+5): 19:00 UTC, so not a day boundary of the cache. */
const LOCAL_MIDNIGHT = localMidnightMs(ZONE, '2026-11-02');
/** The next UTC midnight: where the cache's days meet. */
const UTC_MIDNIGHT = Math.ceil(LOCAL_MIDNIGHT / DAY_MS) * DAY_MS;
const METER = 'T-DUT';
const OTHER = 'T-REF';

/** After the last reading of the fixture: when the suite's later writes arrive. */
const FIXTURE_END = LOCAL_MIDNIGHT + 48 * HOUR_MS;

/**
 * When the ingest received a reading: the fixture's just after they were measured; each later
 * write after everything written before it, as a late or rewritten reading arrives in the field.
 */
const receivedAt = (r: Reading, write: number): number => (write === 0 ? r.tsMs + 1500 + (r.seq % 100) : FIXTURE_END + write * 60_000 + (r.seq % 100));

/** Hourly readings of T-DUT and T-REF over three days around the local midnight; some with temperature, some with alarms. */
function fixture(): Reading[] {
  const readings: Reading[] = [];
  for (const [meterId, seqBase] of [[METER, 0], [OTHER, 1000]] as const) {
    let totalM3 = 500;
    for (let i = 0; i < 72; i++) {
      const flowM3h = 10 + (i % 5) * 0.5 + seqBase / 1000;
      totalM3 += flowM3h;
      const reading: Reading = { meterId, seq: seqBase + i, tsMs: LOCAL_MIDNIGHT - 24 * HOUR_MS + i * HOUR_MS, flowM3h, totalM3, alarms: i % 10 === 0 ? ['leak'] : [] };
      if (i % 2 === 0) reading.temperatureC = 8 + i / 8;
      readings.push(reading);
    }
  }
  return readings;
}

/** What is stored: one point per meter and time, the last written winning. */
class Stored {
  readonly #points = new Map<string, { reading: Reading; receivedAtMs: number }>();

  add(readings: readonly Reading[], write: number): void {
    for (const r of readings) this.#points.set(`${r.meterId}\u0000${r.tsMs}`, { reading: r, receivedAtMs: receivedAt(r, write) });
  }

  /** The columns every reader must answer for this query: the stored points in the window, oldest first. */
  columns(query: ColumnsQuery): ReadingColumns {
    const inWindow = [...this.#points.values()]
      .filter(({ reading: r }) => r.meterId === query.meterId && r.tsMs >= query.fromMs && (query.toInclusive ? r.tsMs <= query.toMs : r.tsMs < query.toMs))
      .sort((a, b) => a.reading.tsMs - b.reading.tsMs);
    const out = emptyReadingColumns(inWindow.length);
    inWindow.forEach(({ reading: r, receivedAtMs }, i) => {
      out.tsMs[i] = r.tsMs;
      out.seq[i] = r.seq;
      out.flowM3h[i] = r.flowM3h;
      out.totalM3[i] = r.totalM3;
      out.receivedAtMs[i] = receivedAtMs;
      out.alarmsMask[i] = alarmMask(r.alarms);
      out.temperatureC[i] = r.temperatureC ?? NaN;
    });
    return out;
  }
}

/**
 * The columns a query asks for (ColumnsQuery): all of them, `temperatureC` only with
 * `temperature`, and only time and total (plus temperature) with `totalsOnly`. What a reader puts
 * in the others is not part of the contract.
 */
function asked(columns: ReadingColumns, query: ColumnsQuery): Partial<ReadingColumns> {
  const { temperatureC, ...rest } = columns;
  const base: Partial<ReadingColumns> = query.totalsOnly ? { tsMs: columns.tsMs, totalM3: columns.totalM3 } : rest;
  return query.temperature ? { ...base, temperatureC } : base;
}

export function columnsContract(name: string, makeWorld: () => Promise<ColumnsWorld>): void {
  /** A world holding the fixture, and a read as the metrics service makes it: validate the window's days, then read. */
  async function world() {
    const w = await makeWorld();
    const stored = new Stored();
    let writes = 0;
    const write = async (readings: readonly Reading[]) => {
      const write = writes++;
      await w.influx.write(readings.map((r) => readingLine(r, SITE, receivedAt(r, write))));
      stored.add(readings, write);
      w.written?.(readings);
    };
    await write(fixture());
    const read = async (query: ColumnsQuery): Promise<ReadingColumns> => {
      await w.reader.validate([query.meterId], query.fromMs, query.toMs);
      return w.reader.read(query);
    };
    /** Reads and checks against what is stored; answers the count of points. */
    const expectStored = async (query: ColumnsQuery): Promise<number> => {
      const expected = stored.columns(query);
      expect(asked(await read(query), query)).toEqual(asked(expected, query));
      return expected.tsMs.length;
    };
    return { write, read, expectStored };
  }

  const full = (fromMs: number, toMs: number, extra: Partial<ColumnsQuery> = {}): ColumnsQuery => ({ meterId: METER, fromMs, toMs, temperature: true, ...extra });

  describe(`columns contract: ${name}`, () => {
    it('answers the points of a window within one day, [from, to): the one at `from` in, the one at `to` out', async () => {
      const w = await world();
      const query = full(LOCAL_MIDNIGHT + 6 * HOUR_MS, LOCAL_MIDNIGHT + 12 * HOUR_MS);
      expect(await w.expectStored(query)).toBe(6);
      const columns = await w.read(query);
      expect([columns.tsMs[0], columns.tsMs[5]]).toEqual([query.fromMs, query.toMs - HOUR_MS]);
    });

    it('includes the point at `to` when toInclusive, also when `to` is a UTC midnight', async () => {
      const w = await world();
      expect(await w.expectStored(full(LOCAL_MIDNIGHT, UTC_MIDNIGHT))).toBe(5);
      expect(await w.expectStored(full(LOCAL_MIDNIGHT, UTC_MIDNIGHT, { toInclusive: true }))).toBe(6);
      expect(await w.expectStored(full(LOCAL_MIDNIGHT + 6 * HOUR_MS, LOCAL_MIDNIGHT + 12 * HOUR_MS, { toInclusive: true }))).toBe(7);
    });

    it('answers a window across the local midnight of the pilot\'s zone, and one across UTC midnight', async () => {
      const w = await world();
      expect(LOCAL_MIDNIGHT % DAY_MS).not.toBe(0);
      expect(await w.expectStored(full(LOCAL_MIDNIGHT - 3 * HOUR_MS, LOCAL_MIDNIGHT + 3 * HOUR_MS))).toBe(6);
      expect(await w.expectStored(full(UTC_MIDNIGHT - 3 * HOUR_MS - 1, UTC_MIDNIGHT + 3 * HOUR_MS + 1))).toBe(7);
    });

    it('answers a window over several days, with only the meter asked for', async () => {
      const w = await world();
      const query = full(LOCAL_MIDNIGHT - 30 * HOUR_MS, LOCAL_MIDNIGHT + 60 * HOUR_MS);
      expect(await w.expectStored(query)).toBe(72);
      expect(await w.expectStored({ ...query, meterId: OTHER })).toBe(72);
      expect(Math.max(...(await w.read(query)).seq)).toBeLessThan(1000);
    });

    it('answers empty columns for a window without points, a meter without points, and from = to', async () => {
      const w = await world();
      expect(await w.expectStored(full(LOCAL_MIDNIGHT + 10 * 60_000, LOCAL_MIDNIGHT + 50 * 60_000))).toBe(0);
      expect(await w.expectStored(full(LOCAL_MIDNIGHT + 7 * DAY_MS, LOCAL_MIDNIGHT + 9 * DAY_MS))).toBe(0);
      expect(await w.expectStored({ ...full(LOCAL_MIDNIGHT - DAY_MS, LOCAL_MIDNIGHT + 2 * DAY_MS), meterId: 'T-MON' })).toBe(0);
      expect(await w.expectStored(full(LOCAL_MIDNIGHT, LOCAL_MIDNIGHT))).toBe(0);
      expect(await w.read(full(LOCAL_MIDNIGHT, LOCAL_MIDNIGHT))).toEqual(emptyReadingColumns(0));
    });

    it('answers the columns a narrower query asks for: without temperature (a monitor), totals only (the error curve)', async () => {
      const w = await world();
      const window = [LOCAL_MIDNIGHT - 3 * HOUR_MS, UTC_MIDNIGHT + 3 * HOUR_MS] as const;
      expect(await w.expectStored({ meterId: METER, fromMs: window[0], toMs: window[1], temperature: false })).toBe(11);
      expect(await w.expectStored({ meterId: METER, fromMs: window[0], toMs: window[1], toInclusive: true, temperature: true, totalsOnly: true })).toBe(12);
    });

    it('sees what is written after a first read on the next read: a new point in a day it read, a rewrite with a later receive time', async () => {
      const w = await world();
      const acrossUtc = full(UTC_MIDNIGHT - 3 * HOUR_MS, UTC_MIDNIGHT + 3 * HOUR_MS);
      const days = full(LOCAL_MIDNIGHT - 30 * HOUR_MS, LOCAL_MIDNIGHT + 60 * HOUR_MS);
      expect(await w.expectStored(acrossUtc)).toBe(6);
      expect(await w.expectStored(days)).toBe(72);
      // Read again unchanged (a cache answers from memory now).
      expect(await w.expectStored(acrossUtc)).toBe(6);

      // New points on both sides of the UTC midnight, between two hourly ones (a store-and-forward backfill).
      const before = Array.from((await w.read(acrossUtc)).seq);
      await w.write([
        { meterId: METER, seq: 500, tsMs: UTC_MIDNIGHT - 30 * 60_000, flowM3h: 3.25, totalM3: 9999, alarms: ['reverse_flow'], temperatureC: 7 },
        { meterId: METER, seq: 501, tsMs: UTC_MIDNIGHT + 30 * 60_000, flowM3h: 4.5, totalM3: 10_000, alarms: [] },
      ]);
      expect(await w.expectStored(acrossUtc)).toBe(8);
      expect(Array.from((await w.read(acrossUtc)).seq)).toEqual([...before.slice(0, 3), 500, before[3], 501, ...before.slice(4)]);

      // Alone in its day, a point written again with another value: the count of the day stays, its latest receive time moves.
      const rewritten = fixture().find((r) => r.meterId === METER && r.tsMs === UTC_MIDNIGHT + 30 * HOUR_MS)!;
      await w.write([{ ...rewritten, flowM3h: 777 }]);
      expect(await w.expectStored(days)).toBe(74);
      const after = await w.read(days);
      expect(after.flowM3h[after.tsMs.indexOf(rewritten.tsMs)]).toBe(777);
    });
  });
}
