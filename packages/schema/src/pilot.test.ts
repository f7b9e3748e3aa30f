import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FlowPilotError } from './errors.ts';
import { createMeterRegistry, isSimulated, parsePilotConfig, simulatedMeters } from './pilot.ts';

const example = readFileSync(new URL('../../../examples/pilot.yaml', import.meta.url), 'utf8');

function problems(text: string): string {
  try {
    parsePilotConfig(text, 'pilot.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(FlowPilotError);
    expect((error as FlowPilotError).code).toBe('ERR_PILOT_CONFIG');
    return (error as Error).message;
  }
  throw new Error('expected the pilot file to be rejected');
}

describe('parsePilotConfig', () => {
  it('accepts the example pilot: 2+ sites, 3 reference/test pairs, a monitor', () => {
    const pilot = parsePilotConfig(example);
    expect(pilot.pilot.timezone).toBe('Asia/Almaty');
    expect(new Set(pilot.meters.map((m) => m.site)).size).toBeGreaterThanOrEqual(2);
    expect(pilot.meters.filter((m) => m.role === 'test').map((m) => m.reference)).toHaveLength(3);
    expect(pilot.meters.some((m) => m.role === 'monitor')).toBe(true);
    expect(Object.isFrozen(pilot.meters[0])).toBe(true);
  });

  it('names all 3 mistakes of a bad file in one error', () => {
    const bad = example
      .replace('timezone: Asia/Almaty', 'timezone: Asia/Atlantis')
      .replace('reference: ALM-PS7-REF', 'reference: ALM-PS9-REF')
      .replace(/intervalSec: 60\n {4}simulate: true\n {2}- id: ALM-DMA12-MON/, 'intervalSec: -5\n    simulate: true\n  - id: ALM-DMA12-MON');
    const message = problems(bad);
    expect(message).toMatch(/has 3 problems/);
    expect(message).toContain('pilot.timezone: must be an IANA time zone');
    expect(message).toContain('meters[5].reference: no meter "ALM-PS9-REF" in this file');
    expect(message).toContain('meters[5].intervalSec: must be greater than 0');
  });

  it('requires the accuracy fields of a test meter and a reference of role reference', () => {
    const message = problems(`
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60 }
  - { id: B, site: S, role: test, reference: A, intervalSec: 60 }
  - { id: B, site: S, role: reference, intervalSec: 60 }
`);
    expect(message).toContain('meters[1].reference: "A" has role monitor, expected reference');
    expect(message).toContain('meters[1].q3: required for a test meter');
    expect(message).toContain('meters[2].id: "B" is listed twice');
  });

  it('says when the file is not YAML', () => {
    expect(problems('pilot: [unclosed')).toMatch(/not valid YAML or JSON/);
  });

  it('simulates a meter only when it says simulate: true (SPEC section 3); the example pilot does for all', () => {
    expect(simulatedMeters(parsePilotConfig(example))).toHaveLength(7);
    const pilot = parsePilotConfig(`
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: REAL, site: S, role: monitor, intervalSec: 60 }
  - { id: OFF, site: S, role: monitor, intervalSec: 60, simulate: false }
  - { id: SIM, site: S, role: monitor, intervalSec: 60, simulate: true }
`);
    expect(pilot.meters.map(isSimulated)).toEqual([false, false, true]);
    expect(simulatedMeters(pilot).map((m) => m.id)).toEqual(['SIM']);
    expect(problems(`
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60, simulate: "yes" }
`)).toContain('meters[0].simulate: must be true or false');
  });

  it('indexes meters by id', () => {
    const registry = createMeterRegistry(parsePilotConfig(example));
    expect(registry.has('ALM-PS3-DUT1')).toBe(true);
    expect(registry.has('nope')).toBe(false);
    expect(registry.get('ALM-PS7-REF')?.site).toBe('PS7');
  });
});
