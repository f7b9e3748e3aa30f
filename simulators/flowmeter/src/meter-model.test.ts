import { readFileSync } from 'node:fs';
import { parsePilotConfig, toWireReading, validateReadingPayload } from '@flowpilot/schema';
import type { PilotConfig, Reading } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { parseConditions, placeConditions } from './conditions.ts';
import { meterZones } from './demand.ts';
import { createMeterModel, generateReadings } from './meter-model.ts';

const pilot = parsePilotConfig(readFileSync(new URL('../../../examples/pilot.yaml', import.meta.url), 'utf8'));
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
// Monday 2026-11-16 00:00 UTC = 05:00 in Asia/Almaty (UTC+5, no DST).
const FROM_MS = Date.UTC(2026, 10, 16);
const WEEK_MS = 7 * DAY_MS;
const ALMATY_OFFSET_MS = 5 * 3_600_000;

const localHour = (tsMs: number): number => (((tsMs + ALMATY_OFFSET_MS) % DAY_MS) + DAY_MS) % DAY_MS / 3_600_000;

describe('generateReadings', () => {
  it('is deterministic: the same seed gives identical readings, another seed different ones', () => {
    const a = generateReadings('ALM-PS3-DUT1', pilot, FROM_MS, FROM_MS + 6 * 3_600_000, { seed: 7 });
    const b = generateReadings('ALM-PS3-DUT1', pilot, FROM_MS, FROM_MS + 6 * 3_600_000, { seed: 7 });
    const c = generateReadings('ALM-PS3-DUT1', pilot, FROM_MS, FROM_MS + 6 * 3_600_000, { seed: 8 });
    expect(a).toHaveLength(360);
    expect(b).toEqual(a);
    expect(c.map((r) => r.flowM3h)).not.toEqual(a.map((r) => r.flowM3h));
    expect(c.map((r) => r.totalM3)).not.toEqual(a.map((r) => r.totalM3));
  });

  it('gives the same reading for a timestamp wherever the run starts', () => {
    const early = generateReadings('ALM-PS7-DUT1', pilot, FROM_MS, FROM_MS + DAY_MS, { seed: 3 });
    const late = generateReadings('ALM-PS7-DUT1', pilot, FROM_MS + 17 * 3_600_000 + 23 * MINUTE_MS, FROM_MS + DAY_MS, { seed: 3 });
    expect(late.length).toBeGreaterThan(0);
    expect(late).toEqual(early.slice(early.length - late.length));

    // A model asked out of order (a restart, a backwards jump) answers the same.
    const model = createMeterModel('ALM-PS7-DUT1', pilot, { seed: 3 });
    const k = model.indexAtOrAfter(FROM_MS + 12 * 3_600_000);
    model.reading(k + 500);
    expect(model.reading(k)).toEqual(early.find((r) => r.tsMs === model.timestampOf(k)));
  });

  it('aligns timestamps to interval boundaries and numbers them consecutively', () => {
    const readings = generateReadings('ALM-PS3-REF', pilot, FROM_MS + 12_345, FROM_MS + DAY_MS);
    expect(readings[0]?.tsMs).toBe(FROM_MS + MINUTE_MS);
    for (const [i, r] of readings.entries()) {
      expect(r.tsMs % MINUTE_MS).toBe(0);
      if (i > 0) expect(r.seq - (readings[i - 1] as Reading).seq).toBe(1);
    }
  });

  it('skips exactly the seq of a dropped reading, at the configured rate (3 % ± 0.5 over 7 days)', () => {
    const readings = generateReadings('ALM-PS3-DUT1', pilot, FROM_MS, FROM_MS + WEEK_MS, { faults: { dropoutProbability: 0.03 } });
    const produced = WEEK_MS / MINUTE_MS;
    const rate = (produced - readings.length) / produced;
    expect(rate).toBeGreaterThan(0.025);
    expect(rate).toBeLessThan(0.035);
    for (let i = 1; i < readings.length; i++) {
      const [prev, next] = [readings[i - 1] as Reading, readings[i] as Reading];
      // seq is the interval index: a gap in seq is exactly a gap in time.
      expect(next.seq - prev.seq).toBe((next.tsMs - prev.tsMs) / MINUTE_MS);
    }
  });

  it('keeps a non-decreasing totalizer equal to the integral of the indicated flow', () => {
    for (const meterId of ['ALM-PS3-REF', 'ALM-PS3-DUT2', 'ALM-DMA12-MON']) {
      const readings = generateReadings(meterId, pilot, FROM_MS, FROM_MS + 2 * DAY_MS);
      let trapezoidM3 = 0;
      for (let i = 1; i < readings.length; i++) {
        const [prev, next] = [readings[i - 1] as Reading, readings[i] as Reading];
        const stepM3 = next.totalM3 - prev.totalM3;
        expect(stepM3).toBeGreaterThan(0);
        // flow is the mean over the interval ending at ts, so each step is flow × Δt:
        // flow is rounded to 1e-4 m³/h (1.7e-6 m³ a minute), total to 1e-6 m³.
        expect(Math.abs(stepM3 - next.flowM3h / 60)).toBeLessThan(5e-6);
        trapezoidM3 += ((prev.flowM3h + next.flowM3h) / 2) * (1 / 60);
      }
      const volumeM3 = (readings.at(-1) as Reading).totalM3 - (readings[0] as Reading).totalM3;
      // SPEC section 4 totalizerConsistency: the trapezoid differs only by the end terms.
      expect(Math.abs((trapezoidM3 - volumeM3) / volumeM3) * 100).toBeLessThan(0.01);
    }
  });

  it('reproduces the ErrorModel from the totalizer steps of a test meter and its reference (7 days)', () => {
    const errorModel = { lowerPct: 4.2, upperPct: -1.3 };
    for (const [testId, refId] of [
      ['ALM-PS3-DUT1', 'ALM-PS3-REF'],
      ['ALM-PS7-DUT1', 'ALM-PS7-REF'],
    ] as const) {
      const test = generateReadings(testId, pilot, FROM_MS, FROM_MS + WEEK_MS, { errorModel });
      const ref = generateReadings(refId, pilot, FROM_MS, FROM_MS + WEEK_MS, { errorModel });
      const zones = meterZones(pilot.meters.find((m) => m.id === testId) ?? { id: testId });
      const sums = { lower: { test: 0, ref: 0, n: 0 }, upper: { test: 0, ref: 0, n: 0 }, excluded: 0 };
      for (let i = 1; i < ref.length; i++) {
        const dRef = (ref[i] as Reading).totalM3 - (ref[i - 1] as Reading).totalM3;
        const dTest = (test[i] as Reading).totalM3 - (test[i - 1] as Reading).totalM3;
        const qM3h = dRef * 60; // ΔV over one minute, per hour
        const zone = qM3h >= zones.q1M3h && qM3h < zones.q2M3h ? 'lower' : qM3h >= zones.q2M3h && qM3h <= zones.q4M3h ? 'upper' : null;
        if (zone === null) {
          sums.excluded++;
          continue;
        }
        sums[zone].test += dTest;
        sums[zone].ref += dRef;
        sums[zone].n++;
      }
      const lowerPct = ((sums.lower.test - sums.lower.ref) / sums.lower.ref) * 100;
      const upperPct = ((sums.upper.test - sums.upper.ref) / sums.upper.ref) * 100;
      expect(sums.excluded).toBe(0);
      // Both zones well populated: the night window (2 h a night) is the lower zone.
      expect(sums.lower.n).toBeGreaterThanOrEqual(7 * 120);
      expect(sums.upper.n).toBeGreaterThan(7 * 1000);
      expect(Math.abs(lowerPct - errorModel.lowerPct)).toBeLessThan(0.01);
      expect(Math.abs(upperPct - errorModel.upperPct)).toBeLessThan(0.01);
    }
  });

  it('has lower flow in the local night window than by day', () => {
    for (const meterId of ['ALM-PS3-REF', 'ALM-PS3-DUT2', 'ALM-DMA12-MON']) {
      const readings = generateReadings(meterId, pilot, FROM_MS, FROM_MS + WEEK_MS);
      const mean = (rs: Reading[]): number => rs.reduce((sum, r) => sum + r.flowM3h, 0) / rs.length;
      // 02:00–04:00 local (the pilot's night window) is 21:00–23:00 UTC.
      const night = readings.filter((r) => localHour(r.tsMs - 1) >= 2 && localHour(r.tsMs - 1) < 4);
      const day = readings.filter((r) => localHour(r.tsMs) >= 8 && localHour(r.tsMs) < 20);
      expect(night).toHaveLength(7 * 120);
      expect(mean(night)).toBeLessThan(0.5 * mean(day));
    }
  });

  it('puts a test pair in the lower zone at night and the upper zone by day', () => {
    const zones = meterZones({ id: 'ALM-PS3-DUT1', q3: 100, r: 160 }); // Q1 0.625, Q2 1, Q4 125
    expect(zones).toEqual({ q1M3h: 0.625, q2M3h: 1, q3M3h: 100, q4M3h: 125 });
    const readings = generateReadings('ALM-PS3-REF', pilot, FROM_MS, FROM_MS + DAY_MS);
    for (const r of readings) {
      const hour = localHour(r.tsMs - 1);
      if (hour >= 2 && hour < 4) {
        expect(r.flowM3h).toBeGreaterThanOrEqual(0.625);
        expect(r.flowM3h).toBeLessThan(1);
      }
      if (hour >= 6 && hour < 22) {
        expect(r.flowM3h).toBeGreaterThanOrEqual(1);
        expect(r.flowM3h).toBeLessThanOrEqual(125);
      }
    }
  });

  it('reads velocity from flow and DN, and produces readings the wire schema accepts', () => {
    const readings = generateReadings('ALM-PS3-DUT1', pilot, FROM_MS, FROM_MS + 60 * MINUTE_MS);
    for (const r of readings) {
      // DN 150: area π·0.075² = 0.017671 m².
      expect(r.velocityMps).toBeCloseTo(r.flowM3h / 0.0176715 / 3600, 2);
      expect(r.totalReverseM3).toBe(0);
    }
    const result = validateReadingPayload('ALM-PS3-DUT1', JSON.stringify(readings.map(toWireReading)), {
      nowMs: FROM_MS + DAY_MS,
      isRegistered: () => true,
      retentionMs: 365 * DAY_MS,
      maxPayloadBytes: 1 << 20,
    });
    expect(result.rejections).toEqual([]);
    expect(result.readings).toEqual(readings.map((r) => ({ ...r, alarms: r.alarms })));
  });

  it('adds a leak from its start time, with the leak alarm, on every meter of the line', () => {
    const leak = { meterId: 'ALM-PS3-DUT1', fromMs: FROM_MS + DAY_MS, flowM3h: 2 };
    for (const meterId of ['ALM-PS3-REF', 'ALM-PS3-DUT1']) {
      const without = generateReadings(meterId, pilot, FROM_MS, FROM_MS + 2 * DAY_MS);
      const withLeak = generateReadings(meterId, pilot, FROM_MS, FROM_MS + 2 * DAY_MS, { leak });
      for (const [i, r] of withLeak.entries()) {
        const base = without[i] as Reading;
        if (r.tsMs <= leak.fromMs) {
          expect(r.flowM3h).toBe(base.flowM3h);
          expect(r.alarms).not.toContain('leak');
        } else {
          // The test meter adds its own error to the leak's flow.
          expect(r.flowM3h - base.flowM3h).toBeGreaterThan(1.9);
          expect(r.flowM3h - base.flowM3h).toBeLessThan(2.2);
          expect(r.alarms).toContain('leak');
        }
      }
    }
    const other = generateReadings('ALM-PS7-REF', pilot, FROM_MS + DAY_MS, FROM_MS + 2 * DAY_MS, { leak });
    expect(other.some((r) => r.alarms.includes('leak'))).toBe(false);
  });
});

describe('createMeterModel faults', () => {
  it('schedules offline stretches of the configured length, seeded per day', () => {
    const model = createMeterModel('ALM-DMA12-MON', pilot, { faults: { offlineProbabilityPerDay: 1, offlineIntervals: 30 } });
    const first = model.indexAtOrAfter(FROM_MS);
    const offline: number[] = [];
    for (let k = first; k < first + 3 * 1440; k++) if (model.isOffline(k)) offline.push(k);
    // One stretch a day for three days; stretches can overlap into the next day.
    expect(offline.length).toBeGreaterThanOrEqual(60);
    expect(offline.length).toBeLessThanOrEqual(120);
    const again = createMeterModel('ALM-DMA12-MON', pilot, { faults: { offlineProbabilityPerDay: 1, offlineIntervals: 30 } });
    expect(offline.every((k) => again.isOffline(k))).toBe(true);
  });

  it('duplicates readings at the configured rate, and never without faults', () => {
    const model = createMeterModel('ALM-PS3-REF', pilot, { faults: { duplicateProbability: 0.1 } });
    const quiet = createMeterModel('ALM-PS3-REF', pilot);
    const first = model.indexAtOrAfter(FROM_MS);
    let duplicated = 0;
    for (let k = first; k < first + 10_000; k++) {
      if (model.isDuplicated(k)) duplicated++;
      expect(quiet.isDuplicated(k) || quiet.isDropped(k) || quiet.isOffline(k)).toBe(false);
    }
    expect(duplicated / 10_000).toBeGreaterThan(0.09);
    expect(duplicated / 10_000).toBeLessThan(0.11);
  });

  it('rejects fault probabilities outside [0, 1]', () => {
    expect(() => createMeterModel('ALM-PS3-REF', pilot, { faults: { dropoutProbability: 1.5 } })).toThrow(/dropoutProbability/);
  });
});

describe('createMeterModel conditions (conditions.ts)', () => {
  const START = FROM_MS + 12 * 3_600_000; // 17:00 in Almaty
  const play = (text: string) => ({ conditions: placeConditions(parseConditions(text, pilot), START) });
  const around = (meterId: string, options = {}) => generateReadings(meterId, pilot, START - 30 * MINUTE_MS, START + 60 * MINUTE_MS, options);

  it('silent: no reading in the window, its seqs skipped; the rest as without it', () => {
    const plain = around('ALM-DMA12-MON');
    const silent = around('ALM-DMA12-MON', play('silent:ALM-DMA12-MON:5m@2m'));
    const inWindow = (r: Reading) => r.tsMs >= START + 2 * MINUTE_MS && r.tsMs < START + 7 * MINUTE_MS;
    expect(plain.filter(inWindow)).toHaveLength(5);
    expect(silent).toEqual(plain.filter((r) => !inWindow(r)));
    // The other meters of the pilot are not affected.
    expect(around('ALM-PS3-REF', play('silent:ALM-DMA12-MON:5m@2m'))).toEqual(around('ALM-PS3-REF'));
  });

  it('empty_pipe: flow 0 with the alarm, the totalizer stopped; afterwards flow as before and the total short of the missed volume', () => {
    const plain = around('ALM-PS7-DUT1');
    const empty = around('ALM-PS7-DUT1', play('empty_pipe:ALM-PS7-DUT1:10m'));
    const before = empty.filter((r) => r.tsMs < START);
    const during = empty.filter((r) => r.tsMs >= START && r.tsMs < START + 10 * MINUTE_MS);
    const after = empty.filter((r) => r.tsMs >= START + 10 * MINUTE_MS);
    expect(before).toEqual(plain.slice(0, before.length));
    expect(during).toHaveLength(10);
    const lastTotal = (before.at(-1) as Reading).totalM3;
    for (const r of during) expect([r.flowM3h, r.totalM3, r.alarms]).toEqual([0, lastTotal, ['empty_pipe']]);
    const missedM3 = plain.filter((r) => r.tsMs >= START && r.tsMs < START + 10 * MINUTE_MS).reduce((sum, r) => sum + r.flowM3h / 60, 0);
    expect(missedM3).toBeGreaterThan(1);
    for (const r of after) {
      const p = plain.find((x) => x.tsMs === r.tsMs) as Reading;
      expect(r.flowM3h).toBe(p.flowM3h);
      expect(r.alarms).toEqual([]);
      expect(r.totalM3 - (p.totalM3 - missedM3)).toBeCloseTo(0, 3);
    }
    // Its reference keeps reading the water that flows.
    expect(around('ALM-PS7-REF', play('empty_pipe:ALM-PS7-DUT1:10m'))).toEqual(around('ALM-PS7-REF'));
  });

  it('leak: a constant extra flow from a day back, so last night\'s flow shows it, without the meter\'s leak alarm', () => {
    // The monitor meter with the leak threshold (SPEC section 9) given, or not.
    const withThreshold = (leakM3h: number | undefined): PilotConfig => ({
      ...pilot,
      meters: pilot.meters.map((m) => {
        if (m.id !== 'ALM-DMA12-MON') return m;
        const { leakM3h: _given, ...rest } = m as typeof m & { leakM3h?: number };
        return leakM3h === undefined ? rest : { ...rest, leakM3h };
      }),
    });
    const noThreshold = withThreshold(undefined);
    // A night window (02:00–04:00 local, 21:00–23:00 UTC) before START, inside the leak's day.
    const nightFrom = FROM_MS - 3 * 3_600_000;
    const nightTo = FROM_MS - 1 * 3_600_000;
    const night = (p: PilotConfig, text?: string) => generateReadings('ALM-DMA12-MON', p, nightFrom + MINUTE_MS, nightTo + MINUTE_MS, text === undefined ? {} : { conditions: placeConditions(parseConditions(text, p), START) });
    const plain = night(noThreshold);
    const extra = (p: PilotConfig, text: string) => night(p, text).map((r, i) => r.flowM3h - (plain[i] as Reading).flowM3h);
    // DN 100 at 1.5 m/s is 42.41 m³/h at the peak; the night flow is 15 % of it: 6.36 m³/h.
    const nightFlowM3h = 0.15 * Math.PI * 0.05 ** 2 * 1.5 * 3600;
    for (const d of extra(noThreshold, 'leak:ALM-DMA12-MON')) expect(d).toBeCloseTo(nightFlowM3h, 3);
    for (const d of extra(noThreshold, 'leak:ALM-DMA12-MON=2.5')) expect(d).toBeCloseTo(2.5, 3);
    expect(night(noThreshold, 'leak:ALM-DMA12-MON').some((r) => r.alarms.length > 0)).toBe(false);
    // At least the meter's leak threshold, so the alert it is played for fires; an explicit flow wins.
    for (const d of extra(withThreshold(20), 'leak:ALM-DMA12-MON')) expect(d).toBeCloseTo(20, 3);
    for (const d of extra(withThreshold(20), 'leak:ALM-DMA12-MON=2.5')) expect(d).toBeCloseTo(2.5, 3);
    // Before its start, nothing.
    expect(generateReadings('ALM-DMA12-MON', pilot, START - 2 * DAY_MS, START - DAY_MS, play('leak:ALM-DMA12-MON'))).toEqual(generateReadings('ALM-DMA12-MON', pilot, START - 2 * DAY_MS, START - DAY_MS));
  });

  it('low_battery: the battery under 20 % with the meter\'s alarm, over its window only', () => {
    const low = around('ALM-PS3-DUT2', play('low_battery:ALM-PS3-DUT2:30m'));
    for (const r of low) {
      const on = r.tsMs >= START && r.tsMs < START + 30 * MINUTE_MS;
      expect(r.batteryPct! <= 15).toBe(on);
      expect(r.alarms.includes('low_battery')).toBe(on);
    }
    expect(around('ALM-PS3-DUT2', play('low_battery:ALM-PS3-DUT2=7.5')).filter((r) => r.tsMs >= START).map((r) => r.batteryPct)).toEqual(Array(60).fill(7.5));
  });

  it('is deterministic: the same conditions from the same start give the same readings', () => {
    const text = 'silent:ALM-PS3-REF:3m,empty_pipe:ALM-PS3-DUT1:7m@5m,leak:ALM-PS3-DUT1=3,low_battery:ALM-PS3-DUT1@20m';
    expect(around('ALM-PS3-DUT1', play(text))).toEqual(around('ALM-PS3-DUT1', play(text)));
    expect(around('ALM-PS3-REF', play(text))).toEqual(around('ALM-PS3-REF', play(text)));
  });
});
