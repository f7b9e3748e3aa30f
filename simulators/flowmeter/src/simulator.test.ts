import { parsePilotConfig } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { createSimulator } from './simulator.ts';
import type { SimulatorLog } from './simulator.ts';

// SPEC section 3: "A meter is simulated only when it says `simulate: true`". Nothing here
// connects: a simulator with no meter to simulate never opens a socket.
const pilot = parsePilotConfig(`
pilot: { id: p, name: P, timezone: UTC }
meters:
  - { id: REAL, site: S, role: monitor, intervalSec: 60 }
  - { id: SIM-A, site: S, role: monitor, intervalSec: 60, simulate: true }
  - { id: OFF, site: S, role: monitor, intervalSec: 60, simulate: false }
  - { id: SIM-B, site: S, role: monitor, intervalSec: 60, simulate: true }
`);
const base = { mqttUrl: 'mqtt://127.0.0.1:9', username: 'simulator', password: 'unused' };

describe('createSimulator: which meters', () => {
  it('simulates only the meters that say simulate: true, in file order', () => {
    expect(createSimulator({ ...base, pilot }).meterIds()).toEqual(['SIM-A', 'SIM-B']);
    expect(createSimulator({ ...base, pilot, meters: ['SIM-B'] }).meterIds()).toEqual(['SIM-B']);
  });

  it('refuses to be asked for a real meter by name', () => {
    expect(() => createSimulator({ ...base, pilot, meters: ['SIM-A', 'REAL', 'OFF'] })).toThrow(/meters without simulate: true in the pilot file \(SPEC section 3\): REAL, OFF/);
  });

  it('with no meter to simulate, says so and starts nothing', async () => {
    const warnings: unknown[] = [];
    const log: SimulatorLog = { info() {}, warn: (msg) => warnings.push(msg), error() {} };
    const real = parsePilotConfig('pilot: { id: p, name: P, timezone: UTC }\nmeters:\n  - { id: REAL, site: S, role: monitor, intervalSec: 60 }\n');
    const simulator = createSimulator({ ...base, pilot: real, log });
    expect(simulator.meterIds()).toEqual([]);
    await simulator.start();
    expect(warnings).toEqual([expect.stringContaining('no meter in the pilot file says simulate: true')]);
    await simulator.stop();
    expect(simulator.stats()).toEqual({ published: 0, acked: 0, backfilled: 0 });
  });
});
