/*
 * npm run test:influx -- <url> [--database D] [--token-file F | --token - | --username U --password-file F]
 *                             [--no-dashboard] [--timeout-ms N]
 *
 * Runs FlowPilot's InfluxDB v1 API contract (packages/influx/src/v1-contract.ts), and every query
 * of the Grafana dashboard, against a site's server before a pilot: InfluxDB 1.x, 2.x through its
 * v1 compatibility API (a bucket with a DBRP mapping) or 3.x Core. It writes test points into a
 * scratch database (default flowpilot_contract), prints each check's result and exits 1 when any
 * failed (2 on a usage error). README "InfluxDB versions" says how to prepare the database on 2.x.
 *
 * Secrets belong off the command line, where `ps` and the shell's history keep them: a token or
 * password comes from a file (--token-file, --password-file), from stdin (`-`), or from
 * FLOWPILOT_INFLUX_TOKEN / FLOWPILOT_INFLUX_PASSWORD (SPEC section 7). `--token T` works but warns.
 * No secret is ever printed.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createInfluxClient, redactUrl } from '@flowpilot/influx';
import type { InfluxConfig } from '@flowpilot/influx';
import { createConsoleRunner, runInfluxV1Contract } from '../packages/influx/src/v1-contract.ts';
import { dashboardContractQueries } from './grafana-dashboard.ts';

const USAGE = `Usage: npm run test:influx -- <url> [--database D] [--token-file F | --token - | --username U --password-file F] [--no-dashboard]

  <url>              the InfluxDB v1 API, e.g. http://influx.example:8086 (2.x) or http://influx.example:8181 (3.x Core)
  --database D       a scratch database (2.x: a bucket mapped by DBRP) the check may write test points to;
                     default flowpilot_contract. Never the pilot's own database.
  --username U       user of 1.x, or of a 2.x v1 authorization (default FLOWPILOT_INFLUX_USER)
  --password-file F  the password, from a file, or - for stdin (default FLOWPILOT_INFLUX_PASSWORD)
  --token-file F     an API token (2.x, 3.x), from a file, or --token - for stdin (default FLOWPILOT_INFLUX_TOKEN);
                     --token T works too but leaves the token in the process list and the shell history
  --no-dashboard     skip the queries of deploy/grafana/dashboards/flowpilot.json
  --timeout-ms N     per request (default 60000)`;

const DEFAULT_DATABASE = 'flowpilot_contract';

function usage(problem: string): never {
  console.error(`test:influx: ${problem}\n\n${USAGE}`);
  process.exit(2);
}

let stdinRead = false;
/** A secret from a file or stdin ('-'): the whole content, without the line break an editor or `echo` adds. */
function readSecret(source: string, what: string): string {
  if (source === '-') {
    if (stdinRead) usage(`${what} and another secret both ask for stdin: give one of them as a file`);
    stdinRead = true;
  }
  try {
    const text = readFileSync(source === '-' ? 0 : source, 'utf8').replace(/\r?\n$/, '');
    if (text === '') usage(`${what} from ${source === '-' ? 'stdin' : source} is empty`);
    return text;
  } catch (error) {
    return usage(`cannot read ${what} from ${source === '-' ? 'stdin' : source}: ${(error as Error).message}`);
  }
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        database: { type: 'string' },
        username: { type: 'string' },
        'password-file': { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        'no-dashboard': { type: 'boolean' },
        'timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) usage(positionals.length === 0 ? 'name the InfluxDB to check' : `one URL, not ${positionals.length}`);
  const url = positionals[0] as string;
  if (values.token !== undefined && values.token !== '-') {
    console.error('test:influx: a token given as --token T stays in the process list and the shell history; prefer --token-file F, --token - (stdin) or FLOWPILOT_INFLUX_TOKEN');
  }
  const database = values.database ?? DEFAULT_DATABASE;
  if (database === 'flowpilot' || database === process.env.FLOWPILOT_INFLUX_DB) {
    usage(`the check writes test points: "${database}" looks like the pilot's own database; give a scratch database with --database`);
  }
  const timeoutMs = values['timeout-ms'] === undefined ? 60_000 : Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usage(`--timeout-ms must be a whole number of ms, not ${values['timeout-ms']}`);

  const config: InfluxConfig = { url, database, timeoutMs };
  const token =
    values['token-file'] !== undefined
      ? readSecret(values['token-file'], 'the token')
      : values.token === '-'
        ? readSecret('-', 'the token')
        : (values.token ?? process.env.FLOWPILOT_INFLUX_TOKEN);
  const username = values.username ?? process.env.FLOWPILOT_INFLUX_USER;
  const password = values['password-file'] !== undefined ? readSecret(values['password-file'], 'the password') : process.env.FLOWPILOT_INFLUX_PASSWORD;
  if (token) config.token = token;
  else {
    if (username) config.username = username;
    if (password) config.password = password;
  }

  let client;
  try {
    client = createInfluxClient(config);
  } catch (error) {
    return usage((error as Error).message);
  }
  const credentials = config.token ? 'an API token' : config.username || config.password ? `user ${config.username ?? '(none)'} with a password` : 'no credentials';
  console.log(`InfluxDB v1 API contract (SPEC section 2) against ${redactUrl(client.config.url)}, database ${database}, ${credentials}`);
  try {
    await client.ping();
  } catch (error) {
    console.log(`FAIL  cannot reach InfluxDB: ${(error as Error).message}`);
    process.exitCode = 1;
    return;
  }

  const { runner, run } = createConsoleRunner();
  const world = runInfluxV1Contract(client, runner, values['no-dashboard'] ? {} : { extraQueries: dashboardContractQueries() });
  const results = await run();
  console.log(
    `Test points: meter ids fpcheck-${world.runId}-… in "${database}" (dropped where the server has DROP SERIES; on 2.x delete the bucket, on 3.x the database, when done).`,
  );
  const failed = results.filter((r) => r.outcome === 'fail').length;
  console.log(failed === 0 ? 'This server serves what FlowPilot needs of the v1 API.' : `${failed} check(s) failed: FlowPilot cannot rely on this server as it is.`);
  process.exitCode = failed === 0 ? 0 : 1;
}

await main();
