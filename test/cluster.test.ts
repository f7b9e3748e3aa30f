import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startAckedPublishers } from './helpers/acked-publisher.ts';
import { startTestHaproxy, type TestHaproxy } from './helpers/haproxy.ts';
import { createTestInflux } from './helpers/influx.ts';
import { connectMeter, storedPairs, wireReading } from './helpers/pipeline.ts';
import { freePort, waitForPort } from './helpers/ports.ts';
import { runFlowpilot, simulatorLogin, startService, writePilotFile, type ServiceProcess } from './helpers/processes.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { eventually } from './helpers/wait.ts';

/**
 * SPEC section 11 on real parts: Debian's redis-server and haproxy, three `flowpilot broker`
 * nodes as separate processes behind HAProxy, each with its own data dir, durable store and
 * ingest, and meters on persistent sessions publishing QoS 1 through HAProxy. Faults: one node
 * SIGKILLed under load (its meters reconnect through HAProxy to the others and resend) and
 * restarted; Redis stopped for 10 s. Checked the way SPEC section 6 says: every (meterId, seq)
 * a meter got a PUBACK for is in InfluxDB. And the API's live feed, connected through HAProxy,
 * sees readings published through every node (Aedes forwarding over Redis).
 */

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const NODE_IDS = ['n1', 'n2', 'n3'] as const;
const METERS = Array.from({ length: 30 }, (_, i) => `C-${String(i).padStart(2, '0')}`);
/** One meter pinned to each node (connected to its port, not through HAProxy) for the live feed check. */
const PINNED = Object.fromEntries(NODE_IDS.map((id) => [id, `L-${id}`])) as Record<(typeof NODE_IDS)[number], string>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface ClusterNode {
  id: string;
  dataDir: string;
  mqttPort: number;
  metricsPort: number;
  process: ServiceProcess | null;
  /** Starts `flowpilot broker` on the node's data dir and ports, and waits for its MQTT port. */
  start(): Promise<void>;
  running(): boolean;
}

interface Cluster {
  influx: Awaited<ReturnType<typeof createTestInflux>>;
  redis: TestRedis;
  haproxy: TestHaproxy;
  nodes: ClusterNode[];
  root: string;
  pilotFile: string;
  /** The shared credentials file's folder, with the services' secrets. */
  sharedDir: string;
  /** The flowpilot-simulator login the meters use, the same on every node. */
  login: { username: string; password: string };
  /** What every part said, for a failing wait's message. */
  diagnostics(): string;
}

/**
 * Redis, three nodes (n1 first: it makes the logins the others share), HAProxy in front.
 * `influxUnreachableFor`: a node whose ingest reaches InfluxDB only through a proxy that is down.
 */
async function startCluster(options: { influxUnreachableFor?: string } = {}): Promise<Cluster> {
  const influx = await createTestInflux({ timeoutMs: 5000 });
  const cut = await startTcpProxy(influx.config.url);
  cleanups.push(() => cut.close());
  cut.down();
  const redis = await startTestRedis();
  cleanups.push(() => redis.close());
  const root = mkdtempSync(join(tmpdir(), 'flowpilot-cluster-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const pilotFile = writePilotFile(root, [...METERS, ...Object.values(PINNED)]);

  // One logins file for the whole cluster (FLOWPILOT_CREDENTIALS_FILE), the services' secrets
  // beside it: a meter may land on any node (SPEC section 11).
  const sharedDir = join(root, 'shared');
  mkdirSync(sharedDir, { mode: 0o700 });
  const nodes: ClusterNode[] = [];
  for (const id of NODE_IDS) {
    const dataDir = join(root, id);
    mkdirSync(dataDir, { mode: 0o700 });
    const mqttPort = await freePort();
    const metricsPort = await freePort();
    const env = {
      FLOWPILOT_CLUSTER_REDIS_URL: redis.url,
      FLOWPILOT_NODE_ID: id,
      FLOWPILOT_DATA_DIR: dataDir,
      FLOWPILOT_CREDENTIALS_FILE: join(sharedDir, 'credentials.json'),
      FLOWPILOT_PILOT: pilotFile,
      FLOWPILOT_MQTT_PORT: String(mqttPort),
      FLOWPILOT_METRICS_PORT: String(metricsPort),
      FLOWPILOT_INFLUX_URL: id === options.influxUnreachableFor ? cut.url : influx.config.url,
      FLOWPILOT_INFLUX_DB: influx.config.database,
    };
    const node: ClusterNode = {
      id,
      dataDir,
      mqttPort,
      metricsPort,
      process: null,
      running: () => node.process !== null && node.process.child.exitCode === null && node.process.child.signalCode === null,
      async start() {
        const service = startService(['broker'], env);
        node.process = service;
        cleanups.push(() => service.kill('SIGKILL'));
        try {
          await waitForPort(mqttPort, 30_000, { alive: () => service.child.exitCode === null, what: `node ${id}` });
        } catch (error) {
          throw new Error(`${(error as Error).message}\n${service.output()}`);
        }
      },
    };
    nodes.push(node);
  }

  // n1 first: it makes the services' logins, which the others then find.
  const [first, ...others] = nodes as [ClusterNode, ...ClusterNode[]];
  await first.start();
  await Promise.all(others.map((node) => node.start()));

  const haproxy = await startTestHaproxy(nodes.map((node) => ({ name: node.id, port: node.mqttPort })));
  cleanups.push(() => haproxy.close());
  await eventually(() => haproxy.serverStatus(), (status) => NODE_IDS.every((id) => status[id] === 'UP'), 15_000, (status) => `HAProxy to see every node up: ${JSON.stringify(status)}`);

  const cluster: Cluster = {
    influx,
    redis,
    haproxy,
    nodes,
    root,
    pilotFile,
    sharedDir,
    login: simulatorLogin(sharedDir),
    diagnostics: () =>
      [
        ...nodes.map((node) => `--- node ${node.id} (${node.running() ? 'running' : `exited ${node.process?.child.exitCode ?? node.process?.child.signalCode}`}):\n${node.process?.output().slice(-3000) ?? ''}`),
        `--- redis (${redis.running() ? 'running' : 'stopped'}):\n${redis.output().slice(-2000)}`,
        `--- haproxy:\n${haproxy.output().slice(-2000)}`,
      ].join('\n'),
  };
  return cluster;
}

/** One gauge of a node's Prometheus /metrics (0 when the node does not answer). */
async function nodeGauge(node: ClusterNode, name: string): Promise<number> {
  if (!node.running()) return 0;
  const text = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`).then((r) => r.text(), () => '');
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** `flowpilot_connected_clients` of each node. */
async function clientsPerNode(cluster: Cluster): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const node of cluster.nodes) counts[node.id] = await nodeGauge(node, 'flowpilot_connected_clients');
  return counts;
}

async function startPublishers(cluster: Cluster, totalPerMeter: number) {
  const publishers = await startAckedPublishers({
    mqttUrl: cluster.haproxy.mqttUrl,
    ...cluster.login,
    meterIds: METERS,
    totalPerMeter,
    startTsMs: Date.now() - (totalPerMeter + 60) * 60_000,
    pauseMs: 60,
  });
  cleanups.push(() => publishers.close());
  return publishers;
}

/**
 * Waits for the publishers to have every reading acknowledged, at most `timeoutMs`; otherwise
 * fails with how far they got and what every part of the cluster said.
 */
async function publishersFinish(cluster: Cluster, publishing: Promise<void>, acked: Set<string>, expected: number, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(async () => {
      const clients = await clientsPerNode(cluster).catch(() => ({}));
      reject(new Error(`the meters had ${acked.size} of ${expected} readings acknowledged after ${timeoutMs} ms; clients per node ${JSON.stringify(clients)}\n${cluster.diagnostics()}`));
    }, timeoutMs);
  });
  try {
    await Promise.race([publishing, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SPEC section 6: every acknowledged (meterId, seq) in InfluxDB, each once. */
async function checkAllStored(cluster: Cluster, acked: Set<string>, scenario: string): Promise<void> {
  const stored = await eventually(
    () => storedPairs(cluster.influx),
    (s) => s.points >= acked.size,
    90_000,
    (s) => `${s.points} of ${acked.size} acknowledged readings stored\n${cluster.diagnostics()}`,
  );
  const lost = [...acked].filter((pair) => !stored.pairs.has(pair));
  console.log(`[cluster] ${scenario}: acknowledged ${acked.size}, stored ${stored.points}, lost ${lost.length}`);
  expect(lost).toEqual([]);
  // Each (meter, seq) has its own timestamp: a reading written twice (resent after a kill) is still one point.
  expect(stored.points).toBe(acked.size);
}

/** An SSE client of GET /api/v1/live: the meter ids of the readings it received. */
function openLiveStream(url: string): { meters: Set<string>; close(): void } {
  const meters = new Set<string>();
  let response: IncomingMessage | undefined;
  const request = get(url, { headers: { accept: 'text/event-stream' } }, (res) => {
    response = res;
    let buffer = '';
    res.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(event);
        if (/^event: reading$/m.test(event) && data) meters.add((JSON.parse(data[1]!) as { meterId: string }).meterId);
      }
    });
  });
  request.on('error', () => {});
  return {
    meters,
    close: () => {
      response?.destroy();
      request.destroy();
    },
  };
}

/**
 * `flowpilot api` with its live feed connected through HAProxy (to whichever node), and one
 * meter pinned to each node: the feed must see a reading published through every node, so at
 * least two of them reached it by forwarding over Redis. Answers the pairs acknowledged.
 */
async function checkLiveFeedSeesEveryNode(cluster: Cluster, label: string): Promise<Set<string>> {
  const apiDir = mkdtempSync(join(cluster.root, 'api-'));
  const httpPort = await freePort();
  const apiPassword = (JSON.parse(readFileSync(join(cluster.sharedDir, 'service-logins.json'), 'utf8')) as Record<string, string>)['flowpilot-api']!;
  const api = startService(['api'], {
    FLOWPILOT_DATA_DIR: apiDir,
    FLOWPILOT_PILOT: cluster.pilotFile,
    FLOWPILOT_MQTT_URL: cluster.haproxy.mqttUrl,
    FLOWPILOT_MQTT_USERNAME: 'flowpilot-api',
    FLOWPILOT_MQTT_PASSWORD: apiPassword,
    FLOWPILOT_HTTP_PORT: String(httpPort),
    FLOWPILOT_INFLUX_URL: cluster.influx.config.url,
    FLOWPILOT_INFLUX_DB: cluster.influx.config.database,
  });
  cleanups.push(() => api.kill('SIGKILL'));
  const base = `http://127.0.0.1:${httpPort}`;
  await waitForPort(httpPort, 30_000, { alive: () => api.child.exitCode === null, what: 'flowpilot api' }).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\n${api.output()}`);
  });
  // Ready: InfluxDB answers and the live feed is connected (SPEC section 5).
  await eventually(() => fetch(`${base}/readyz`).then((r) => r.status, () => 0), (status) => status === 200, 20_000, (status) => `the API to be ready (last ${status})\n${api.output()}`);
  const stream = openLiveStream(`${base}/api/v1/live`);
  cleanups.push(() => stream.close());

  const clients = new Map<string, MqttClient>();
  for (const node of cluster.nodes) {
    const meterId = PINNED[node.id as keyof typeof PINNED];
    const client = await connectMeter(`mqtt://127.0.0.1:${node.mqttPort}`, cluster.login.username, cluster.login.password, { clientId: `${cluster.login.username}:${meterId}` });
    cleanups.push(() => client.endAsync(true));
    clients.set(meterId, client);
  }
  const acked = new Set<string>();
  let seq = 0;
  // A subscription reaches the other nodes through Redis a moment after it is made: publish until seen.
  await eventually(
    async () => {
      for (const [meterId, client] of clients) {
        if (stream.meters.has(meterId)) continue;
        await client.publishAsync(`meters/${meterId}/readings`, JSON.stringify(wireReading(meterId, seq, Date.now() - 1000)), { qos: 1 });
        acked.add(`${meterId}#${seq}`);
      }
      seq += 1;
      return [...clients.keys()].filter((meterId) => stream.meters.has(meterId));
    },
    (seen) => seen.length === clients.size,
    30_000,
    (seen) => `the live feed to see a reading through every node; seen: ${seen.join(', ') || 'none'}\n${api.output()}\n${cluster.diagnostics()}`,
    300,
  );
  console.log(`[cluster] ${label}: the API's live feed (through HAProxy) saw readings published through ${cluster.nodes.map((n) => n.id).join(', ')}`);
  return acked;
}

describe('a cluster of three broker nodes behind HAProxy (SPEC section 11)', () => {
  it('loses nothing when a node is SIGKILLed under load: its meters reconnect through HAProxy to the others and resend, and the restarted node drains its store', async () => {
    const cluster = await startCluster();
    const publishers = await startPublishers(cluster, 200);
    const publishing = publishers.run();

    await sleep(3_000);
    const victim = cluster.nodes[1]!;
    const before = await clientsPerNode(cluster);
    console.log(`[cluster] clients per node before the kill: ${JSON.stringify(before)}`);
    expect(before[victim.id]).toBeGreaterThan(0);
    await victim.process!.kill('SIGKILL');
    // Every meter is connected again, to the two nodes left.
    const after = await eventually(
      () => clientsPerNode(cluster),
      (counts) => Object.values(counts).reduce((a, b) => a + b, 0) >= METERS.length,
      30_000,
      (counts) => `the meters to reconnect to the other nodes: ${JSON.stringify(counts)}\n${cluster.diagnostics()}`,
    );
    console.log(`[cluster] clients per node after ${victim.id} was killed: ${JSON.stringify(after)}`);
    await sleep(1_000);

    await victim.start();
    await eventually(() => cluster.haproxy.serverStatus(), (status) => status[victim.id] === 'UP', 15_000, (status) => `HAProxy to see ${victim.id} up again: ${JSON.stringify(status)}`);
    await publishersFinish(cluster, publishing, publishers.acked, METERS.length * 200, 60_000);
    expect(publishers.acked.size).toBe(METERS.length * 200);
    await checkAllStored(cluster, publishers.acked, `${victim.id} SIGKILLed under load and restarted`);
  }, 180_000);

  it('loses nothing when Redis is stopped for 10 s under load, and forwards again once it is back', async () => {
    const cluster = await startCluster();
    const publishers = await startPublishers(cluster, 250);
    const publishing = publishers.run();

    await sleep(3_000);
    await cluster.redis.stop();
    const ackedAtStop = publishers.acked.size;
    await sleep(10_000);
    console.log(`[cluster] Redis down for 10 s: ${publishers.acked.size - ackedAtStop} readings acknowledged meanwhile`);
    await cluster.redis.start();
    await publishersFinish(cluster, publishing, publishers.acked, METERS.length * 250, 60_000);
    expect(cluster.nodes.filter((node) => !node.running()).map((node) => node.id)).toEqual([]);
    const liveAcked = await checkLiveFeedSeesEveryNode(cluster, 'after the Redis outage');
    await checkAllStored(cluster, new Set([...publishers.acked, ...liveAcked]), 'Redis stopped for 10 s');
  }, 180_000);

  it('delivers readings published through every node to the API\'s live feed, and stores them', async () => {
    const cluster = await startCluster();
    const acked = await checkLiveFeedSeesEveryNode(cluster, 'no faults');
    await checkAllStored(cluster, acked, 'live feed through every node');
  }, 120_000);

  it('drains a node that died for good with `flowpilot ingest --data-dir` on its data dir', async () => {
    // n3's ingest cannot reach InfluxDB, so what n3 accepts stays in its store until n3 dies.
    const cluster = await startCluster({ influxUnreachableFor: 'n3' });
    const victim = cluster.nodes[2]!;
    const client = await connectMeter(`mqtt://127.0.0.1:${victim.mqttPort}`, cluster.login.username, cluster.login.password, { clientId: `${cluster.login.username}:${PINNED.n3}` });
    cleanups.push(() => client.endAsync(true));
    const acked = new Set<string>();
    const startTsMs = Date.now() - 2000 * 60_000;
    for (let seq = 0; seq < 1000; seq += 100) {
      const batch = Array.from({ length: 100 }, (_, i) => wireReading(PINNED.n3, seq + i, startTsMs + (seq + i) * 60_000));
      await client.publishAsync(`meters/${PINNED.n3}/readings`, JSON.stringify(batch), { qos: 1 });
      for (let i = 0; i < 100; i++) acked.add(`${PINNED.n3}#${seq + i}`);
    }
    const waiting = await nodeGauge(victim, 'flowpilot_store_depth_records');
    expect(waiting).toBeGreaterThan(0);
    await victim.process!.kill('SIGKILL');
    await client.endAsync(true);

    // As an operator would on any host: drain it, and exit once every reading is in InfluxDB.
    const drained = await runFlowpilot(['ingest', '--data-dir', victim.dataDir, '--until-empty'], {
      FLOWPILOT_PILOT: cluster.pilotFile,
      FLOWPILOT_INFLUX_URL: cluster.influx.config.url,
      FLOWPILOT_INFLUX_DB: cluster.influx.config.database,
      FLOWPILOT_INGEST_METRICS_PORT: String(await freePort()),
      FLOWPILOT_LOG_LEVEL: 'warn',
    });
    expect(drained, `${drained.stdout}\n${drained.stderr}`).toMatchObject({ code: 0 });
    console.log(`[cluster] ${victim.id} died for good with ${waiting} records in its store; flowpilot ingest --data-dir --until-empty drained them`);
    await checkAllStored(cluster, acked, `${victim.id} died for good, drained by flowpilot ingest --data-dir`);
  }, 120_000);
});
