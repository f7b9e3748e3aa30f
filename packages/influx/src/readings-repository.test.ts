import { describe, expect, it } from 'vitest';
import { READING_FIELDS } from '@flowpilot/schema';
import type { InfluxClient, InfluxSeries } from './client.ts';
import { createReadingsRepository, durationLiteral, METERS_PER_QUERY } from './readings-repository.ts';
import { STORED_READING_FIELDS } from './storage.ts';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');

/** An InfluxClient that records each statement and answers with the series given for it. */
function fakeInflux(answer: (influxql: string) => InfluxSeries[] = () => []): InfluxClient & { statements: string[] } {
  const statements: string[] = [];
  return {
    config: { url: 'http://influx.invalid', database: 'test' },
    statements,
    ping: async () => ({ version: 'fake' }),
    ensureDatabase: async () => {},
    write: async () => {},
    query: async (influxql) => {
      statements.push(influxql);
      return answer(influxql);
    },
  };
}

const COLUMNS = ['time', ...STORED_READING_FIELDS];
const row = (values: Record<string, unknown>): unknown[] => COLUMNS.map((c) => values[c] ?? null);

describe('the readings repository: statements', () => {
  it('selects every field of the schema\'s field table and received_at, by name, in the window [from, to)', async () => {
    const influx = fakeInflux();
    await createReadingsRepository(influx).readings("it's", { fromMs: T0, toMs: T0 + 60_000 }, 11);
    expect(STORED_READING_FIELDS).toEqual([...READING_FIELDS.map((f) => f.stored), 'received_at']);
    expect(influx.statements).toEqual([
      'SELECT "flow", "total", "total_rev", "velocity", "pressure", "temperature", "battery", "rssi", "seq", "alarms", "received_at" FROM "reading" ' +
        "WHERE \"meter\" = 'it\\'s' AND time >= '2026-11-25T10:00:00.000Z' AND time < '2026-11-25T10:01:00.000Z' ORDER BY time ASC LIMIT 11",
    ]);
  });

  it('aggregates buckets with a duration literal of the largest whole unit', async () => {
    const influx = fakeInflux();
    await createReadingsRepository(influx).buckets('M', { fromMs: T0, toMs: T0 + 86_400_000 }, 900_000);
    expect(influx.statements[0]).toMatch(/GROUP BY time\(15m\) fill\(none\)$/);
    expect([86_400_000, 3_600_000, 90_000, 30_000, 250].map(durationLiteral)).toEqual(['1d', '1h', '90s', '30s', '250ms']);
    expect(() => durationLiteral(0)).toThrow(RangeError);
    expect(() => durationLiteral(1.5)).toThrow(RangeError);
  });

  it('names at most METERS_PER_QUERY meters per statement', async () => {
    const influx = fakeInflux();
    const meters = Array.from({ length: 2 * METERS_PER_QUERY + 1 }, (_, i) => `M${i}`);
    await createReadingsRepository(influx).seqs(meters);
    expect(influx.statements).toHaveLength(3);
    expect(influx.statements[2]).toBe(`SELECT "seq" FROM "reading" WHERE ("meter" = 'M${2 * METERS_PER_QUERY}') GROUP BY "meter"`);
  });
});

describe('the readings repository: rows back to readings', () => {
  it('maps a row to the schema\'s Reading, alarms from the bit mask, absent fields left out', async () => {
    const influx = fakeInflux(() => [
      {
        name: 'reading',
        columns: COLUMNS,
        values: [
          row({ time: T0, flow: 42.5, total: 100, pressure: 3.2, seq: 7, alarms: 1 + 16, received_at: T0 + 250 }),
          row({ time: T0 + 60_000, flow: 1, seq: 8 }), // no total: not a reading the ingest wrote
          row({ time: T0 + 120_000, flow: 2, total: 101, seq: 9 }),
        ],
      },
    ]);
    const readings = await createReadingsRepository(influx).readings('M', { fromMs: T0, toMs: T0 + 3_600_000 });
    expect(readings).toEqual([
      { meterId: 'M', tsMs: T0, flowM3h: 42.5, totalM3: 100, pressureBar: 3.2, seq: 7, alarms: ['reverse_flow', 'low_battery'], receivedAtMs: T0 + 250 },
      { meterId: 'M', tsMs: T0 + 120_000, flowM3h: 2, totalM3: 101, seq: 9, alarms: [] },
    ]);
  });

  it('keys the newest reading of every meter by its tag', async () => {
    const influx = fakeInflux(() => [
      { name: 'reading', tags: { meter: 'A' }, columns: COLUMNS, values: [row({ time: T0, flow: 1, total: 2, seq: 3, alarms: 0 })] },
      { name: 'reading', tags: { meter: 'B' }, columns: COLUMNS, values: [] },
    ]);
    const latest = await createReadingsRepository(influx).latestOfEvery(30);
    expect([...latest.keys()]).toEqual(['A']);
    expect(latest.get('A')).toMatchObject({ meterId: 'A', seq: 3 });
    expect(influx.statements[0]).toMatch(/WHERE time > now\(\) - 30d GROUP BY "meter" ORDER BY time DESC LIMIT 1$/);
  });

  it('reads buckets, skipping empty ones, and day stamps with 0 and null for empty days', async () => {
    const influx = fakeInflux((statement) =>
      statement.includes('mean(')
        ? [{ name: 'reading', columns: ['time', 'flow', 'flow_min', 'flow_max', 'total', 'count'], values: [[T0, 2, 1, 3, 50, 4], [T0 + 3_600_000, null, null, null, null, 0]] }]
        : [{ name: 'reading', tags: { meter: 'A' }, columns: ['time', 'count', 'max'], values: [[T0, 5, T0 + 9], [T0 + 86_400_000, null, null]] }],
    );
    const repository = createReadingsRepository(influx);
    expect(await repository.buckets('A', { fromMs: T0, toMs: T0 + 7_200_000 }, 3_600_000)).toEqual([
      { tsMs: T0, flowMeanM3h: 2, flowMinM3h: 1, flowMaxM3h: 3, totalLastM3: 50, count: 4 },
    ]);
    expect(await repository.dayStamps({ fromMs: T0, toMs: T0 + 86_400_000 })).toEqual([
      { meterId: 'A', dayMs: T0, count: 5, maxReceivedAtMs: T0 + 9 },
      { meterId: 'A', dayMs: T0 + 86_400_000, count: 0, maxReceivedAtMs: null },
    ]);
  });
});
