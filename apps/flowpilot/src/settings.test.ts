import { DEFAULT_BROKER_OPTIONS } from '@flowpilot/broker';
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

  it('gives the standalone ingest its own metrics port, and replays dead letters with the broker\'s retention', () => {
    expect(loadSettings({}, '/x')).toMatchObject({ metricsPort: 9464, ingestMetricsPort: 9465, retentionMs: DEFAULT_BROKER_OPTIONS.retentionMs });
    expect(loadSettings({ FLOWPILOT_METRICS_PORT: '9600', FLOWPILOT_INGEST_METRICS_PORT: '9700' }, '/x')).toMatchObject({ metricsPort: 9600, ingestMetricsPort: 9700 });
    expect(() => loadSettings({ FLOWPILOT_INGEST_METRICS_PORT: 'next' }, '/x')).toThrow(/FLOWPILOT_INGEST_METRICS_PORT="next": expected a TCP port number/);
  });

  it('derives the MQTT URL from the port and trims a trailing slash of the InfluxDB URL', () => {
    const settings = loadSettings({ FLOWPILOT_MQTT_PORT: '1999', FLOWPILOT_INFLUX_URL: 'http://db:8086/' }, '/x');
    expect(settings.mqttUrl).toBe('mqtt://127.0.0.1:1999');
    expect(settings.influxUrl).toBe('http://db:8086');
  });
});

describe('security settings (SPEC section 8)', () => {
  it('listens on loopback by default, with each host following FLOWPILOT_LISTEN_HOST unless set', () => {
    expect(loadSettings({}, '/x')).toMatchObject({ mqttHost: '127.0.0.1', httpHost: '127.0.0.1', mqttTls: null, httpTls: null });
    expect(loadSettings({ FLOWPILOT_LISTEN_HOST: '0.0.0.0', FLOWPILOT_HTTP_HOST: '127.0.0.1' }, '/x')).toMatchObject({ mqttHost: '0.0.0.0', httpHost: '127.0.0.1' });
  });

  it('turns the plain MQTT listener off only with a TLS listener to take its place', () => {
    expect(() => loadSettings({ FLOWPILOT_MQTT_PORT: 'off' }, '/x')).toThrow(/FLOWPILOT_MQTT_PORT=off leaves no MQTT listener/);
    const settings = loadSettings({ FLOWPILOT_MQTT_PORT: 'off', FLOWPILOT_MQTT_TLS_CERT: 'tls/server.crt', FLOWPILOT_MQTT_TLS_KEY: 'tls/server.key', FLOWPILOT_MQTT_TLS_CA: 'tls/ca.crt' }, '/x');
    expect(settings).toMatchObject({ mqttPort: null, mqttsPort: 8883, mqttUrl: 'mqtts://127.0.0.1:8883', mqttTls: { certFile: '/x/tls/server.crt', keyFile: '/x/tls/server.key', caFile: '/x/tls/ca.crt' } });
  });

  it('wants a certificate and its key together', () => {
    expect(() => loadSettings({ FLOWPILOT_HTTP_TLS_CERT: 'a.crt' }, '/x')).toThrow(/FLOWPILOT_HTTP_TLS_KEY is missing/);
    expect(() => loadSettings({ FLOWPILOT_MQTT_TLS_CA: 'ca.crt' }, '/x')).toThrow(/FLOWPILOT_MQTT_TLS_CA is set without/);
  });

  it('reads every limit, in the units its name says, and names a bad one', () => {
    const settings = loadSettings({ FLOWPILOT_MQTT_MAX_PACKET_BYTES: '65536', FLOWPILOT_LOGIN_BLOCK_SEC: '60', FLOWPILOT_MQTT_CONNECT_TIMEOUT_SEC: '5', FLOWPILOT_STORE_METER_SHARE: '0.5' }, '/x');
    expect(settings.brokerLimits).toMatchObject({ maxPacketBytes: 65536, loginBlockMs: 60_000, connectTimeoutMs: 5_000, maxConnectBytes: 8192, publishesPerSec: 50 });
    expect(settings.storeMeterShare).toBe(0.5);
    expect(() => loadSettings({ FLOWPILOT_STORE_METER_SHARE: '2', FLOWPILOT_MQTT_PUBLISH_RATE: '-1' }, '/x')).toThrow(/2 settings are invalid:[\s\S]*FLOWPILOT_MQTT_PUBLISH_RATE[\s\S]*FLOWPILOT_STORE_METER_SHARE|2 settings are invalid:[\s\S]*FLOWPILOT_STORE_METER_SHARE[\s\S]*FLOWPILOT_MQTT_PUBLISH_RATE/);
  });

  describe('a broker cluster (SPEC section 11)', () => {
    it('is off unless FLOWPILOT_CLUSTER_REDIS_URL is set; the credentials file defaults to the data dir', () => {
      expect(loadSettings({ FLOWPILOT_NODE_ID: 'n1' }, '/x')).toMatchObject({ cluster: null, credentialsFile: '/x/.flowpilot/credentials.json' });
    });

    it('takes the Redis URL and the node id, and a shared credentials file', () => {
      const settings = loadSettings({ FLOWPILOT_CLUSTER_REDIS_URL: 'redis://redis:6379/2', FLOWPILOT_NODE_ID: 'node-1.a_B', FLOWPILOT_CREDENTIALS_FILE: 'shared/credentials.json' }, '/x');
      expect(settings).toMatchObject({ cluster: { redisUrl: 'redis://redis:6379/2', nodeId: 'node-1.a_B' }, credentialsFile: '/x/shared/credentials.json' });
    });

    it('needs a node id with the Redis URL, naming FLOWPILOT_NODE_ID', () => {
      expect(() => loadSettings({ FLOWPILOT_CLUSTER_REDIS_URL: 'redis://redis:6379' }, '/x')).toThrow(/FLOWPILOT_NODE_ID is missing/);
    });

    it('refuses a node id outside [A-Za-z0-9_.-]{1,64} and a URL that is not redis://, at once', () => {
      const attempt = () => loadSettings({ FLOWPILOT_CLUSTER_REDIS_URL: 'http://user:secret@redis:6379', FLOWPILOT_NODE_ID: 'a:b' }, '/x');
      expect(attempt).toThrow(/2 settings are invalid:\n {2}- FLOWPILOT_CLUSTER_REDIS_URL=.*expected a Redis URL.*\n {2}- FLOWPILOT_NODE_ID="a:b"/);
      expect(attempt).not.toThrow(/secret/);
      expect(() => loadSettings({ FLOWPILOT_CLUSTER_REDIS_URL: 'redis://r', FLOWPILOT_NODE_ID: 'x'.repeat(65) }, '/x')).toThrow(/FLOWPILOT_NODE_ID=.*expected 1 to 64/);
      expect(loadSettings({ FLOWPILOT_CLUSTER_REDIS_URL: 'rediss://r:6380', FLOWPILOT_NODE_ID: 'x'.repeat(64) }, '/x').cluster?.nodeId).toHaveLength(64);
    });
  });
});
