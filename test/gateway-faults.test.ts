import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { createModbusSerialLink, FAILURE_KINDS, openOutbox, type FailureKind } from '@flowpilot/gateway';
import { quoteString, type InfluxClient } from '@flowpilot/influx';
import { createTestInflux } from './helpers/influx.ts';
import { startModbusDevice, type DeviceRegisterMap, type ModbusDevice } from './helpers/modbus-device.ts';
import { freePort, waitForPort } from './helpers/ports.ts';
import { runFlowpilot, simulatorLogin, startService, writePilotFile, type ServiceProcess } from './helpers/processes.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { eventually } from './helpers/wait.ts';

/**
 * Issue 12's faults on real parts (SPEC sections 6 and 10): `flowpilot broker` (with its ingest)
 * and `flowpilot gateway` as processes, pymodbus devices over TCP and RTU, a real influxd.
 * Each scenario polls at 1 s and ends with the check of SPEC section 6 made for a gateway:
 * every (meterId, seq) the gateway made is in InfluxDB, once, and every seq it numbered that is
 * not there is a poll it counted as skipped (its /metrics, flowpilot_gateway_poll_failures_total),
 * each missing seq one interval boundary of its own. Each prints one line:
 *
 *   [gateway fault: <name>] made N, stored N, lost 0, skipped K (kinds …)
 *
 * "made" counts readings (seqs numbered minus polls skipped), "stored" the ones InfluxDB holds.
 * The waits are bounded; nothing here asserts how fast anything happened.
 */

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const PASSWORD = 'gateway-faults-password';
const LOGIN = 'gw-faults';
const INTERVAL_MS = 1000;
const DEVICE_MAP = {
  flow: { table: 'input', address: 0, type: 'float32' },
  total: { table: 'holding', address: 0, type: 'float64' },
} as const satisfies DeviceRegisterMap;
const REGISTERS = '{ flow: { table: input, address: 0, type: float32 }, total: { table: holding, address: 0, type: float64, unit: m3 } }';

// --- the gateway's /metrics -----------------------------------------------------------------

interface MeterFigures {
  polls: number;
  readings: number;
  failures: Record<FailureKind, number>;
  sensorFault: number;
  connected: number;
  published: number;
  publishes: number;
}

interface GatewayFigures {
  meters: Map<string, MeterFigures>;
  outboxReadings: number;
}

/** The Prometheus text of the gateway's /metrics, read into its figures per meter. */
function parseMetrics(text: string): GatewayFigures {
  const meters = new Map<string, MeterFigures>();
  const meter = (id: string): MeterFigures => {
    let figures = meters.get(id);
    if (!figures) {
      figures = { polls: 0, readings: 0, failures: Object.fromEntries(FAILURE_KINDS.map((k) => [k, 0])) as Record<FailureKind, number>, sensorFault: 0, connected: 0, published: 0, publishes: 0 };
      meters.set(id, figures);
    }
    return figures;
  };
  let outboxReadings = Number.NaN;
  for (const line of text.split('\n')) {
    const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const [, name, labelText = '', valueText] = match;
    const labels = Object.fromEntries([...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    const value = Number(valueText);
    const id = labels.meter;
    if (name === 'flowpilot_gateway_outbox_readings') outboxReadings = value;
    if (id === undefined) continue;
    const figures = meter(id);
    if (name === 'flowpilot_gateway_polls_total') figures.polls = value;
    else if (name === 'flowpilot_gateway_readings_total') figures.readings = value;
    else if (name === 'flowpilot_gateway_poll_failures_total') figures.failures[labels.kind as FailureKind] = value;
    else if (name === 'flowpilot_gateway_sensor_fault') figures.sensorFault = value;
    else if (name === 'flowpilot_gateway_connected') figures.connected = value;
    else if (name === 'flowpilot_gateway_published_total') figures.published = value;
    else if (name === 'flowpilot_gateway_publishes_total') figures.publishes = value;
  }
  return { meters, outboxReadings };
}

// --- the world ------------------------------------------------------------------------------

interface GatewayProcess {
  process: ServiceProcess;
  metricsUrl: string;
  figures(): Promise<GatewayFigures>;
  health(): Promise<{ status: string; devices: { meterId: string; sensorFault: boolean; consecutiveFailures: number }[] }>;
}

interface Watcher {
  /** Each reading the broker forwarded, with whether it came in an array. */
  readings: { meterId: string; seq: number; ts: string; inArray: boolean }[];
}

async function faultWorld(meterIds: readonly string[]) {
  const influx = await createTestInflux({ timeoutMs: 5000 });
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-gateway-faults-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const mqttPort = await freePort();
  const env = {
    FLOWPILOT_DATA_DIR: join(dir, 'broker'),
    FLOWPILOT_PILOT: writePilotFile(dir, meterIds),
    FLOWPILOT_MQTT_PORT: String(mqttPort),
    FLOWPILOT_METRICS_PORT: String(await freePort()),
    FLOWPILOT_INGEST_METRICS_PORT: String(await freePort()),
    FLOWPILOT_INFLUX_URL: influx.config.url,
    FLOWPILOT_INFLUX_DB: influx.config.database,
  };
  const gatewayDataDir = join(dir, 'gateway');
  const metricsPort = await freePort();

  /** `flowpilot broker` (with its ingest), on the same port and data dir each time. */
  const startBroker = async (): Promise<ServiceProcess> => {
    const broker = startService(['broker'], env);
    cleanups.push(() => broker.kill('SIGKILL'));
    await waitForPort(mqttPort, 30_000, { alive: () => broker.child.exitCode === null, what: 'flowpilot broker' }).catch((error: Error) => {
      throw new Error(`${error.message}\n${broker.output()}`);
    });
    return broker;
  };

  /** The gateway's login, as an operator adds it: `flowpilot credentials add gw-faults --role gateway --meters …`. */
  const addGatewayLogin = async () => {
    const passwordFile = join(dir, 'gateway.secret');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const added = await runFlowpilot(['credentials', 'add', LOGIN, '--role', 'gateway', '--meters', meterIds.join(','), '--password-file', passwordFile], env);
    expect(added.code, added.stderr).toBe(0);
  };

  const writeGatewayFile = (brokerUrl: string, devices: readonly { meterId: string; device: ModbusDevice; unitId: number; extra?: string }[]): string => {
    const lines = [`broker: { url: "${brokerUrl}", username: ${LOGIN}, password: ${PASSWORD} }`, `dataDir: ${gatewayDataDir}`, `metrics: { host: 127.0.0.1, port: ${metricsPort} }`, 'devices:'];
    for (const { meterId, device, unitId, extra } of devices) {
      const where = device.transport === 'tcp' ? `transport: tcp, host: ${device.host}, port: ${device.port}` : `transport: rtu, path: ${device.serialPath}, baudRate: ${device.baudRate}`;
      lines.push(`  - { meterId: ${meterId}, ${where}, unitId: ${unitId}, intervalSec: 1, ${extra ?? 'timeoutMs: 300, retries: 1'}, registers: ${REGISTERS} }`);
    }
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  };

  /** `flowpilot gateway --config F`, as a process of its own (SIGKILL reaches it as it would in the field). */
  const startGateway = async (file: string): Promise<GatewayProcess> => {
    const gateway = startService(['gateway', '--config', file], {});
    cleanups.push(() => gateway.kill('SIGKILL'));
    await waitForPort(metricsPort, 30_000, { alive: () => gateway.child.exitCode === null, what: 'flowpilot gateway' }).catch((error: Error) => {
      throw new Error(`${error.message}\n${gateway.output()}`);
    });
    const metricsUrl = `http://127.0.0.1:${metricsPort}`;
    return {
      process: gateway,
      metricsUrl,
      figures: async () => parseMetrics(await (await fetch(`${metricsUrl}/metrics`)).text()),
      health: async () => (await (await fetch(`${metricsUrl}/healthz`)).json()) as Awaited<ReturnType<GatewayProcess['health']>>,
    };
  };

  /**
   * The meter's retained status, as a new subscriber gets it. (Asked afresh rather than watched
   * live: Aedes 1.2 drops a retained status for a live subscriber when a message published right
   * after it overtakes it while the LevelDB persistence stores the retained one: its `dedupe`
   * sees a lower brokerCounter, moscajs/aedes#955 and #994. The gateway publishes its status and
   * then at once the reading that cleared the fault.)
   */
  let probes = 0;
  const retainedStatus = async (meterId: string): Promise<Record<string, unknown>> => {
    const login = simulatorLogin(env.FLOWPILOT_DATA_DIR);
    const client = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `${login.username}:status-probe-${(probes += 1)}`, username: login.username, password: login.password, protocolVersion: 4, clean: true, reconnectPeriod: 0 });
    try {
      const retained = new Promise<Record<string, unknown>>((resolve) => client.on('message', (_topic, payload, packet) => packet.retain && resolve(JSON.parse(payload.toString()) as Record<string, unknown>)));
      await client.subscribeAsync(`meters/${meterId}/status`, { qos: 1 });
      const status = await Promise.race([retained, sleep(5_000).then(() => null)]);
      if (status === null) throw new Error(`no retained status for ${meterId} within 5 s`);
      return status;
    } finally {
      await client.endAsync(true);
    }
  };

  /** A service login subscribed to every meter's readings, straight on the broker. */
  const startWatcher = async (): Promise<Watcher> => {
    const login = simulatorLogin(env.FLOWPILOT_DATA_DIR);
    const client: MqttClient = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      clientId: `${login.username}:gateway-faults-watcher`,
      username: login.username,
      password: login.password,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 500,
    });
    cleanups.push(() => client.endAsync(true));
    const seen: Watcher = { readings: [] };
    client.on('message', (topic, payload) => {
      const meterId = topic.split('/')[1]!;
      const parsed = JSON.parse(payload.toString()) as Record<string, unknown> | Record<string, unknown>[];
      for (const r of Array.isArray(parsed) ? parsed : [parsed]) seen.readings.push({ meterId, seq: r.seq as number, ts: r.ts as string, inArray: Array.isArray(parsed) });
    });
    await client.subscribeAsync('meters/+/readings', { qos: 1 });
    return seen;
  };

  const startDevice = async (transport: 'tcp' | 'rtu', unitIds: readonly number[] = [1]): Promise<ModbusDevice> => {
    const device = await startModbusDevice({ transport, unitIds, map: DEVICE_MAP, profile: [[0, 42.7], [5, 17.25], [10, 63.5]], initialTotal: 5_000 });
    cleanups.push(() => device.stop());
    return device;
  };

  return { influx, env, mqttPort, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, gatewayDataDir, startBroker, addGatewayLogin, writeGatewayFile, startGateway, startWatcher, retainedStatus, startDevice };
}

// --- the check ------------------------------------------------------------------------------

/** Each meter's stored points: seq → the ts of every point with that seq. */
async function storedSeqs(influx: InfluxClient, meterIds: readonly string[]): Promise<Map<string, Map<number, number[]>>> {
  const byMeter = new Map<string, Map<number, number[]>>();
  for (const meterId of meterIds) {
    const seqs = new Map<number, number[]>();
    const [series] = await influx.query(`SELECT seq FROM reading WHERE meter = ${quoteString(meterId)}`);
    for (const [ts, seq] of (series?.values ?? []) as [number, number][]) seqs.set(seq, [...(seqs.get(seq) ?? []), ts]);
    byMeter.set(meterId, seqs);
  }
  return byMeter;
}

/** What the gateway numbered, per meter: seqs 0 … end − 1, of which `skipped` polls by kind made no reading. */
interface Made {
  end: number;
  skipped: Record<FailureKind, number>;
}

interface DeliveryReport {
  made: number;
  stored: number;
  lost: string[];
  skipped: number;
  kinds: Partial<Record<FailureKind, number>>;
  /** Per meter, the seqs numbered and not stored, each with the boundary it was polled for. */
  missing: Map<string, { seq: number; tsMs: number }[]>;
  stores: Map<string, Map<number, number[]>>;
}

/**
 * SPEC section 6 for a gateway: waits (bounded) until InfluxDB holds as many of each meter's
 * numbered seqs as the gateway made readings, then checks that no seq is stored twice (a second
 * point at another ts), that the seqs missing are as many as the polls skipped, and that each
 * missing seq is one boundary between its stored neighbours (ts interpolated from both sides).
 */
async function checkDelivery(name: string, influx: InfluxClient, made: Map<string, Made>): Promise<DeliveryReport> {
  const meterIds = [...made.keys()];
  const expected = (meterId: string) => made.get(meterId)!.end - Object.values(made.get(meterId)!.skipped).reduce((a, b) => a + b, 0);
  const storedBelowEnd = (stores: Map<string, Map<number, number[]>>, meterId: string) => [...stores.get(meterId)!.keys()].filter((seq) => seq < made.get(meterId)!.end).length;
  const stores = await eventually(
    () => storedSeqs(influx, meterIds),
    (stores) => meterIds.every((id) => storedBelowEnd(stores, id) >= expected(id)),
    60_000,
    (stores) => `stored / made per meter: ${meterIds.map((id) => `${id} ${storedBelowEnd(stores, id)}/${expected(id)}`).join(', ')}`,
  ).catch(async () => storedSeqs(influx, meterIds)); // the report below says what is missing
  const report: DeliveryReport = { made: 0, stored: 0, lost: [], skipped: 0, kinds: {}, missing: new Map(), stores };
  for (const [meterId, { end, skipped }] of made) {
    const seqs = stores.get(meterId)!;
    for (const [seq, times] of seqs) expect(times, `${meterId} seq ${seq} stored at ${times.length} times`).toHaveLength(1);
    const skippedCount = Object.values(skipped).reduce((a, b) => a + b, 0);
    for (const [kind, n] of Object.entries(skipped) as [FailureKind, number][]) if (n > 0) report.kinds[kind] = (report.kinds[kind] ?? 0) + n;
    report.made += end - skippedCount;
    report.skipped += skippedCount;
    const stored = [...seqs.keys()].filter((seq) => seq < end).sort((a, b) => a - b);
    report.stored += stored.length;
    const missing: { seq: number; tsMs: number }[] = [];
    for (let seq = 0; seq < end; seq++) {
      if (seqs.has(seq)) continue;
      const below = stored.filter((s) => s < seq).at(-1);
      const above = stored.find((s) => s > seq);
      const fromBelow = below === undefined ? null : seqs.get(below)![0]! + (seq - below) * INTERVAL_MS;
      const fromAbove = above === undefined ? null : seqs.get(above)![0]! - (above - seq) * INTERVAL_MS;
      // One seq per boundary: both neighbours put the missing poll at the same time.
      if (fromBelow !== null && fromAbove !== null) expect(fromBelow, `${meterId} seq ${seq}: its neighbours disagree on its boundary`).toBe(fromAbove);
      missing.push({ seq, tsMs: fromBelow ?? fromAbove ?? Number.NaN });
    }
    report.missing.set(meterId, missing);
    // A seq missing beyond the polls counted as skipped is a reading lost.
    if (missing.length > skippedCount) report.lost.push(...missing.slice(0, missing.length - skippedCount).map((m) => `${meterId}#${m.seq}`));
  }
  const kinds = Object.entries(report.kinds).map(([kind, n]) => `${kind} ${n}`).join(', ') || 'none';
  console.log(`[gateway fault: ${name}] made ${report.made}, stored ${report.stored}, lost ${report.lost.length}, skipped ${report.skipped} (kinds ${kinds})`);
  expect(report.lost).toEqual([]);
  // Every seq missing is a skipped poll: as many missing as counted skipped, meter by meter.
  for (const [meterId, { skipped }] of made) {
    const skippedCount = Object.values(skipped).reduce((a, b) => a + b, 0);
    expect({ meterId, missing: report.missing.get(meterId)!.length }).toEqual({ meterId, missing: skippedCount });
  }
  return report;
}

/** The snapshot that fixes the set to check: seqs numbered by now (base + polls of this run) and the skips counted. */
function madeFrom(figures: GatewayFigures, base: ReadonlyMap<string, number> = new Map(), earlierSkips: ReadonlyMap<string, Record<FailureKind, number>> = new Map()): Map<string, Made> {
  const made = new Map<string, Made>();
  for (const [meterId, m] of figures.meters) {
    const skipped = { ...m.failures };
    for (const [kind, n] of Object.entries(earlierSkips.get(meterId) ?? {}) as [FailureKind, number][]) skipped[kind] += n;
    made.set(meterId, { end: (base.get(meterId) ?? 0) + m.polls, skipped });
  }
  return made;
}

async function untilStored(influx: InfluxClient, meterIds: readonly string[], atLeast: number, what: string): Promise<void> {
  await eventually(
    () => storedSeqs(influx, meterIds),
    (stores) => meterIds.every((id) => stores.get(id)!.size >= atLeast),
    30_000,
    (stores) => `${what}: ${meterIds.map((id) => `${id} ${stores.get(id)!.size}`).join(', ')} of ${atLeast}`,
  );
}

// --- the scenarios --------------------------------------------------------------------------

describe('the Modbus field gateway under faults (issue 12), every reading made reaches InfluxDB', () => {
  it('loses nothing while the broker is down for 60 s and polling goes on', async () => {
    const meterIds = ['GF-B1', 'GF-B2', 'GF-B3'];
    const world = await faultWorld(meterIds);
    let broker = await world.startBroker();
    await world.addGatewayLogin();
    const device = await world.startDevice('tcp', [1, 2, 3]);
    const gateway = await world.startGateway(world.writeGatewayFile(world.mqttUrl, meterIds.map((meterId, i) => ({ meterId, device, unitId: i + 1 }))));
    await untilStored(world.influx, meterIds, 3, 'readings before the outage');

    await broker.kill('SIGTERM');
    const before = await gateway.figures();
    // 60 s without a broker, polling on: the readings wait in the outbox.
    await sleep(60_000);
    const during = await gateway.figures();
    expect([...during.meters.values()].every((m) => m.connected === 0)).toBe(true);
    expect(during.outboxReadings).toBeGreaterThan(meterIds.length * 10);

    broker = await world.startBroker();
    const drained = await eventually(gateway.figures, (f) => f.outboxReadings === 0 && [...f.meters.values()].every((m) => m.connected === 1), 60_000, (f) => `outbox ${f.outboxReadings}`);
    const report = await checkDelivery('broker down 60 s', world.influx, madeFrom(drained));
    expect(report.skipped).toBe(0);
    for (const [meterId, m] of drained.meters) {
      // The readings of the outage went as arrays (SPEC section 1 backfill), fewer PUBLISHes than readings.
      expect(m.published - before.meters.get(meterId)!.published).toBeGreaterThan(m.publishes - before.meters.get(meterId)!.publishes);
    }
  }, 200_000);

  it('loses nothing when the gateway is SIGKILLed while a backlog array is in flight, and goes on numbering after its restart', async () => {
    const meterIds = ['GF-K1', 'GF-K2', 'GF-K3'];
    const world = await faultWorld(meterIds);
    await world.startBroker();
    await world.addGatewayLogin();
    const watcher = await world.startWatcher();
    const device = await world.startDevice('tcp', [1, 2, 3]);
    // The gateway reaches the broker through a proxy that can cut the link and hold the broker's answers back.
    const proxy = await startTcpProxy(world.mqttUrl);
    cleanups.push(() => proxy.close());
    const file = world.writeGatewayFile(proxy.url, meterIds.map((meterId, i) => ({ meterId, device, unitId: i + 1 })));
    let gateway = await world.startGateway(file);
    await untilStored(world.influx, meterIds, 2, 'readings before the backlog');

    // A backlog: the link is cut for a while, polling goes on.
    proxy.down();
    let lastFigures = await eventually(gateway.figures, (f) => f.outboxReadings >= meterIds.length * 6, 30_000, (f) => `outbox ${f.outboxReadings}`);
    // The link comes back slow: the broker takes the backlog arrays, its PUBACKs are held in the proxy for 5 s.
    proxy.setResponseDelay(5_000);
    const seenBefore = watcher.readings.length;
    proxy.up();
    await eventually(
      async () => {
        // Figures are taken while the gateway can still answer: the last ones before the kill count its skips.
        lastFigures = await gateway.figures();
        return watcher.readings.slice(seenBefore).some((r) => r.inArray);
      },
      Boolean,
      30_000,
      'a backlog array accepted by the broker',
    );
    await gateway.process.kill('SIGKILL');

    // The array the broker accepted is still in the outbox: its PUBACK never reached the gateway.
    const outbox = openOutbox({ path: join(world.gatewayDataDir, 'outbox.sqlite') });
    const base = new Map(meterIds.map((id) => [id, outbox.nextSeq(id)]));
    const pending = meterIds.flatMap((id) => outbox.pending(id, 100_000).map((row) => `${id}#${row.seq}`));
    outbox.close();
    const accepted = new Set(watcher.readings.map((r) => `${r.meterId}#${r.seq}`));
    const inFlight = pending.filter((pair) => accepted.has(pair));
    expect(inFlight.length).toBeGreaterThan(0);

    proxy.setResponseDelay(0);
    const restartedAtMs = Date.now();
    gateway = await world.startGateway(file);
    const settled = await eventually(gateway.figures, (f) => f.outboxReadings === 0 && [...f.meters.values()].every((m) => m.connected === 1 && m.readings >= 2), 60_000, (f) => `outbox ${f.outboxReadings}`);
    const earlierSkips = new Map([...lastFigures.meters].map(([id, m]) => [id, m.failures]));
    const report = await checkDelivery('gateway SIGKILL mid-publish', world.influx, madeFrom(settled, base, earlierSkips));
    expect(report.skipped).toBe(0);

    // seq goes on from where the killed gateway stopped, at later boundaries.
    for (const meterId of meterIds) {
      const seqs = report.stores.get(meterId)!;
      const firstAfter = Math.min(...[...seqs].filter(([, [ts]]) => ts! >= restartedAtMs).map(([seq]) => seq));
      expect(firstAfter).toBe(base.get(meterId));
      expect(seqs.get(firstAfter)![0]!).toBeGreaterThan(seqs.get(firstAfter - 1)![0]!);
    }
    // The readings sent again after the restart reached the broker twice, each time with the same ts: one point in InfluxDB.
    const timesByPair = new Map<string, Set<string>>();
    const received = new Map<string, number>();
    for (const r of watcher.readings) {
      const pair = `${r.meterId}#${r.seq}`;
      received.set(pair, (received.get(pair) ?? 0) + 1);
      timesByPair.set(pair, (timesByPair.get(pair) ?? new Set()).add(r.ts));
    }
    const duplicates = [...received].filter(([, n]) => n > 1).map(([pair]) => pair);
    console.log(`[gateway fault: gateway SIGKILL mid-publish] ${inFlight.length} readings accepted and unacknowledged at the kill; ${duplicates.length} received twice by the broker, each with one ts; seq went on from ${[...base.values()].join(', ')}`);
    expect(duplicates.length).toBeGreaterThan(0);
    for (const pair of duplicates) expect([...timesByPair.get(pair)!]).toHaveLength(1);
  }, 200_000);

  it('counts the polls of a silent device as timeouts, raises sensor_fault after sensorFaultAfter of them and clears it when the device answers', async () => {
    const meterIds = ['GF-S1', 'GF-S2'];
    const world = await faultWorld(meterIds);
    await world.startBroker();
    await world.addGatewayLogin();
    // Two devices, two buses: one falls silent, the other goes on.
    const silent = await world.startDevice('tcp');
    const other = await world.startDevice('tcp');
    const extra = 'timeoutMs: 300, retries: 1, sensorFaultAfter: 3';
    const gateway = await world.startGateway(world.writeGatewayFile(world.mqttUrl, [{ meterId: 'GF-S1', device: silent, unitId: 1, extra }, { meterId: 'GF-S2', device: other, unitId: 1, extra }]));
    await untilStored(world.influx, meterIds, 3, 'readings before the silence');

    const ack = await silent.fault('silent 6');
    expect(ack.untilTs).toEqual(expect.any(Number));
    const faulted = await eventually(gateway.figures, (f) => f.meters.get('GF-S1')!.sensorFault === 1, 20_000, 'sensor_fault on GF-S1');
    // Raised after sensorFaultAfter failed polls in a row, not before.
    expect(faulted.meters.get('GF-S1')!.failures.timeout).toBeGreaterThanOrEqual(3);
    expect(await gateway.health()).toMatchObject({ status: 'degraded', devices: [{ meterId: 'GF-S1', sensorFault: true }, { meterId: 'GF-S2', sensorFault: false }] });
    // The meter's retained status says it (SPEC section 10), from the third failed poll of the streak.
    expect(await world.retainedStatus('GF-S1')).toMatchObject({ online: true, fault: 'sensor_fault', failedPolls: 3 });
    const readingsAtFault = faulted.meters.get('GF-S1')!.readings;

    const recovered = await eventually(gateway.figures, (f) => f.meters.get('GF-S1')!.sensorFault === 0 && f.meters.get('GF-S1')!.readings >= readingsAtFault + 3, 30_000, 'GF-S1 answering again');
    expect((await gateway.health()).status).toBe('ok');
    const cleared = await world.retainedStatus('GF-S1');
    expect(cleared).toMatchObject({ online: true });
    expect(cleared).not.toHaveProperty('fault');
    const report = await checkDelivery('device silent 6 s', world.influx, madeFrom(recovered));
    expect(report.kinds).toEqual({ timeout: recovered.meters.get('GF-S1')!.failures.timeout });
    expect(report.missing.get('GF-S2')).toEqual([]);
    // Every missing seq is a poll made while the device was silent.
    for (const { seq, tsMs } of report.missing.get('GF-S1')!) {
      expect(tsMs, `GF-S1 seq ${seq}`).toBeGreaterThanOrEqual(ack.untilTs! - 6_000 - INTERVAL_MS);
      expect(tsMs, `GF-S1 seq ${seq}`).toBeLessThanOrEqual(ack.untilTs!);
    }
  }, 120_000);

  it('retries a frame with a CRC error within its interval, and counts the polls as crc skips while the corruption persists (RTU)', async () => {
    const meterIds = ['GF-C1'];
    const world = await faultWorld(meterIds);
    await world.startBroker();
    await world.addGatewayLogin();
    const device = await world.startDevice('rtu');
    const gateway = await world.startGateway(world.writeGatewayFile(world.mqttUrl, [{ meterId: 'GF-C1', device, unitId: 1, extra: 'timeoutMs: 250, retries: 2' }]));
    await untilStored(world.influx, meterIds, 3, 'readings before the corruption');

    // One answer corrupted: the attempt fails on its CRC, the retry within the interval makes the reading.
    await device.fault('corrupt 1');
    const [corrupted] = await eventually(() => device.corrupted(), (frames) => frames.length === 1, 10_000, 'a corrupted answer');
    const boundary = Math.floor(corrupted!.ts / INTERVAL_MS) * INTERVAL_MS;
    await eventually(async () => (await storedSeqs(world.influx, meterIds)).get('GF-C1')!, (seqs) => [...seqs.values()].some(([ts]) => ts === boundary), 20_000, `the reading of ${new Date(boundary).toISOString()}, the poll whose answer was corrupted`);
    expect((await gateway.figures()).meters.get('GF-C1')!.failures.crc).toBe(0);
    console.log(`[gateway fault: corrupted RTU frame] 1 answer sent with a bad CRC (unit ${corrupted!.unitId}, function ${corrupted!.functionCode}): retried within its interval, the reading of ${new Date(boundary).toISOString()} stored, no poll skipped`);

    // Every answer corrupted for a while: after its retries each poll is skipped and counted as crc.
    const persistentFrom = Date.now();
    await device.fault('corrupt');
    await eventually(gateway.figures, (f) => f.meters.get('GF-C1')!.failures.crc >= 3, 20_000, 'three crc skips');
    await device.fault('normal');
    const normalAt = Date.now();
    const readingsAtNormal = (await gateway.figures()).meters.get('GF-C1')!.readings;
    const after = await eventually(gateway.figures, (f) => f.meters.get('GF-C1')!.readings >= readingsAtNormal + 2, 20_000, 'readings after the corruption');
    const report = await checkDelivery('corrupted RTU frame', world.influx, madeFrom(after));
    expect(report.kinds).toEqual({ crc: after.meters.get('GF-C1')!.failures.crc });
    for (const { seq, tsMs } of report.missing.get('GF-C1')!) {
      expect(tsMs, `GF-C1 seq ${seq}`).toBeGreaterThanOrEqual(Math.floor(persistentFrom / INTERVAL_MS) * INTERVAL_MS);
      expect(tsMs, `GF-C1 seq ${seq}`).toBeLessThanOrEqual(normalAt);
    }
  }, 120_000);
});

describe('a serial port the gateway gave up on while it opened', () => {
  it('is kept for the next poll instead of being left open and locked', async () => {
    // A first poll whose deadline passes while the port still opens (a slow USB adapter, a loaded
    // host) gives the read up. The gateway used to drop the client then: modbus-serial's serial
    // port has no destroy(), so the port opened anyway, kept its lock, and every later open failed
    // with "Cannot lock port": the bus was lost until a restart.
    const device = await startModbusDevice({ transport: 'rtu', map: DEVICE_MAP, profile: 42.7, logEveryMs: 100 });
    cleanups.push(() => device.stop());
    const link = createModbusSerialLink({ transport: 'rtu', path: device.serialPath, baudRate: device.baudRate, parity: 'none', stopBits: 1, dataBits: 8 });
    cleanups.push(() => link.close());
    const first = link.read(1, { table: 'input', address: 0, count: 2 }, 300);
    link.abandon();
    await expect(first).rejects.toMatchObject({ kind: 'timeout', message: expect.stringContaining('opened after the read was given up') });
    // The next read, right away, finds the port open.
    expect(await link.read(1, { table: 'input', address: 0, count: 2 }, 300)).toEqual([0x422a, 0xcccd]); // 42.7 as a float32
    await link.close();
    // Closed means released: another link (a restarted gateway) opens the same path.
    const again = createModbusSerialLink({ transport: 'rtu', path: device.serialPath, baudRate: device.baudRate, parity: 'none', stopBits: 1, dataBits: 8 });
    cleanups.push(() => again.close());
    expect(await again.read(1, { table: 'holding', address: 0, count: 4 }, 300)).toHaveLength(4);
  });
});
