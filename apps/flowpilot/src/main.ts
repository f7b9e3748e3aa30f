import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Logger } from 'pino';
import { runTokensCommand } from '@flowpilot/api';
import { parseWindowTime, WINDOW_TIME_HINT } from '@flowpilot/metrics';
import { createHttpMetricsSource, progressBar, reportLanguages, writeReport } from '@flowpilot/report';
import {
  createMeterRegistry,
  DURATION_GRAMMAR_HINT,
  ERROR_CATALOGUE,
  FlowPilotError,
  parseDuration,
  type ErrorCode,
  type PilotConfig,
} from '@flowpilot/schema';
import { parseConditions, type ConditionSpec } from '@flowpilot/simulator';
import { runAlertsCommand } from './alerts-command.ts';
import { runCertsCommand } from './certificates.ts';
import { runGatewayCommand } from './gateway-command.ts';
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
  storePath,
  tokensPath,
} from './run-services.ts';
import { ensureServiceLogin, readServiceLogin, type MqttLogin } from './service-logins.ts';
import { createServiceSet, type ServiceSet } from './service-set.ts';
import { loadSettings, type Settings } from './settings.ts';

/**
 * The composition root (STYLE habit 14): the only place that reads the command line and the
 * environment and wires packages and services together. Each command parses its flags first,
 * so a mistake on the command line stops it before anything starts (ERR_USAGE, exit code 2).
 */

const VERSION = '0.1.0';

const HELP = `flowpilot — telemetry pipeline for flowmeter demonstration pilots

Usage: flowpilot <command> [options]

  start [--no-simulator] [--no-backfill] [--play C|none]
                                           the whole pilot demo: local InfluxDB (unless
                                           FLOWPILOT_INFLUX_URL is set), broker, ingest, API
                                           with dashboard, simulated meters with 14 days of history,
                                           playing a gentle set of alert conditions (--play demo)
  broker [--no-ingest]                     the MQTT broker with its durable store (and the ingest)
  ingest                                   the ingest alone (durable store → InfluxDB)
  api                                      the HTTP API and dashboard
  simulate [--speed N] [--backfill 14d] [--seed S] [--play C]
                                           simulated meters of the pilot file; --play conditions
                                           KIND:METER[=VALUE][:DURATION][@START],… with KIND silent,
                                           empty_pipe, leak or low_battery (e.g. silent:M:5m@2m,
                                           leak:M=4, low_battery:M), or demo
  credentials add <id> [--password P] [--role meter|service]
                                           create or replace a login (prints a generated password once)
  credentials add <id> --role gateway --meters ID,ID [--password P]
                                           a field gateway's login: it publishes for those meters only
  credentials list                         the logins (never their passwords)
  deadletters list [--code C] [--limit N]  rejected messages, with their reasons
  deadletters replay [--code C] [--meter M] validate dead letters again (after fixing the pilot
                                           file) and send the ones that pass to InfluxDB
  report --from T --to T --format pdf|csv --out FILE [--lang en|ru] [--api URL] [--token-file F]
                                           the evaluator's report from a running API, with a progress bar
                                           (T: ISO 8601, epoch ms, or a date = that local day's start;
                                           the API token from --token-file or FLOWPILOT_API_TOKEN)
  tokens add <name> --role viewer|evaluator|admin
                                           an API token (printed once, stored hashed); with one,
                                           every API route but /healthz and /readyz needs a token
  tokens list [--json] | tokens revoke <name>
  certs init [--host H ...] [--days N]     a site CA and the server certificate for mqtts and HTTPS
  certs meter <id ...> | certs meters --all a client certificate per meter (CN = meter id, no password)
  certs list                               the certificates in the data dir and when they expire
  alerts prometheus-rules [--out F]        the alert rules of the pilot file as a Prometheus rules file
  gateway [--config gateway.yaml]          the Modbus field gateway: polls meters, publishes their readings
                                           through a durable outbox (FLOWPILOT_GATEWAY_CONFIG names the file)
  gateway probe [--config F] --meter ID    read one device once and print each decoded value with its registers
  gateway check [gateway.yaml]             validate a gateway file
  check [pilot.yaml]                       validate a pilot file

Settings come from the environment: FLOWPILOT_PILOT, FLOWPILOT_DATA_DIR, FLOWPILOT_MQTT_PORT,
FLOWPILOT_MQTT_URL, FLOWPILOT_HTTP_PORT, FLOWPILOT_LISTEN_HOST, FLOWPILOT_INFLUX_URL,
FLOWPILOT_INFLUX_DB, FLOWPILOT_INFLUX_USER, FLOWPILOT_INFLUX_PASSWORD, FLOWPILOT_INFLUX_TOKEN
(see README.md).`;

/** One usage line per command: a command-line mistake names itself, then the command's usage. */
const USAGE = {
  start: 'usage: flowpilot start [--no-simulator] [--no-backfill] [--play C|none]',
  broker: 'usage: flowpilot broker [--no-ingest]',
  ingest: 'usage: flowpilot ingest',
  api: 'usage: flowpilot api',
  simulate: 'usage: flowpilot simulate [--speed N] [--backfill 14d] [--seed S] [--play C]',
  credentials: 'usage: flowpilot credentials add <id> [--password P] [--role meter|service|gateway] [--meters ID,ID] | credentials list',
  deadletters: 'usage: flowpilot deadletters list [--code C] [--limit N] | deadletters replay [--code C] [--meter M] [--limit N]',
  report: 'usage: flowpilot report --from T --to T --format pdf|csv --out FILE [--lang en|ru] [--api URL] [--token-file F]',
  check: 'usage: flowpilot check [pilot.yaml]',
} as const;

type Command = keyof typeof USAGE;

/** Exit codes by what the operator must do: 2 to fix the command line (as getopt-style tools do), 1 for everything else. */
const EXIT_CODES: Partial<Record<ErrorCode, number>> = { ERR_USAGE: 2 };

/** `start`'s simulated history (SPEC section 7: 14 days). */
const DEMO_BACKFILL_MS = 14 * 86_400_000;

function usageError(command: Command, problem?: string): FlowPilotError {
  return new FlowPilotError('ERR_USAGE', problem ? `${problem}; ${USAGE[command]}` : USAGE[command]);
}

/** node:util's parseArgs, strict, with its complaints (unknown option, missing value) as ERR_USAGE. */
function parseFlags<const O extends NonNullable<ParseArgsConfig['options']>>(command: Command, args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw usageError(command, (error as Error).message.split(/\.\s/)[0]);
  }
}

function noPositionals(command: Command, positionals: string[]): void {
  if (positionals.length > 0) throw usageError(command, `unexpected argument "${positionals[0]}"`);
}

/** `--play` (repeatable, each a comma-separated list): the conditions the simulator plays, checked against the pilot file now. */
function playFlag(command: Command, texts: readonly string[], pilot: PilotConfig): ConditionSpec[] {
  try {
    return parseConditions(texts.join(','), pilot);
  } catch (error) {
    throw usageError(command, `--play: ${(error as Error).message}`);
  }
}

function positiveInteger(command: Command, flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw usageError(command, `--${flag} ${value}: expected a whole number ≥ 1`);
  return n;
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
  const { values, positionals } = parseFlags('start', args, { 'no-simulator': { type: 'boolean' }, 'no-backfill': { type: 'boolean' }, play: { type: 'string', multiple: true } });
  noPositionals('start', positionals);
  const settings = loadSettings();
  assertApiExposureAllowed(settings);
  const { pilot, sha256: pilotFileSha256 } = loadPilotFile(settings.pilotFile);
  // The demo plays a gentle scenario, so the alerts show within minutes (issue 13).
  const play = playFlag('start', values.play ?? ['demo'], pilot);
  await serve(settings, async ({ log, services }) => {
    const { influx } = await services.run('influxdb', () => connectInflux(settings, log));
    const store = await services.run('store', () => openStore(settings), (s) => s.close());
    const credentials = openCredentials(settings);
    const metrics = createMetricsRegistry();
    const broker = await services.run('broker', () => runBroker(settings, pilot, store, credentials, log, metrics));
    const { ingest } = await services.run('ingest', () => runIngest(store, influx, log, metrics));
    const apiLogin = await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-api');
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
    if (!values['no-simulator']) {
      const login = await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-simulator');
      const flags = { speed: 1, seed: 1, faults: true, backfillMs: values['no-backfill'] ? 0 : DEMO_BACKFILL_MS, play };
      await services.run('simulator', () => runSimulator(settings, pilot, login, flags, log));
    }
  });
}

async function broker(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags('broker', args, { 'no-ingest': { type: 'boolean' } });
  noPositionals('broker', positionals);
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  await serve(settings, async ({ log, services }) => {
    // InfluxDB first, so a local influxd stops last, after the ingest that writes to it.
    const influx = values['no-ingest'] ? null : (await services.run('influxdb', () => connectInflux(settings, log))).influx;
    const store = await services.run('store', () => openStore(settings), (s) => s.close());
    const credentials = openCredentials(settings);
    // The api and the simulator on this host find their logins in the data dir.
    await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-api');
    await ensureServiceLogin(settings.dataDir, credentials, 'flowpilot-simulator');
    const metrics = createMetricsRegistry();
    if (influx) await services.run('ingest', () => runIngest(store, influx, log, metrics));
    await services.run('broker', () => runBroker(settings, pilot, store, credentials, log, metrics));
    await services.run('metrics', () => runMetricsServer(metrics, settings.metricsPort, settings.listenHost, 'FLOWPILOT_METRICS_PORT', log));
  });
}

async function ingest(args: string[]): Promise<void> {
  noPositionals('ingest', parseFlags('ingest', args, {}).positionals);
  await serve(loadSettings(), async ({ settings, log, services }) => {
    const { influx } = await services.run('influxdb', () => connectInflux(settings, log));
    const store = await services.run('store', () => openStore(settings), (s) => s.close());
    const metrics = createMetricsRegistry();
    await services.run('ingest', () => runIngest(store, influx, log, metrics));
    await services.run('metrics', () => runMetricsServer(metrics, settings.ingestMetricsPort, settings.listenHost, 'FLOWPILOT_INGEST_METRICS_PORT', log));
  });
}

async function api(args: string[]): Promise<void> {
  noPositionals('api', parseFlags('api', args, {}).positionals);
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

async function simulate(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags('simulate', args, { speed: { type: 'string' }, backfill: { type: 'string' }, seed: { type: 'string' }, play: { type: 'string', multiple: true } });
  noPositionals('simulate', positionals);
  const speed = Number(values.speed ?? '1');
  const seed = Number(values.seed ?? '1');
  if (!(speed >= 1)) throw usageError('simulate', `--speed ${values.speed}: expected a number ≥ 1`);
  if (!Number.isInteger(seed)) throw usageError('simulate', `--seed ${values.seed}: expected a whole number`);
  const backfillMs = values.backfill === undefined ? 0 : parseDuration(values.backfill);
  if (backfillMs === null) throw usageError('simulate', `--backfill ${values.backfill}: expected ${DURATION_GRAMMAR_HINT}`);
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  const play = playFlag('simulate', values.play ?? [], pilot);
  const login = serviceLogin(settings, 'flowpilot-simulator');
  await serve(settings, async ({ log, services }) => {
    await services.run('simulator', () => runSimulator(settings, pilot, login, { speed, seed, faults: true, backfillMs, play }, log));
  });
}

async function credentials(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action === 'list') {
    noPositionals('credentials', parseFlags('credentials', rest, {}).positionals);
    for (const login of openCredentials(loadSettings()).list()) {
      console.log(login.role === 'gateway' ? `${login.id}\t${login.role}\t${login.meters.join(',')}` : `${login.id}\t${login.role}`);
    }
    return;
  }
  if (action !== 'add') throw usageError('credentials', action === undefined ? undefined : `unknown credentials command "${action}"`);
  const { values, positionals } = parseFlags('credentials', rest, { password: { type: 'string' }, role: { type: 'string', default: 'meter' }, meters: { type: 'string' } });
  const [id, ...extra] = positionals;
  if (!id) throw usageError('credentials', 'credentials add needs the login\'s id');
  noPositionals('credentials', extra);
  const role = values.role;
  if (role !== 'meter' && role !== 'service' && role !== 'gateway') throw usageError('credentials', `--role ${role}: expected meter, service or gateway`);
  const settings = loadSettings();
  let password: string;
  let what = `${role} login "${id}"`;
  if (role === 'gateway') {
    // SPEC section 8: a gateway publishes for the meters it is given, so they are named here,
    // checked against the pilot file, and stored with its credential.
    // Its name is a client id prefix (`{id}:{anything}`) and a certificate's CN: the meter id grammar (SPEC section 1), so never a `:`.
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(id)) throw usageError('credentials', `"${printable(id, 60)}": a gateway login's id is 1 to 64 letters, digits, '_', '.' or '-'`);
    if (values.meters === undefined) throw usageError('credentials', 'a gateway login needs --meters with the ids of the meters it serves');
    const meters = [...new Set(values.meters.split(',').map((m) => m.trim()).filter((m) => m !== ''))];
    if (meters.length === 0) throw usageError('credentials', '--meters names no meter');
    const registry = createMeterRegistry(loadPilot(settings.pilotFile));
    const unknown = meters.filter((m) => !registry.has(m));
    if (unknown.length > 0) throw usageError('credentials', `--meters: not meters of the pilot file ${settings.pilotFile}: ${unknown.join(', ')}`);
    // A client certificate's CN logs in as the login of that name before the meter of that
    // name, so a gateway must not take a meter's id.
    if (registry.has(id)) throw usageError('credentials', `"${id}" is a meter of the pilot file: a gateway login needs a name of its own`);
    password = await openCredentials(settings).add(id, role, values.password, meters);
    what = `gateway login "${id}" for ${meters.join(', ')}`;
  } else {
    if (values.meters !== undefined) throw usageError('credentials', `--meters is for --role gateway only, not ${role}`);
    password = await openCredentials(settings).add(id, role, values.password);
  }
  if (values.password === undefined) {
    console.log(`Created ${what}. Its password, shown only this once:\n\n  ${password}\n`);
  } else {
    console.log(`Created ${what}.`);
  }
}

async function deadletters(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action === 'replay') return replay(rest);
  if (action !== 'list') throw usageError('deadletters', action === undefined ? undefined : `unknown deadletters command "${action}"`);
  const { values, positionals } = parseFlags('deadletters', rest, { code: { type: 'string' }, limit: { type: 'string', default: '50' } });
  noPositionals('deadletters', positionals);
  const limit = positiveInteger('deadletters', 'limit', values.limit);
  const store = openStore(loadSettings());
  try {
    const counts = store.rejectionCounts();
    console.log(Object.keys(counts).length === 0 ? 'No dead letters.' : `Rejected, by reason: ${JSON.stringify(counts)}`);
    for (const letter of store.listDeadLetters({ limit, ...(values.code ? { code: values.code } : {}) })) {
      // A payload is whatever a client sent: escaped, so it cannot drive this terminal (SPEC section 8).
      const size = letter.truncated ? ` (${letter.payloadBytes} bytes received, the first ${Buffer.byteLength(letter.payload)} kept)` : '';
      console.log(`#${letter.id} ${new Date(letter.receivedAtMs).toISOString()} ${printable(letter.topic, 200)} ${letter.code}${size}\n    ${printable(letter.reason, 500)}\n    ${printable(letter.payload, 300)}`);
    }
  } finally {
    store.close();
  }
}

async function replay(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags('deadletters', args, { code: { type: 'string' }, meter: { type: 'string' }, limit: { type: 'string', default: '100000' } });
  noPositionals('deadletters', positionals);
  const limit = positiveInteger('deadletters', 'limit', values.limit);
  const settings = loadSettings();
  const pilot = loadPilot(settings.pilotFile);
  const store = openStore(settings);
  try {
    const outcome = await replayDeadLetters(
      store,
      // The broker's own rules, from the same settings it runs with.
      { registry: createMeterRegistry(pilot), nowMs: Date.now(), retentionMs: settings.retentionMs, maxPayloadBytes: settings.maxPayloadBytes },
      { limit, ...(values.code ? { code: values.code } : {}), ...(values.meter ? { meterId: values.meter } : {}) },
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
 * A time flag, in the API's own grammar of times (SPEC sections 4 and 5): checked before
 * anything loads (whether it parses does not depend on the zone), then read in the pilot's
 * zone, where a bare date is that local day's start.
 */
function timeFlag(flag: string, value: string | undefined, timezone = 'UTC'): number {
  if (value === undefined) throw usageError('report', `--${flag} is missing`);
  const ms = parseWindowTime(value, timezone);
  if (ms === null) throw usageError('report', `--${flag} ${value}: expected ${WINDOW_TIME_HINT}`);
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
    throw usageError('report', `--token-file ${tokenFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
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

async function report(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags('report', args, {
    from: { type: 'string' },
    to: { type: 'string' },
    format: { type: 'string', default: 'pdf' },
    out: { type: 'string' },
    lang: { type: 'string', default: 'en' },
    api: { type: 'string' },
    'token-file': { type: 'string' },
  });
  noPositionals('report', positionals);
  const fromUtc = timeFlag('from', values.from);
  if (timeFlag('to', values.to) <= fromUtc) throw usageError('report', `--to ${values.to} is not after --from ${values.from}`);
  const format = values.format;
  if (format !== 'pdf' && format !== 'csv') throw usageError('report', `--format ${format}: expected pdf or csv`);
  if (!values.out) throw usageError('report', '--out is missing');
  const languages = reportLanguages().map((language) => language.code);
  if (!languages.includes(values.lang)) throw usageError('report', `--lang ${values.lang}: expected ${languages.join(' or ')}`);
  if (values.api !== undefined && !URL.canParse(values.api)) throw usageError('report', `--api ${values.api}: expected a URL such as http://127.0.0.1:8080`);
  const token = reportToken(values['token-file']);
  const settings = loadSettings();
  const { pilot, sha256: pilotFileSha256 } = loadPilotFile(settings.pilotFile);
  const fromMs = timeFlag('from', values.from, pilot.pilot.timezone);
  const toMs = timeFlag('to', values.to, pilot.pilot.timezone);
  const api = (values.api ?? `http://127.0.0.1:${settings.httpPort}`).replace(/\/+$/, '');
  const get = async (path: string, window: { fromMs: number; toMs: number }, as: 'json' | 'text') => {
    let response: Response;
    try {
      response = await fetch(`${api}${path}?from=${window.fromMs}&to=${window.toMs}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    } catch (error) {
      const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new FlowPilotError('ERR_UNREACHABLE', `the FlowPilot API at ${api} is not reachable (${reason}): ${UNREACHABLE_API_HINT}`, { cause: error });
    }
    if (!response.ok) throw await apiRefusal(api, path, response);
    return as === 'json' ? response.json() : response.text();
  };
  const { out, bytes } = await writeReport({
    pilot: { ...pilot.pilot, meters: pilot.meters },
    metrics: createHttpMetricsSource(api, { unreachableHint: UNREACHABLE_API_HINT, ...(token ? { token } : {}) }),
    fetchMetricsCsv: async (window) => (await get('/api/v1/reports/metrics.csv', window, 'text')) as string,
    fromMs,
    toMs,
    format,
    out: values.out,
    lang: values.lang,
    softwareVersion: VERSION,
    // The pilot file this command read (its meters are the report's) and this software's commit.
    commit: softwareCommit(process.env),
    pilotFileSha256,
    dataSource: `FlowPilot API ${api}`,
    onProgress: (progress) => {
      if (process.stderr.isTTY) process.stderr.write(`\r${progressBar(progress)}`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(`Wrote ${out} (${bytes} bytes).`);
}

async function tokens(args: string[]): Promise<void> {
  runTokensCommand(args, tokensPath(loadSettings()), (line) => console.log(line));
}

async function certs(args: string[]): Promise<void> {
  const settings = loadSettings();
  // Only `meters --all` needs the pilot file: `init` works before there is a valid one.
  const pilotMeterIds = args[0] === 'meters' && args.includes('--all') ? loadPilot(settings.pilotFile).meters.map((m) => m.id) : [];
  await runCertsCommand(args, { defaultDir: join(settings.dataDir, 'tls'), pilotMeterIds, print: (line) => console.log(line) });
}

function check(args: string[]): void {
  const [file, ...extra] = parseFlags('check', args, {}).positionals;
  noPositionals('check', extra);
  const path = file ?? loadSettings().pilotFile;
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
  alerts: runAlertsCommand,
  gateway: runGatewayCommand,
  check,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) throw new FlowPilotError('ERR_USAGE', `unknown command "${printable(command, 60)}"`);
  await run(args);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof FlowPilotError) {
    console.error(`flowpilot: ${error.message}`);
    process.exit(EXIT_CODES[error.code] ?? 1);
  }
  console.error(error);
  process.exit(1);
});
