import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePilotConfig } from '@flowpilot/schema';
import { createSimulator, DEFAULT_ERROR_MODEL } from '@flowpilot/simulator';
import { describe, expect, it } from 'vitest';
import { createApi } from '../services/api/src/app.ts';
import { createMemoryLiveFeed } from '../services/api/src/live-feed.ts';
import { createTestInflux } from './helpers/influx.ts';
import { quietLog, startTestPipeline } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';

/*
 * End to end with real parts: the example pilot's 7 meters publish 7 simulated days through
 * MQTT (store-and-forward backfill arrays) to a real Aedes broker, durable store, ingest and
 * influxd, with the simulator's known error model (+3.5 % lower zone, +0.8 % upper zone) and
 * 3 % of readings lost. /api/v1/metrics must give those numbers back: zone errors within
 * ±0.1 percentage points, completeness 97 % ± 0.8 points, and the verdicts they imply.
 */

const MIN_MS = 60_000;
const DAY_MS = 86_400_000;
const DROPOUT = 0.03;

describe('metrics end to end: simulator → MQTT → broker → store → ingest → InfluxDB → API', () => {
  it('reports the simulated error model and dropout rate', async () => {
    const pilot = parsePilotConfig(readFileSync(join(import.meta.dirname, '..', 'examples', 'pilot.yaml'), 'utf8'), 'examples/pilot.yaml');
    const influx = await createTestInflux({ timeoutMs: 60_000 });
    const pipeline = await startTestPipeline({ pilot, influx });
    const simulator = createSimulator({
      pilot,
      mqttUrl: pipeline.mqttUrl,
      username: 'sim',
      password: 'pw',
      backfillMs: 7 * DAY_MS,
      faults: { dropoutProbability: DROPOUT },
      log: quietLog,
    });
    try {
      await pipeline.credentials.add('sim', 'service', 'pw');
      const startedMs = Date.now();
      await simulator.start();
      const backfilled = simulator.stats().backfilled;
      // Every acknowledged reading reaches InfluxDB (SPEC section 6); wait for the ingest.
      await eventually(
        async () => {
          const series = await influx.query('SELECT count(flow) FROM reading');
          return Number(series[0]?.values[0]?.[1] ?? 0);
        },
        (stored) => stored >= backfilled,
        90_000,
        (stored) => `InfluxDB holds ${stored} of ${backfilled} acknowledged readings`,
      );
      // A whole-minute window inside the backfill: [start + 1 min, start + 7 days − 1 min).
      const fromMs = Math.ceil((startedMs - 7 * DAY_MS) / MIN_MS) * MIN_MS + MIN_MS;
      const toMs = fromMs + 7 * DAY_MS - 2 * MIN_MS;
      const app = await createApi({ pilot, influx, liveFeed: createMemoryLiveFeed(), rejections: () => pipeline.store.rejectionCountsByMeter(fromMs, toMs) });
      try {
        const response = await app.inject(`/api/v1/metrics?from=${fromMs}&to=${toMs}`);
        expect(response.statusCode).toBe(200);
        type Zone = { error: number; verdict: string; intervals: number };
        const body = response.json() as {
          meters: Array<{ meterId: string; role: string; completeness: number; delivery: number; rejected: object; accuracy: { lower: Zone; upper: Zone } | null }>;
        };
        expect(body.meters).toHaveLength(7);
        // Dropouts are drawn per reading, so a meter's completeness is binomial: over n ≈ 10,078
        // expected readings σ = √(0.03 · 0.97 / n) ≈ 0.0017. The window follows today's date, so
        // the draw differs from day to day: ±0.008 (4.7 σ) holds on every day, ±0.005 did not.
        const tolerance = 0.008;
        for (const meter of body.meters) {
          expect(meter.completeness, meter.meterId).toBeGreaterThanOrEqual(1 - DROPOUT - tolerance);
          expect(meter.completeness, meter.meterId).toBeLessThanOrEqual(1 - DROPOUT + tolerance);
          expect(meter.rejected, meter.meterId).toEqual({});
          if (meter.role !== 'test') continue;
          const { lower, upper } = meter.accuracy as { lower: Zone; upper: Zone };
          expect(Math.abs(lower.error - DEFAULT_ERROR_MODEL.lowerPct), `${meter.meterId} lower ${lower.error}`).toBeLessThanOrEqual(0.1);
          expect(Math.abs(upper.error - DEFAULT_ERROR_MODEL.upperPct), `${meter.meterId} upper ${upper.error}`).toBeLessThanOrEqual(0.1);
          // class 2: lower 3.5 ≤ 5 and upper 0.8 ≤ 2 (water ≤ 30 °C) pass, given ≥ 30 intervals per zone.
          expect(lower.intervals, meter.meterId).toBeGreaterThanOrEqual(30);
          expect(upper.intervals, meter.meterId).toBeGreaterThanOrEqual(30);
          expect(lower.verdict).toBe('pass');
          expect(upper.verdict).toBe('pass');
        }
      } finally {
        await app.close();
      }
    } finally {
      await simulator.stop();
      await pipeline.close();
    }
  }, 180_000);
});
