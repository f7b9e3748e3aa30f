import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMeterRegistry, parsePilotConfig } from '@flowpilot/schema';
import { openDurableStore, type DurableStore } from '@flowpilot/store';
import { createBroker, type FlowPilotBroker } from './broker.ts';
import { openClusterBackend, openRedis, type ClusterBackend } from './cluster.ts';
import { openCredentialsStore, type CredentialsStore } from './credentials.ts';

/*
 * Two broker nodes in this process over one real redis-server (SPEC section 11): forwarding,
 * client-id takeover, retained status and the wills of a node that died, across nodes. Each node
 * has its own durable store; the credentials file is shared, as in deploy/cluster.
 */

const HEARTBEAT_MS = 200;
const registry = createMeterRegistry(
  parsePilotConfig(`
pilot: { id: c, name: Cluster test, timezone: UTC }
meters:
  - { id: M1, site: S1, role: monitor, intervalSec: 60 }
  - { id: M2, site: S1, role: monitor, intervalSec: 60 }
`),
);
const log = pino({ level: 'silent' });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Debian's redis-server, installed with apt-get when missing and we are root (as the Modbus tests install theirs). */
function ensureRedisServer(): void {
  if (spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status === 0) return;
  const canInstall = process.getuid?.() === 0 && existsSync('/etc/debian_version');
  if (!canInstall) throw new Error('the cluster tests need redis-server: sudo apt-get install -y redis-server');
  spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

let redis: ChildProcess;
let redisUrl: string;
let dir: string;
let credentials: CredentialsStore;
const passwords: Record<string, string> = {};

beforeAll(async () => {
  ensureRedisServer();
  dir = mkdtempSync(join(tmpdir(), 'flowpilot-cluster-'));
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${port}`;
  const probe = openRedis(redisUrl);
  probe.on('error', () => {});
  for (let i = 0; ; i += 1) {
    try {
      await probe.ping();
      break;
    } catch (error) {
      if (i > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  probe.disconnect();
  credentials = openCredentialsStore(join(dir, 'credentials.json'));
  passwords.M1 = await credentials.add('M1', 'meter');
  passwords.M2 = await credentials.add('M2', 'meter');
  passwords.svc = await credentials.add('svc', 'service');
});

afterAll(() => {
  redis?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  const flush = openRedis(redisUrl);
  await flush.flushall();
  flush.disconnect();
});

interface Node {
  broker: FlowPilotBroker;
  backend: ClusterBackend;
  store: DurableStore;
  url: string;
}

async function startNode(nodeId: string): Promise<Node> {
  const store = openDurableStore({ path: join(dir, nodeId, `spool-${Date.now()}.sqlite`), maxRecords: 10_000, meterShare: 1 });
  const backend = openClusterBackend({ redisUrl, nodeId });
  const broker = await createBroker({ registry, credentials, store, log, cluster: backend, heartbeatIntervalMs: HEARTBEAT_MS });
  const address = await broker.listen(0, '127.0.0.1');
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await broker.close();
    closed = true;
    store.close();
  });
  return { broker, backend, store, url: `mqtt://127.0.0.1:${address.port}` };
}

async function connect(node: Node, username: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await connectAsync(node.url, { username, password: passwords[username], clientId: username, protocolVersion: 4, reconnectPeriod: 0, ...options });
  cleanups.push(() => client.endAsync(true));
  return client;
}

function messages(client: MqttClient): { topic: string; payload: string; retain: boolean }[] {
  const seen: { topic: string; payload: string; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return seen;
}

async function until<T>(read: () => T, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const reading = (meterId: string, seq: number) => JSON.stringify({ v: 1, meterId, seq, ts: Date.now() - 1000, flow: 1.5, total: 100 + seq });

describe('a broker cluster on Redis', () => {
  it('forwards a reading published on one node to a subscriber of the other, each node storing what it accepted', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const watcher = await connect(a, 'svc', { clientId: 'svc:watch' });
    const seen = messages(watcher);
    await watcher.subscribeAsync('meters/+/readings', { qos: 1 });
    const meter = await connect(b, 'M1');
    await meter.publishAsync('meters/M1/readings', reading('M1', 1), { qos: 1 });
    const got = await until(() => seen, (s) => s.length > 0);
    expect(got[0]).toMatchObject({ topic: 'meters/M1/readings' });
    expect(JSON.parse(got[0]!.payload)).toMatchObject({ meterId: 'M1', seq: 1 });
    // The PUBACK came after node B's own commit (SPEC section 6); node A stored nothing.
    expect(b.store.depth().records).toBe(1);
    expect(a.store.depth().records).toBe(0);
    expect(a.backend.readiness()).toEqual({ ok: true });
  });

  it('ends the old session when a meter reconnects through another node (client-id takeover)', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const first = await connect(a, 'M1', { clean: false });
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    await connect(b, 'M1', { clean: false });
    await closed;
    await until(() => a.broker.stats().connectedClients, (n) => n === 0);
    expect(b.broker.stats().connectedClients).toBe(1);
  });

  it('delivers a retained status published on one node to a new subscriber on the other', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const meter = await connect(a, 'M1');
    await meter.publishAsync('meters/M1/status', JSON.stringify({ online: true, ts: Date.now(), firmware: '2.1' }), { qos: 1, retain: true });
    const fresh = await connect(b, 'svc', { clientId: 'svc:fresh' });
    const seen = messages(fresh);
    await fresh.subscribeAsync('meters/+/status', { qos: 1 });
    const got = await until(() => seen, (s) => s.length > 0);
    expect(got[0]).toMatchObject({ topic: 'meters/M1/status', retain: true });
    expect(JSON.parse(got[0]!.payload)).toMatchObject({ online: true, firmware: '2.1' });
  });

  it('delivers the will of a client whose node died to a subscriber on another node', async () => {
    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const watcher = await connect(b, 'svc', { clientId: 'svc:watch' });
    const seen = messages(watcher);
    await watcher.subscribeAsync('meters/+/status', { qos: 1 });
    await connect(a, 'M2', { will: { topic: 'meters/M2/status', payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: true } });
    // Wait until node A's will of M2 is in Redis, then node A "dies": it stops talking to Redis
    // at once, without closing its clients (so it publishes no will itself), as a killed process would.
    const redisCheck = openRedis(redisUrl);
    cleanups.push(() => redisCheck.disconnect());
    for (let i = 0; (await redisCheck.llen('will')) === 0 && (await redisCheck.keys('will*')).length === 0; i += 1) {
      if (i > 100) throw new Error('the will never reached Redis');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    killAbruptly(a);
    const got = await until(() => seen, (s) => s.some((m) => m.topic === 'meters/M2/status'), 15_000);
    expect(JSON.parse(got.find((m) => m.topic === 'meters/M2/status')!.payload)).toMatchObject({ online: false });
    // Node B admitted the will into its own store, as any status (SPEC section 6).
    expect(b.store.depth().records).toBe(1);
  });
});

/** A node that stops at once: its heartbeat and will timers stop and its Redis connections drop. */
function killAbruptly(node: Node): void {
  const aedes = node.broker.aedes as unknown as {
    _heartbeatInterval: NodeJS.Timeout;
    _clearWillInterval: NodeJS.Timeout;
    mq: { subConn: { disconnect(): void }; pubConn: { disconnect(): void }; close(done: () => void): void; emit(packet: unknown, done?: () => void): void };
  };
  clearInterval(aedes._heartbeatInterval);
  clearInterval(aedes._clearWillInterval);
  aedes.mq.subConn.disconnect();
  aedes.mq.pubConn.disconnect();
  // Dead: what it would still publish (its clients' wills at the test's end) goes nowhere.
  aedes.mq.emit = (_packet, done) => done?.();
  aedes.mq.close = (done) => done();
}
