import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApi, createMqttLiveFeed } from '@flowpilot/api';
import { pipelineReadiness } from '@flowpilot/cli';
import { createInfluxClient, startLocalInflux, type LocalInflux } from '@flowpilot/influx';
import { startAckedPublishers } from './helpers/acked-publisher.ts';
import { makePilot, startTestPipeline, storedPairs } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';
import { freePort } from './helpers/ports.ts';

/**
 * InfluxDB stopped for a minute while 20 meters publish (FLOWPILOT_FAULT_OUTAGE_SEC shortens it
 * for a quick local run). Its own influxd, so stopping it touches no other test.
 */
const OUTAGE_MS = Number(process.env.FLOWPILOT_FAULT_OUTAGE_SEC ?? 60) * 1000;
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('InfluxDB down for a minute', () => {
  it('acknowledges and keeps every reading, reports the outage in /readyz without a hot retry loop, then writes them all', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-outage-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    let influxd: LocalInflux = await startLocalInflux({ dataDir, port });
    cleanups.push(() => influxd.stop());
    const influx = createInfluxClient({ url: influxd.url, database: 'outage', timeoutMs: 3000 });
    await influx.ensureDatabase();

    const meterIds = Array.from({ length: 20 }, (_, i) => `O-${String(i).padStart(2, '0')}`);
    const pilot = makePilot(meterIds);
    const pipeline = await startTestPipeline({ pilot, influx });
    cleanups.push(() => pipeline.close());
    await pipeline.credentials.add('svc', 'service', 'svc-password');
    const liveFeed = createMqttLiveFeed({ mqttUrl: pipeline.mqttUrl, username: 'svc', password: 'svc-password', clientId: 'svc:api', pilot });
    cleanups.push(() => liveFeed.close());
    const api = await createApi({ pilot, influx, liveFeed, readinessChecks: pipelineReadiness(pipeline.store, pipeline.ingest, 120_000) });
    cleanups.push(() => api.close());
    await eventually(async () => (await api.inject('/readyz')).statusCode, (code) => code === 200, 10_000, (code) => `readyz ${code}`);

    const perMeter = Math.ceil((OUTAGE_MS / 1000 + 10) * 2);
    const publishers = await startAckedPublishers({ mqttUrl: pipeline.mqttUrl, username: 'svc', password: 'svc-password', meterIds, totalPerMeter: perMeter, startTsMs: Date.now() - (perMeter + 10) * 60_000, pauseMs: 500 });
    cleanups.push(() => publishers.close());
    const publishing = publishers.run();

    await new Promise((resolve) => setTimeout(resolve, 2000));
    await influxd.stop();
    const outageStart = Date.now();
    const errorsBefore = Object.values(pipeline.ingest.stats().writeErrors).reduce((a, b) => a + b, 0);
    // The ping fails at once; the ingest's check turns as soon as its next write fails.
    const degraded = await eventually(
      async () => (await api.inject('/readyz')).json() as { status: string; checks: Record<string, { ok: boolean; reason?: string }> },
      (body) => body.checks.influx?.ok === false && body.checks.ingest?.ok === false,
      20_000,
      (body) => JSON.stringify(body),
    );
    expect(degraded).toMatchObject({ status: 'degraded', checks: { influx: { ok: false }, ingest: { ok: false, reason: expect.stringMatching(/readings wait in the durable store/) } } });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - outageStart))));
    expect((await api.inject('/readyz')).statusCode).toBe(503);
    const attempts = Object.values(pipeline.ingest.stats().writeErrors).reduce((a, b) => a + b, 0) - errorsBefore;
    // Exponential backoff from 250 ms to 30 s: about a dozen attempts a minute, not thousands.
    expect(attempts).toBeLessThan(5 + OUTAGE_MS / 4000);
    const spooled = pipeline.store.depth().records;
    expect(spooled).toBeGreaterThan(0);

    influxd = await startLocalInflux({ dataDir, port });
    await publishing;
    const stored = await eventually(() => storedPairs(influx), (s) => s.points >= publishers.acked.size, 90_000, (s) => `${s.points} of ${publishers.acked.size}`);
    const lost = [...publishers.acked].filter((pair) => !stored.pairs.has(pair));
    console.log(`[InfluxDB down ${OUTAGE_MS / 1000} s] acknowledged ${publishers.acked.size}, spooled during the outage ${spooled}, ingest attempts ${attempts}, lost ${lost.length}`);
    expect(lost).toEqual([]);
    await eventually(async () => (await api.inject('/readyz')).statusCode, (code) => code === 200, 30_000, (code) => `readyz ${code}`);
  });
});
