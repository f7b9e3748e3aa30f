import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { tokensAdd, tokensList, tokensRevoke } from '@flowpilot/api';
import { parseWindowTime, WINDOW_TIME_HINT } from '@flowpilot/metrics';
import { createHttpMetricsSource, progressBar, reportLanguages, writeReport } from '@flowpilot/report';
import { createMeterRegistry, ERROR_CATALOGUE, FlowPilotError, type ErrorCode, type PilotConfig } from '@flowpilot/schema';
import { parseConditions, type ConditionSpec } from '@flowpilot/simulator';
import { runPrometheusRules } from './alerts-command.ts';
import { listCertificates, runCertsCommand } from './certificates.ts';
import { terminalSafeJson } from './cli/output.ts';
import {
  createProgram,
  type BrokerOptions,
  type CertsInitOptions,
  type CertsListOptions,
  type CertsMeterOptions,
  type CertsMetersOptions,
  type CommandActions,
  type CredentialsAddOptions,
  type DeadLettersListOptions,
  type DeadLettersReplayOptions,
  type IngestOptions,
  type JsonOption,
  type ReportOptions,
  type SimulateOptions,
  type StartOptions,
} from './cli/program.ts';
import { runCommandLine } from './cli/run.ts';
import { readSecretFile, readSecretLine } from './cli/secrets.ts';
import { checkGatewayFile, probeGateway, runGateway } from './gateway-command.ts';
import { createLogger } from './logger.ts';
import { printable } from './printable.ts';
import { softwareCommit } from './provenance.ts';
import { createMetricsRegistry } from './prometheus.ts';
import { replayDeadLetters } from './replay-dead-letters.ts';
import {
  assertApiExposureAllowed,
  connectInflux,
  loadPilot,
  loadPilotFile,
  openCredentials,
  openStore,
  pipelineReadiness,
  runApi,
  runBroker,
  runIngest,
  runMetricsServer,
  runSimulator,
  serviceSecretsDir,
  storePath,
  tokensPath,
} from './run-services.ts';
import { ensureServiceLogin, readServiceLogin, type MqttLogin } from './service-logins.ts';
import { createServiceSet, type ServiceSet } from './service-set.ts';
import { loadSettings, type Settings } from './settings.ts';

/**
 * The composition root (STYLE habit 14): the only place that reads the command line and the
 * environment and wires packages and services together. The command line itself (commands,
 * options, help, usage errors) is cli/program.ts; the functions here are what each command does,
 * once its arguments parsed. A mistake on the command line stops a command before anything
 * starts (ERR_USAGE, exit code 2, one line: cli/run.ts).
 */

/** The version `flowpilot --version` prints and a report names: this package's. */
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** `start`'s simulated history (SPEC section 7: 14 days). */
const DEMO_BACKFILL_MS = 14 * 86_400_000;

/** A mistake on the command line found by a command; the usage line names the command's help (cli/run.ts). */
function usageError(problem: string): FlowPilotError {
  return new FlowPilotError('ERR_USAGE', problem);
}

/** `--play` (repeatable, each a comma-separated list): the conditions the simulator plays, checked against the pilot file now. */
function playFlag(texts: readonly string[], pilot: PilotConfig): ConditionSpec[] {
  try {
    return parseConditions(texts.join(','), pilot);
  } catch (error) {
    throw usageError(`--play: ${(error as Error).message}`);
  }
}

interface ServiceContext {
  settings: Readonly<Settings>;
  log: Logger;
  services: ServiceSet;
}

/**
 * The preamble of every command that runs services: a logger and the set that records each
 * service started, stops them all on SIGINT/SIGTERM, and stops what already started when the
 * start-up fails.
 */
async function serve(settings: Readonly<Settings>, body: (context: ServiceContext) => Promise<void>): Promise<void> {
  const log = createLogger(settings.logLevel);
  const services = createServiceSet(log);
  await services.startUp(() => body({ settings, log, services }));
}

function serviceLogin(settings: Settings, name: string): MqttLogin {
  if (settings.mqttUsername !== undefined && settings.mqttPassword !== undefined) {
    return { username: settings.mqttUsername, password: settings.mqttPassword };
  }
  const login = readServiceLogin(serviceSecretsDir(settings), name);
  if (!login) {
    throw new FlowPilotError(
      'ERR_CONFIG',
      `no MQTT login for the ${name} service: set FLOWPILOT_MQTT_USERNAME and FLOWPILOT_MQTT_PASSWORD, or start \`flowpilot broker\` once with the same FLOWPILOT_DATA_DIR`,
    );
  }
  return login;
}

async function start(options: StartOptions): Promise<void> {
  const settings = loadSettings();
  assertApiExposureAllowed(settings);
  const { pilot, sha256: pilotFileSha256 } = loadPilotFile(settings.pilotFile);
  // The demo plays a gentle scenario, so the alerts show within minutes (issue 13).
  const play = playFlag(options.play ?? ['demo'], pilot);
  await serve(settings, async ({ log, services }) => {
    const { influx } = await services.run('influxdb', () => connectInflux(settings, log));
    const store = await services.run('store', () => openStore(settings), (s) => s.close());
    const credentials = openCredentials(settings);
    const metrics = createMetricsRegistry();
    const broker = await services.run('broker', () => runBroker(settings, pilot, store, credentials, log, metrics));
    const { ingest } = await services.run('ingest', () => runIngest(store, influx, log, metrics));
    const apiLogin = await ensureServiceLogin(serviceSecretsDir(settings), credentials, 'flowpilot-api');
    const api = await services.run('api', () =>
      runApi(settings, pilot, influx, apiLogin, log, {
        metrics,
        readinessChecks: pipelineReadiness(store, ingest, settings.readyMaxLagSec * 1000),
        store,
        provenance: { pilotFileSha256, commit: softwareCommit(process.env) },
      }),
    );
    console.log(`\n  FlowPilot is running: pilot "${pilot.pilot.name}", ${pilot.meters.length} meters`);
    console.log(`  Dashboard and API  ${api.url}/   (OpenAPI: ${api.url}/docs)`);
    console.log(`  MQTT broker        ${broker.url}`);
    console.log(`  Prometheus         ${api.url}/metrics`);
    console.log(`  InfluxDB           ${influx.config.url} (database ${influx.config.database})`);
    console.log('  Press Ctrl-C to stop.\n');
    if (options.simulator) {
      const login = await ensureServiceLogin(serviceSecretsDir(settings), credentials, 'flowpilot-simulator');
      const flags = { speed: 1, seed: 1, faults: true, backfillMs: options.backfill ? DEMO_BACKFILL_MS : 0, play };
      await services.run('simulator', () => runSimulator(settings, pilot, login, flags, log));
    }
  });
}

async function broker(options: BrokerOptions): Promise<void> {
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  await serve(settings, async ({ log, services }) => {
    // InfluxDB first, so a local influxd stops last, after the ingest that writes to it.
    const influx = !options.ingest ? null : (await services.run('influxdb', () => connectInflux(settings, log))).influx;
    const store = await services.run('store', () => openStore(settings), (s) => s.close());
    const credentials = openCredentials(settings);
    // The api and the simulator on this host find their logins beside the credentials file
    // (the data dir, or the file the nodes of a cluster share).
    await ensureServiceLogin(serviceSecretsDir(settings), credentials, 'flowpilot-api');
    await ensureServiceLogin(serviceSecretsDir(settings), credentials, 'flowpilot-simulator');
    const metrics = createMetricsRegistry(settings.cluster?.nodeId);
    const ingest = influx ? (await services.run('ingest', () => runIngest(store, influx, log, metrics))).ingest : null;
    const { readinessChecks } = await services.run('broker', () => runBroker(settings, pilot, store, credentials, log, metrics));
    const checks = { ...(ingest ? pipelineReadiness(store, ingest, settings.readyMaxLagSec * 1000) : {}), ...readinessChecks };
    await services.run('metrics', () => runMetricsServer(metrics, settings.metricsPort, settings.listenHost, 'FLOWPILOT_METRICS_PORT', log, checks));
  });
}

/** How often `ingest --until-empty` looks whether the store is drained. */
const DRAIN_CHECK_MS = 1000;

async function ingest(options: IngestOptions): Promise<void> {
  const env = options.dataDir !== undefined ? { ...process.env, FLOWPILOT_DATA_DIR: options.dataDir } : process.env;
  const settings = loadSettings(env);
  // A dead node's dir is drained as it is: a store that is not there is a mistake, not a new empty one.
  if (options.dataDir !== undefined && !existsSync(storePath(settings))) {
    throw usageError(`--data-dir ${options.dataDir}: no durable store there (${storePath(settings)}); give the data dir of the broker node to drain`);
  }
  await serve(settings, async ({ log, services }) => {
    const { influx } = await services.run('influxdb', () => connectInflux(settings, log));
    const store = await services.run('store', () => openStore(settings), (s) => s.close());
    const metrics = createMetricsRegistry(settings.cluster?.nodeId);
    await services.run('ingest', () => runIngest(store, influx, log, metrics));
    await services.run('metrics', () => runMetricsServer(metrics, settings.ingestMetricsPort, settings.listenHost, 'FLOWPILOT_INGEST_METRICS_PORT', log));
    if (options.untilEmpty) {
      // The checkpoint advances only after InfluxDB confirmed a batch (SPEC section 6): an empty store is a drained one.
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (store.depth().records > 0) return;
          clearInterval(timer);
          resolve();
        }, DRAIN_CHECK_MS);
      });
      log.info({ dataDir: settings.dataDir }, 'the durable store is drained: every accepted reading is in InfluxDB');
      await services.stopAll();
    }
  });
}

async function api(): Promise<void> {
  const settings = loadSettings();
  assertApiExposureAllowed(settings);
  const { pilot, sha256: pilotFileSha256 } = loadPilotFile(settings.pilotFile);
  if (!settings.influxUrl) throw new FlowPilotError('ERR_CONFIG', 'flowpilot api needs FLOWPILOT_INFLUX_URL (the InfluxDB that the ingest writes to)');
  const login = serviceLogin(settings, 'flowpilot-api');
  await serve(settings, async ({ log, services }) => {
    const { influx } = await services.run('influxdb', () => connectInflux(settings, log));
    // On the broker's host the dead letters are in the data dir: /metrics reports them per meter.
    // The metrics cache trusts the store's log of written days only while its ingest is alive
    // (the store's heartbeat), so a store file left over here does not hide another ingest's writes.
    const store = existsSync(storePath(settings)) ? await services.run('store', () => openStore(settings), (s) => s.close()) : null;
    const provenance = { pilotFileSha256, commit: softwareCommit(process.env) };
    await services.run('api', () => runApi(settings, pilot, influx, login, log, { metrics: createMetricsRegistry(), provenance, ...(store ? { store } : {}) }));
  });
}

async function simulate({ speed, seed, backfillMs, play: conditions }: SimulateOptions): Promise<void> {
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  const play = playFlag(conditions ?? [], pilot);
  const login = serviceLogin(settings, 'flowpilot-simulator');
  await serve(settings, async ({ log, services }) => {
    await services.run('simulator', () => runSimulator(settings, pilot, login, { speed, seed, faults: true, backfillMs, play }, log));
  });
}

async function credentialsList(options: JsonOption): Promise<void> {
  const logins = openCredentials(loadSettings()).list();
  if (options.json) {
    console.log(terminalSafeJson(logins));
    return;
  }
  for (const login of logins) {
    console.log(login.role === 'gateway' ? `${login.id}\t${login.role}\t${login.meters.join(',')}` : `${login.id}\t${login.role}`);
  }
}

/** The password `credentials add` was given (from a file or stdin: never on the command line, SPEC section 8), or undefined to generate one. */
async function givenPassword(options: CredentialsAddOptions): Promise<string | undefined> {
  if (options.passwordFile !== undefined) return readSecretFile('--password-file', options.passwordFile);
  if (options.passwordStdin) return readSecretLine('--password-stdin', process.stdin);
  return undefined;
}

async function credentialsAdd(id: string, options: CredentialsAddOptions): Promise<void> {
  const { role } = options;
  const settings = loadSettings();
  let password: string;
  let given: string | undefined;
  let what = `${role} login "${id}"`;
  if (role === 'gateway') {
    // SPEC section 8: a gateway publishes for the meters it is given, so they are named here,
    // checked against the pilot file, and stored with its credential.
    // Its name is a client id prefix (`{id}:{anything}`) and a certificate's CN: the meter id grammar (SPEC section 1), so never a `:`.
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(id)) throw usageError(`"${printable(id, 60)}": a gateway login's id is 1 to 64 letters, digits, '_', '.' or '-'`);
    if (options.meters === undefined) throw usageError('a gateway login needs --meters with the ids of the meters it serves');
    const meters = [...new Set(options.meters.split(',').map((m) => m.trim()).filter((m) => m !== ''))];
    if (meters.length === 0) throw usageError('--meters names no meter');
    const registry = createMeterRegistry(loadPilot(settings.pilotFile));
    const unknown = meters.filter((m) => !registry.has(m));
    if (unknown.length > 0) throw usageError(`--meters: not meters of the pilot file ${settings.pilotFile}: ${unknown.join(', ')}`);
    // A client certificate's CN logs in as the login of that name before the meter of that
    // name, so a gateway must not take a meter's id.
    if (registry.has(id)) throw usageError(`"${id}" is a meter of the pilot file: a gateway login needs a name of its own`);
    given = await givenPassword(options);
    password = await openCredentials(settings).add(id, role, given, meters);
    what = `gateway login "${id}" for ${meters.join(', ')}`;
  } else {
    if (options.meters !== undefined) throw usageError(`--meters is for --role gateway only, not ${role}`);
    given = await givenPassword(options);
    password = await openCredentials(settings).add(id, role, given);
  }
  if (given === undefined) {
    console.log(`Created ${what}. Its password, shown only this once:\n\n  ${password}\n`);
  } else {
    console.log(`Created ${what}.`);
  }
}

async function deadLettersList({ code, limit, json }: DeadLettersListOptions): Promise<void> {
  const store = openStore(loadSettings());
  try {
    const counts = store.rejectionCounts();
    const letters = store.listDeadLetters({ limit, ...(code ? { code } : {}) });
    if (json) {
      console.log(terminalSafeJson({ rejectedByCode: counts, deadLetters: letters }));
      return;
    }
    console.log(Object.keys(counts).length === 0 ? 'No dead letters.' : `Rejected, by reason: ${JSON.stringify(counts)}`);
    for (const letter of letters) {
      // A payload is whatever a client sent: escaped, so it cannot drive this terminal (SPEC section 8).
      const size = letter.truncated ? ` (${letter.payloadBytes} bytes received, the first ${Buffer.byteLength(letter.payload)} kept)` : '';
      console.log(`#${letter.id} ${new Date(letter.receivedAtMs).toISOString()} ${printable(letter.topic, 200)} ${letter.code}${size}\n    ${printable(letter.reason, 500)}\n    ${printable(letter.payload, 300)}`);
    }
  } finally {
    store.close();
  }
}

async function deadLettersReplay({ code, meter, limit }: DeadLettersReplayOptions): Promise<void> {
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  const store = openStore(settings);
  try {
    const outcome = await replayDeadLetters(
      store,
      // The broker's own rules, from the same settings it runs with.
      { registry: createMeterRegistry(pilot), nowMs: Date.now(), retentionMs: settings.retentionMs, maxPayloadBytes: settings.maxPayloadBytes },
      { limit, ...(code ? { code } : {}), ...(meter ? { meterId: meter } : {}) },
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

/**
 * A time flag, in the API's own grammar of times (SPEC sections 4 and 5): checked while parsing
 * (whether it parses does not depend on the zone), then read in the pilot's zone, where a bare
 * date is that local day's start.
 */
function timeFlag(flag: string, value: string, timezone = 'UTC'): number {
  const ms = parseWindowTime(value, timezone);
  if (ms === null) throw usageError(`--${flag} ${value}: expected ${WINDOW_TIME_HINT}`);
  return ms;
}

/**
 * The API token `flowpilot report` sends, once the API has tokens (SPEC section 8): from
 * `--token-file` or FLOWPILOT_API_TOKEN, never from the command line itself.
 */
function reportToken(tokenFile: string | undefined): string | undefined {
  if (tokenFile === undefined) return process.env.FLOWPILOT_API_TOKEN?.trim() || undefined;
  try {
    return readFileSync(tokenFile, 'utf8').trim();
  } catch (error) {
    throw usageError(`--token-file ${tokenFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Why the API answered a report's request with an error: its own catalogue code when it gave one. */
async function apiRefusal(api: string, path: string, response: Response): Promise<FlowPilotError> {
  let body: { error?: { code?: unknown; message?: unknown } } | undefined;
  try {
    body = (await response.json()) as typeof body;
  } catch {
    body = undefined;
  }
  const code = body?.error?.code;
  if (typeof code !== 'string' || !Object.hasOwn(ERROR_CATALOGUE, code)) {
    return new FlowPilotError('ERR_UNREACHABLE', `${api} answered GET ${path} with ${response.status}, not as a FlowPilot API does: check --api (or FLOWPILOT_HTTP_PORT)`);
  }
  const known = code as ErrorCode;
  const message = typeof body?.error?.message === 'string' && body.error.message !== ERROR_CATALOGUE[known].message ? `: ${body.error.message.replace(/\.$/, '')}` : '';
  return new FlowPilotError(known, `the FlowPilot API at ${api} answered GET ${path} with ${response.status}${message}`);
}

/** What the operator of `flowpilot report` can do when the API does not answer. */
const UNREACHABLE_API_HINT = 'start FlowPilot (npm start), or pass --api with its URL';

/** Writes `body` to `out` through `<out>.partial`, so a failed run never leaves half a file (as writeReport does). */
async function writeWhole(out: string, body: Uint8Array): Promise<number> {
  await mkdir(dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  await writeFile(partial, body);
  await rename(partial, out);
  return body.byteLength;
}

async function report(options: ReportOptions): Promise<void> {
  if (timeFlag('to', options.to) <= timeFlag('from', options.from)) throw usageError(`--to ${options.to} is not after --from ${options.from}`);
  const { format } = options;
  const token = reportToken(options.tokenFile);
  const settings = loadSettings();
  const { pilot, sha256: pilotFileSha256 } = loadPilotFile(settings.pilotFile);
  const fromMs = timeFlag('from', options.from, pilot.pilot.timezone);
  const toMs = timeFlag('to', options.to, pilot.pilot.timezone);
  const api = (options.api ?? `http://127.0.0.1:${settings.httpPort}`).replace(/\/+$/, '');
  const get = async (path: string, window: { fromMs: number; toMs: number }): Promise<Response> => {
    let response: Response;
    try {
      response = await fetch(`${api}${path}?from=${window.fromMs}&to=${window.toMs}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    } catch (error) {
      const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new FlowPilotError('ERR_UNREACHABLE', `the FlowPilot API at ${api} is not reachable (${reason}): ${UNREACHABLE_API_HINT}`, { cause: error });
    }
    if (!response.ok) throw await apiRefusal(api, path, response);
    return response;
  };
  const onProgress = (progress: Parameters<typeof progressBar>[0]) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${progressBar(progress)}`);
  };
  let written: { out: string; bytes: number };
  if (format === 'xlsx') {
    // The API's metrics workbook (SPEC section 5), downloaded as the CSV is.
    onProgress({ done: 0, total: 1, stage: 'metrics' });
    const workbook = new Uint8Array(await (await get('/api/v1/reports/metrics.xlsx', { fromMs, toMs })).arrayBuffer());
    onProgress({ done: 1, total: 1, stage: 'metrics' });
    onProgress({ done: 1, total: 1, stage: 'write' });
    written = { out: options.out, bytes: await writeWhole(options.out, workbook) };
  } else {
    written = await writeReport({
      pilot: { ...pilot.pilot, meters: pilot.meters },
      metrics: createHttpMetricsSource(api, { unreachableHint: UNREACHABLE_API_HINT, ...(token ? { token } : {}) }),
      fetchMetricsCsv: async (window) => (await get('/api/v1/reports/metrics.csv', window)).text(),
      fromMs,
      toMs,
      format,
      out: options.out,
      lang: options.lang,
      softwareVersion: VERSION,
      // The pilot file this command read (its meters are the report's) and this software's commit.
      commit: softwareCommit(process.env),
      pilotFileSha256,
      dataSource: `FlowPilot API ${api}`,
      onProgress,
    });
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(`Wrote ${written.out} (${written.bytes} bytes).`);
}

const print = (line: string): void => console.log(line);

/** `flowpilot certs …`: certificates.ts parses its own argument list and checks each value, so the options go back into one. */
async function certs(args: string[], wantsPilotMeters = false): Promise<void> {
  const settings = loadSettings();
  // Only `meters --all` needs the pilot file: `init` works before there is a valid one.
  const pilotMeterIds = wantsPilotMeters ? loadPilot(settings.pilotFile).meters.map((m) => m.id) : [];
  await runCertsCommand(args, { defaultDir: join(settings.dataDir, 'tls'), pilotMeterIds, print });
}

/** `--flag=value` for each option given (the `=` form keeps a value that starts with '-' a value). */
function certsFlags(options: CertsMetersOptions & CertsInitOptions): string[] {
  return [
    ...(options.dir !== undefined ? [`--dir=${options.dir}`] : []),
    ...(options.host ?? []).map((host) => `--host=${host}`),
    ...(options.days !== undefined ? [`--days=${options.days}`] : []),
    ...(options.name !== undefined ? [`--name=${options.name}`] : []),
    ...(options.renew ? ['--renew'] : []),
    ...(options.all ? ['--all'] : []),
  ];
}

async function certsList(options: CertsListOptions): Promise<void> {
  if (!options.json) return certs(['list', ...certsFlags(options)]);
  // As certificates.ts reads --dir: an empty one is the default.
  const dir = resolve(options.dir || join(loadSettings().dataDir, 'tls'));
  const now = Date.now();
  const infos = await listCertificates(dir);
  console.log(
    terminalSafeJson(
      infos.map((info) => ({
        ...info,
        path: join(dir, info.file),
        daysLeft: Number.isNaN(info.notAfter.getTime()) ? null : Math.floor((info.notAfter.getTime() - now) / 86_400_000),
      })),
    ),
  );
}

function check(file: string | undefined): void {
  const path = file ?? loadSettings().pilotFile;
  const pilot = loadPilot(path);
  const roles = pilot.meters.reduce<Record<string, number>>((acc, m) => ({ ...acc, [m.role]: (acc[m.role] ?? 0) + 1 }), {});
  console.log(`${path} is valid: pilot "${pilot.pilot.id}", ${pilot.meters.length} meters (${Object.entries(roles).map(([r, n]) => `${n} ${r}`).join(', ')}).`);
}

const gatewayContext = { env: process.env, print };

const ACTIONS: CommandActions = {
  start,
  broker,
  ingest,
  api,
  simulate,
  credentialsAdd,
  credentialsList,
  deadLettersList,
  deadLettersReplay,
  report,
  tokensAdd: (name, { role }) => tokensAdd(name, role, { storePath: tokensPath(loadSettings()), print }),
  tokensList: (options) => tokensList(options, { storePath: tokensPath(loadSettings()), print }),
  tokensRevoke: (name) => tokensRevoke(name, { storePath: tokensPath(loadSettings()), print }),
  certsInit: (options) => certs(['init', ...certsFlags(options)]),
  certsMeter: (ids, options: CertsMeterOptions) => certs(['meter', ...certsFlags(options), '--', ...ids]),
  certsMeters: (options) => certs(['meters', ...certsFlags(options)], options.all === true),
  certsList,
  check,
  gatewayRun: (options) => runGateway(options, gatewayContext),
  gatewayProbe: (options) => probeGateway(options, gatewayContext),
  gatewayCheck: (file, options) => {
    if (file !== undefined && options.config !== undefined) throw usageError('give the gateway file once, as an argument or with --config');
    return checkGatewayFile(file ?? options.config, gatewayContext);
  },
  alertsPrometheusRules: (options) => runPrometheusRules(options),
};

// `flowpilot certs list | head`: a reader that stops early ends the command quietly, as SIGPIPE
// ends a C tool, instead of an unhandled EPIPE with its stack.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

const program = createProgram(ACTIONS, { version: VERSION, reportLanguages: () => reportLanguages().map((language) => language.code) });
void runCommandLine(program, process.argv.slice(2), { stdout: (text) => process.stdout.write(text), stderr: (line) => console.error(line) }).then((code) => {
  if (code !== 0) process.exit(code);
});
