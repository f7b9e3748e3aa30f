import type { MeterConfig } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { computeAccuracy } from './accuracy.ts';
import { localDays, localMidnightMs } from './local-days.ts';
import { pairIntervals } from './pairing.ts';
import type { MetricReading } from './series.ts';
import { computeVolume } from './volume.ts';

/*
 * A known-truth pilot (issue 11's acceptance case): meters whose true errors are set by
 * construction, read through everything a real pilot does to data — 10 L registers that
 * truncate, a reference reporting every 300 s beside test meters every 60 s, flows held around
 * Q1 and Q2, the reference's reported flow carrying noise, test meters with temperature
 * glitches, readings without a total, and dropouts on both sides. Three days of it must give
 * each meter's true zone errors back within ±0.05 percentage points, and the verdicts they
 * imply.
 */

const MIN = 60_000;
const HOUR = 3_600_000;
const TIMEZONE = 'Asia/Almaty';
const DAY0 = localMidnightMs(TIMEZONE, '2026-11-23');

/** mulberry32: a small seeded generator, so the pilot is the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Q3 = 400 m³/h, R = 40: Q1 = 10, Q2 = 16, Q4 = 500. Hourly flow levels of a local day, m³/h:
// night 11 (just above Q1) and 13–14 (below Q2), day 18 and 22 (just above Q2) and 40.
const LEVELS = [11, 11, 11, 11, 11, 11, 14, 14, 14, 18, 18, 18, 22, 22, 22, 40, 40, 40, 22, 22, 18, 18, 13, 13];
const levelAt = (t: number) => LEVELS[Math.floor(((t - DAY0) % (24 * HOUR)) / HOUR)] as number;
const Q2 = 16;

interface TestMeterTruth {
  id: string;
  lowerPct: number;
  upperPct: number;
}
const TRUTH: TestMeterTruth[] = [
  { id: 'DUT-A', lowerPct: 1.5, upperPct: 0.6 },
  { id: 'DUT-B', lowerPct: -2.2, upperPct: -2.6 },
];

const register = (totalM3: number) => Math.floor(totalM3 / 0.01 + 1e-9) * 0.01;

/**
 * Each meter integrates the true flow second by second (levels change on the hour), with its
 * own error by zone; its register shows the truncated total. Readings every `intervalSec`,
 * with the given faults.
 */
function meterReadings(
  days: number,
  intervalSec: number,
  errorPct: (q: number) => number,
  faults: { drop: number; noTotal: number; glitch: number; flowNoise: number; temperatureC: number | null },
  seed: number,
): MetricReading[] {
  const rand = random(seed);
  const out: MetricReading[] = [];
  let total = 1234.5;
  const end = DAY0 + days * 24 * HOUR;
  for (let t = DAY0, seq = 0; t <= end; t += intervalSec * 1000, seq++) {
    if (t > DAY0) {
      // The interval just ended: piecewise-constant flow, integrated minute by minute.
      for (let s = t - intervalSec * 1000; s < t; s += MIN) {
        const q = levelAt(s);
        total += ((q * (1 + errorPct(q) / 100)) / 60) * 1;
      }
    }
    if (rand() < faults.drop) continue;
    const q = levelAt(t);
    const reading: MetricReading = {
      tsMs: t,
      seq,
      flowM3h: q * (1 + errorPct(q) / 100) * (1 + faults.flowNoise * (2 * rand() - 1)),
      totalM3: rand() < faults.noTotal ? NaN : register(total),
    };
    if (faults.temperatureC !== null) reading.temperatureC = rand() < faults.glitch ? 85 : faults.temperatureC;
    out.push(reading);
  }
  return out;
}

const reference: MeterConfig = {
  id: 'REF',
  site: 'S',
  role: 'reference',
  intervalSec: 300,
  resolution: 0.01,
  calibration: { certificate: 'KT-1', calibratedOn: '2026-09-01', uncertaintyPct: 0.3 },
};
const testMeterOf = (id: string): MeterConfig => ({ id, site: 'S', role: 'test', reference: 'REF', q3: 400, r: 40, accuracyClass: 2, intervalSec: 60, resolution: 0.01 });

describe('a known-truth pilot (10 L registers, reference every 300 s, faults)', () => {
  const refReadings = meterReadings(3, 300, () => 0, { drop: 0.01, noTotal: 0.005, glitch: 0, flowNoise: 0.002, temperatureC: 12 }, 1);
  const window = { fromMs: DAY0, toMs: DAY0 + 3 * 24 * HOUR };

  it.each(TRUTH)('gives $id its true zone errors within ±0.05 pp over 3 days', (truth) => {
    const errorPct = (q: number) => (q < Q2 ? truth.lowerPct : truth.upperPct);
    const test = meterReadings(3, 60, errorPct, { drop: 0.05, noTotal: 0.01, glitch: 0.02, flowNoise: 0, temperatureC: 31 }, truth.id === 'DUT-A' ? 2 : 3);
    const paired = pairIntervals(test, refReadings, testMeterOf(truth.id), window, { referenceMeter: reference });
    const accuracy = computeAccuracy(paired, reference, { timezone: TIMEZONE });
    expect(paired.grid).toBe('reference');
    // Every fault was met: faults excluded intervals, and hour changes across Q2 made them unstable.
    expect(accuracy.excluded.missing).toBeGreaterThan(0);
    expect(accuracy.excluded.gap).toBeGreaterThan(0);
    expect(accuracy.excluded.unstable).toBeGreaterThan(0);
    expect(accuracy.lower.intervals).toBeGreaterThan(250);
    expect(accuracy.upper.intervals).toBeGreaterThan(250);
    expect(Math.abs((accuracy.lower.error as number) - truth.lowerPct)).toBeLessThan(0.05);
    expect(Math.abs((accuracy.upper.error as number) - truth.upperPct)).toBeLessThan(0.05);
    // The test meters read 31 °C with 85 °C glitches; the reference 12 °C decides: cold limits.
    expect(accuracy.upper.temperature).toMatchObject({ source: 'reference', medianC: 12, volumeShareAbove30C: 0 });
    expect(accuracy.upper.mpe).toBe(2);
    expect(accuracy.lower.mpe).toBe(5);
    // U: u_ref 0.15 pp dominates; three days of repeatability; simple acceptance (U ≤ MPE/3).
    expect(accuracy.upper.uncertainty.days).toBe(3);
    expect(accuracy.upper.rule === 'simple acceptance' || accuracy.upper.rule.startsWith('bin ')).toBe(true);
    expect(accuracy.upper.uncertainty.expandedPct).toBeLessThan(2 / 3);
    const expected = Math.abs(truth.upperPct) <= 2 && Math.abs(truth.lowerPct) <= 5 ? 'pass' : 'fail';
    expect(accuracy.overall.verdict).toBe(expected);
  });

  it('adds the daily volumes of a week up to the week’s volume to 1e-9 relative', () => {
    const week = { fromMs: DAY0, toMs: DAY0 + 7 * 24 * HOUR };
    const readings = meterReadings(8, 60, () => 0, { drop: 0.05, noTotal: 0.01, glitch: 0, flowNoise: 0, temperatureC: null }, 4);
    const whole = computeVolume(readings, 60, week).volumeM3;
    const days = localDays(week, TIMEZONE);
    expect(days).toHaveLength(7);
    const sum = days.reduce((s, day) => s + computeVolume(readings, 60, day.window).volumeM3, 0);
    expect(Math.abs(sum - whole) / whole).toBeLessThan(1e-9);
    // And the week is what the meter measured: the level profile summed, within one 10 L step.
    const truth = 7 * LEVELS.reduce((s, q) => s + q, 0);
    expect(Math.abs(whole - truth)).toBeLessThan(0.011);
  });
});
