import { createReadingsRepository } from '@flowpilot/influx';
import type { Reading } from '@flowpilot/schema';
import { createTestInflux } from '../../../test/helpers/influx.ts';
import { columnsContract } from './columns-contract.ts';
import { createCachedColumnsReader, createDirectColumnsReader } from './reading-cache.ts';
import type { WrittenDaysLog } from './reading-cache.ts';

// The readers of the columns /api/v1/metrics computes from, on one contract (columns-contract.ts),
// each over its own database of the influxd that test/global-setup.ts started.

const DAY_MS = 86_400_000;

columnsContract('straight from InfluxDB (the readings repository)', async () => {
  const influx = await createTestInflux();
  return { influx, reader: createDirectColumnsReader(createReadingsRepository(influx)) };
});

columnsContract('through the day cache, validated against InfluxDB', async () => {
  const influx = await createTestInflux();
  return { influx, reader: createCachedColumnsReader(createReadingsRepository(influx)) };
});

/** The durable store's log of written meter-days (`writtenDaysSince`), kept by the suite's writes as the ingest keeps it. */
function writtenDaysLog(): WrittenDaysLog & { record(readings: readonly Reading[]): void } {
  const days: { meterId: string; dayMs: number }[] = [];
  return {
    record: (readings) => {
      for (const r of readings) days.push({ meterId: r.meterId, dayMs: Math.floor(r.tsMs / DAY_MS) * DAY_MS });
    },
    writtenDaysSince: (version) => ({ version: days.length, days: days.slice(version) }),
  };
}

columnsContract('through the day cache, validated by the written-days log', async () => {
  const influx = await createTestInflux();
  const log = writtenDaysLog();
  return { influx, reader: createCachedColumnsReader(createReadingsRepository(influx), { writtenDays: log }), written: (readings) => log.record(readings) };
});
