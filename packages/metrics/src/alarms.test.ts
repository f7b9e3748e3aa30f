import { ALARMS } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { countAlarms } from './alarms.ts';
import { MIN, T0, atMinutes } from './test-support.ts';

describe('alarms (SPEC 4: readings carrying each alarm)', () => {
  it('counts each bit by name in ALARMS order, ignores unknown bits and readings outside W', () => {
    // Masks: 0b1 (reverse_flow), 0b10001 (reverse_flow + low_battery), 0, 0b1000000 (overload),
    // 0b10000000 (bit 7: no such alarm); minute 9 (reverse_flow) lies outside W.
    // → reverse_flow 2, low_battery 1, overload 1, the rest 0.
    const masks = [0b1, 0b10001, 0, 0b1000000, 0b10000000];
    const readings = [...atMinutes([0, 1, 2, 3, 4], (m) => ({ alarmsMask: masks[m] as number })), ...atMinutes([9], () => ({ alarmsMask: 1 }))];
    const counts = countAlarms(readings, { fromMs: T0, toMs: T0 + 5 * MIN });
    expect(counts).toEqual({ reverse_flow: 2, empty_pipe: 0, leak: 0, tamper: 0, low_battery: 1, sensor_fault: 0, overload: 1 });
    expect(Object.keys(counts)).toEqual([...ALARMS]);
  });
});
