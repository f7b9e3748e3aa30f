import { createHash } from 'node:crypto';
import { localDays } from '@flowpilot/metrics';
import type { TimeWindow } from '@flowpilot/metrics';
import { describe, expect, it } from 'vitest';
import type { MetricsSource } from './metrics-source.ts';

/**
 * The contract of a MetricsSource (STYLE habit 8, after aedes-persistence's abstract.js): every
 * implementation runs this suite. It is not a test file itself; a test file of the
 * implementation calls `metricsSourceContract` with a way to open its source over a world that
 * holds the fixture's readings, and over an InfluxDB that does not answer.
 */
export interface MetricsSourceFixture {
  /** The pilot's meters in file order, its zone, a test meter and its reference. */
  meterIds: readonly string[];
  timezone: string;
  testMeterId: string;
  referenceMeterId: string;
  /** A window in the past holding readings, over at least two local days. */
  window: TimeWindow;
  /** The source's "now" (its clock is injected). */
  nowMs: number;
  /** The longest window the source answers, in days. */
  maxWindowDays: number;
}

export interface MetricsSourceWorld {
  /** A source over the fixture's readings. */
  open(): Promise<MetricsSource>;
  /** A source whose InfluxDB does not answer. */
  openUnreachable(): Promise<MetricsSource>;
  /** The bytes `GET /api/v1/meters/{id}/intervals.csv?from&to` sends over the same data: intervalsSha256 must be their SHA-256. */
  intervalsCsv(meterId: string, window: TimeWindow): Promise<Uint8Array>;
}

const DAY_MS = 86_400_000;

/** Rejects with a FlowPilotError-like error carrying this catalogue code. */
async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code });
}

export function metricsSourceContract(name: string, fixture: MetricsSourceFixture, world: MetricsSourceWorld): void {
  describe(`MetricsSource contract: ${name}`, () => {
    it('answers every meter of the pilot, in file order, for the window asked', async () => {
      const source = await world.open();
      const answer = await source.metrics(fixture.window);
      expect(answer.window).toEqual(fixture.window);
      expect(answer.meters.map((m) => m.meterId)).toEqual(fixture.meterIds);
      const test = answer.meters.find((m) => m.meterId === fixture.testMeterId);
      expect(test?.accuracy?.convention).toBe('error = (indicated − reference) / reference × 100 %');
      expect(test?.received).toBeGreaterThan(0);
      expect(answer.meters.find((m) => m.meterId === fixture.referenceMeterId)?.accuracy).toBeNull();
    });

    it('clamps a `to` later than now to now (SPEC section 4)', async () => {
      const source = await world.open();
      const answer = await source.metrics({ fromMs: fixture.nowMs - DAY_MS, toMs: fixture.nowMs + DAY_MS });
      expect(answer.window).toEqual({ fromMs: fixture.nowMs - DAY_MS, toMs: fixture.nowMs });
    });

    it('answers each local day in one call, each day exactly what its own window gives', async () => {
      const source = await world.open();
      const daily = await source.dailyMetrics(fixture.window);
      const expectedDays = localDays(fixture.window, fixture.timezone);
      expect(daily.window).toEqual(fixture.window);
      expect(daily.days.map((d) => [d.date, d.window])).toEqual(expectedDays.map((d) => [d.date, d.window]));
      for (const day of daily.days) {
        expect(day.meters.map((m) => m.meterId)).toEqual(fixture.meterIds);
        expect(day.meters, day.date).toEqual((await source.metrics(day.window)).meters);
      }
    });

    it('answers a test meter\'s error curve with the bins asked for', async () => {
      const source = await world.open();
      const curve = await source.errorCurve(fixture.testMeterId, fixture.window);
      expect(curve).toHaveLength(12);
      expect(curve.some((bin) => bin.intervals > 0 && bin.error !== null)).toBe(true);
      expect(await source.errorCurve(fixture.testMeterId, fixture.window, 5)).toHaveLength(5);
    });

    it('hashes a test meter\'s intervals.csv: the SHA-256 of the bytes the API sends for the same window', async () => {
      const source = await world.open();
      const sha256 = await source.intervalsSha256(fixture.testMeterId, fixture.window);
      expect(sha256).toMatch(/^[0-9a-f]{64}$/);
      const csv = await world.intervalsCsv(fixture.testMeterId, fixture.window);
      expect(createHash('sha256').update(csv).digest('hex')).toBe(sha256);
      // Another window holds other intervals, so another hash.
      const firstDay = localDays(fixture.window, fixture.timezone)[0]?.window ?? fixture.window;
      expect(await source.intervalsSha256(fixture.testMeterId, firstDay)).not.toBe(sha256);
    });

    it('refuses what the API refuses, with the catalogue\'s codes', async () => {
      const source = await world.open();
      await expectCode(source.intervalsSha256(fixture.referenceMeterId, fixture.window), 'ERR_VALIDATION');
      await expectCode(source.intervalsSha256('NO-SUCH-METER', fixture.window), 'ERR_METER_NOT_FOUND');
      await expectCode(source.errorCurve(fixture.referenceMeterId, fixture.window), 'ERR_VALIDATION');
      await expectCode(source.errorCurve('NO-SUCH-METER', fixture.window), 'ERR_METER_NOT_FOUND');
      await expectCode(source.metrics({ fromMs: fixture.window.toMs, toMs: fixture.window.fromMs }), 'ERR_VALIDATION');
      const tooLong = { fromMs: fixture.window.toMs - (fixture.maxWindowDays + 1) * DAY_MS, toMs: fixture.window.toMs };
      await expectCode(source.dailyMetrics(tooLong), 'ERR_VALIDATION');
    });

    it('passes a dependency\'s 503 on as itself: ERR_INFLUX_UNAVAILABLE, not an internal error', async () => {
      const source = await world.openUnreachable();
      await expectCode(source.metrics(fixture.window), 'ERR_INFLUX_UNAVAILABLE');
      await expectCode(source.dailyMetrics(fixture.window), 'ERR_INFLUX_UNAVAILABLE');
      await expectCode(source.errorCurve(fixture.testMeterId, fixture.window), 'ERR_INFLUX_UNAVAILABLE');
      await expectCode(source.intervalsSha256(fixture.testMeterId, fixture.window), 'ERR_INFLUX_UNAVAILABLE');
    });
  });
}
