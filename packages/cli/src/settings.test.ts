import { describe, expect, it } from 'vitest';
import { loadSettings } from './settings.ts';

describe('loadSettings', () => {
  it('applies the SPEC section 7 defaults', () => {
    const settings = loadSettings({}, '/srv/pilot');
    expect(settings).toMatchObject({
      pilotFile: '/srv/pilot/examples/pilot.yaml',
      dataDir: '/srv/pilot/.flowpilot',
      mqttPort: 1883,
      mqttUrl: 'mqtt://127.0.0.1:1883',
      httpPort: 8080,
      influxUrl: null,
      influxDatabase: 'flowpilot',
    });
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it('reports every bad variable at once, by name', () => {
    expect(() => loadSettings({ FLOWPILOT_MQTT_PORT: 'abc', FLOWPILOT_INFLUX_URL: 'not a url', FLOWPILOT_INFLUX_USER: 'u' }, '/x')).toThrow(
      /3 settings are invalid:\n {2}- FLOWPILOT_MQTT_PORT="abc".*\n {2}- FLOWPILOT_INFLUX_URL="not a url".*\n {2}- FLOWPILOT_INFLUX_USER is set without FLOWPILOT_INFLUX_PASSWORD/,
    );
  });

  it('derives the MQTT URL from the port and trims a trailing slash of the InfluxDB URL', () => {
    const settings = loadSettings({ FLOWPILOT_MQTT_PORT: '1999', FLOWPILOT_INFLUX_URL: 'http://db:8086/' }, '/x');
    expect(settings.mqttUrl).toBe('mqtt://127.0.0.1:1999');
    expect(settings.influxUrl).toBe('http://db:8086');
  });
});
