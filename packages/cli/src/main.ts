import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { parseTimeParam, runTokensCommand } from '@flowpilot/api';
import { DEFAULT_BROKER_OPTIONS } from '@flowpilot/broker';
import { progressBar, writeReport } from '@flowpilot/report';
import { createMeterRegistry, FlowPilotError } from '@flowpilot/schema';
import { parseDuration } from '@flowpilot/simulator';
import { runCertsCommand } from './certificates.ts';
import { createLogger } from './logger.ts';
import {
  connectInflux,
  loadPilot,
  openCredentials,
  openStore,
  runApi,
  runBroker,
  runIngest,
  pipelineReadiness,
  assertApiExposureAllowed,
  tokensPath,
  runSimulator,
  stopAll,
  storePath,
  type Running,
} from './run-services.ts';
import { createMetricsRegistry, serveMetrics } from './prometheus.ts';
import { printable } from './printable.ts';
import { replayDeadLetters } from './replay-dead-letters.ts';
import { ensureServiceLogin, readServiceLogin, type MqttLogin } from './service-logins.ts';
import { loadSettings, type Settings } from './settings.ts';

const VERSION = '0.1.0';

const HELP = `flowpilot — telemetry pipeline for flowmeter demonstration pilots

Usage: flowpilot <command> [options]

  start [--no-simulator] [--no-backfill]   the whole pilot demo: local InfluxDB (unless
                                           FLOWPILOT_INFLUX_URL is set), broker, ingest, API
                                           with dashboard, simulated meters with 14 days of history
  broker [--no-ingest]                     the MQTT broker with its durable store (and the ingest)
  ingest                                   the ingest alone (durable store → InfluxDB)
  api                                      the HTTP API and dashboard
  simulate [--speed N] [--backfill 14d] [--seed S]
                                           simulated meters of the pilot file
  credentials add <id> [--password P] [--role meter|service]
                                           create or replace a login (prints a generated password once)
  credentials list                         the logins (never their passwords)
  deadletters list [--code C] [--limit N]  rejected messages, with their reasons
  deadletters replay [--code C] [--meter M] validate dead letters again (after fixing the pilot
                                           file) and send the ones that pass to InfluxDB
  report --from T --to T --format pdf|csv --out FILE [--lang en|ru] [--api URL]
                                           the evaluator's report from a running API, with a progress bar
  tokens add <name> --role viewer|evaluator|admin
                                           an API token (printed once, stored hashed); with one,
                                           every API route but /healthz and /readyz needs a token
  tokens list [--json] | tokens revoke <name>
  certs init [--host H ...] [--days N]     a site CA and the server certificate for mqtts and HTTPS
  certs meter <id ...> | certs meters --all a client certificate per meter (CN = meter id, no password)
  certs list                               the certificates in the data dir and when they expire
  check [pilot.yaml]                       validate a pilot file

Settings come from the environment: FLOWPILOT_PILOT, FLOWPILOT_DATA_DIR, FLOWPILOT_MQTT_PORT,
FLOWPILOT_MQTT_URL, FLOWPILOT_HTTP_PORT, FLOWPILOT_LISTEN_HOST, FLOWPILOT_INFLUX_URL,
FLOWPILOT_INFLUX_DB, FLOWPILOT_INFLUX_USER, FLOWPILOT_INFLUX_PASSWORD, FLOWPILOT_INFLUX_TOKEN
(see README.md).`;

/** Runs until SIGINT/SIGTERM, then stops every service (a second Ctrl-C forces the exit). */
function stopOnSignal(running: Running[], log: Logger): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) {
      log.warn('forced exit');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    void stopAll(running, log).then(() => {
      log.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function serviceLogin(settings: Settings, name: string): MqttLogin {
  if (settings.mqttUsername !== undefined && settings.mqttPassword !== undefined) {
    return { username: settings.mqttUsername, password: settings.mqttPassword };
  }
  const login = readServiceLogin(settings.dataDir, name);
  if (!login) {
    throw new FlowPilotError(
      'ERR_CONFIG',
      `no MQTT login for the ${name} service: set FLOWPILOT_MQTT_USERNAME and FLOWPILOT_MQTT_PASSWORD, or start \`flowpilot broker\` once with the same FLOWPILOT_DATA_DIR`,
    );
  }
  return login;
}

async function start(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { 'no-simulator': { type: 'boolean' }, 'no-backfill': { type: 'boolean' } } });
  const settings = loadSettings();
  assertApiExposureAllowed(settings);
  const log = createLogger(settings.logLevel);
  const pilot = loadPilot(settings.pilotFile);
  const running: Running[] = [];
  stopOnSignal(running, log);
  try {
    const { influx, running: localInflux } = await connectInflux(settings, log);
    if (localInflux) running.push(localInflux);
    const store = openStore(settings);
    running.push({ name: 'store', stop: async () => store.close() });
    const credentials = openCredentials(settings);
    const metrics = createMetricsRegistry();
    const broker = await runBroker(settings, pilot, store, credentials, log, metrics);
    running.push(broker);
    const ingest = runIngest(store, influx, log, metrics);
    running.push(ingest);
    const api = await runApi(settings, pilot, influx, await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-api'), log, {
      metrics,
      readinessChecks: pipelineReadiness(store, ingest.ingest, settings.readyMaxLagSec * 1000),
      store,
    });
    running.push(api);
    console.log(`\n  FlowPilot is running: pilot "${pilot.pilot.name}", ${pilot.meters.length} meters`);
    console.log(`  Dashboard and API  ${api.url}/   (OpenAPI: ${api.url}/docs)`);
    console.log(`  MQTT broker        ${broker.url}`);
    console.log(`  Prometheus         ${api.url}/metrics`);
    console.log(`  InfluxDB           ${influx.config.url} (database ${influx.config.database})`);
    console.log('  Press Ctrl-C to stop.\n');
    if (!values['no-simulator']) {
      const login = await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-simulator');
      running.push(await runSimulator(settings, pilot, login, { speed: 1, seed: 1, faults: true, backfillMs: values['no-backfill'] ? 0 : parseDuration('14d') }, log));
    }
  } catch (error) {
    await stopAll(running, log);
    throw error;
  }
}

async function broker(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { 'no-ingest': { type: 'boolean' } } });
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  const pilot = loadPilot(settings.pilotFile);
  const running: Running[] = [];
  stopOnSignal(running, log);
  const store = openStore(settings);
  running.push({ name: 'store', stop: async () => store.close() });
  const credentials = openCredentials(settings);
  // The api and the simulator on this host find their logins in the data dir.
  await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-api');
  await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-simulator');
  const metrics = createMetricsRegistry();
  if (!values['no-ingest']) {
    const { influx, running: localInflux } = await connectInflux(settings, log);
    if (localInflux) running.unshift(localInflux);
    running.push(runIngest(store, influx, log, metrics));
  }
  running.push(await runBroker(settings, pilot, store, credentials, log, metrics));
  running.push(await runMetricsServer(metrics, settings.metricsPort, settings.listenHost, log));
}

async function runMetricsServer(metrics: ReturnType<typeof createMetricsRegistry>, port: number, host: string, log: Logger): Promise<Running> {
  const server = await serveMetrics(metrics, port, host);
  log.info({ url: `http://${host}:${port}/metrics` }, 'Prometheus metrics');
  return { name: 'metrics', stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function ingest(): Promise<void> {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  const running: Running[] = [];
  stopOnSignal(running, log);
  const { influx, running: localInflux } = await connectInflux(settings, log);
  if (localInflux) running.push(localInflux);
  const store = openStore(settings);
  running.push({ name: 'store', stop: async () => store.close() });
  const metrics = createMetricsRegistry();
  running.push(runIngest(store, influx, log, metrics));
  // Beside a standalone broker on the same host: the next port.
  running.push(await runMetricsServer(metrics, settings.metricsPort + 1, settings.listenHost, log));
}

async function api(): Promise<void> {
  const settings = loadSettings();
  assertApiExposureAllowed(settings);
  const log = createLogger(settings.logLevel);
  const pilot = loadPilot(settings.pilotFile);
  const running: Running[] = [];
  stopOnSignal(running, log);
  if (!settings.influxUrl) throw new FlowPilotError('ERR_CONFIG', 'flowpilot api needs FLOWPILOT_INFLUX_URL (the InfluxDB that the ingest writes to)');
  const { influx } = await connectInflux(settings, log);
  // On the broker's host the dead letters are in the data dir: /metrics reports them per meter.
  const store = existsSync(storePath(settings)) ? openStore(settings) : null;
  if (store) running.push({ name: 'store', stop: async () => store.close() });
  running.push(
    await runApi(settings, pilot, influx, serviceLogin(settings, 'flowpilot-api'), log, { metrics: createMetricsRegistry(), ...(store ? { store } : {}) }),
  );
}

async function simulate(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { speed: { type: 'string' }, backfill: { type: 'string' }, seed: { type: 'string' } } });
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  const pilot = loadPilot(settings.pilotFile);
  const speed = Number(values.speed ?? '1');
  const seed = Number(values.seed ?? '1');
  if (!(speed >= 1)) throw new FlowPilotError('ERR_CONFIG', `--speed ${values.speed}: expected a number ≥ 1`);
  if (!Number.isInteger(seed)) throw new FlowPilotError('ERR_CONFIG', `--seed ${values.seed}: expected a whole number`);
  const running: Running[] = [];
  stopOnSignal(running, log);
  const flags = { speed, seed, faults: true, backfillMs: values.backfill ? parseDuration(values.backfill) : 0 };
  running.push(await runSimulator(settings, pilot, serviceLogin(settings, 'flowpilot-simulator'), flags, log));
}

async function credentials(args: string[]): Promise<void> {
  const [action, id, ...rest] = args;
  const settings = loadSettings();
  const store = openCredentials(settings);
  if (action === 'list') {
    for (const login of store.list()) console.log(`${login.id}\t${login.role}`);
    return;
  }
  if (action !== 'add' || !id) throw new FlowPilotError('ERR_CONFIG', 'usage: flowpilot credentials add <id> [--password P] [--role meter|service]');
  const { values } = parseArgs({ args: rest, options: { password: { type: 'string' }, role: { type: 'string', default: 'meter' } } });
  if (values.role !== 'meter' && values.role !== 'service') throw new FlowPilotError('ERR_CONFIG', `--role ${values.role}: expected meter or service`);
  const password = await store.add(id, values.role, values.password);
  if (values.password === undefined) {
    console.log(`Created ${values.role} login "${id}". Its password, shown only this once:\n\n  ${password}\n`);
  } else {
    console.log(`Created ${values.role} login "${id}".`);
  }
}

async function deadletters(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action === 'replay') return replay(rest);
  if (action !== 'list') throw new FlowPilotError('ERR_CONFIG', 'usage: flowpilot deadletters list|replay [--code C] [--meter M] [--limit N]');
  const { values } = parseArgs({ args: rest, options: { code: { type: 'string' }, limit: { type: 'string', default: '50' } } });
  const store = openStore(loadSettings());
  try {
    const counts = store.rejectionCounts();
    console.log(Object.keys(counts).length === 0 ? 'No dead letters.' : `Rejected, by reason: ${JSON.stringify(counts)}`);
    for (const letter of store.listDeadLetters({ limit: Number(values.limit), ...(values.code ? { code: values.code } : {}) })) {
      // A payload is whatever a client sent: escaped, so it cannot drive this terminal (SPEC section 8).
      const size = letter.truncated ? ` (${letter.payloadBytes} bytes received, the first ${Buffer.byteLength(letter.payload)} kept)` : '';
      console.log(`#${letter.id} ${new Date(letter.receivedAtMs).toISOString()} ${printable(letter.topic, 200)} ${letter.code}${size}\n    ${printable(letter.reason, 500)}\n    ${printable(letter.payload, 300)}`);
    }
  } finally {
    store.close();
  }
}

async function replay(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { code: { type: 'string' }, meter: { type: 'string' }, limit: { type: 'string', default: '100000' } } });
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  const store = openStore(settings);
  try {
    const outcome = await replayDeadLetters(
      store,
      { registry: createMeterRegistry(pilot), nowMs: Date.now(), retentionMs: DEFAULT_BROKER_OPTIONS.retentionMs, maxPayloadBytes: settings.maxPayloadBytes },
      { limit: Number(values.limit), ...(values.code ? { code: values.code } : {}), ...(values.meter ? { meterId: values.meter } : {}) },
    );
    console.log(`Replayed ${outcome.replayed} dead letters (${outcome.records} records now wait for InfluxDB in the durable store).`);
    if (outcome.truncated > 0) console.log(`${outcome.truncated} dead letters were kept only in part (over FLOWPILOT_DEADLETTER_MAX_PAYLOAD_BYTES) and cannot be replayed.`);
    if (outcome.refusedByStore > 0) console.log(`${outcome.refusedByStore} dead letters wait: the durable store refuses their meter now (full, or the meter at its share); replay them later.`);
    if (Object.keys(outcome.stillRejected).length > 0) {
      console.log(`Still rejected, by reason: ${JSON.stringify(outcome.stillRejected)} (flowpilot deadletters list --code … says why).`);
    }
  } finally {
    store.close();
  }
}

/** ISO 8601 with an offset, or epoch milliseconds: the API's own rule for times (SPEC section 5). */
function parseTime(flag: string, value: string | undefined): number {
  const ms = value === undefined ? null : parseTimeParam(value);
  if (ms === null) throw new FlowPilotError('ERR_CONFIG', `--${flag} ${value ?? ''}: expected an ISO 8601 time such as 2026-11-01T00:00:00+05:00, or epoch milliseconds`);
  return ms;
}

async function report(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { from: { type: 'string' }, to: { type: 'string' }, format: { type: 'string', default: 'pdf' }, out: { type: 'string' }, lang: { type: 'string', default: 'en' }, api: { type: 'string' } },
  });
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  const fromMs = parseTime('from', values.from);
  const toMs = parseTime('to', values.to);
  if (values.format !== 'pdf' && values.format !== 'csv') throw new FlowPilotError('ERR_CONFIG', `--format ${values.format}: expected pdf or csv`);
  if (!values.out) throw new FlowPilotError('ERR_CONFIG', 'usage: flowpilot report --from T --to T --format pdf|csv --out FILE [--lang en|ru] [--api URL]');
  const api = (values.api ?? `http://127.0.0.1:${settings.httpPort}`).replace(/\/+$/, '');
  const get = async (path: string, window: { fromMs: number; toMs: number }, as: 'json' | 'text') => {
    let response: Response;
    try {
      response = await fetch(`${api}${path}?from=${window.fromMs}&to=${window.toMs}`);
    } catch {
      throw new FlowPilotError('ERR_CONFIG', `the FlowPilot API at ${api} is not reachable: start FlowPilot (npm start) or pass --api URL`);
    }
    if (!response.ok) throw new FlowPilotError('ERR_CONFIG', `GET ${path} answered ${response.status}: ${await response.text()}`);
    return as === 'json' ? response.json() : response.text();
  };
  const { out, bytes } = await writeReport({
    pilot: { ...pilot.pilot, meters: pilot.meters },
    fetchMetrics: (window) => get('/api/v1/metrics', window, 'json'),
    fetchErrorCurve: (id, window) => get(`/api/v1/meters/${encodeURIComponent(id)}/error-curve`, window, 'json'),
    fetchMetricsCsv: async (window) => (await get('/api/v1/reports/metrics.csv', window, 'text')) as string,
    fromMs,
    toMs,
    format: values.format,
    out: values.out,
    lang: values.lang,
    softwareVersion: VERSION,
    dataSource: `FlowPilot API ${api}`,
    onProgress: (progress) => {
      if (process.stderr.isTTY) process.stderr.write(`\r${progressBar(progress)}`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(`Wrote ${out} (${bytes} bytes).`);
}

async function tokens(args: string[]): Promise<void> {
  await runTokensCommand(args, tokensPath(loadSettings()), (line) => console.log(line));
}

async function certs(args: string[]): Promise<void> {
  const settings = loadSettings();
  // Only `meters --all` needs the pilot file: `init` works before there is a valid one.
  const pilotMeterIds = args[0] === 'meters' && args.includes('--all') ? loadPilot(settings.pilotFile).meters.map((m) => m.id) : [];
  await runCertsCommand(args, { defaultDir: join(settings.dataDir, 'tls'), pilotMeterIds, print: (line) => console.log(line) });
}

function check(args: string[]): void {
  const path = args[0] ?? loadSettings().pilotFile;
  const pilot = loadPilot(path);
  const roles = pilot.meters.reduce<Record<string, number>>((acc, m) => ({ ...acc, [m.role]: (acc[m.role] ?? 0) + 1 }), {});
  console.log(`${path} is valid: pilot "${pilot.pilot.id}", ${pilot.meters.length} meters (${Object.entries(roles).map(([r, n]) => `${n} ${r}`).join(', ')}).`);
}

const COMMANDS: Record<string, (args: string[]) => Promise<void> | void> = {
  start,
  broker,
  ingest,
  api,
  simulate,
  credentials,
  deadletters,
  report,
  tokens,
  certs,
  check,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return;
  }
  const run = COMMANDS[command];
  if (!run) throw new FlowPilotError('ERR_CONFIG', `unknown command "${command}"; run \`flowpilot help\``);
  await run(args);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof FlowPilotError) console.error(`flowpilot: ${error.message}`);
  else console.error(error);
  process.exit(1);
});
