import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { createApi, createMqttLiveFeed, createNotifier, openApiTokenStore, type DeadLetterAccess } from '@flowpilot/api';
import {
  createBroker,
  openClusterBackend,
  openCredentialsStore,
  openSessionPersistence,
  redactRedisUrl,
  type CredentialsStore,
  type FlowPilotBroker,
} from '@flowpilot/broker';
import { createInfluxClient, ensureInfluxdInstalled, startLocalInflux, type InfluxClient } from '@flowpilot/influx';
import { createIngest, type Ingest } from '@flowpilot/ingest';
import type { Registry } from 'prom-client';
import { createMeterRegistry, FlowPilotError, parsePilotConfig, type PilotConfig } from '@flowpilot/schema';
import { createSimulator, DEMO_FAULT_OPTIONS } from '@flowpilot/simulator';
import type { ConditionSpec } from '@flowpilot/simulator';
import { ensurePrivateDir, openDurableStore, type DurableStore } from '@flowpilot/store';
import { clientCertificatePaths } from './certificates.ts';
import { replayDeadLetters } from './replay-dead-letters.ts';
import { ingestMetricsEvents, registerBrokerMetrics, registerIngestMetrics, registerNotifierMetrics, registerStoreMetrics, serveMetrics, type ReadinessChecks } from './prometheus.ts';
import type { Stoppable } from './service-set.ts';
import type { MqttLogin } from './service-logins.ts';
import type { Settings } from './settings.ts';

/**
 * Wiring of each service from settings: the only place that turns the environment into
 * factories' arguments. Each `run…` starts one service and returns it with its `stop()`, for
 * the command's service set (service-set.ts) to record.
 */

export function loadPilot(path: string): PilotConfig {
  return loadPilotFile(path).pilot;
}

/**
 * The pilot file parsed, with the SHA-256 of the very bytes parsed: the PDF report prints it
 * (issue 11), so an evaluator can tell which pilot file the figures were computed with.
 */
export function loadPilotFile(path: string): { pilot: PilotConfig; sha256: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new FlowPilotError('ERR_PILOT_CONFIG', `cannot read the pilot file ${path}: set FLOWPILOT_PILOT to an existing pilot.yaml`);
  }
  return { pilot: parsePilotConfig(bytes.toString('utf8'), path), sha256: createHash('sha256').update(bytes).digest('hex') };
}

export function storePath(settings: Settings): string {
  return join(settings.dataDir, 'spool.sqlite');
}

export function openCredentials(settings: Settings): CredentialsStore {
  return openCredentialsStore(settings.credentialsFile);
}

/**
 * Where the services' own MQTT secrets live (service-logins.ts): beside the credentials file,
 * so the nodes of a cluster sharing one credentials file share these too, and one node does
 * not replace the `flowpilot-api` login another node's API uses. The data dir by default.
 */
export function serviceSecretsDir(settings: Settings): string {
  return dirname(settings.credentialsFile);
}

export function openStore(settings: Settings): DurableStore {
  // The data dir holds the spool, the dead letters and every credential: its owner's only (SPEC section 8).
  ensurePrivateDir(settings.dataDir, { tightenExisting: true });
  return openDurableStore({
    path: storePath(settings),
    maxRecords: settings.storeMaxRecords,
    meterShare: settings.storeMeterShare,
    deadLetterMaxPayloadBytes: settings.deadLetterMaxPayloadBytes,
    deadLettersPerMeterHour: settings.deadLettersPerMeterHour,
  });
}

/** An InfluxDB client: the configured one, or a local influxd started (and installed) here, which `stop()` stops. */
export async function connectInflux(settings: Settings, log: Logger): Promise<Stoppable & { influx: InfluxClient }> {
  const auth = {
    ...(settings.influxUsername !== undefined ? { username: settings.influxUsername } : {}),
    ...(settings.influxPassword !== undefined ? { password: settings.influxPassword } : {}),
    ...(settings.influxToken !== undefined ? { token: settings.influxToken } : {}),
  };
  if (settings.influxUrl) {
    return { influx: createInfluxClient({ url: settings.influxUrl, database: settings.influxDatabase, ...auth }), stop: () => {} };
  }
  await ensureInfluxdInstalled((message) => log.info(message));
  const local = await startLocalInflux({ dataDir: join(settings.dataDir, 'influxdb'), port: settings.localInfluxPort, log: (message) => log.debug(message) });
  log.info({ url: local.url }, 'local InfluxDB started');
  return {
    influx: createInfluxClient({ url: local.url, database: settings.influxDatabase, ...auth }),
    stop: () => local.stop(),
  };
}

export async function runBroker(
  settings: Settings,
  pilot: PilotConfig,
  store: DurableStore,
  credentials: CredentialsStore,
  log: Logger,
  metrics: Registry,
): Promise<Stoppable & { url: string; broker: FlowPilotBroker; readinessChecks: Record<string, () => { ok: boolean; reason?: string }> }> {
  // A node of a cluster (SPEC section 11) shares sessions, retained status, wills and forwarding
  // through Redis; its durable store, and so its PUBACKs (SPEC section 6), stay its own.
  let lastRedisErrorLogMs = 0;
  const cluster = settings.cluster
    ? openClusterBackend({
        ...settings.cluster,
        onRedisError(error) {
          // One line a minute: ioredis retries every few hundred ms while Redis is away.
          if (Date.now() - lastRedisErrorLogMs < 60_000) return;
          lastRedisErrorLogMs = Date.now();
          log.error({ err: error.message }, 'Redis (FLOWPILOT_CLUSTER_REDIS_URL) is unreachable: this node keeps accepting readings into its own store, but sessions, retained status and forwarding to the other nodes wait for it');
        },
      })
    : null;
  if (settings.cluster) log.info({ node: settings.cluster.nodeId, redis: redactRedisUrl(settings.cluster.redisUrl) }, 'broker node of a cluster');
  const broker = await createBroker({
    registry: createMeterRegistry(pilot),
    credentials,
    store,
    log: log.child({ service: 'broker' }),
    allowAnonymous: settings.allowAnonymous,
    maxPayloadBytes: settings.maxPayloadBytes,
    retentionMs: settings.retentionMs,
    limits: settings.brokerLimits,
    ...(cluster ? { cluster } : { persistence: openSessionPersistence(join(settings.dataDir, 'broker-sessions')) }),
  });
  registerBrokerMetrics(metrics, broker);
  registerStoreMetrics(metrics, store);
  const urls: string[] = [];
  try {
    if (settings.mqttPort !== null) {
      const address = await broker.listen(settings.mqttPort, settings.mqttHost);
      urls.push(`mqtt://${settings.mqttHost}:${address.port}`);
    }
    if (settings.mqttTls) {
      const tls = settings.mqttTls;
      const address = await broker.listenTls(settings.mqttsPort, settings.mqttHost, {
        cert: readSettingFile(tls.certFile, 'FLOWPILOT_MQTT_TLS_CERT'),
        key: readSettingFile(tls.keyFile, 'FLOWPILOT_MQTT_TLS_KEY'),
        ...(tls.caFile ? { ca: readSettingFile(tls.caFile, 'FLOWPILOT_MQTT_TLS_CA') } : {}),
      });
      urls.push(`mqtts://${settings.mqttHost}:${address.port}${tls.caFile ? ' (client certificates required)' : ''}`);
    }
  } catch (error) {
    await broker.close();
    throw error;
  }
  const url = urls.join(', ');
  log.info({ url }, 'MQTT broker listening');
  return { url, broker, readinessChecks: cluster ? { redis: () => cluster.readiness() } : {}, stop: () => broker.close() };
}

/** A certificate or key file named by a setting, with an error that names the setting. */
export function readSettingFile(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new FlowPilotError('ERR_CONFIG', `${setting}=${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): point it to an existing PEM file (flowpilot certs init makes them)`);
  }
}

export function runIngest(store: DurableStore, influx: InfluxClient, log: Logger, metrics: Registry): Stoppable & { ingest: Ingest } {
  const ingest = createIngest({ store, influx, log: log.child({ service: 'ingest' }), events: ingestMetricsEvents(metrics) });
  registerIngestMetrics(metrics, ingest);
  ingest.start();
  return { ingest, stop: () => ingest.stop() };
}

/** Prometheus /metrics on its own port (`setting` names it): a standalone broker's or ingest's. */
export async function runMetricsServer(metrics: Registry, port: number, host: string, setting: string, log: Logger, readinessChecks: ReadinessChecks = {}): Promise<Stoppable> {
  let server: Awaited<ReturnType<typeof serveMetrics>>;
  try {
    server = await serveMetrics(metrics, port, host, readinessChecks);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw error;
    throw new FlowPilotError('ERR_CONFIG', `${setting}=${port}: ${host}:${port} cannot be listened on (${code}): choose a free port`, { cause: error });
  }
  log.info({ url: `http://${host}:${port}/metrics` }, 'Prometheus metrics');
  return { stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** /readyz checks of the all-in-one process: the ingest reaches InfluxDB and the store does not lag. */
export function pipelineReadiness(store: DurableStore, ingest: Ingest, maxLagMs: number, clock: { now(): number } = Date) {
  return {
    store: () => {
      if (store.isFull()) return { ok: false, reason: 'the durable store is full: the broker refuses readings until InfluxDB catches up' };
      const oldest = store.depth().oldestReceivedAtMs;
      const lagMs = oldest === null ? 0 : clock.now() - oldest;
      return lagMs > maxLagMs
        ? { ok: false, reason: `the oldest accepted reading has waited ${Math.round(lagMs / 1000)} s for InfluxDB (threshold ${maxLagMs / 1000} s)` }
        : { ok: true };
    },
    ingest: () => {
      const stats = ingest.stats();
      return stats.influxAvailable ? { ok: true } : { ok: false, reason: `InfluxDB writes fail: ${stats.lastError ?? 'unknown error'}; readings wait in the durable store` };
    },
  };
}

export async function runApi(
  settings: Settings,
  pilot: PilotConfig,
  influx: InfluxClient,
  login: MqttLogin,
  log: Logger,
  extra: {
    metrics: Registry;
    readinessChecks?: Record<string, () => { ok: boolean; reason?: string }>;
    /**
     * The durable store of this host: /metrics' `rejected` per meter, the cache's log of what
     * the ingest wrote (instead of scanning InfluxDB; only while an ingest reads this store, so a
     * file left over without one changes nothing: reading-cache.ts), and the admin's dead letters.
     */
    store?: DurableStore;
    /** What the PDF report states about its origin: the pilot file's SHA-256 (loadPilotFile) and the software's commit. */
    provenance?: { pilotFileSha256: string; commit: string };
  },
): Promise<Stoppable & { url: string }> {
  const { store } = extra;
  const liveFeed = createMqttLiveFeed({
    mqttUrl: settings.mqttUrl,
    username: login.username,
    password: login.password,
    clientId: `${login.username}:${process.pid}`,
    ...withTls(serviceMqttTls(settings, login.username)),
    pilot,
    log: log.child({ service: 'api-live' }),
  });
  // Alerts are evaluated here and kept in the data dir; the pilot file's `notify:` says where they
  // go (SPEC section 9). The notifier's outbox is in the data dir too, so a notification survives
  // a restart.
  const notifier = createNotifier({
    notify: pilot.notify,
    pilot: { id: pilot.pilot.id, name: pilot.pilot.name, timezone: pilot.pilot.timezone, language: pilot.pilot.language },
    meters: pilot.meters,
    dataDir: settings.dataDir,
    log: log.child({ service: 'notify' }),
  });
  registerNotifierMetrics(extra.metrics, notifier);
  const app = await createApi({
    pilot,
    influx,
    liveFeed,
    alerts: {
      dataDir: settings.dataDir,
      sinks: [notifier],
      ...(store
        ? {
            storeLagMs: () => {
              const oldest = store.depth().oldestReceivedAtMs;
              return oldest === null ? 0 : Math.max(0, Date.now() - oldest);
            },
          }
        : {}),
    },
    // Per-request access logs (info) would bury the operator's messages: a dashboard polls. Errors still show.
    log: log.child({ service: 'api' }, { level: 'warn' }),
    metrics: extra.metrics,
    metricsWarmupDays: 30,
    tokens: openApiTokenStore(tokensPath(settings)),
    expensiveRatePerMinute: settings.httpExpensivePerMinute,
    maxLiveConnections: settings.httpMaxLiveConnections,
    requestTimeoutMs: settings.httpRequestTimeoutSec * 1000,
    ...(settings.httpTls
      ? { https: { cert: readSettingFile(settings.httpTls.certFile, 'FLOWPILOT_HTTP_TLS_CERT'), key: readSettingFile(settings.httpTls.keyFile, 'FLOWPILOT_HTTP_TLS_KEY') } }
      : {}),
    ...(extra.readinessChecks ? { readinessChecks: extra.readinessChecks } : {}),
    ...(extra.provenance ? { provenance: extra.provenance } : {}),
    ...(store
      ? {
          readingCache: { writtenDays: store },
          rejections: (fromMs: number, toMs: number) => store.rejectionCountsByMeter(fromMs, toMs),
          deadLetters: deadLetterAccess(store, pilot, settings),
        }
      : {}),
  });
  await app.listen({ port: settings.httpPort, host: settings.httpHost });
  const shownHost = settings.httpHost === '0.0.0.0' || settings.httpHost === '::' ? '127.0.0.1' : settings.httpHost;
  const url = `${settings.httpTls ? 'https' : 'http'}://${shownHost}:${settings.httpPort}`;
  log.info({ url }, 'API and dashboard listening');
  return {
    url,
    async stop() {
      await app.close();
      await liveFeed.close();
      await notifier.close();
    },
  };
}

/**
 * TLS for FlowPilot's own MQTT clients (the API's live feed, the simulator) when the broker
 * is reached over `mqtts://`: trust the site CA, and present `<dataDir>/tls/clients/<login>.crt`
 * when the broker asks for client certificates (`flowpilot certs meter <login>` makes it).
 */
export function serviceMqttTls(settings: Settings, loginName: string): { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  if (!settings.mqttUrl.startsWith('mqtts:')) return undefined;
  const caFile = settings.mqttTls?.caFile;
  const { certPath, keyPath } = clientCertificatePaths(join(settings.dataDir, 'tls'), loginName);
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = caFile ? { ca: readSettingFile(caFile, 'FLOWPILOT_MQTT_TLS_CA') } : {};
  if (existsSync(certPath) && existsSync(keyPath)) return { ...tls, cert: readFileSync(certPath), key: readFileSync(keyPath) };
  if (caFile) {
    throw new FlowPilotError('ERR_CONFIG', `the broker asks for client certificates and the ${loginName} service has none: run \`flowpilot certs meter ${loginName}\` and start again`);
  }
  return tls;
}

const withTls = (tls: ReturnType<typeof serviceMqttTls>) => (tls ? { tls } : {});

export function tokensPath(settings: Settings): string {
  return join(settings.dataDir, 'api-tokens.json');
}

/**
 * SPEC section 8: with no API token the API answers loopback clients only, and `start` and
 * `api` refuse to listen on a host other machines can reach.
 */
export function assertApiExposureAllowed(settings: Settings): void {
  const host = settings.httpHost.replace(/^\[(.*)\]$/, '$1');
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (loopback || openApiTokenStore(tokensPath(settings)).hasTokens()) return;
  throw new FlowPilotError(
    'ERR_CONFIG',
    `FLOWPILOT_HTTP_HOST=${settings.httpHost} lets other machines reach the API, and no API token exists: add one with \`flowpilot tokens add <name> --role admin\` (it is printed once), then start again`,
  );
}

/** The admin's dead letters over the API: the store's listing and `flowpilot deadletters replay`. */
function deadLetterAccess(store: DurableStore, pilot: PilotConfig, settings: Settings): DeadLetterAccess {
  return {
    list: ({ code, meterId, limit }) => store.listDeadLetters({ limit, ...(code ? { code } : {}), ...(meterId !== undefined ? { meterId } : {}) }),
    replay: (filter) =>
      replayDeadLetters(store, { registry: createMeterRegistry(pilot), nowMs: Date.now(), retentionMs: settings.retentionMs, maxPayloadBytes: settings.maxPayloadBytes }, { limit: 100_000, ...filter }),
  };
}

export interface SimulateFlags {
  speed: number;
  backfillMs: number;
  seed: number;
  /** The demo: modest dropouts, duplicates and outages, and worn mechanical meters, so the results have something to show. */
  faults: boolean;
  /** Conditions to play from the start (`--play`): a silent meter, an empty pipe, a leak, a low battery (issue 13). */
  play?: readonly ConditionSpec[];
}

/**
 * In the demo, mechanical meters under test read low, as worn ones do (under-registration grows
 * at low flow), so the results show a failing verdict beside the passing ones.
 */
const WORN_MECHANICAL_ERROR = { lowerPct: -6.5, upperPct: -2.6 };

function demoErrorModels(pilot: PilotConfig): Record<string, typeof WORN_MECHANICAL_ERROR> {
  return Object.fromEntries(pilot.meters.filter((m) => m.role === 'test' && m.technology === 'mechanical').map((m) => [m.id, WORN_MECHANICAL_ERROR]));
}

export async function runSimulator(settings: Settings, pilot: PilotConfig, login: MqttLogin, flags: SimulateFlags, log: Logger): Promise<Stoppable> {
  const simulator = createSimulator({
    pilot,
    mqttUrl: settings.mqttUrl,
    username: login.username,
    password: login.password,
    ...withTls(serviceMqttTls(settings, login.username)),
    seed: flags.seed,
    speed: flags.speed,
    backfillMs: flags.backfillMs,
    ...(flags.play ? { conditions: flags.play } : {}),
    ...(flags.faults ? { faults: DEMO_FAULT_OPTIONS, errorModelByMeter: demoErrorModels(pilot) } : {}),
    log: log.child({ service: 'simulator' }),
  });
  await simulator.start();
  return { stop: () => simulator.stop() };
}
