import { describe, expect, it } from 'vitest';
import { ARRIVAL } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import { createTestInflux } from '../../../test/helpers/influx.ts';
import { readingLine } from './line-protocol.ts';
import { createReadingsRepository } from './readings-repository.ts';

const T0 = Date.UTC(2026, 10, 1); // a UTC midnight
const MIN = 60_000;

const reading = (meterId: string, seq: number, change: Partial<Reading> = {}): Reading => ({ meterId, seq, tsMs: T0 + seq * MIN, flowM3h: 10 + seq, totalM3: 100 + seq, alarms: [], ...change });

describe('the readings repository against a real influxd', () => {
  it('reads back what the line protocol wrote: one field table in both directions', async () => {
    const influx = await createTestInflux();
    const full = reading('A', 0, { totalReverseM3: 0.5, velocityMps: 1.25, pressureBar: 3.2, temperatureC: -0.5, batteryPct: 87, rssiDbm: -81, alarms: ['empty_pipe', 'overload'] });
    const written = [full, ...[1, 2, 3].map((seq) => reading('A', seq)), reading('B', 1)];
    // seq 2 came in a backfill array; seq 3 is a point of an older writer, without `arrival`.
    const line = (r: Reading) => readingLine(r, 'S 1', r.tsMs + 700, r.seq === 2 ? ARRIVAL.backfill : ARRIVAL.alone);
    await influx.write(written.map((r) => (r.meterId === 'A' && r.seq === 3 ? line(r).replace(',arrival=0i', '') : line(r))));
    const readings = createReadingsRepository(influx);

    const back = await readings.readings('A', { fromMs: T0, toMs: T0 + 3 * MIN });
    expect(back).toEqual(written.slice(0, 3).map((r) => ({ ...r, receivedAtMs: r.tsMs + 700 })));
    expect(await readings.readings('A', { fromMs: T0, toMs: T0 + 10 * MIN }, 2)).toHaveLength(2);
    expect(await readings.latest('A', 400)).toMatchObject({ seq: 3 });

    const buckets = await readings.buckets('A', { fromMs: T0, toMs: T0 + 4 * MIN }, 2 * MIN);
    expect(buckets).toEqual([
      { tsMs: T0, flowMeanM3h: 10.5, flowMinM3h: 10, flowMaxM3h: 11, totalLastM3: 101, count: 2 },
      { tsMs: T0 + 2 * MIN, flowMeanM3h: 12.5, flowMinM3h: 12, flowMaxM3h: 13, totalLastM3: 103, count: 2 },
    ]);

    const columns = await readings.columns({ meterId: 'A', fromMs: T0, toMs: T0 + 3 * MIN, toInclusive: true, temperature: true });
    expect(Array.from(columns.seq)).toEqual([0, 1, 2, 3]);
    expect(columns.alarmsMask[0]).toBe(2 + 64);
    expect(columns.temperatureC[0]).toBe(-0.5);
    expect(Number.isNaN(columns.temperatureC[1])).toBe(true);
    expect(Array.from(columns.arrival)).toEqual([ARRIVAL.alone, ARRIVAL.alone, ARRIVAL.backfill, ARRIVAL.alone]);

    expect(await readings.dayStamps({ fromMs: T0, toMs: T0 + 3 * MIN })).toEqual([
      { meterId: 'A', dayMs: T0, count: 4, maxReceivedAtMs: T0 + 3 * MIN + 700 },
      { meterId: 'B', dayMs: T0, count: 1, maxReceivedAtMs: T0 + MIN + 700 },
    ]);
    expect(await readings.count()).toBe(5);
    expect(await readings.seqs(['A', 'B', 'C'])).toEqual(new Map([['A', [0, 1, 2, 3]], ['B', [1]]]));
    expect(await readings.maxSeqs(['A', 'B'], T0 + 2 * MIN)).toEqual(new Map([['A', 3]]));
  });
});
