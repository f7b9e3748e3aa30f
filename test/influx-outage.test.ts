import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxClient } from '@flowpilot/influx';
import { createTestInflux } from './helpers/influx.ts';
import { connectMeter, eventually, makePilot, startTestPipeline, storedPairs, wireReading } from './helpers/pipeline.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('InfluxDB unreachable (SPEC section 6: the store is the spool)', () => {
  it('keeps accepting, holds every reading in the durable store, backs off, and drains when InfluxDB returns', async () => {
    const direct = await createTestInflux();
    const proxy = await startTcpProxy(direct.config.url);
    cleanups.push(() => proxy.close());
    proxy.down();
    const influx = createInfluxClient({ url: proxy.url, database: direct.config.database, timeoutMs: 2000 });
    const pipeline = await startTestPipeline({ pilot: makePilot(['M1']), influx });
    cleanups.push(() => pipeline.close());
    const password = await pipeline.credentials.add('M1', 'meter');
    const client = await connectMeter(pipeline.mqttUrl, 'M1', password);
    cleanups.push(() => client.endAsync(true));

    const start = Date.now() - 300 * 60_000;
    for (let seq = 0; seq < 300; seq++) {
      await client.publishAsync('meters/M1/readings', JSON.stringify(wireReading('M1', seq, start + seq * 60_000)), { qos: 1 });
    }
    expect(pipeline.store.depth().records).toBe(300);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Backoff, not a hot loop: a handful of attempts in 3 s (250 ms doubling).
    expect(proxy.attempts()).toBeLessThan(12);
    expect(pipeline.ingest.stats().influxAvailable).toBe(false);
    expect(pipeline.store.depth().records).toBe(300);

    proxy.up();
    const stored = await eventually(() => storedPairs(direct), (s) => s.points >= 300, 30_000, (s) => `${s.points} of 300`);
    expect(stored.pairs.size).toBe(300);
    await eventually(async () => pipeline.store.depth().records, (n) => n === 0, 5000, (n) => `${n} still spooled`);
    expect(pipeline.ingest.stats().influxAvailable).toBe(true);
  });
});
