import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxClient } from '@flowpilot/influx';
import { createTestInflux } from './helpers/influx.ts';
import { connectMeter, makePilot, startTestPipeline, storedPairs, wireReading } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';
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
    const startedAt = Date.now();
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
    // Backoff, not a hot loop: the ingest's 4th failed attempt comes no sooner than the first three
    // delays after it started (250, 500 and 1000 ms, each at least 80 % with the jitter). The
    // schedule itself is pinned with fake timers in services/ingest/src/ingest.test.ts.
    const failures = () => pipeline.ingest.stats().writeErrors.unavailable ?? 0;
    await eventually(async () => failures(), (n) => n >= 4, 15_000, (n) => `${n} failed attempts`);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(0.8 * (250 + 500 + 1000));
    // Each attempt is a connection or two, not a storm.
    expect(proxy.attempts()).toBeLessThanOrEqual(2 * failures());
    expect(pipeline.ingest.stats().influxAvailable).toBe(false);
    expect(pipeline.store.depth().records).toBe(300);

    proxy.up();
    const stored = await eventually(() => storedPairs(direct), (s) => s.points >= 300, 30_000, (s) => `${s.points} of 300`);
    expect(stored.pairs.size).toBe(300);
    await eventually(async () => pipeline.store.depth().records, (n) => n === 0, 5000, (n) => `${n} still spooled`);
    expect(pipeline.ingest.stats().influxAvailable).toBe(true);
  });
});
