import { createHash } from 'node:crypto';
import { readingLine } from '@flowpilot/influx';
import { computeMeterMetrics } from '@flowpilot/metrics';
import type { MetricReading } from '@flowpilot/metrics';
import type { Reading } from '@flowpilot/schema';
import { alarmMask } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { createApi } from '../services/api/src/app.ts';
import { createMemoryLiveFeed } from '../services/api/src/live-feed.ts';
import { testPilot } from '../services/api/src/test-pilot.ts';
import { createTestInflux } from './helpers/influx.ts';

/*
 * Contract (STYLE habit 8): GET /api/v1/metrics over a real influxd equals computeMeterMetrics
 * of packages/metrics over the same readings, field by field within 1e-9 relative. Three days
 * of a reference (1 min), its test meter (1 min, +2 % upper / +4 % lower zone, a totalizer
 * reset, a 20-minute gap, redelivered duplicates, alarms, a seq restart) and a monitor (5 min).
 * The one field left out on purpose is `duplicates`: InfluxDB keeps one point per meter and
 * time, so the API cannot see redeliveries (the pure function counts them in its input).
 */

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 1);
const pilot = testPilot();

/** Flow in m³/h over the day: from 0.4 (below Q1 = 0.625) through the lower zone (< Q2 = 1) to ~90 (upper). */
const trueFlow = (t: number) => 0.5 + 90 * Math.sin(Math.PI * ((t % DAY) / DAY)) ** 4 + 0.1 * Math.sin(t / 7e6);

function series(meterId: string, intervalMin: number, build: (k: number, t: number) => Partial<Reading> | null): Reading[] {
  const out: Reading[] = [];
  let total = 5000;
  for (let k = 0; k * intervalMin * MIN < 3 * DAY; k++) {
    const t = T0 + k * intervalMin * MIN;
    const flow = trueFlow(t);
    total += (flow * intervalMin) / 60;
    const extra = build(k, t);
    if (extra === null) continue;
    out.push({ meterId, seq: k, tsMs: t, flowM3h: flow, totalM3: total, temperatureC: 11.5, alarms: [], ...extra });
  }
  return out;
}

describe('GET /api/v1/metrics equals packages/metrics (contract, real influxd)', () => {
  it('agrees field by field for a reference, a test meter and a monitor', async () => {
    const reference = series('T-REF', 1, (k) => (k >= 2000 && k < 2020 ? null : {})); // a 20-minute gap
    let dutTotal = 7000;
    let resetDone = false;
    const dut = series('T-DUT', 1, (k, t) => {
      const flow = trueFlow(t);
      const errorPct = flow < 1 ? 4 : 2;
      dutTotal += ((flow * (1 + errorPct / 100)) / 60) * 1;
      if (k === 2500 && !resetDone) {
        dutTotal = 3; // a totalizer reset
        resetDone = true;
      }
      return {
        flowM3h: flow * (1 + errorPct / 100),
        totalM3: dutTotal,
        seq: k < 3000 ? k : k - 3000, // a counter restart
        alarms: k % 400 === 7 ? ['leak', 'low_battery'] : k % 250 === 3 ? ['tamper'] : [],
      };
    });
    const monitor = series('T-MON', 5, (k) => (k % 97 === 5 ? null : { alarms: k % 50 === 0 ? ['reverse_flow'] : [], flowM3h: k % 80 === 1 ? -2 : trueFlow(T0 + k * 5 * MIN) }));

    // Redeliveries: 54 DUT readings (every 80th of 4,320) written again later with a later received_at (last write wins).
    const receivedAt = (r: Reading) => r.tsMs + 300 + ((r.seq * 37) % 4000);
    const written: Array<{ reading: Reading; receivedAtMs: number }> = [
      ...[...reference, ...dut, ...monitor].map((reading) => ({ reading, receivedAtMs: receivedAt(reading) })),
      ...dut.filter((_, i) => i % 80 === 0).map((reading) => ({ reading, receivedAtMs: receivedAt(reading) + 60_000 })),
    ];
    const influx = await createTestInflux({ timeoutMs: 60_000 });
    for (let i = 0; i < written.length; i += 5000) {
      await influx.write(written.slice(i, i + 5000).map(({ reading, receivedAtMs }) => readingLine(reading, pilot.meters.find((m) => m.id === reading.meterId)?.site ?? 'S', receivedAtMs)));
    }

    const rejections = { 'T-DUT': { ERR_READING_SCHEMA: 3 } };
    const app = await createApi({ pilot, influx, liveFeed: createMemoryLiveFeed(), rejections: () => rejections });
    try {
      const window = { fromMs: T0 + DAY / 2, toMs: T0 + 2.5 * DAY };
      const response = await app.inject(`/api/v1/metrics?from=${window.fromMs}&to=${new Date(window.toMs).toISOString()}`);
      expect(response.statusCode).toBe(200);
      const body = response.json() as { convention: string; meters: Array<Record<string, unknown>> };
      expect(body.convention).toBe('error = (indicated − reference) / reference × 100 %');

      const asMetric = (meterId: string): MetricReading[] =>
        written
          .filter(({ reading }) => reading.meterId === meterId)
          .map(({ reading, receivedAtMs }) => ({
            tsMs: reading.tsMs,
            seq: reading.seq,
            flowM3h: reading.flowM3h,
            totalM3: reading.totalM3,
            receivedAtMs,
            alarmsMask: alarmMask(reading.alarms),
            ...(reading.temperatureC === undefined ? {} : { temperatureC: reading.temperatureC }),
          }));
      for (const meter of pilot.meters) {
        const options = meter.role === 'test' && meter.reference ? { reference: asMetric(meter.reference) } : {};
        const expected = computeMeterMetrics(asMetric(meter.id), meter, window, pilot.pilot, rejections[meter.id as 'T-DUT'] ?? {}, options);
        const { duplicates, errorCurve: _curve, ...rest } = expected;
        if (meter.id === 'T-DUT') expect(duplicates).toBe(54); // the pure function sees the redeliveries; InfluxDB does not
        const actual = body.meters.find((m) => m.meterId === meter.id);
        expectClose(actual, { ...rest, role: meter.role, reference: meter.reference ?? null }, meter.id);
      }
      // The case is not trivial: every rule is exercised.
      const dutMetrics = body.meters.find((m) => m.meterId === 'T-DUT') as { totalizerResets: number; seq: { restarts: number }; accuracy: { lower: { intervals: number }; upper: { error: number; verdict: string } } };
      expect(dutMetrics.totalizerResets).toBe(1);
      expect(dutMetrics.seq.restarts).toBe(1);
      expect(dutMetrics.accuracy.lower.intervals).toBeGreaterThan(30);
      expect(dutMetrics.accuracy.upper.error).toBeCloseTo(2, 1);
      expect(dutMetrics.accuracy.upper.verdict).toBe('pass');
      expect((body.meters.find((m) => m.meterId === 'T-REF') as { gaps: { count: number } }).gaps.count).toBe(1);

      // The CSV table carries the same numbers.
      const csv = await app.inject(`/api/v1/reports/metrics.csv?from=${window.fromMs}&to=${window.toMs}`);
      expect(csv.statusCode).toBe(200);
      expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="test-pilot_metrics_2026-10-01_2026-10-03\.csv"$/);
      const lines = csv.body.split('\r\n');
      expect(lines).toHaveLength(pilot.meters.length + 2); // header, 3 meters, the empty string after the last CRLF
      expect(lines[2]).toContain('T-DUT,test,T-REF,');

      // The streamed readings CSV: one line per stored reading of W (duplicates stored once) + the header.
      const readingsCsv = await app.inject(`/api/v1/reports/readings.csv?meter=T-DUT&from=${window.fromMs}&to=${window.toMs}`);
      expect(readingsCsv.statusCode).toBe(200);
      const dutInW = dut.filter((r) => r.tsMs >= window.fromMs && r.tsMs < window.toMs).length;
      expect(readingsCsv.body.split('\r\n').length - 2).toBe(dutInW);
      // The exclusion log: an evaluator recomputes each zone's error and its exclusion counts from its rows.
      const intervals = await app.inject(`/api/v1/meters/T-DUT/intervals.csv?from=${window.fromMs}&to=${window.toMs}`);
      expect(intervals.statusCode).toBe(200);
      expect(intervals.headers['x-content-sha256']).toBe(createHash('sha256').update(intervals.body).digest('hex'));
      const [header, ...rows] = intervals.body.split('\r\n').slice(0, -1).map((line) => line.split(','));
      const column = (name: string) => (header as string[]).indexOf(name);
      const accuracy = (dutMetrics as unknown as { accuracy: { pairedIntervals: number; excluded: Record<string, number>; lower: { error: number; intervals: number }; upper: { error: number; intervals: number } } }).accuracy;
      expect(rows).toHaveLength(accuracy.pairedIntervals);
      for (const zone of ['lower', 'upper'] as const) {
        const counted = rows.filter((r) => r[column('zone')] === zone && r[column('excluded')] === '');
        const sum = (name: string) => counted.reduce((s, r) => s + Number(r[column(name)]), 0);
        expect(counted).toHaveLength(accuracy[zone].intervals);
        expect(((sum('volume_test_m3') - sum('volume_ref_m3')) / sum('volume_ref_m3')) * 100).toBeCloseTo(accuracy[zone].error, 9);
      }
      for (const [reason, n] of Object.entries(accuracy.excluded)) expect(rows.filter((r) => r[column('excluded')] === reason), reason).toHaveLength(n);
      expect(accuracy.excluded.reset).toBe(1);
      expect(accuracy.excluded.gap).toBe(1); // the reference's 20-minute hole: one row across it

      const hourly = await app.inject(`/api/v1/reports/readings.csv?from=${window.fromMs}&to=${window.toMs}&every=1h`);
      expect(hourly.body.split('\r\n').length - 2).toBe(3 * 48); // 3 meters × 48 whole hours, every hour has readings
    } finally {
      await app.close();
    }
  });
});

/** Deep equality with numbers within 1e-9 relative (InfluxDB's float round trip is exact; the margin is for summation order). */
function expectClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    const scale = Math.max(Math.abs(expected), Math.abs(actual), 1e-300);
    if (Math.abs(actual - expected) / scale > 1e-9 && Math.abs(actual - expected) > 1e-12) expect.fail(`${path}: ${actual} ≠ ${expected}`);
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    expect(actual, path).toBeTypeOf('object');
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    expect(Object.keys(a).sort(), path).toEqual(Object.keys(e).sort());
    for (const key of Object.keys(e)) expectClose(a[key], e[key], `${path}.${key}`);
    return;
  }
  expect(actual, path).toEqual(expected);
}
