import { Command, Option } from 'commander';
import { API_ROLES, type ApiRole } from '@flowpilot/api';
import { parseWindowTime, WINDOW_TIME_HINT } from '@flowpilot/metrics';
import { DURATION_GRAMMAR_HINT, parseDuration } from '@flowpilot/schema';
import { UsageError } from './usage.ts';

/**
 * The `flowpilot` command line (SPEC section 7) as a commander program: every command with its
 * options, a description and an example in its help. It only parses: what each command does is
 * the `CommandActions` main.ts passes in (STYLE habit 14), so tests parse without running anything.
 *
 * Values are checked here, while parsing, so a mistake stops a command before anything starts or
 * loads (ERR_USAGE, exit code 2); what can only be checked against the pilot file or another
 * option (`--play`, `--to` after `--from`, a gateway's `--meters`) is checked by the action.
 */

export interface JsonOption {
  /** Print one JSON document on stdout instead of the table. */
  json?: boolean;
}
export interface StartOptions {
  simulator: boolean;
  backfill: boolean;
  play?: string[];
}
export interface BrokerOptions {
  ingest: boolean;
}
export interface IngestOptions {
  /** The data dir whose durable store to drain (a dead cluster node's, SPEC section 11); FLOWPILOT_DATA_DIR otherwise. */
  dataDir?: string;
  /** Stop once the store holds nothing more for InfluxDB. */
  untilEmpty?: boolean;
}
export interface SimulateOptions {
  speed: number;
  seed: number;
  backfillMs: number;
  play?: string[];
}
export const LOGIN_ROLES = ['meter', 'service', 'gateway'] as const;
export interface CredentialsAddOptions {
  role: (typeof LOGIN_ROLES)[number];
  meters?: string;
  passwordFile?: string;
  passwordStdin?: boolean;
}
export interface DeadLettersListOptions extends JsonOption {
  code?: string;
  limit: number;
}
export interface DeadLettersReplayOptions {
  code?: string;
  meter?: string;
  limit: number;
}
export const REPORT_FORMATS = ['pdf', 'csv', 'xlsx'] as const;
export interface ReportOptions {
  /** As typed: read again in the pilot's time zone once the pilot file is loaded. */
  from: string;
  to: string;
  format: (typeof REPORT_FORMATS)[number];
  out: string;
  lang: string;
  api?: string;
  tokenFile?: string;
}
export interface TokensAddOptions {
  role: ApiRole;
}
/** `certs` options stay text: certificates.ts checks them (`--days`, `--host`, `--name`) with its own messages. */
export interface CertsInitOptions {
  dir?: string;
  host?: string[];
  days?: string;
  name?: string;
}
export interface CertsMeterOptions {
  dir?: string;
  days?: string;
  renew?: boolean;
}
export interface CertsMetersOptions extends CertsMeterOptions {
  all?: boolean;
}
export interface CertsListOptions extends JsonOption {
  dir?: string;
}
export interface GatewayRunOptions {
  config?: string;
}
export interface GatewayProbeOptions {
  config?: string;
  meter: string;
}
export interface GatewayCheckOptions {
  config?: string;
}
export interface PrometheusRulesOptions {
  out?: string;
}

type Done = Promise<void> | void;

/** What each command does, given its parsed arguments and options. */
export interface CommandActions {
  start(options: StartOptions): Done;
  broker(options: BrokerOptions): Done;
  ingest(options: IngestOptions): Done;
  api(): Done;
  simulate(options: SimulateOptions): Done;
  credentialsAdd(id: string, options: CredentialsAddOptions): Done;
  credentialsList(options: JsonOption): Done;
  deadLettersList(options: DeadLettersListOptions): Done;
  deadLettersReplay(options: DeadLettersReplayOptions): Done;
  report(options: ReportOptions): Done;
  tokensAdd(name: string, options: TokensAddOptions): Done;
  tokensList(options: JsonOption): Done;
  tokensRevoke(name: string): Done;
  certsInit(options: CertsInitOptions): Done;
  certsMeter(ids: string[], options: CertsMeterOptions): Done;
  certsMeters(options: CertsMetersOptions): Done;
  certsList(options: CertsListOptions): Done;
  check(file: string | undefined): Done;
  gatewayRun(options: GatewayRunOptions): Done;
  gatewayProbe(options: GatewayProbeOptions): Done;
  gatewayCheck(file: string | undefined, options: GatewayCheckOptions): Done;
  alertsPrometheusRules(options: PrometheusRulesOptions): Done;
}

const SETTINGS_HELP = `
Settings come from the environment: FLOWPILOT_PILOT, FLOWPILOT_DATA_DIR, FLOWPILOT_MQTT_PORT,
FLOWPILOT_MQTT_URL, FLOWPILOT_HTTP_PORT, FLOWPILOT_LISTEN_HOST, FLOWPILOT_INFLUX_URL,
FLOWPILOT_INFLUX_DB, FLOWPILOT_INFLUX_USER, FLOWPILOT_INFLUX_PASSWORD, FLOWPILOT_INFLUX_TOKEN
(see README.md). Run \`flowpilot <command> --help\` for a command's options and an example.`;

const PLAY_HELP =
  'alert conditions to play, KIND:METER[=VALUE][:DURATION][@START],… with KIND silent, empty_pipe, leak or low_battery ' +
  '(e.g. silent:M:5m@2m, leak:M=4, low_battery:M), demo (a gentle set) or none; repeatable';

/** `Example:` lines under a command's help. */
function example(command: Command, ...lines: string[]): Command {
  return command.addHelpText('after', `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((line) => `  $ ${line}`).join('\n')}`);
}

/** A value parser that turns a bad value into a usage error of `command`, naming the flag and what was expected. */
function checked<T>(command: string[], flag: string, parse: (value: string) => T | null, expected: string): (value: string) => T {
  return (value) => {
    const parsed = parse(value);
    if (parsed === null) throw new UsageError(`${flag} ${value}: expected ${expected}`, command);
    return parsed;
  };
}

const wholeNumber = (min: number) => (text: string) => {
  const n = Number(text);
  return text.trim() !== '' && Number.isInteger(n) && n >= min ? n : null;
};

/** A repeatable option: each use adds its value. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A time flag in the API's grammar (SPEC sections 4 and 5); whether it parses does not depend on the zone. */
function timeOption(command: string[], flag: '--from' | '--to'): Option {
  return new Option(`${flag} <time>`, `${flag === '--from' ? 'start' : 'end'} of the period: ISO 8601, epoch ms, or a date (that local day's start)`)
    .argParser(checked(command, flag, (text) => (parseWindowTime(text, 'UTC') === null ? null : text), WINDOW_TIME_HINT))
    .makeOptionMandatory();
}

function addServiceCommands(program: Command, actions: CommandActions): void {
  const start = program
    .command('start')
    .summary('the whole pilot demo (what `npm start` runs)')
    .description(
      'The whole pilot demo: a local InfluxDB (unless FLOWPILOT_INFLUX_URL is set), the broker, the ingest, the API with ' +
        'its dashboard, and simulated meters with 14 days of history, playing a gentle set of alert conditions.',
    )
    .option('--no-simulator', 'run without the simulated meters')
    .option('--no-backfill', 'the simulated meters start now, without 14 days of history')
    .option('--play <conditions>', `${PLAY_HELP} (default: demo)`, collect)
    .action((options: StartOptions) => actions.start(options));
  example(start, 'flowpilot start', 'flowpilot start --no-backfill --play none');

  const broker = program
    .command('broker')
    .summary('the MQTT broker and its durable store (and the ingest)')
    .description('The MQTT broker with its durable store, and the ingest inside it (durable store → InfluxDB) unless --no-ingest.')
    .option('--no-ingest', 'the broker alone; run `flowpilot ingest` beside it')
    .action((options: BrokerOptions) => actions.broker(options));
  example(broker, 'FLOWPILOT_INFLUX_URL=http://influx:8086 flowpilot broker');

  const ingest = program
    .command('ingest')
    .summary('the ingest alone (durable store → InfluxDB)')
    .description(
      'The ingest alone: the durable store in FLOWPILOT_DATA_DIR (or --data-dir) → InfluxDB, beside `flowpilot broker --no-ingest`, ' +
        'or on any host to drain the store of a broker node that died for good.',
    )
    .option('--data-dir <dir>', 'the data dir whose durable store to read (a dead node\'s); default FLOWPILOT_DATA_DIR')
    .option('--until-empty', 'exit (0) once every reading of the store is in InfluxDB')
    .action((options: IngestOptions) => actions.ingest(options));
  example(ingest, 'FLOWPILOT_INFLUX_URL=http://influx:8086 flowpilot ingest', 'FLOWPILOT_INFLUX_URL=http://influx:8086 flowpilot ingest --data-dir /mnt/node-2 --until-empty');

  const api = program
    .command('api')
    .summary('the HTTP API and dashboard')
    .description('The HTTP API and the dashboard, over the InfluxDB the ingest writes to (FLOWPILOT_INFLUX_URL).')
    .action(() => actions.api());
  example(api, 'FLOWPILOT_INFLUX_URL=http://influx:8086 flowpilot api');

  const path = ['simulate'];
  const simulate = program
    .command('simulate')
    .summary('simulated meters of the pilot file')
    .description('Simulated meters of the pilot file, publishing to the broker (FLOWPILOT_MQTT_URL).')
    .addOption(new Option('--speed <n>', 'time runs n times faster (n ≥ 1)').argParser(checked(path, '--speed', (t) => (Number(t) >= 1 ? Number(t) : null), 'a number ≥ 1')).default(1))
    .addOption(new Option('--seed <n>', 'the seed of the simulation (a whole number)').argParser(checked(path, '--seed', (t) => (t.trim() !== '' && Number.isInteger(Number(t)) ? Number(t) : null), 'a whole number')).default(1))
    .addOption(new Option('--backfill <duration>', 'publish this much history first, e.g. 14d').argParser(checked(path, '--backfill', parseDuration, DURATION_GRAMMAR_HINT)).default(0, 'none'))
    .option('--play <conditions>', PLAY_HELP, collect);
  simulate.action((options: { speed: number; seed: number; backfill: number; play?: string[] }) =>
    actions.simulate({ speed: options.speed, seed: options.seed, backfillMs: options.backfill, ...(options.play ? { play: options.play } : {}) }),
  );
  example(simulate, 'flowpilot simulate --speed 60 --backfill 14d', 'flowpilot simulate --play silent:ALM-PS3-DUT1:5m@2m');
}

function addCredentialsCommands(program: Command, actions: CommandActions): void {
  const credentials = program.command('credentials')
    .summary('add | list: the broker\'s logins').description('The broker\'s logins: meters, services and field gateways (passwords stored as hashes only).');
  example(credentials, 'flowpilot credentials add ALM-PS3-DUT1', 'flowpilot credentials list --json');

  const add = credentials
    .command('add')
    .description(
      'Create or replace a login. Without --password-file or --password-stdin a password is generated and printed ' +
        'once. A gateway login publishes only for the meters of the pilot file it lists (--meters).',
    )
    .argument('<id>', 'the login: a meter id, a service name, or a gateway name')
    .addOption(new Option('--role <role>', 'what the login is').choices(LOGIN_ROLES).default('meter'))
    .option('--meters <ids>', 'for --role gateway: the ids of the meters it serves, comma-separated')
    .option('--password-file <file>', 'take the password from the first line of this file')
    .addOption(new Option('--password-stdin', 'take the password from the first line of stdin').conflicts('passwordFile'))
    .action((id: string, options: CredentialsAddOptions) => actions.credentialsAdd(id, options));
  example(
    add,
    'flowpilot credentials add ALM-PS3-DUT1',
    'flowpilot credentials add gw-ps3 --role gateway --meters ALM-PS3-REF,ALM-PS3-DUT1 --password-file gw-ps3.secret',
    "printf '%s\\n' \"$PASSWORD\" | flowpilot credentials add ALM-PS3-DUT1 --password-stdin",
  );

  const list = credentials
    .command('list')
    .description('The logins and their roles (never their passwords).')
    .option('--json', 'one JSON document: [{ id, role, meters? }]')
    .action((options: JsonOption) => actions.credentialsList(options));
  example(list, 'flowpilot credentials list');
}

function addDeadLetterCommands(program: Command, actions: CommandActions): void {
  const deadletters = program.command('deadletters')
    .summary('list | replay: rejected messages, with their reasons').description('Messages the broker rejected, kept with their reasons, and their replay.');
  example(deadletters, 'flowpilot deadletters list --code ERR_METER_UNKNOWN', 'flowpilot deadletters replay --meter ALM-PS3-DUT1');

  const list = deadletters
    .command('list')
    .description('The count of rejections by reason, then the latest dead letters (payloads escaped: they are what a client sent).')
    .option('--code <code>', 'only this reason, e.g. ERR_METER_UNKNOWN')
    .addOption(new Option('--limit <n>', 'at most n dead letters').argParser(checked(['deadletters', 'list'], '--limit', wholeNumber(1), 'a whole number ≥ 1')).default(50))
    .option('--json', 'one JSON document: { rejectedByCode, deadLetters }')
    .action((options: DeadLettersListOptions) => actions.deadLettersList(options));
  example(list, 'flowpilot deadletters list --code ERR_METER_UNKNOWN --limit 10');

  const replay = deadletters
    .command('replay')
    .description('Validate dead letters again (after fixing their cause, e.g. the pilot file) and send the ones that pass to InfluxDB.')
    .option('--code <code>', 'only this reason')
    .option('--meter <id>', 'only this meter')
    .addOption(new Option('--limit <n>', 'at most n dead letters').argParser(checked(['deadletters', 'replay'], '--limit', wholeNumber(1), 'a whole number ≥ 1')).default(100_000))
    .action((options: DeadLettersReplayOptions) => actions.deadLettersReplay(options));
  example(replay, 'flowpilot deadletters replay --code ERR_METER_UNKNOWN');
}

function addReportCommand(program: Command, actions: CommandActions, languages: () => readonly string[]): void {
  const path = ['report'];
  const report = program
    .command('report')
    .summary('the evaluator\'s report (PDF, CSV or Excel) from a running API')
    .description(
      'The evaluator\'s report of a period from a running API, with a progress bar: a PDF, or the metrics table as CSV or ' +
        'an Excel workbook. The API token, once the API has tokens, comes from --token-file or FLOWPILOT_API_TOKEN.',
    )
    .addOption(timeOption(path, '--from'))
    .addOption(timeOption(path, '--to'))
    .addOption(new Option('--format <format>', 'pdf (the report), csv or xlsx (the metrics table)').choices(REPORT_FORMATS).default('pdf'))
    .requiredOption('--out <file>', 'the file to write')
    .addOption(
      new Option('--lang <code>', 'the report\'s language')
        .argParser((code: string) => {
          const codes = languages();
          if (!codes.includes(code)) throw new UsageError(`--lang ${code}: expected ${codes.join(' or ')}`, path);
          return code;
        })
        .default('en'),
    )
    .addOption(new Option('--api <url>', 'the API (default: http://127.0.0.1:$FLOWPILOT_HTTP_PORT)').argParser(checked(path, '--api', (t) => (URL.canParse(t) ? t : null), 'a URL such as http://127.0.0.1:8080')))
    .option('--token-file <file>', 'read the API token from this file')
    .action((options: ReportOptions) => actions.report(options));
  example(
    report,
    'flowpilot report --from 2026-11-01 --to 2026-11-25 --lang ru --out pilot-report.pdf',
    'flowpilot report --from 2026-11-01 --to 2026-11-25 --format xlsx --out metrics.xlsx --token-file evaluator.token',
  );
}

function addTokensCommands(program: Command, actions: CommandActions): void {
  const tokens = program
    .command('tokens')
    .summary('add | list | revoke: API tokens')
    .description('API tokens (SPEC section 8): once one exists, every API route but /healthz and /readyz needs a token.');
  example(tokens, 'flowpilot tokens add evaluator-1 --role evaluator', 'flowpilot tokens list --json', 'flowpilot tokens revoke evaluator-1');

  const add = tokens
    .command('add')
    .description('A new API token, printed once and stored hashed.')
    .argument('<name>', 'the token\'s name')
    .addOption(new Option('--role <role>', 'what the token may do').choices(API_ROLES).makeOptionMandatory())
    .action((name: string, options: TokensAddOptions) => actions.tokensAdd(name, options));
  example(add, 'flowpilot tokens add evaluator-1 --role evaluator');

  const list = tokens
    .command('list')
    .description('The tokens: name, role and creation time (never the tokens themselves).')
    .option('--json', 'one JSON document: [{ name, role, createdAt }]')
    .action((options: JsonOption) => actions.tokensList(options));
  example(list, 'flowpilot tokens list');

  const revoke = tokens
    .command('revoke')
    .description('Revoke a token: the API refuses it from its next request.')
    .argument('<name>', 'the token\'s name')
    .action((name: string) => actions.tokensRevoke(name));
  example(revoke, 'flowpilot tokens revoke evaluator-1');
}

function addCertsCommands(program: Command, actions: CommandActions): void {
  const certs = program
    .command('certs')
    .summary('init | meter | meters | list: the site CA and certificates for mqtts and HTTPS')
    .description('The site\'s certificates (SPEC section 8): a site CA, the server certificate for mqtts and HTTPS, one client certificate per meter.');
  example(certs, 'flowpilot certs init --host pilot.example.org --host 192.0.2.10', 'flowpilot certs meters --all', 'flowpilot certs list');
  const dir = (): Option => new Option('--dir <dir>', 'the site directory (default: $FLOWPILOT_DATA_DIR/tls)');
  const days = (): Option => new Option('--days <n>', 'days of validity (default: 825)');

  const init = certs
    .command('init')
    .description('A site CA (reused when there is one) and a new server certificate for the broker\'s mqtts listener and the API\'s HTTPS.')
    .addOption(dir())
    .option('--host <host>', 'a DNS name or IP address clients connect to; repeatable (default: localhost and 127.0.0.1)', collect)
    .addOption(days())
    .option('--name <name>', 'the CA\'s name, for a new CA (default: FlowPilot site CA)')
    .action((options: CertsInitOptions) => actions.certsInit(options));
  example(init, 'flowpilot certs init --host pilot.example.org --host 192.0.2.10 --host 127.0.0.1');

  const meter = certs
    .command('meter')
    .description('A client certificate per id (its CN: on the mqtts listener it logs in without a password); an existing one is kept.')
    .argument('<id...>', 'meter ids or login names')
    .addOption(dir())
    .addOption(days())
    .option('--renew', 'issue a new key and certificate even when one exists')
    .action((ids: string[], options: CertsMeterOptions) => actions.certsMeter(ids, options));
  example(meter, 'flowpilot certs meter ALM-PS3-DUT1 flowpilot-api flowpilot-simulator');

  const meters = certs
    .command('meters')
    .description('A client certificate for every meter of the pilot file.')
    .option('--all', 'every meter of the pilot file (required)')
    .addOption(dir())
    .addOption(days())
    .option('--renew', 'issue new keys and certificates even where they exist')
    .action((options: CertsMetersOptions) => actions.certsMeters(options));
  example(meters, 'flowpilot certs meters --all');

  const list = certs
    .command('list')
    .description('The certificates of the site directory and when each expires.')
    .addOption(dir())
    .option('--json', 'one JSON document: [{ file, path, subject, subjectAltName, notAfter, daysLeft }]')
    .action((options: CertsListOptions) => actions.certsList(options));
  example(list, 'flowpilot certs list --json');
}

function addGatewayCommands(program: Command, actions: CommandActions): void {
  const config = (): Option => new Option('--config <file>', 'the gateway file (default: $FLOWPILOT_GATEWAY_CONFIG, else gateway.yaml)');
  const gateway = program
    .command('gateway')
    .summary('[run] | probe | check: the Modbus field gateway')
    .description('The Modbus field gateway (SPEC section 10) on the host beside the meters.');
  example(gateway, 'flowpilot gateway --config /etc/flowpilot/gateway.yaml', 'flowpilot gateway probe --meter ALM-PS3-DUT1', 'flowpilot gateway check gateway.yaml');

  const run = gateway
    .command('run', { isDefault: true })
    .summary('(the default) poll the meters and publish their readings, until SIGINT or SIGTERM')
    .description('Poll the meters, keep their readings in a durable outbox, and publish them to the broker, until SIGINT or SIGTERM.')
    .addOption(config())
    .action((options: GatewayRunOptions) => actions.gatewayRun(options));
  example(run, 'flowpilot gateway --config /etc/flowpilot/gateway.yaml');

  const probe = gateway
    .command('probe')
    .description('Read one device once and print each decoded value with its registers, to hold against the meter\'s display.')
    .addOption(config())
    .requiredOption('--meter <id>', 'the meter id of a device in the gateway file')
    .action((options: GatewayProbeOptions) => actions.gatewayProbe(options));
  example(probe, 'flowpilot gateway probe --config gateway.yaml --meter ALM-PS3-DUT1');

  const check = gateway
    .command('check')
    .description('Validate a gateway file, naming every bad field, and print what each device will read.')
    .argument('[file]', 'the gateway file (default: $FLOWPILOT_GATEWAY_CONFIG, else gateway.yaml)')
    .addOption(config())
    .action((file: string | undefined, options: GatewayCheckOptions) => actions.gatewayCheck(file, options));
  example(check, 'flowpilot gateway check gateway.yaml');
}

function addAlertsCommands(program: Command, actions: CommandActions): void {
  const alerts = program.command('alerts')
    .summary('prometheus-rules: the alert rules for Prometheus').description('The alert rules of the pilot file (SPEC section 9) for other tools.');
  example(alerts, 'flowpilot alerts prometheus-rules --out flowpilot-rules.yml');

  const rules = alerts
    .command('prometheus-rules')
    .description('The alert rules of the pilot file as a Prometheus rules file, for a site that runs Prometheus and Alertmanager.')
    .option('--out <file>', 'write the rules file here (default: print it)')
    .action((options: PrometheusRulesOptions) => actions.alertsPrometheusRules(options));
  example(rules, 'flowpilot alerts prometheus-rules --out flowpilot-rules.yml && promtool check rules flowpilot-rules.yml');
}

export interface ProgramOptions {
  version: string;
  /** The report languages' codes, asked only when --lang is given. */
  reportLanguages: () => readonly string[];
}

/** The `flowpilot` program: parse it with runCommandLine (cli/run.ts), which sets how it reports and exits. */
export function createProgram(actions: CommandActions, options: ProgramOptions): Command {
  const program = new Command('flowpilot')
    .description('flowpilot — telemetry pipeline for flowmeter demonstration pilots')
    .version(options.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show the help')
    .helpCommand('help [command...]', 'show the help of a command')
    // An option after a subcommand's name is the subcommand's: `gateway probe --config F`.
    .enablePositionalOptions()
    .addHelpText('after', SETTINGS_HELP);

  addServiceCommands(program, actions);
  addCredentialsCommands(program, actions);
  addDeadLetterCommands(program, actions);
  addReportCommand(program, actions, options.reportLanguages);
  addTokensCommands(program, actions);
  addCertsCommands(program, actions);

  const check = program
    .command('check')
    .summary('validate a pilot file')
    .description('Validate a pilot file, naming every bad field.')
    .argument('[pilot.yaml]', 'the pilot file (default: $FLOWPILOT_PILOT, else examples/pilot.yaml)')
    .action((file: string | undefined) => actions.check(file));
  example(check, 'flowpilot check examples/pilot.yaml');

  addGatewayCommands(program, actions);
  addAlertsCommands(program, actions);
  return program;
}
