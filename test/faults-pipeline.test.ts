import { afterEach, describe, expect, it } from 'vitest';
import { createInfluxClient } from '@flowpilot/influx';
import { createMetricsRegistry, pipelineReadiness, registerStoreMetrics } from '@flowpilot/cli';
import { createTestInflux } from './helpers/influx.ts';
import { connectMeter, makePilot, startTestPipeline, storedPairs, wireReading, type TestPipeline } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';
import { seededRandom } from './helpers/processes.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

/** Faults around the pipeline (SPEC section 6): a full store, backfill, poison, a slow InfluxDB. */
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function pipelineBehindProxy(meterIds: string[], options: { storeMaxRecords?: number; storeMeterShare?: number } = {}): Promise<{ pipeline: TestPipeline; proxy: TcpProxy; direct: Awaited<ReturnType<typeof createTestInflux>> }> {
  const direct = await createTestInflux();
  const proxy = await startTcpProxy(direct.config.url);
  cleanups.push(() => proxy.close());
  const influx = createInfluxClient({ url: proxy.url, database: direct.config.database, timeoutMs: 10_000 });
  const pipeline = await startTestPipeline({ pilot: makePilot(meterIds), influx, ...options });
  cleanups.push(() => pipeline.close());
  return { pipeline, proxy, direct };
}

async function meterClient(pipeline: TestPipeline, id: string) {
  const password = await pipeline.credentials.add(id, 'meter');
  const client = await connectMeter(pipeline.mqttUrl, id, password, { reconnectPeriod: 200 });
  cleanups.push(() => client.endAsync(true));
  return client;
}

describe('store full (SPEC section 6: stop accepting rather than drop)', () => {
  it('refuses a meter that holds its share of the store while the other meters are still accepted (SPEC section 8)', async () => {
    const { pipeline, proxy, direct } = await pipelineBehindProxy(['M1', 'M2'], { storeMaxRecords: 100, storeMeterShare: 0.2 });
    proxy.down();
    const [m1, m2] = [await meterClient(pipeline, 'M1'), await meterClient(pipeline, 'M2')];
    const start = Date.now() - 500 * 60_000;
    const acked = { M1: 0, M2: 0 };
    const publishing = (async () => {
      for (let seq = 0; seq < 40; seq++) {
        await m2.publishAsync('meters/M2/readings', JSON.stringify(wireReading('M2', seq, start + seq * 60_000)), { qos: 1 });
        acked.M2 += 1;
      }
    })();
    await eventually(async () => pipeline.broker.stats().refusedByLimit.store_meter_share ?? 0, (n) => n >= 1, 20_000, (n) => `${n} refusals`);
    expect(acked.M2).toBe(20); // max(ceil(100 × 0.2), 1)
    for (let seq = 0; seq < 5; seq++) {
      await m1.publishAsync('meters/M1/readings', JSON.stringify(wireReading('M1', seq, start + seq * 60_000)), { qos: 1 });
      acked.M1 += 1;
    }
    expect(acked.M1).toBe(5);
    proxy.up();
    await publishing;
    const stored = await eventually(() => storedPairs(direct), (s) => s.points >= 45, 60_000, (s) => `${s.points} of 45`);
    expect(stored.pairs.size).toBe(45);
  });

  it('withholds PUBACKs at the limit, says so in metrics and readiness, and accepts again once InfluxDB drains the store', async () => {
    const { pipeline, proxy, direct } = await pipelineBehindProxy(['M1'], { storeMaxRecords: 200, storeMeterShare: 1 }); // one meter may fill it all here
    proxy.down();
    const metrics = createMetricsRegistry();
    registerStoreMetrics(metrics, pipeline.store);
    const readiness = pipelineReadiness(pipeline.store, pipeline.ingest, 60_000);
    const client = await meterClient(pipeline, 'M1');
    const acked = new Set<number>();
    const start = Date.now() - 500 * 60_000;
    const publishing = (async () => {
      for (let seq = 0; seq < 400; seq++) {
        await client.publishAsync('meters/M1/readings', JSON.stringify(wireReading('M1', seq, start + seq * 60_000)), { qos: 1 });
        acked.add(seq);
      }
    })();

    await eventually(async () => pipeline.broker.stats().refusedStoreFull, (n) => n >= 3, 20_000, (n) => `${n} refusals`);
    // Nothing beyond the limit was acknowledged: the meter still holds the rest.
    expect(acked.size).toBe(200);
    expect(pipeline.store.depth().records).toBe(200);
    expect(await metrics.getSingleMetricAsString('flowpilot_store_full')).toMatch(/flowpilot_store_full 1/);
    expect(readiness.store()).toMatchObject({ ok: false, reason: expect.stringMatching(/store is full/) });

    proxy.up();
    await publishing;
    const stored = await eventually(() => storedPairs(direct), (s) => s.points >= 400, 60_000, (s) => `${s.points} of 400`);
    expect(stored.pairs.size).toBe(400);
    expect(readiness.store().ok).toBe(true);
  });
});

describe('backfill (SPEC section 1: store-and-forward arrays)', () => {
  it('stores a day of 1,440 readings sent as out-of-order arrays with duplicates once each, at their own timestamps', async () => {
    const influx = await createTestInflux();
    const pipeline = await startTestPipeline({ pilot: makePilot(['M1']), influx });
    cleanups.push(() => pipeline.close());
    const client = await meterClient(pipeline, 'M1');
    const random = seededRandom(1440);
    const start = Math.floor((Date.now() - 25 * 3600_000) / 60_000) * 60_000;
    const readings = Array.from({ length: 1440 }, (_, seq) => wireReading('M1', seq, start + seq * 60_000));
    // Every 20th reading twice, then shuffled (Fisher-Yates, seeded), then cut into arrays of 1..1000.
    const sent = [...readings, ...readings.filter((_, i) => i % 20 === 0)];
    for (let i = sent.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [sent[i], sent[j]] = [sent[j]!, sent[i]!];
    }
    let arrays = 0;
    for (let offset = 0; offset < sent.length; arrays++) {
      const size = Math.min(1000, 1 + Math.floor(random() * 400));
      await client.publishAsync('meters/M1/readings', JSON.stringify(sent.slice(offset, offset + size)), { qos: 1 });
      offset += size;
    }
    expect(arrays).toBeGreaterThan(3);

    await eventually(() => storedPairs(influx), (s) => s.points >= 1440, 30_000, (s) => `${s.points} of 1440`);
    const [series] = await influx.query(`SELECT seq FROM reading WHERE meter = 'M1'`);
    expect(series!.values).toHaveLength(1440);
    for (const [time, seq] of series!.values as [number, number][]) expect(time).toBe(start + seq * 60_000);
  });
});

describe('poison messages (a stall Telegraf\'s mqtt_consumer is known for, influxdata/telegraf#13476)', () => {
  it('never stalls: one malformed message per simulated second for an hour among 20 meters\' readings', async () => {
    const influx = await createTestInflux();
    const meterIds = Array.from({ length: 20 }, (_, i) => `P-${String(i).padStart(2, '0')}`);
    const pipeline = await startTestPipeline({ pilot: makePilot(meterIds), influx });
    cleanups.push(() => pipeline.close());
    const clients = await Promise.all(meterIds.map((id) => meterClient(pipeline, id)));
    const start = Math.floor((Date.now() - 2 * 3600_000) / 60_000) * 60_000;
    const poisons = ['{"v":1,', 'null', '{"v":9}', '[1,2,3]', '{"v":1,"meterId":"P-00","seq":"x"}'];
    // Each element of a batch array stands alone (SPEC section 1): '[1,2,3]' is three rejections.
    const rejectionsOf = (poison: string) => (poison === '[1,2,3]' ? 3 : 1);
    let expectedRejections = 0;
    // One simulated hour: each second one poison message, each minute one reading per meter.
    for (let second = 0; second < 3600; second++) {
      const poison = poisons[second % poisons.length]!;
      const sends: Promise<unknown>[] = [clients[second % 20]!.publishAsync(`meters/${meterIds[second % 20]}/readings`, poison, { qos: 1 })];
      expectedRejections += rejectionsOf(poison);
      if (second % 60 === 0) {
        const minute = second / 60;
        meterIds.forEach((id, m) => sends.push(clients[m]!.publishAsync(`meters/${id}/readings`, JSON.stringify(wireReading(id, minute, start + minute * 60_000)), { qos: 1 })));
      }
      await Promise.all(sends);
    }
    const stored = await eventually(() => storedPairs(influx), (s) => s.points >= 1200, 30_000, (s) => `${s.points} of 1200`);
    expect(stored.points).toBe(1200);
    const rejected = Object.values(pipeline.store.rejectionCounts()).reduce((a, b) => a + b, 0);
    expect(rejected).toBe(expectedRejections);
    expect(clients.every((client) => client.connected)).toBe(true);
  });
});

describe('slow InfluxDB (every answer 2 s late)', () => {
  it('keeps accepting at full speed while the store absorbs the lag, with one write in flight at a time', async () => {
    const { pipeline, proxy, direct } = await pipelineBehindProxy(['M1', 'M2', 'M3', 'M4']);
    proxy.setResponseDelay(2000);
    const clients = await Promise.all(['M1', 'M2', 'M3', 'M4'].map((id) => meterClient(pipeline, id)));
    const start = Date.now() - 1000 * 60_000;
    let maxDepth = 0;
    await Promise.all(
      clients.map(async (client, m) => {
        for (let seq = 0; seq < 500; seq++) {
          await client.publishAsync(`meters/M${m + 1}/readings`, JSON.stringify(wireReading(`M${m + 1}`, seq, start + seq * 60_000)), { qos: 1 });
          if (seq % 50 === 0) maxDepth = Math.max(maxDepth, pipeline.store.depth().records);
        }
      }),
    );
    // All 2,000 acknowledged while InfluxDB still lagged: the durable store held the difference.
    expect(maxDepth).toBeGreaterThan(0);
    const stored = await eventually(() => storedPairs(direct), (s) => s.points >= 2000, 60_000, (s) => `${s.points} of 2000`);
    expect(stored.pairs.size).toBe(2000);
    // The ingest never piles up requests on a slow server (bounded memory): one write at a time.
    expect(proxy.maxConcurrent()).toBeLessThanOrEqual(2);
  });
});
