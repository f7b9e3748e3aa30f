import { createReadingsRepository } from '@flowpilot/influx';
import { nearestRank } from '@flowpilot/metrics';
import { ARRIVAL, createMeterRegistry } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { replayDeadLetters } from '../apps/flowpilot/src/replay-dead-letters.ts';
import { createApi } from '../services/api/src/app.ts';
import { createMemoryLiveFeed } from '../services/api/src/live-feed.ts';
import { createTestInflux } from './helpers/influx.ts';
import { connectMeter, makePilot, startTestPipeline, storedPairs, wireReading } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';

/*
 * SPEC section 4 `latencyMs`, end to end over real parts (MQTT.js → Aedes → durable store →
 * ingest → influxd → /api/v1/metrics): the latency of a meter is over the readings it published
 * one at a time. A backfill array of hour-old readings is counted apart (it says how long the
 * meter kept them, not how late the link was), and a dead letter replayed days later is left out.
 */

const MIN_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const BACKFILL = 60;
const LIVE = 5;

interface LatencyJson {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  backfilled: { count: number; share: number | null; maxMs: number | null };
  replayed: number;
}

describe('latency by how readings arrived (SPEC section 4)', () => {
  it('is over the live readings: a backfill array an hour old is counted apart, a replayed dead letter left out', async () => {
    const pilot = makePilot(['M1']);
    const influx = await createTestInflux();
    // The broker keeps readings of the last day only, so a reading two days old becomes a dead
    // letter (ERR_TS_TOO_OLD), until the operator widens the retention and replays it.
    const pipeline = await startTestPipeline({ pilot, influx, broker: { retentionMs: DAY_MS } });
    const meter = await connectMeter(pipeline.mqttUrl, 'M1', await pipeline.credentials.add('M1', 'meter'));
    try {
      const startMs = Date.now();
      const topic = 'meters/M1/readings';
      // What the meter stored while its link was down: one array of readings 2 h to 1 h old (SPEC section 1).
      const stored = Array.from({ length: BACKFILL }, (_, seq) => wireReading('M1', seq, startMs - 2 * HOUR_MS + seq * MIN_MS));
      await meter.publishAsync(topic, JSON.stringify(stored), { qos: 1 });
      // Then live, one reading per publish, each timed when it is sent.
      let lastTsMs = startMs;
      for (let seq = BACKFILL; seq < BACKFILL + LIVE; seq++) {
        lastTsMs = Math.max(Date.now(), lastTsMs + 1);
        await meter.publishAsync(topic, JSON.stringify(wireReading('M1', seq, lastTsMs)), { qos: 1 });
      }
      await meter.publishAsync(topic, JSON.stringify(wireReading('M1', 100, startMs - 2 * DAY_MS)), { qos: 1 });
      await eventually(() => storedPairs(influx), (s) => s.points >= BACKFILL + LIVE, 30_000, (s) => `${s.points} of ${BACKFILL + LIVE} stored`);
      expect(pipeline.store.listDeadLetters({ limit: 10 }).map((letter) => letter.code)).toEqual(['ERR_TS_TOO_OLD']);

      const outcome = await replayDeadLetters(
        pipeline.store,
        { registry: createMeterRegistry(pilot), nowMs: Date.now(), retentionMs: 30 * DAY_MS, maxPayloadBytes: 512 * 1024 },
        { limit: 10 },
      );
      expect(outcome).toMatchObject({ replayed: 1, records: 1 });
      await eventually(() => storedPairs(influx), (s) => s.pairs.has('M1#100'), 30_000, 'the replayed reading in InfluxDB');

      // Storage says how each reading arrived (docs/ARCHITECTURE.md "Storage").
      const fromMs = startMs - 3 * DAY_MS;
      const toMs = Date.now();
      const columns = await createReadingsRepository(influx).columns({ meterId: 'M1', fromMs, toMs });
      const seqsOf = (arrival: number) => Array.from(columns.seq).filter((_, i) => columns.arrival[i] === arrival);
      const delaysOf = (arrival: number) => Array.from(columns.receivedAtMs, (received, i) => received - columns.tsMs[i]!).filter((_, i) => columns.arrival[i] === arrival);
      expect(seqsOf(ARRIVAL.alone)).toEqual([60, 61, 62, 63, 64]);
      expect(seqsOf(ARRIVAL.backfill)).toEqual(Array.from({ length: BACKFILL }, (_, seq) => seq));
      expect(seqsOf(ARRIVAL.replay)).toEqual([100]);

      const app = await createApi({ pilot, influx, liveFeed: createMemoryLiveFeed() });
      try {
        const response = await app.inject(`/api/v1/metrics?from=${fromMs}&to=${toMs}`);
        expect(response.statusCode).toBe(200);
        const [metrics] = (response.json() as { meters: Array<{ meterId: string; received: number; latencyMs: LatencyJson }> }).meters;
        expect(metrics?.received).toBe(BACKFILL + LIVE + 1);
        const live = delaysOf(ARRIVAL.alone).sort((a, b) => a - b);
        const backfilled = delaysOf(ARRIVAL.backfill);
        expect(metrics?.latencyMs).toEqual({
          count: LIVE,
          p50: nearestRank(live, 50),
          p95: nearestRank(live, 95),
          p99: nearestRank(live, 99),
          max: live[LIVE - 1],
          backfilled: { count: BACKFILL, share: BACKFILL / (BACKFILL + LIVE + 1), maxMs: Math.max(...backfilled) },
          replayed: 1,
        });
        // What the dashboard and the PDF show: the link's delay, not the age of the backfill or the replay.
        expect(metrics?.latencyMs.p95).toBeLessThan(HOUR_MS);
        expect(metrics?.latencyMs.backfilled.maxMs).toBeGreaterThanOrEqual(2 * HOUR_MS);
      } finally {
        await app.close();
      }
    } finally {
      await meter.endAsync(true);
      await pipeline.close();
    }
  });
});
