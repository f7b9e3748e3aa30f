import { readFileSync } from 'node:fs';
import { parsePilotConfig } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { parseConditions, placeConditions } from './conditions.ts';
import { createMeterModel } from './meter-model.ts';
import { createMeterSchedule, createTimeline, planStart } from './schedule.ts';
import type { MeterStep, ScheduledModel } from './schedule.ts';

// The schedule with time passed in by hand: a one-minute meter whose faults are listed, so
// every expectation below is counted on fingers rather than taken from the model.
const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 25, 10, 0); // a whole minute: boundary k is at k · 1 min

function fakeModel(faults: { dropped?: number[]; duplicated?: number[]; offline?: number[] } = {}): ScheduledModel {
  const has = (list: number[] | undefined, k: number) => list?.includes(k - T0 / MIN) ?? false;
  return {
    indexAtOrAfter: (ms) => Math.ceil(ms / MIN),
    indexAtOrBefore: (ms) => Math.floor(ms / MIN),
    timestampOf: (k) => k * MIN,
    reading: (k) => ({ meterId: 'M', seq: k - T0 / MIN, tsMs: k * MIN }) as Reading,
    isDropped: (k) => has(faults.dropped, k),
    isDuplicated: (k) => has(faults.duplicated, k),
    isOffline: (k) => has(faults.offline, k),
  };
}

/** A step as "kind:seqs" text: `r:3` one reading, `a:1,2` an array, `off@4` / `on@7` a status at boundary 4 / 7. */
function show(steps: readonly MeterStep[] | null): string[] | null {
  if (steps === null) return null;
  return steps.map((step) => {
    if (step.kind === 'readings') return `${step.asArray ? 'a' : 'r'}:${step.readings.map((r) => r.seq).join(',')}`;
    return `${step.kind === 'online' ? 'on' : 'off'}@${(step.tsMs - T0) / MIN}`;
  });
}

describe('planStart', () => {
  it('picks the mode from speed and backfill', () => {
    expect(planStart(1, 0, T0)).toEqual({ mode: 'realtime', startMs: T0, window: null, speed: 1, speedIgnored: false });
    expect(planStart(1, 10 * MIN, T0)).toEqual({ mode: 'backfill', startMs: T0, window: { fromMs: T0 - 10 * MIN, toMs: T0 }, speed: 1, speedIgnored: false });
    expect(planStart(600, 10 * MIN, T0)).toEqual({ mode: 'accelerated', startMs: T0, window: { fromMs: T0 - 10 * MIN, toMs: T0 }, speed: 600, speedIgnored: false });
    expect(planStart(600, 0, T0)).toEqual({ mode: 'realtime', startMs: T0, window: null, speed: 1, speedIgnored: true });
  });
});

describe('createTimeline', () => {
  it('is the wall clock in realtime and backfill', () => {
    const line = createTimeline(planStart(1, 10 * MIN, T0));
    expect(line.caughtUp).toBe(true);
    expect(line.nowMs(T0 + 1234)).toBe(T0 + 1234);
    expect(line.delayMs(T0 + MIN, T0 + 55_000)).toBe(5_000);
    expect(line.delayMs(T0 + 30 * MIN, T0)).toBe(10_000); // never sleeps past a clock jump
    expect(line.delayMs(T0, T0 + 5)).toBe(1);
  });

  it('replays the window at speed N until it reaches the wall clock, then stays on it', () => {
    // 10 min at 600×: simulated = T0 − 10 min + 600 · elapsed; it meets the wall clock when
    // 599 · elapsed = 600 000 ms, after 1001.67 ms.
    const line = createTimeline(planStart(600, 10 * MIN, T0));
    expect(line.caughtUp).toBe(false);
    expect(line.nowMs(T0)).toBe(T0 - 10 * MIN);
    expect(line.nowMs(T0 + 500)).toBe(T0 - 5 * MIN);
    // The next boundary 1 simulated minute ahead is 100 wall ms away.
    expect(line.delayMs(T0 - 4 * MIN, T0 + 500)).toBe(100);
    expect(line.nowMs(T0 + 1001)).toBe(T0 - 10 * MIN + 600_600);
    expect(line.caughtUp).toBe(false);
    expect(line.nowMs(T0 + 1002)).toBe(T0 + 1002);
    expect(line.caughtUp).toBe(true);
    // Caught up: wall time, even if the wall clock later steps back.
    expect(line.nowMs(T0 + 900)).toBe(T0 + 900);
    expect(line.delayMs(T0 + MIN, T0 + 2000)).toBe(10_000);
  });
});

describe('createMeterSchedule', () => {
  it('realtime: the first boundary after the start, one reading per boundary once it has passed', () => {
    const schedule = createMeterSchedule(fakeModel(), 1000);
    schedule.start(planStart(1, 0, T0 + 30_000));
    expect(schedule.nextDueMs()).toBe(T0 + MIN);
    expect(show(schedule.takeDue(T0 + 59_999))).toBeNull();
    expect(show(schedule.takeDue(T0 + MIN))).toEqual(['r:1']);
    expect(show(schedule.takeDue(T0 + MIN))).toBeNull();
    // Woken late: every boundary that passed, one at a time, oldest first.
    expect(show(schedule.takeDue(T0 + 3 * MIN))).toEqual(['r:2']);
    expect(show(schedule.takeDue(T0 + 3 * MIN))).toEqual(['r:3']);
    expect(show(schedule.takeDue(T0 + 3 * MIN))).toBeNull();
    // A start exactly on a boundary leaves it to the backfill: live starts at the next one.
    const onBoundary = createMeterSchedule(fakeModel(), 1000);
    onBoundary.start(planStart(1, 0, T0));
    expect(onBoundary.nextDueMs()).toBe(T0 + MIN);
  });

  it('backfill: [from, to] with both ends, in arrays of batchSize, dropouts left out and duplicates twice', () => {
    const schedule = createMeterSchedule(fakeModel({ dropped: [3], duplicated: [5] }), 4);
    const batches = [...schedule.backfill(T0, T0 + 10 * MIN)].map((batch) => batch.map((r) => r.seq));
    // Boundaries 0…10 are 11 readings; 3 is dropped and 5 sent twice: 11 readings in 4 + 4 + 3.
    expect(batches).toEqual([
      [0, 1, 2, 4],
      [5, 5, 6, 7],
      [8, 9, 10],
    ]);
    // A window that starts between boundaries begins at the next one; a full last array is not followed by an empty one.
    expect([...schedule.backfill(T0 + 30_000, T0 + 2 * MIN)].map((b) => b.map((r) => r.seq))).toEqual([[1, 2]]);
    expect([...createMeterSchedule(fakeModel(), 2).backfill(T0, T0 + 3 * MIN)].map((b) => b.length)).toEqual([2, 2]);
  });

  it('accelerated: live from the window\'s first boundary', () => {
    const schedule = createMeterSchedule(fakeModel(), 1000);
    schedule.start(planStart(600, 10 * MIN - 1, T0));
    expect(schedule.nextDueMs()).toBe(T0 - 9 * MIN);
    expect(show(schedule.takeDue(T0 - 9 * MIN))).toEqual(['r:-9']);
  });

  it('faults: an offline stretch keeps its readings and forwards them as arrays on return, before the live reading', () => {
    // Offline at 2, 3, 4 with 3 dropped; 6 duplicated.
    const schedule = createMeterSchedule(fakeModel({ offline: [2, 3, 4], dropped: [3], duplicated: [6] }), 1);
    schedule.start(planStart(1, 0, T0 - 1));
    const sent: (string[] | null)[] = [];
    for (let k = 0; k <= 6; k++) sent.push(show(schedule.takeDue(T0 + k * MIN)));
    expect(sent).toEqual([
      ['r:0'],
      ['r:1'],
      ['off@2'], // stored: 2
      [], // 3 dropped while offline
      [], // stored: 4
      ['on@5', 'a:2', 'a:4', 'r:5'], // batchSize 1: one array per stored reading
      ['r:6', 'r:6'],
    ]);
    expect(schedule.takeStored()).toEqual([]);
  });

  it('shutdown during an offline stretch: takeStored hands over what was kept, once', () => {
    const schedule = createMeterSchedule(fakeModel({ offline: [1, 2, 3, 4, 5] }), 2);
    schedule.start(planStart(1, 0, T0 - 1));
    for (let k = 0; k <= 4; k++) schedule.takeDue(T0 + k * MIN);
    expect(show(schedule.takeStored())).toEqual(['a:1,2', 'a:3,4']);
    expect(schedule.takeStored()).toEqual([]);
    // Still offline at 5: the stretch already said so, and the store was emptied, so no second
    // offline status (the condition looks at the boundary before, not at the store alone).
    expect(show(schedule.takeDue(T0 + 5 * MIN))).toEqual([]);
    expect(show(schedule.takeDue(T0 + 6 * MIN))).toEqual(['on@6', 'a:5', 'r:6']);
  });
});

describe('createMeterSchedule with conditions played on the model', () => {
  it('a silent meter sends nothing in its window, live or in the backfill, and says nothing of being offline', () => {
    const pilot = parsePilotConfig(readFileSync(new URL('../../../examples/pilot.yaml', import.meta.url), 'utf8'));
    const conditions = placeConditions(parseConditions('silent:ALM-DMA12-MON:3m@2m', pilot), T0);
    const model = createMeterModel('ALM-DMA12-MON', pilot, { conditions });
    const schedule = createMeterSchedule(model, 1000);
    schedule.start(planStart(1, 0, T0 - 1));
    // Steps as in show(), with seqs counted from boundary 0's.
    const seq0 = model.seqOf(T0 / MIN);
    const steps = (list: MeterStep[] | null) => list?.map((step) => (step.kind === 'readings' ? `r:${step.readings.map((r) => r.seq - seq0).join(',')}` : step.kind));
    const sent = [0, 1, 2, 3, 4, 5, 6].map((k) => steps(schedule.takeDue(T0 + k * MIN)));
    // Boundaries 2, 3 and 4 fall in [T0 + 2 min, T0 + 5 min).
    expect(sent).toEqual([['r:0'], ['r:1'], [], [], [], ['r:5'], ['r:6']]);
    expect([...schedule.backfill(T0, T0 + 6 * MIN)].flat().map((r) => r.seq - seq0)).toEqual([0, 1, 5, 6]);
  });
});
