import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createReadingsRepository, readingLine } from '@flowpilot/influx';
import type { Reading } from '@flowpilot/schema';
import { openDurableStore } from '@flowpilot/store';
import { createTestInflux } from '../../../test/helpers/influx.ts';
import { connectMeter, makePilot, startTestPipeline, wireReading } from '../../../test/helpers/pipeline.ts';
import { eventually } from '../../../test/helpers/wait.ts';
import { createCachedColumnsReader, createDirectColumnsReader } from './reading-cache.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1); // a UTC midnight
const reading = (seq: number, tsMs: number, total = seq): Reading => ({ meterId: 'C1', seq, tsMs, flowM3h: 10 + seq, totalM3: total, alarms: [] });
const line = (r: Reading, receivedAtMs = r.tsMs + 500) => readingLine(r, 'S', receivedAtMs);

describe('the validated day cache against a real influxd', () => {
  it('answers like a direct read, and notices added and rewritten points in a cached day', async () => {
    const influx = await createTestInflux();
    // Three days, a reading every 6 h, one at the very end of the window to test the inclusive bound.
    const readings = Array.from({ length: 12 }, (_, i) => reading(i, T0 + i * 6 * 3_600_000));
    await influx.write(readings.map((r) => line(r)));
    const cached = createCachedColumnsReader(createReadingsRepository(influx));
    const direct = createDirectColumnsReader(createReadingsRepository(influx));
    const query = { meterId: 'C1', fromMs: T0 + 3_600_000, toMs: T0 + 2 * DAY + 12 * 3_600_000, toInclusive: true, temperature: true };
    const read = async (reader: typeof cached) => {
      await reader.validate(['C1'], query.fromMs, query.toMs);
      return reader.read(query);
    };

    const first = await read(cached);
    expect(Array.from(first.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(first).toEqual(await read(direct));
    expect(cached.stats()).toMatchObject({ entries: 3, misses: 3 });

    // Unchanged: served from the cache.
    expect(await read(cached)).toEqual(first);
    expect(cached.stats().hits).toBe(3);

    // A new point on day 2 and a rewrite of day 1's point with a later receive time (a changed value).
    await influx.write([line(reading(99, T0 + DAY + 3_600_000)), line({ ...readings[2]!, flowM3h: 777 }, T0 + 10 * DAY)]);
    const after = await read(cached);
    expect(after).toEqual(await read(direct));
    expect(Array.from(after.seq)).toEqual([1, 2, 3, 4, 99, 5, 6, 7, 8, 9, 10]);
    expect(after.flowM3h[1]).toBe(777);
  });

  it('evicts the least recently used days past its byte limit and still answers right', async () => {
    const influx = await createTestInflux();
    await influx.write(Array.from({ length: 5 }, (_, d) => line(reading(d, T0 + d * DAY + 1000))));
    const cached = createCachedColumnsReader(createReadingsRepository(influx), { maxBytes: 2 * (8 * 7 + 128) });
    const query = { meterId: 'C1', fromMs: T0, toMs: T0 + 5 * DAY };
    await cached.validate(['C1'], query.fromMs, query.toMs);
    expect(Array.from((await cached.read(query)).seq)).toEqual([0, 1, 2, 3, 4]);
    expect(cached.stats().entries).toBeLessThanOrEqual(2);
    expect(Array.from((await cached.read(query)).seq)).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('the cache validated by the ingest\'s log of written days', () => {
  it('sees every reading the pipeline writes into a cached day, without scanning InfluxDB', async () => {
    const influx = await createTestInflux();
    const pipeline = await startTestPipeline({ pilot: makePilot(['C1']), influx });
    try {
      const password = await pipeline.credentials.add('C1', 'meter');
      const meter = await connectMeter(pipeline.mqttUrl, 'C1', password);
      const dayStart = Math.floor((Date.now() - 2 * DAY) / DAY) * DAY;
      const publish = (seq: number) => meter.publishAsync('meters/C1/readings', JSON.stringify(wireReading('C1', seq, dayStart + seq * 60_000)), { qos: 1 });
      for (let seq = 0; seq < 5; seq++) await publish(seq);
      await eventually(async () => pipeline.store.depth().records, (n) => n === 0, 10_000, (n) => `${n} spooled`);

      let influxQueries = 0;
      const counted = { ...influx, query: (q: string) => ((influxQueries += 1), influx.query(q)) };
      const cached = createCachedColumnsReader(createReadingsRepository(counted), { writtenDays: pipeline.store });
      const query = { meterId: 'C1', fromMs: dayStart, toMs: dayStart + DAY };
      const read = async () => {
        await cached.validate(['C1'], query.fromMs, query.toMs);
        return Array.from((await cached.read(query)).seq);
      };
      expect(await read()).toEqual([0, 1, 2, 3, 4]);
      expect(await read()).toEqual([0, 1, 2, 3, 4]);
      // One query: the first read of the day. Validation asked the log, not InfluxDB.
      expect(influxQueries).toBe(1);

      await publish(5);
      await eventually(async () => pipeline.store.depth().records, (n) => n === 0, 10_000, (n) => `${n} spooled`);
      expect(await read()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(cached.stats().validatedBy).toBe('log');
      await meter.endAsync();
    } finally {
      await pipeline.close();
    }
  });

  it('does not trust a store that no ingest reads (a file left over on the API\'s host): another ingest\'s write is seen at once', async () => {
    const influx = await createTestInflux();
    const dir = mkdtempSync(join(tmpdir(), 'fp-leftover-'));
    const store = openDurableStore({ path: join(dir, 'spool.sqlite') });
    onTestFinished(() => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await influx.write([line(reading(0, T0 + 1000))]);
    const cached = createCachedColumnsReader(createReadingsRepository(influx), { writtenDays: store });
    const query = { meterId: 'C1', fromMs: T0, toMs: T0 + DAY };
    const read = async () => {
      await cached.validate(['C1'], query.fromMs, query.toMs);
      return Array.from((await cached.read(query)).seq);
    };
    expect(await read()).toEqual([0]);
    // Written into InfluxDB by an ingest elsewhere: this store's log never names it.
    await influx.write([line(reading(1, T0 + 2000))]);
    expect(await read()).toEqual([0, 1]);
    expect(cached.stats().validatedBy).toBe('stamps');
  });
});
