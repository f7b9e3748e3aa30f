import { parsePilotConfig } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { evaluateRules, meterThresholds } from './rules.ts';
import type { AlertFacts, Condition, MeterFacts, PipelineFacts } from './rules.ts';
import type { AlertRule } from './types.ts';

const T0 = Date.parse('2026-11-25T10:00:00Z');

const pilot = parsePilotConfig(`
pilot: { id: p, name: P, timezone: Asia/Almaty }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60, leakM3h: 1.5 }
  - { id: B, site: S, role: monitor, intervalSec: 10 }
alerts:
  meters:
    B: { staleIntervals: 6, lowBatteryPct: 40, totalizerPct: 5, rejectedPerHour: 0, leakM3h: 0.2 }
`);

function meterFacts(meterId: string, extra: Partial<MeterFacts> = {}): MeterFacts {
  return {
    meterId,
    lastReadingAtMs: T0 - 30_000,
    lastReading: { tsMs: T0 - 30_000, batteryPct: 80, alarms: [] },
    status: { online: true, tsMs: T0 - 3_600_000 },
    night: { night: '2026-11-25', meanM3h: 0.1 },
    totalizer: { date: '2026-11-24', percent: 0.5 },
    rejectedLastHour: 0,
    ...extra,
  };
}

const healthyPipeline: PipelineFacts = { storeLagSec: 1, storeCheck: null, influx: { ok: true } };

function facts(a: Partial<MeterFacts> = {}, b: Partial<MeterFacts> = {}, pipeline: Partial<PipelineFacts> = {}, nowMs = T0): AlertFacts {
  return {
    nowMs,
    watchingSinceMs: T0 - 3_600_000,
    meters: new Map([
      ['A', meterFacts('A', a)],
      ['B', meterFacts('B', b)],
    ]),
    pipeline: { ...healthyPipeline, ...pipeline },
  };
}

function condition(all: AlertFacts, rule: AlertRule, meterId: string | null): Condition {
  const outcome = evaluateRules(pilot, all).find((o) => o.rule === rule && o.meterId === meterId);
  if (!outcome) throw new Error(`no outcome for ${rule} ${meterId}`);
  return outcome.condition;
}

describe('meterThresholds', () => {
  it('takes the pilot-wide thresholds (defaults of SPEC section 9) under a meter\'s own', () => {
    expect(meterThresholds(pilot.alerts, pilot.meters[0]!)).toEqual({ staleIntervals: 3, lowBatteryPct: 20, totalizerPct: 2, rejectedPerHour: 10, leakM3h: 1.5 });
    expect(meterThresholds(pilot.alerts, pilot.meters[1]!)).toEqual({ staleIntervals: 6, lowBatteryPct: 40, totalizerPct: 5, rejectedPerHour: 0, leakM3h: 0.2 });
  });
});

describe('evaluateRules: each rule fires on its condition and is ok without it', () => {
  it('a healthy pilot: every rule ok', () => {
    const states = evaluateRules(pilot, facts()).map((o) => `${o.rule}:${o.meterId}:${o.condition.state}`);
    expect(states.every((s) => s.endsWith(':ok'))).toBe(true);
    expect(states).toHaveLength(7 * 2 + 2);
  });

  it('stale: no reading for 3 intervals (B: its own 6), from when the condition began', () => {
    // A: 60 s × 3 = 180 s; B: 10 s × 6 = 60 s.
    const silentA = facts({ lastReadingAtMs: T0 - 181_000 });
    const fired = condition(silentA, 'stale', 'A');
    expect(fired).toMatchObject({ state: 'firing', details: { threshold: 3, intervalSec: 60, lastReadingAt: new Date(T0 - 181_000).toISOString() }, sinceMs: T0 - 1_000 });
    expect(condition(facts({ lastReadingAtMs: T0 - 180_000 }), 'stale', 'A').state).toBe('ok');
    expect(condition(facts({}, { lastReadingAtMs: T0 - 59_000 }), 'stale', 'B').state).toBe('ok');
    expect(condition(facts({}, { lastReadingAtMs: T0 - 61_000 }), 'stale', 'B').state).toBe('firing');
  });

  it('stale: silence is evidence only while watched long enough; a meter never heard from fires after N intervals of watching', () => {
    const justStarted = { ...facts({ lastReadingAtMs: T0 - 3_600_000 }), watchingSinceMs: T0 - 60_000 };
    expect(condition(justStarted, 'stale', 'A').state).toBe('unknown');
    const feedAway = { ...facts({ lastReadingAtMs: T0 - 3_600_000 }), watchingSinceMs: null };
    expect(condition(feedAway, 'stale', 'A').state).toBe('unknown');
    const never = { ...facts({ lastReadingAtMs: null, lastReading: null }), watchingSinceMs: T0 - 200_000 };
    expect(condition(never, 'stale', 'A')).toMatchObject({ state: 'firing', details: { lastReadingAt: null }, sinceMs: T0 - 20_000 });
  });

  it('offline: a status online: false with no reading after it', () => {
    const down = facts({ status: { online: false, tsMs: T0 - 10_000 }, lastReading: { tsMs: T0 - 20_000, batteryPct: 80, alarms: [] } });
    expect(condition(down, 'offline', 'A')).toMatchObject({ state: 'firing', details: { statusAt: new Date(T0 - 10_000).toISOString() } });
    const readingAfter = facts({ status: { online: false, tsMs: T0 - 10_000 }, lastReading: { tsMs: T0 - 5_000, batteryPct: 80, alarms: [] } });
    expect(condition(readingAfter, 'offline', 'A').state).toBe('ok');
    expect(condition(facts({ status: null, lastReading: null }), 'offline', 'A').state).toBe('unknown');
  });

  it('leak: the latest night above leakM3h (the meter\'s own, or its override); no threshold, no rule', () => {
    expect(condition(facts({ night: { night: '2026-11-25', meanM3h: 2.4 } }), 'leak', 'A')).toMatchObject({
      state: 'firing',
      details: { threshold: 1.5, value: 2.4, night: '2026-11-25' },
    });
    expect(condition(facts({}, { night: { night: '2026-11-25', meanM3h: 0.3 } }), 'leak', 'B').state).toBe('firing');
    expect(condition(facts({ night: null }), 'leak', 'A').state).toBe('unknown');
    const noThreshold = parsePilotConfig('pilot: { id: p, name: P, timezone: UTC }\nmeters:\n  - { id: A, site: S, role: monitor, intervalSec: 60 }\n');
    const leak = evaluateRules(noThreshold, facts({ night: { night: '2026-11-25', meanM3h: 99 } })).find((o) => o.rule === 'leak');
    expect(leak?.condition.state).toBe('ok');
  });

  it('alarm: the newest reading carries one of the six alarms; low_battery is its own rule', () => {
    const alarmed = facts({ lastReading: { tsMs: T0, batteryPct: 80, alarms: ['empty_pipe', 'low_battery', 'leak'] } });
    expect(condition(alarmed, 'alarm', 'A')).toMatchObject({ state: 'firing', details: { alarm: 'empty_pipe,leak' } });
    expect(condition(facts({ lastReading: { tsMs: T0, batteryPct: 80, alarms: ['low_battery'] } }), 'alarm', 'A').state).toBe('ok');
    expect(condition(facts({ lastReading: null }), 'alarm', 'A').state).toBe('unknown');
  });

  it('low_battery: below 20 % (B: 40 %); without a level, the meter\'s own low_battery alarm', () => {
    expect(condition(facts({ lastReading: { tsMs: T0, batteryPct: 19.5, alarms: [] } }), 'low_battery', 'A')).toMatchObject({ state: 'firing', details: { threshold: 20, value: 19.5 } });
    expect(condition(facts({ lastReading: { tsMs: T0, batteryPct: 20, alarms: [] } }), 'low_battery', 'A').state).toBe('ok');
    expect(condition(facts({}, { lastReading: { tsMs: T0, batteryPct: 35, alarms: [] } }), 'low_battery', 'B').state).toBe('firing');
    expect(condition(facts({ lastReading: { tsMs: T0, batteryPct: null, alarms: ['low_battery'] } }), 'low_battery', 'A').state).toBe('firing');
    expect(condition(facts({ lastReading: { tsMs: T0, batteryPct: null, alarms: [] } }), 'low_battery', 'A').state).toBe('ok');
  });

  it('totalizer: |consistency| of the last local day above 2 % (B: 5 %), either sign', () => {
    expect(condition(facts({ totalizer: { date: '2026-11-24', percent: -3.14159 } }), 'totalizer', 'A')).toMatchObject({
      state: 'firing',
      details: { threshold: 2, value: -3.14, date: '2026-11-24' },
    });
    expect(condition(facts({}, { totalizer: { date: '2026-11-24', percent: 4.9 } }), 'totalizer', 'B').state).toBe('ok');
    expect(condition(facts({ totalizer: null }), 'totalizer', 'A').state).toBe('unknown');
  });

  it('rejected: more than 10 dead letters in the last hour (B: more than 0); unknown without the store', () => {
    expect(condition(facts({ rejectedLastHour: 11 }), 'rejected', 'A')).toMatchObject({ state: 'firing', details: { threshold: 10, value: 11 } });
    expect(condition(facts({ rejectedLastHour: 10 }), 'rejected', 'A').state).toBe('ok');
    expect(condition(facts({}, { rejectedLastHour: 1 }), 'rejected', 'B').state).toBe('firing');
    expect(condition(facts({ rejectedLastHour: null }), 'rejected', 'A').state).toBe('unknown');
  });

  it('store_lag: the oldest waiting reading over 300 s; without the lag, the store\'s readiness check', () => {
    expect(condition(facts({}, {}, { storeLagSec: 301 }), 'store_lag', null)).toMatchObject({ state: 'firing', details: { threshold: 300, value: 301 } });
    expect(condition(facts({}, {}, { storeLagSec: 300 }), 'store_lag', null).state).toBe('ok');
    expect(condition(facts({}, {}, { storeLagSec: null, storeCheck: { ok: false, reason: 'the durable store is full' } }), 'store_lag', null)).toMatchObject({
      state: 'firing',
      message: expect.stringContaining('the durable store is full'),
    });
    expect(condition(facts({}, {}, { storeLagSec: null, storeCheck: null }), 'store_lag', null).state).toBe('unknown');
  });

  it('influx_down: ping or the ingest\'s writes fail; unknown before the first check', () => {
    expect(condition(facts({}, {}, { influx: { ok: false, reason: 'ECONNREFUSED' } }), 'influx_down', null)).toMatchObject({ state: 'firing', details: { reason: 'ECONNREFUSED' } });
    expect(condition(facts({}, {}, { influx: null }), 'influx_down', null).state).toBe('unknown');
  });

  it('evaluates one meter\'s live rules alone when asked', () => {
    const outcomes = evaluateRules(pilot, facts(), { meterId: 'B', rules: ['stale', 'alarm'] });
    expect(outcomes.map((o) => `${o.rule}:${o.meterId}`)).toEqual(['stale:B', 'alarm:B']);
  });

  it('every condition\'s message and details are plain (English text, strings, numbers, null)', () => {
    const everything = facts(
      { lastReadingAtMs: T0 - 999_000, status: { online: false, tsMs: T0 - 999_000 }, night: { night: '2026-11-25', meanM3h: 9 }, rejectedLastHour: 99, totalizer: { date: '2026-11-24', percent: 9 }, lastReading: { tsMs: T0 - 999_000, batteryPct: 1, alarms: ['tamper'] } },
      {},
      { storeLagSec: 999, influx: { ok: false, reason: 'down' } },
    );
    const fired = evaluateRules(pilot, everything).filter((o) => o.condition.state === 'firing');
    expect(fired.map((o) => o.rule).sort()).toEqual(['alarm', 'influx_down', 'leak', 'low_battery', 'offline', 'rejected', 'stale', 'store_lag', 'totalizer']);
    for (const { condition: c } of fired) {
      if (c.state !== 'firing') continue;
      expect(c.message).toMatch(/^[A-Z]/);
      for (const value of Object.values(c.details)) expect(['string', 'number', 'object'].includes(typeof value) && (typeof value !== 'object' || value === null)).toBe(true);
    }
  });
});
