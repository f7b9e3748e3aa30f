import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_BROKER_LIMITS, DEFAULT_BROKER_OPTIONS, NODE_ID_PATTERN, type BrokerLimits } from '@flowpilot/broker';
import { FlowPilotError } from '@flowpilot/schema';

/** Settings from the environment (SPEC section 7), validated once and frozen (STYLE habit 3). */
export interface Settings {
  pilotFile: string;
  dataDir: string;
  /** The default of both listen hosts. */
  listenHost: string;
  mqttHost: string;
  httpHost: string;
  /** The plain MQTT listener's port; null when FLOWPILOT_MQTT_PORT=off. */
  mqttPort: number | null;
  /** The `mqtts` listener (SPEC section 8): on when a certificate and key are given. */
  mqttsPort: number;
  mqttTls: { certFile: string; keyFile: string; caFile?: string } | null;
  mqttUrl: string;
  httpPort: number;
  httpTls: { certFile: string; keyFile: string } | null;
  influxUrl: string | null;
  localInfluxPort: number;
  influxDatabase: string;
  influxUsername?: string;
  influxPassword?: string;
  influxToken?: string;
  mqttUsername?: string;
  mqttPassword?: string;
  storeMaxRecords: number;
  /** The share of the store one meter may hold (SPEC section 8). */
  storeMeterShare: number;
  /** A readings payload over this is a dead letter (ERR_PAYLOAD_TOO_LARGE). */
  maxPayloadBytes: number;
  deadLetterMaxPayloadBytes: number;
  deadLettersPerMeterHour: number;
  /** Readings older than this are refused (ERR_TS_TOO_OLD), by the broker and by a replay of dead letters alike. */
  retentionMs: number;
  brokerLimits: BrokerLimits;
  /** Expensive API requests (metrics, reports) per minute per token or address. */
  httpExpensivePerMinute: number;
  httpMaxLiveConnections: number;
  httpRequestTimeoutSec: number;
  allowAnonymous: boolean;
  logLevel: string;
  /** Prometheus /metrics of a standalone broker. */
  metricsPort: number;
  /** Prometheus /metrics of a standalone ingest (beside a standalone broker on the same host). */
  ingestMetricsPort: number;
  /** /readyz turns degraded when the oldest reading waiting for InfluxDB is older than this. */
  readyMaxLagSec: number;
  /**
   * The logins file (FLOWPILOT_CREDENTIALS_FILE, default `<dataDir>/credentials.json`). The
   * nodes of a cluster point it at one shared file, so every node accepts the same logins; the
   * services' own secrets (service-logins.json) sit beside it.
   */
  credentialsFile: string;
  /** A broker cluster (SPEC section 11): Redis, and this node's id; null for a single broker. */
  cluster: { redisUrl: string; nodeId: string } | null;
}

export const DEFAULT_SETTINGS = {
  pilotFile: 'examples/pilot.yaml',
  dataDir: '.flowpilot',
  listenHost: '127.0.0.1',
  mqttPort: 1883,
  httpPort: 8080,
  localInfluxPort: 8086,
  influxDatabase: 'flowpilot',
  storeMaxRecords: 5_000_000,
  storeMeterShare: 0.2,
  mqttsPort: 8883,
  maxPayloadBytes: DEFAULT_BROKER_OPTIONS.maxPayloadBytes,
  deadLetterMaxPayloadBytes: 64 * 1024,
  deadLettersPerMeterHour: 1000,
  retentionMs: DEFAULT_BROKER_OPTIONS.retentionMs,
  httpExpensivePerMinute: 30,
  httpMaxLiveConnections: 200,
  httpRequestTimeoutSec: 120,
  logLevel: 'info',
  metricsPort: 9464,
  ingestMetricsPort: 9465,
  readyMaxLagSec: 60,
} as const;

type Env = Record<string, string | undefined>;

export function loadSettings(env: Env = process.env, cwd = process.cwd()): Readonly<Settings> {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const port = (name: string, fallback: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      problems.push(`${name}="${raw}": expected a TCP port number (0-65535)`);
      return fallback;
    }
    return value;
  };
  const positive = (name: string, fallback: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) {
      problems.push(`${name}="${raw}": expected a positive whole number`);
      return fallback;
    }
    return value;
  };
  const url = (name: string): string | null => {
    const raw = text(name);
    if (raw === undefined) return null;
    try {
      new URL(raw);
      return raw.replace(/\/+$/, '');
    } catch {
      problems.push(`${name}="${raw}": expected a URL such as http://127.0.0.1:8086`);
      return null;
    }
  };
  const share = (name: string, fallback: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!(value > 0 && value <= 1)) {
      problems.push(`${name}="${raw}": expected a share between 0 and 1, such as 0.2`);
      return fallback;
    }
    return value;
  };
  const absolute = (path: string) => (isAbsolute(path) ? path : resolve(cwd, path));
  /** A certificate and key given together, or neither. */
  const certificatePair = (certName: string, keyName: string): { certFile: string; keyFile: string } | null => {
    const cert = text(certName);
    const key = text(keyName);
    if (cert === undefined && key === undefined) return null;
    if (cert === undefined || key === undefined) {
      problems.push(`${cert === undefined ? certName : keyName} is missing: set ${certName} and ${keyName} together (flowpilot certs init makes both)`);
      return null;
    }
    return { certFile: absolute(cert), keyFile: absolute(key) };
  };

  const plainMqttOff = text('FLOWPILOT_MQTT_PORT')?.toLowerCase() === 'off';
  const mqttPort = plainMqttOff ? null : port('FLOWPILOT_MQTT_PORT', DEFAULT_SETTINGS.mqttPort);
  const mqttsPort = port('FLOWPILOT_MQTTS_PORT', DEFAULT_SETTINGS.mqttsPort);
  const mqttPair = certificatePair('FLOWPILOT_MQTT_TLS_CERT', 'FLOWPILOT_MQTT_TLS_KEY');
  const mqttCa = text('FLOWPILOT_MQTT_TLS_CA');
  if (mqttCa !== undefined && !mqttPair) problems.push('FLOWPILOT_MQTT_TLS_CA is set without FLOWPILOT_MQTT_TLS_CERT and FLOWPILOT_MQTT_TLS_KEY: the mqtts listener needs its own certificate too');
  if (plainMqttOff && !mqttPair) problems.push('FLOWPILOT_MQTT_PORT=off leaves no MQTT listener: set FLOWPILOT_MQTT_TLS_CERT and FLOWPILOT_MQTT_TLS_KEY for the mqtts listener');
  const listenHost = text('FLOWPILOT_LISTEN_HOST') ?? DEFAULT_SETTINGS.listenHost;
  const limit = (name: string, key: keyof BrokerLimits, scale = 1) => positive(name, DEFAULT_BROKER_LIMITS[key] / scale) * scale;
  const dataDir = absolute(text('FLOWPILOT_DATA_DIR') ?? DEFAULT_SETTINGS.dataDir);
  const settings: Settings = {
    pilotFile: absolute(text('FLOWPILOT_PILOT') ?? DEFAULT_SETTINGS.pilotFile),
    dataDir,
    listenHost,
    mqttHost: text('FLOWPILOT_MQTT_HOST') ?? listenHost,
    httpHost: text('FLOWPILOT_HTTP_HOST') ?? listenHost,
    mqttPort,
    mqttsPort,
    mqttTls: mqttPair ? { ...mqttPair, ...(mqttCa !== undefined ? { caFile: absolute(mqttCa) } : {}) } : null,
    mqttUrl: url('FLOWPILOT_MQTT_URL') ?? (mqttPort === null ? `mqtts://127.0.0.1:${mqttsPort}` : `mqtt://127.0.0.1:${mqttPort}`),
    httpPort: port('FLOWPILOT_HTTP_PORT', DEFAULT_SETTINGS.httpPort),
    httpTls: certificatePair('FLOWPILOT_HTTP_TLS_CERT', 'FLOWPILOT_HTTP_TLS_KEY'),
    influxUrl: url('FLOWPILOT_INFLUX_URL'),
    localInfluxPort: port('FLOWPILOT_LOCAL_INFLUX_PORT', DEFAULT_SETTINGS.localInfluxPort),
    influxDatabase: text('FLOWPILOT_INFLUX_DB') ?? DEFAULT_SETTINGS.influxDatabase,
    storeMaxRecords: positive('FLOWPILOT_STORE_MAX_RECORDS', DEFAULT_SETTINGS.storeMaxRecords),
    storeMeterShare: share('FLOWPILOT_STORE_METER_SHARE', DEFAULT_SETTINGS.storeMeterShare),
    maxPayloadBytes: positive('FLOWPILOT_MAX_PAYLOAD_BYTES', DEFAULT_SETTINGS.maxPayloadBytes),
    deadLetterMaxPayloadBytes: positive('FLOWPILOT_DEADLETTER_MAX_PAYLOAD_BYTES', DEFAULT_SETTINGS.deadLetterMaxPayloadBytes),
    deadLettersPerMeterHour: positive('FLOWPILOT_DEADLETTERS_PER_METER_HOUR', DEFAULT_SETTINGS.deadLettersPerMeterHour),
    retentionMs: DEFAULT_SETTINGS.retentionMs,
    brokerLimits: {
      maxPacketBytes: limit('FLOWPILOT_MQTT_MAX_PACKET_BYTES', 'maxPacketBytes'),
      maxConnectBytes: limit('FLOWPILOT_MQTT_MAX_CONNECT_BYTES', 'maxConnectBytes'),
      connectTimeoutMs: limit('FLOWPILOT_MQTT_CONNECT_TIMEOUT_SEC', 'connectTimeoutMs', 1000),
      maxConnections: limit('FLOWPILOT_MQTT_MAX_CONNECTIONS', 'maxConnections'),
      connectionsPerSecPerAddress: limit('FLOWPILOT_MQTT_CONNECTIONS_PER_SEC', 'connectionsPerSecPerAddress'),
      publishesPerSec: limit('FLOWPILOT_MQTT_PUBLISH_RATE', 'publishesPerSec'),
      publishBytesPerSec: limit('FLOWPILOT_MQTT_PUBLISH_BYTES_RATE', 'publishBytesPerSec'),
      loginMaxFailures: limit('FLOWPILOT_LOGIN_MAX_FAILURES', 'loginMaxFailures'),
      loginBlockMs: limit('FLOWPILOT_LOGIN_BLOCK_SEC', 'loginBlockMs', 1000),
    },
    httpExpensivePerMinute: positive('FLOWPILOT_HTTP_RATE_LIMIT', DEFAULT_SETTINGS.httpExpensivePerMinute),
    httpMaxLiveConnections: positive('FLOWPILOT_HTTP_MAX_SSE', DEFAULT_SETTINGS.httpMaxLiveConnections),
    httpRequestTimeoutSec: positive('FLOWPILOT_HTTP_REQUEST_TIMEOUT_SEC', DEFAULT_SETTINGS.httpRequestTimeoutSec),
    allowAnonymous: text('FLOWPILOT_ALLOW_ANONYMOUS') === '1',
    logLevel: text('FLOWPILOT_LOG_LEVEL') ?? DEFAULT_SETTINGS.logLevel,
    metricsPort: port('FLOWPILOT_METRICS_PORT', DEFAULT_SETTINGS.metricsPort),
    ingestMetricsPort: port('FLOWPILOT_INGEST_METRICS_PORT', DEFAULT_SETTINGS.ingestMetricsPort),
    readyMaxLagSec: positive('FLOWPILOT_READY_MAX_LAG_SEC', DEFAULT_SETTINGS.readyMaxLagSec),
    credentialsFile: absolute(text('FLOWPILOT_CREDENTIALS_FILE') ?? resolve(dataDir, 'credentials.json')),
    cluster: clusterSettings(text('FLOWPILOT_CLUSTER_REDIS_URL'), text('FLOWPILOT_NODE_ID'), problems),
  };
  const optional = {
    influxUsername: text('FLOWPILOT_INFLUX_USER'),
    influxPassword: text('FLOWPILOT_INFLUX_PASSWORD'),
    influxToken: text('FLOWPILOT_INFLUX_TOKEN'),
    mqttUsername: text('FLOWPILOT_MQTT_USERNAME'),
    mqttPassword: text('FLOWPILOT_MQTT_PASSWORD'),
  };
  for (const [key, value] of Object.entries(optional)) if (value !== undefined) (settings as unknown as Record<string, string>)[key] = value;
  if (settings.influxUsername !== undefined && settings.influxPassword === undefined) {
    problems.push('FLOWPILOT_INFLUX_USER is set without FLOWPILOT_INFLUX_PASSWORD: set both, or neither');
  }
  if (problems.length > 0) {
    throw new FlowPilotError('ERR_CONFIG', `${problems.length} setting${problems.length === 1 ? ' is' : 's are'} invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  }
  return Object.freeze(settings);
}

/** FLOWPILOT_CLUSTER_REDIS_URL and FLOWPILOT_NODE_ID: both, or no cluster (a node id alone is harmless). */
function clusterSettings(redisUrl: string | undefined, nodeId: string | undefined, problems: string[]): Settings['cluster'] {
  if (redisUrl === undefined) return null;
  let valid = true;
  try {
    const url = new URL(redisUrl);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error('not redis');
  } catch {
    problems.push(`FLOWPILOT_CLUSTER_REDIS_URL="${redisUrl.replace(/\/\/[^@/]*@/, '//***@')}": expected a Redis URL such as redis://redis:6379 or redis://redis:6379/1`);
    valid = false;
  }
  if (nodeId === undefined) {
    problems.push('FLOWPILOT_NODE_ID is missing: each broker node of a cluster (FLOWPILOT_CLUSTER_REDIS_URL is set) needs its own name, such as FLOWPILOT_NODE_ID=node-1');
    return null;
  }
  if (!NODE_ID_PATTERN.test(nodeId)) {
    problems.push(`FLOWPILOT_NODE_ID="${nodeId}": expected 1 to 64 letters, digits, '_', '.' or '-' (no ':')`);
    return null;
  }
  return valid ? { redisUrl, nodeId } : null;
}
