/*
 * npm run test:influx:containers
 *
 * Runs FlowPilot's InfluxDB v1 API contract (packages/influx/src/v1-contract.ts) and the Grafana
 * dashboard's queries against InfluxDB 1.11, 2.7 and 3 Core, each in a container started through
 * testcontainers, with authentication on: 1.11 with a user and password, 2.7 with its API token and
 * with a v1 authorization (user and password) on a bucket with an explicit DBRP mapping, 3 Core
 * with an admin token. Exits 1 when a container does not start or a check fails.
 *
 * Without a reachable container engine (Docker or Podman through a socket, DOCKER_HOST or a
 * Testcontainers configuration) it prints exactly one line saying so and exits 0: nothing was
 * tested, and it claims no pass.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GenericContainer, getContainerRuntimeClient, Wait } from 'testcontainers';
import type { StartedTestContainer } from 'testcontainers';
import { createInfluxClient } from '@flowpilot/influx';
import type { InfluxConfig } from '@flowpilot/influx';
import { createConsoleRunner, runInfluxV1Contract } from '../packages/influx/src/v1-contract.ts';
import { dashboardContractQueries } from './grafana-dashboard.ts';

const DATABASE = 'flowpilot_contract';
const START_TIMEOUT_MS = 180_000;

/** One way of logging in to a started server, and the suite runs once per way. */
interface Login {
  label: string;
  credentials: Pick<InfluxConfig, 'username' | 'password' | 'token'>;
}

interface Target {
  image: string;
  start(): Promise<{ container: StartedTestContainer; url: string; logins: Login[] }>;
}

const secret = (bytes: number): string => randomBytes(bytes).toString('hex');

async function exec(container: StartedTestContainer, command: string[], what: string): Promise<string> {
  const result = await container.exec(command);
  // The output may quote the command's arguments, a token among them: only the exit code is shown.
  if (result.exitCode !== 0) throw new Error(`${what} failed in the container (exit code ${result.exitCode})`);
  return result.stdout;
}

const TARGETS: Target[] = [
  {
    image: 'influxdb:1.11',
    async start() {
      const password = secret(12);
      const container = await new GenericContainer(this.image)
        .withEnvironment({
          INFLUXDB_HTTP_AUTH_ENABLED: 'true',
          INFLUXDB_ADMIN_USER: 'fpcheck',
          INFLUXDB_ADMIN_PASSWORD: password,
          INFLUXDB_DB: DATABASE,
          INFLUXDB_REPORTING_DISABLED: 'true',
        })
        .withExposedPorts(8086)
        .withWaitStrategy(Wait.forHttp('/ping', 8086).forStatusCode(204))
        .withStartupTimeout(START_TIMEOUT_MS)
        .start();
      return { container, url: `http://${container.getHost()}:${container.getMappedPort(8086)}`, logins: [{ label: 'user and password', credentials: { username: 'fpcheck', password } }] };
    },
  },
  {
    image: 'influxdb:2.7',
    async start() {
      const token = secret(32);
      const v1Password = secret(12);
      const container = await new GenericContainer(this.image)
        .withEnvironment({
          DOCKER_INFLUXDB_INIT_MODE: 'setup',
          DOCKER_INFLUXDB_INIT_USERNAME: 'fpcheck-admin',
          DOCKER_INFLUXDB_INIT_PASSWORD: secret(12),
          DOCKER_INFLUXDB_INIT_ORG: 'flowpilot',
          DOCKER_INFLUXDB_INIT_BUCKET: DATABASE,
          DOCKER_INFLUXDB_INIT_ADMIN_TOKEN: token,
        })
        .withExposedPorts(8086)
        // The setup runs a temporary influxd on another port; 8086 answers once the real one runs.
        .withWaitStrategy(Wait.forHttp('/ping', 8086).forStatusCode(204))
        .withStartupTimeout(START_TIMEOUT_MS)
        .start();
      const auth = ['--org', 'flowpilot', '--token', token];
      const listed = await exec(container, ['influx', 'bucket', 'list', '--name', DATABASE, '--hide-headers', ...auth], 'influx bucket list');
      const bucketId = listed.trim().split(/\s+/)[0] ?? '';
      if (!/^[0-9a-f]{16}$/.test(bucketId)) throw new Error(`influx bucket list gave no bucket id for ${DATABASE}`);
      // An explicit DBRP mapping (2.x also maps every bucket virtually, by its name) and a v1 authorization.
      await exec(container, ['influx', 'v1', 'dbrp', 'create', '--db', DATABASE, '--rp', 'autogen', '--bucket-id', bucketId, '--default', ...auth], 'influx v1 dbrp create');
      await exec(
        container,
        ['influx', 'v1', 'auth', 'create', '--username', 'fpcheck', '--password', v1Password, '--read-bucket', bucketId, '--write-bucket', bucketId, ...auth],
        'influx v1 auth create',
      );
      return {
        container,
        url: `http://${container.getHost()}:${container.getMappedPort(8086)}`,
        logins: [
          { label: 'API token', credentials: { token } },
          { label: 'v1 user and password', credentials: { username: 'fpcheck', password: v1Password } },
        ],
      };
    },
  },
  {
    image: 'influxdb:3-core',
    async start() {
      const container = await new GenericContainer(this.image)
        .withCommand(['influxdb3', 'serve', '--node-id', 'fpcheck', '--object-store', 'memory'])
        .withExposedPorts(8181)
        .withWaitStrategy(Wait.forListeningPorts())
        .withStartupTimeout(START_TIMEOUT_MS)
        .start();
      const url = `http://${container.getHost()}:${container.getMappedPort(8181)}`;
      // A fresh server creates its first (operator) admin token for whoever asks (3.x Core "Create an
      // admin token"): over HTTP, or else with the CLI inside the container. Tokens start with apiv3_.
      const tokenIn = (text: string): string | undefined => /apiv3_[A-Za-z0-9_-]+/.exec(text)?.[0];
      let token: string | undefined;
      for (let attempt = 0; attempt < 30 && token === undefined; attempt++) {
        try {
          const response = await fetch(`${url}/api/v3/configure/token/admin`, { method: 'POST', signal: AbortSignal.timeout(5000) });
          if (response.ok) token = tokenIn(await response.text());
          else if (response.status !== 404 && response.status < 500) break;
        } catch {
          // Not answering HTTP yet.
        }
        if (token === undefined) await sleep(1000);
      }
      token ??= tokenIn(await exec(container, ['influxdb3', 'create', 'token', '--admin'], 'influxdb3 create token --admin').catch(() => ''));
      if (!token) throw new Error('the server created no admin token (POST /api/v3/configure/token/admin, influxdb3 create token --admin)');
      return { container, url, logins: [{ label: 'admin token', credentials: { token } }] };
    },
  },
];

/** The container engine's address, or null when none answers (testcontainers tries its usual places). */
async function findContainerEngine(): Promise<string | null> {
  try {
    const client = await getContainerRuntimeClient();
    return client.info.containerRuntime.host;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const engine = await findContainerEngine();
  if (engine === null) {
    console.log(
      'test:influx:containers: no container engine is reachable (no Docker socket, DOCKER_HOST or Testcontainers configuration answered): InfluxDB 1.11, 2.7 and 3 Core were not tested.',
    );
    return;
  }
  console.log(`Container engine at ${engine}: the InfluxDB v1 API contract against ${TARGETS.map((t) => t.image).join(', ')}`);
  const summary: string[] = [];
  for (const target of TARGETS) {
    console.log(`\n${target.image}: starting`);
    let started: Awaited<ReturnType<Target['start']>> | undefined;
    try {
      started = await target.start();
      for (const login of started.logins) {
        const client = createInfluxClient({ url: started.url, database: DATABASE, timeoutMs: 60_000, ...login.credentials });
        console.log(`\n${target.image} at ${started.url}, database ${DATABASE}, ${login.label}`);
        const { runner, run } = createConsoleRunner((line) => console.log(`  ${line}`));
        runInfluxV1Contract(client, runner, { extraQueries: dashboardContractQueries() });
        const results = await run();
        const failed = results.filter((r) => r.outcome === 'fail').length;
        const skipped = results.filter((r) => r.outcome === 'skip').length;
        summary.push(`${target.image} (${login.label}): ${failed === 0 ? 'PASS' : 'FAIL'}, ${results.length - failed - skipped} passed, ${skipped} skipped, ${failed} failed`);
      }
    } catch (error) {
      summary.push(`${target.image}: FAIL, ${(error as Error).message}`);
      console.log(`  FAIL  ${(error as Error).message}`);
    } finally {
      await started?.container.stop().catch(() => undefined);
    }
  }
  console.log(`\n${summary.join('\n')}`);
  process.exitCode = summary.some((line) => line.includes(': FAIL')) ? 1 : 0;
}

await main();
