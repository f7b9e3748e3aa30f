import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestHaproxy } from '../test/helpers/haproxy.ts';
import { freePort, waitForPort } from '../test/helpers/ports.ts';
import { startTestRedis } from '../test/helpers/redis.ts';
import { measureAedesCeiling, type AedesCeiling } from './ceilings.ts';
import { CLI } from './flowpilot-process.ts';
import { log, makeTempDir, onTeardown, REPO_ROOT, trackChild } from './harness.ts';
import { benchInflux, checkPairs, dropDatabase, waitForReadings, type PairCheck } from './influx-checks.ts';
import { closeLoadClients, connectLoadClients, drive, readingJson } from './load-clients.ts';
import { benchSingleReadings, closeLoadSession, openLoadSession, type BenchWorld } from './pipeline-scenarios.ts';
import type { Row } from './report.ts';
import { startCpuMeter, startRssSampler } from './rss-sampler.ts';

/**
 * `npm run bench -- --only cluster` (SPEC section 11): readings per second accepted by three
 * `flowpilot broker` nodes over one Redis behind HAProxy, on this machine, beside one node and
 * bare Aedes measured in the same run with the same clients, window and duration, and the
 * (meterId, seq) check of SPEC section 6 over every reading the cluster and the one node
 * acknowledged: `lost` must be 0. On one machine the three nodes share its cores with Redis,
 * HAProxy and InfluxDB, so the ratio says what the cluster costs here, not what it scales to.
 */

export interface ClusterBenchResult {
  nodes: number;
  clients: number;
  windowPerClient: number;
  durationSec: number;
  /** Readings acknowledged per second through HAProxy by the three nodes. */
  clusterPerSec: number;
  /** The same load on one plain `flowpilot broker` (no Redis, no HAProxy). */
  oneNodePerSec: number;
  /** The same load on bare Aedes (one publisher with the whole window, bench/ceilings.ts). */
  bareAedesPerSec: number;
  ratioToOneNode: number;
  ratioToBareAedes: number;
  /** MQTT clients per node when the load began (HAProxy's leastconn spread). */
  clientsPerNode: Record<string, number>;
  /** From the end of the window until InfluxDB held every reading the cluster acknowledged. */
  catchUpSec: number | null;
  cpuPercent: Record<string, number>;
  check: PairCheck;
  oneNodeCheck: PairCheck;
  /** Acknowledged pairs missing from InfluxDB, the cluster's and the one node's: must be 0. */
  lost: number;
}

export interface ClusterBenchOptions {
  clients: number;
  durationMs: number;
  window: number;
  /** The bare Aedes ceiling of this run, when the ceilings section measured it with the same window. */
  aedes?: AedesCeiling;
}

const NODE_IDS = ['n1', 'n2', 'n3'] as const;
const DAY_MS = 86_400_000;
const round = (value: number, digits = 0) => Number(value.toFixed(digits));

interface NodeProcess {
  id: string;
  pid: number;
  dataDir: string;
  mqttPort: number;
  metricsPort: number;
  peakMiB(): number;
  outputTail(): string;
}

/** One `flowpilot broker` node of the cluster, a child like bench/flowpilot-process.ts's (stopped at teardown). */
async function startNode(id: string, dataDir: string, env: Record<string, string>): Promise<NodeProcess> {
  const mqttPort = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'broker'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      ...env,
      FLOWPILOT_NODE_ID: id,
      FLOWPILOT_DATA_DIR: dataDir,
      FLOWPILOT_MQTT_PORT: String(mqttPort),
      FLOWPILOT_METRICS_PORT: String(metricsPort),
      FLOWPILOT_LOG_LEVEL: process.env.BENCH_CHILD_LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) tail.push(line);
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  if (child.pid === undefined) throw new Error(`could not start node ${id}`);
  const sampler = startRssSampler(child.pid, 1_000);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  onTeardown(`stop cluster node ${id}`, async () => {
    sampler.stop();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  try {
    await waitForPort(mqttPort, 60_000, { alive: () => child.exitCode === null, what: `cluster node ${id}` });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${tail.join('\n')}`);
  }
  return { id, pid: child.pid, dataDir, mqttPort, metricsPort, peakMiB: () => sampler.peakMiB(), outputTail: () => tail.join('\n') };
}

async function connectedClients(node: NodeProcess): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`).then((r) => r.text(), () => '');
  const match = /^flowpilot_connected_clients(?:\{[^}]*\})? (\d+)/m.exec(text);
  return match ? Number(match[1]) : 0;
}

/** Three nodes over one Redis behind HAProxy, loaded like the single-readings section. */
async function benchThreeNodes(world: BenchWorld, options: ClusterBenchOptions, meterIds: readonly string[]) {
  const database = 'bench_cluster';
  const influx = benchInflux(world.influxUrl, database);
  await dropDatabase(influx, database);
  await influx.ensureDatabase();
  const redis = await startTestRedis();
  onTeardown('stop redis-server', () => redis.close());
  // One logins file for the cluster (FLOWPILOT_CREDENTIALS_FILE), the services' secrets beside it.
  const sharedDir = makeTempDir('cluster-shared');
  const env = {
    FLOWPILOT_CLUSTER_REDIS_URL: redis.url,
    FLOWPILOT_CREDENTIALS_FILE: join(sharedDir, 'credentials.json'),
    FLOWPILOT_PILOT: world.pilotFile,
    FLOWPILOT_INFLUX_URL: world.influxUrl,
    FLOWPILOT_INFLUX_DB: database,
  };
  // n1 first: it makes the services' logins, which the others then find.
  const first = await startNode('n1', makeTempDir('cluster-n1'), env);
  const others = await Promise.all(NODE_IDS.slice(1).map((id) => startNode(id, makeTempDir(`cluster-${id}`), env)));
  const nodes = [first, ...others];
  const haproxy = await startTestHaproxy(
    nodes.map((node) => ({ name: node.id, port: node.mqttPort })),
    { maxConnections: Math.max(4_000, options.clients + 100) },
  );
  onTeardown('stop haproxy', () => haproxy.close());
  const logins = JSON.parse(readFileSync(join(sharedDir, 'service-logins.json'), 'utf8')) as Record<string, string>;
  const login = { username: 'flowpilot-simulator', password: logins['flowpilot-simulator'] ?? '' };

  log(`cluster: connecting ${meterIds.length} MQTT clients through HAProxy to ${nodes.length} nodes`);
  const clients = await connectLoadClients(haproxy.mqttUrl, login, meterIds);
  try {
    const clientsPerNode = Object.fromEntries(await Promise.all(nodes.map(async (node) => [node.id, await connectedClients(node)] as const)));
    log(`cluster: clients per node ${JSON.stringify(clientsPerNode)}; ${clients.length} clients × window ${options.window}, ${options.durationMs / 1000} s`);
    const cpu = startCpuMeter({ ...Object.fromEntries(nodes.map((node) => [node.id, node.pid])), redis: redis.pid(), haproxy: haproxy.pid, influxd: world.influxdPid });
    const baseTsMs = Date.now() - 4 * DAY_MS;
    const result = await drive(clients, {
      durationMs: options.durationMs,
      windowPerClient: options.window,
      message: (c, seq) => ({ payload: readingJson(c.meterId, seq, baseTsMs + seq * 100), readings: 1 }),
    });
    const cpuPercent = cpu();
    const windowSec = (result.stoppedAtMs - result.startedAtMs) / 1000;
    log(`cluster: ${result.readingsAckedInWindow} accepted in ${windowSec.toFixed(1)} s (CPU % of a core: ${JSON.stringify(cpuPercent)}); waiting for InfluxDB`);
    const { count, reachedAtMs } = await waitForReadings(influx, result.readingsAcked, 100, 180_000);
    if (reachedAtMs === null) log(`cluster: InfluxDB holds ${count} of ${result.readingsAcked} after 180 s; checking anyway`);
    const check = await checkPairs(influx, clients);
    log(`cluster check: ${check.checked} acknowledged pairs checked, ${check.lost} lost${check.examples.length ? ` (e.g. ${check.examples.join(', ')})` : ''}`);
    for (const node of nodes) world.peaks.push({ process: `cluster node ${node.id}`, peakRssMiB: round(node.peakMiB(), 1) });
    return {
      perSec: result.readingsAckedInWindow / windowSec,
      clientsPerNode,
      catchUpSec: reachedAtMs === null ? null : round((reachedAtMs - result.stoppedAtMs) / 1000, 1),
      cpuPercent,
      check,
    };
  } finally {
    await closeLoadClients(clients);
    await dropDatabase(influx, database).catch(() => undefined);
  }
}

export async function benchCluster(world: BenchWorld, options: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const meterIds = world.meterIds.slice(0, options.clients);
  // Bare Aedes with the same total window as the clients' (bench/ceilings.ts), unless this run has it.
  const aedes =
    options.aedes && options.aedes.windowPerClient === meterIds.length * options.window
      ? options.aedes
      : await measureAedesCeiling({ durationMs: options.durationMs, window: meterIds.length * options.window, meterIds });
  log(`cluster: bare Aedes ${Math.round(aedes.messagesPerSec)} msg/s`);

  const session = await openLoadSession(world, 'cluster: one node', 'bench_cluster_one', meterIds);
  let one;
  try {
    one = await benchSingleReadings(session, { durationMs: options.durationMs, window: options.window });
  } finally {
    await closeLoadSession(world, session);
  }
  log(`cluster: one node ${one.readingsPerSec} readings/s`);

  const three = await benchThreeNodes(world, options, meterIds);
  const lost = three.check.lost + one.check.lost;
  return {
    nodes: NODE_IDS.length,
    clients: meterIds.length,
    windowPerClient: options.window,
    durationSec: options.durationMs / 1000,
    clusterPerSec: round(three.perSec),
    oneNodePerSec: one.readingsPerSec,
    bareAedesPerSec: round(aedes.messagesPerSec),
    ratioToOneNode: round(three.perSec / one.readingsPerSec, 3),
    ratioToBareAedes: round(three.perSec / aedes.messagesPerSec, 3),
    clientsPerNode: three.clientsPerNode,
    catchUpSec: three.catchUpSec,
    cpuPercent: three.cpuPercent,
    check: three.check,
    oneNodeCheck: one.check,
    lost,
  };
}

/** The cluster's rows of the table, and its target: lost = 0. */
export function clusterRows(c: ClusterBenchResult | undefined): { rows: Row[]; targets: { name: string; met: boolean | null }[] } {
  if (!c) return { rows: [], targets: [] };
  const blank = { ceiling: '', ratio: '', target: '', verdict: '' };
  const n0 = (x: number) => Math.round(x).toLocaleString('en-US');
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const cpu = Object.entries(c.cpuPercent).map(([name, share]) => `${name} ${share}`).join(', ');
  const met = c.lost === 0;
  return {
    rows: [
      {
        figure: `Cluster: ${c.nodes} nodes + Redis behind HAProxy, ${c.clients} connections × window ${c.windowPerClient}, ${c.durationSec} s`,
        value: `${n0(c.clusterPerSec)} readings/s`,
        ceiling: `${n0(c.oneNodePerSec)} (one node)`,
        ratio: pct(c.ratioToOneNode),
        target: '',
        verdict: '',
      },
      { figure: '  the same load on bare Aedes', value: `${n0(c.bareAedesPerSec)} msg/s`, ceiling: '', ratio: `${pct(c.ratioToBareAedes)} of it`, target: '', verdict: '' },
      { figure: '  clients per node (leastconn)', value: Object.entries(c.clientsPerNode).map(([id, n]) => `${id} ${n}`).join(', '), ...blank },
      { figure: '  end of window → all stored in InfluxDB', value: c.catchUpSec === null ? 'not within 180 s' : `${c.catchUpSec} s`, ...blank },
      {
        figure: '  (meterId, seq) check: lost / acknowledged (cluster + one node)',
        value: `${n0(c.lost)} / ${n0(c.check.checked + c.oneNodeCheck.checked)}`,
        ceiling: '',
        ratio: '',
        target: 'lost = 0',
        verdict: met ? 'met' : 'MISSED',
      },
      { figure: '  CPU, % of one core', value: cpu, ...blank },
    ],
    targets: [{ name: 'cluster: lost = 0', met }],
  };
}
