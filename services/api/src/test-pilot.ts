import type { InfluxClient } from '@flowpilot/influx';
import { parsePilotConfig } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';

/** A small pilot for the API's tests: a reference and its meter under test, and a monitor. */
export function testPilot(): PilotConfig {
  return parsePilotConfig(
    JSON.stringify({
      pilot: { id: 'test-pilot', name: 'Test pilot', timezone: 'Asia/Almaty', nightWindow: { start: '02:00', end: '04:00' } },
      meters: [
        { id: 'T-REF', label: 'Reference', site: 'S1', role: 'reference', intervalSec: 60 },
        { id: 'T-DUT', label: 'Meter under test', site: 'S1', role: 'test', reference: 'T-REF', q3: 100, r: 160, accuracyClass: 2, intervalSec: 60 },
        { id: 'T-MON', site: 'S2', role: 'monitor', intervalSec: 300 },
      ],
    }),
    'test pilot',
  );
}

/**
 * An InfluxDB client for the API's tests that read no data (access, sign-in, heartbeat): it
 * answers a ping and an empty result to every query. Tests that read data use a real influxd.
 */
export const idleInflux: InfluxClient = {
  config: { url: 'http://influx.invalid', database: 'test' },
  ping: async () => ({ version: 'fake' }),
  ensureDatabase: async () => {},
  write: async () => {},
  query: async () => [],
};
