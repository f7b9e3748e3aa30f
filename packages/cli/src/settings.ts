import { isAbsolute, resolve } from 'node:path';
import { FlowPilotError } from '@flowpilot/schema';

/** Settings from the environment (SPEC section 7), validated once and frozen (STYLE habit 3). */
export interface Settings {
  pilotFile: string;
  dataDir: string;
  listenHost: string;
  mqttPort: number;
  mqttUrl: string;
  httpPort: number;
  influxUrl: string | null;
  localInfluxPort: number;
  influxDatabase: string;
  influxUsername?: string;
  influxPassword?: string;
  influxToken?: string;
  mqttUsername?: string;
  mqttPassword?: string;
  storeMaxRecords: number;
  allowAnonymous: boolean;
  logLevel: string;
  /** Prometheus /metrics of a standalone broker (the standalone ingest uses the next port). */
  metricsPort: number;
  /** /readyz turns degraded when the oldest reading waiting for InfluxDB is older than this. */
  readyMaxLagSec: number;
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
  logLevel: 'info',
  metricsPort: 9464,
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
  const absolute = (path: string) => (isAbsolute(path) ? path : resolve(cwd, path));

  const mqttPort = port('FLOWPILOT_MQTT_PORT', DEFAULT_SETTINGS.mqttPort);
  const settings: Settings = {
    pilotFile: absolute(text('FLOWPILOT_PILOT') ?? DEFAULT_SETTINGS.pilotFile),
    dataDir: absolute(text('FLOWPILOT_DATA_DIR') ?? DEFAULT_SETTINGS.dataDir),
    listenHost: text('FLOWPILOT_LISTEN_HOST') ?? DEFAULT_SETTINGS.listenHost,
    mqttPort,
    mqttUrl: url('FLOWPILOT_MQTT_URL') ?? `mqtt://127.0.0.1:${mqttPort}`,
    httpPort: port('FLOWPILOT_HTTP_PORT', DEFAULT_SETTINGS.httpPort),
    influxUrl: url('FLOWPILOT_INFLUX_URL'),
    localInfluxPort: port('FLOWPILOT_LOCAL_INFLUX_PORT', DEFAULT_SETTINGS.localInfluxPort),
    influxDatabase: text('FLOWPILOT_INFLUX_DB') ?? DEFAULT_SETTINGS.influxDatabase,
    storeMaxRecords: positive('FLOWPILOT_STORE_MAX_RECORDS', DEFAULT_SETTINGS.storeMaxRecords),
    allowAnonymous: text('FLOWPILOT_ALLOW_ANONYMOUS') === '1',
    logLevel: text('FLOWPILOT_LOG_LEVEL') ?? DEFAULT_SETTINGS.logLevel,
    metricsPort: port('FLOWPILOT_METRICS_PORT', DEFAULT_SETTINGS.metricsPort),
    readyMaxLagSec: positive('FLOWPILOT_READY_MAX_LAG_SEC', DEFAULT_SETTINGS.readyMaxLagSec),
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
