import { readFileSync } from 'node:fs';
import { parsePilotConfig } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { demoConditions, formatConditions, parseConditions, placeConditions } from './conditions.ts';

const pilot = parsePilotConfig(readFileSync(new URL('../../../examples/pilot.yaml', import.meta.url), 'utf8'));
const MIN = 60_000;
const DAY = 86_400_000;

describe('parseConditions', () => {
  it('reads the grammar KIND:METER[=VALUE][:DURATION][@START], with each kind\'s defaults', () => {
    expect(parseConditions('silent:ALM-DMA12-MON:5m,leak:ALM-DMA12-MON,empty_pipe:ALM-PS7-DUT1:10m,low_battery:ALM-PS3-DUT2', pilot)).toEqual([
      { kind: 'silent', meterId: 'ALM-DMA12-MON', startOffsetMs: 0, durationMs: 5 * MIN, value: null },
      // A leak starts a day back, so the last night of the history shows it; it lasts.
      { kind: 'leak', meterId: 'ALM-DMA12-MON', startOffsetMs: -DAY, durationMs: null, value: null },
      { kind: 'empty_pipe', meterId: 'ALM-PS7-DUT1', startOffsetMs: 0, durationMs: 10 * MIN, value: null },
      { kind: 'low_battery', meterId: 'ALM-PS3-DUT2', startOffsetMs: 0, durationMs: null, value: null },
    ]);
    expect(parseConditions(' silent:ALM-PS3-REF@2m , leak:ALM-DMA12-MON=4.5@-2d , low_battery:ALM-PS3-DUT1=12:1h@+30s , empty_pipe:ALM-PS7-DUT1', pilot)).toEqual([
      { kind: 'silent', meterId: 'ALM-PS3-REF', startOffsetMs: 2 * MIN, durationMs: 10 * MIN, value: null },
      { kind: 'leak', meterId: 'ALM-DMA12-MON', startOffsetMs: -2 * DAY, durationMs: null, value: 4.5 },
      { kind: 'low_battery', meterId: 'ALM-PS3-DUT1', startOffsetMs: 30_000, durationMs: 60 * MIN, value: 12 },
      { kind: 'empty_pipe', meterId: 'ALM-PS7-DUT1', startOffsetMs: 0, durationMs: 10 * MIN, value: null },
    ]);
    expect(parseConditions('none', pilot)).toEqual([]);
    expect(parseConditions('', pilot)).toEqual([]);
    expect(parseConditions('demo', pilot)).toEqual(demoConditions(pilot));
  });

  it('names every problem at once', () => {
    const attempt = () => parseConditions('flood:ALM-PS3-REF,silent:NOPE,silent:ALM-PS3-REF=3,leak:ALM-DMA12-MON=-1,low_battery:ALM-PS3-DUT2=120,empty_pipe:ALM-PS7-DUT1:soon,silent:ALM-PS3-REF@later,garbage', pilot);
    expect(attempt).toThrow(RangeError);
    const message = (() => {
      try {
        attempt();
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    })();
    for (const part of [
      '"flood:ALM-PS3-REF": unknown condition "flood", expected one of silent, empty_pipe, leak, low_battery',
      '"silent:NOPE": no meter "NOPE" in pilot almaty-2026',
      '"silent:ALM-PS3-REF=3": silent takes no =VALUE',
      '"leak:ALM-DMA12-MON=-1": a leak\'s flow must be a number of m³/h above 0',
      '"low_battery:ALM-PS3-DUT2=120": a battery must be a number of % from 0 to under 100',
      '"empty_pipe:ALM-PS7-DUT1:soon": duration "soon" is not a duration above 0',
      '"silent:ALM-PS3-REF@later": start "@later" is not a duration',
      '"garbage": expected KIND:METER[=VALUE][:DURATION][@START]',
    ]) expect(message).toContain(part);
  });

  it('refuses a meter the simulator does not simulate (SPEC section 3)', () => {
    const mixed = parsePilotConfig('pilot: { id: p, name: P, timezone: UTC }\nmeters:\n  - { id: REAL, site: S, role: monitor, intervalSec: 60 }\n  - { id: SIM, site: S, role: monitor, intervalSec: 60, simulate: true }\n');
    expect(parseConditions('silent:SIM', mixed)).toHaveLength(1);
    expect(() => parseConditions('silent:REAL', mixed)).toThrow(/meter REAL is not simulated/);
  });

  it('formats conditions back into the same grammar', () => {
    const text = 'silent:ALM-DMA12-MON:5m@4m,leak:ALM-DMA12-MON=4.5@-2d,empty_pipe:ALM-PS7-DUT1:90s,low_battery:ALM-PS3-DUT2=12:2h';
    expect(formatConditions(parseConditions(text, pilot))).toBe(text);
    expect(parseConditions(formatConditions(demoConditions(pilot)), pilot)).toEqual(demoConditions(pilot));
  });
});

describe('demoConditions', () => {
  it('plays one gentle condition per meter of the example pilot, each alert within minutes', () => {
    expect(formatConditions(demoConditions(pilot))).toBe('leak:ALM-DMA12-MON,low_battery:ALM-PS3-DUT2,empty_pipe:ALM-PS7-DUT1@2m,silent:ALM-PS3-REF:6m@4m');
  });

  it('plays less on a pilot without the meters for it, and nothing on real meters', () => {
    const small = parsePilotConfig('pilot: { id: p, name: P, timezone: UTC }\nmeters:\n  - { id: MON, site: S, role: monitor, intervalSec: 60, simulate: true }\n  - { id: REAL, site: S, role: monitor, intervalSec: 60 }\n');
    expect(formatConditions(demoConditions(small))).toBe('leak:MON');
  });
});

describe('placeConditions', () => {
  it('places each condition from the start, open-ended ones until the end of time', () => {
    const start = Date.UTC(2026, 10, 25, 10, 0);
    expect(placeConditions(parseConditions('silent:ALM-DMA12-MON:5m@2m,leak:ALM-DMA12-MON', pilot), start)).toEqual([
      { kind: 'silent', meterId: 'ALM-DMA12-MON', fromMs: start + 2 * MIN, toMs: start + 7 * MIN, value: null },
      { kind: 'leak', meterId: 'ALM-DMA12-MON', fromMs: start - DAY, toMs: Infinity, value: null },
    ]);
  });
});
