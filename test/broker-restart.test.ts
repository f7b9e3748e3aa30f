import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startAckedPublishers } from './helpers/acked-publisher.ts';
import { createTestInflux } from './helpers/influx.ts';
import { storedPairs } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';
import { simulatorLogin, startService, writePilotFile, type ServiceProcess } from './helpers/processes.ts';
import { freePort, waitForPort } from './helpers/ports.ts';

/** Restarts and stops of the broker process: what survives, and how fast SIGTERM ends it. */
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function brokerWorld() {
  const influx = await createTestInflux();
  const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-restart-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const mqttPort = await freePort();
  const env = {
    FLOWPILOT_DATA_DIR: dataDir,
    FLOWPILOT_PILOT: writePilotFile(dataDir, ['R1', 'R2']),
    FLOWPILOT_MQTT_PORT: String(mqttPort),
    FLOWPILOT_METRICS_PORT: String(await freePort()),
    FLOWPILOT_INFLUX_URL: influx.config.url,
    FLOWPILOT_INFLUX_DB: influx.config.database,
  };
  const start = async (): Promise<ServiceProcess> => {
    const broker = startService(['broker'], env);
    cleanups.push(() => broker.kill('SIGKILL'));
    await waitForPort(mqttPort, 30_000);
    return broker;
  };
  return { influx, dataDir, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, start };
}

describe('broker restart', () => {
  it('keeps sessions, subscriptions and retained status across a restart (Aedes persistence on disk)', async () => {
    const world = await brokerWorld();
    let broker = await world.start();
    const login = simulatorLogin(world.dataDir);
    const options = { username: login.username, password: login.password, protocolVersion: 4 as const, reconnectPeriod: 0 };
    const subscriber = await connectAsync(world.mqttUrl, { ...options, clientId: `${login.username}:watcher`, clean: false });
    await subscriber.subscribeAsync('meters/+/status', { qos: 1 });
    const meter = await connectAsync(world.mqttUrl, { ...options, clientId: `${login.username}:R1`, clean: true });
    await meter.publishAsync('meters/R1/status', JSON.stringify({ online: true, firmware: '2.0' }), { qos: 1, retain: true });
    await meter.endAsync();
    await subscriber.endAsync();

    await broker.kill('SIGTERM');
    broker = await world.start();

    // The persistent session comes back with its subscription: sessionPresent, and a status
    // published after the restart reaches the watcher without it subscribing again.
    const received: string[] = [];
    const watcher = await connectAsync(world.mqttUrl, { ...options, clientId: `${login.username}:watcher`, clean: false });
    cleanups.push(() => watcher.endAsync(true));
    watcher.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    const publisher = await connectAsync(world.mqttUrl, { ...options, clientId: `${login.username}:R2`, clean: true });
    cleanups.push(() => publisher.endAsync(true));
    await publisher.publishAsync('meters/R2/status', JSON.stringify({ online: true }), { qos: 1 });
    await eventually(async () => received, (r) => r.some((m) => m.startsWith('meters/R2/status')), 5000, (r) => JSON.stringify(r));

    // The retained status of R1 is delivered to a new subscriber.
    const fresh = await connectAsync(world.mqttUrl, { ...options, clientId: `${login.username}:fresh`, clean: true });
    cleanups.push(() => fresh.endAsync(true));
    const retained = new Promise<string>((resolve) => fresh.on('message', (topic, payload, packet) => topic === 'meters/R1/status' && packet.retain && resolve(payload.toString())));
    await fresh.subscribeAsync('meters/R1/status', { qos: 1 });
    expect(JSON.parse(await retained)).toMatchObject({ online: true, firmware: '2.0' });
  });

  it('stops within 5 s of SIGTERM under load, having kept everything it acknowledged', async () => {
    const world = await brokerWorld();
    const broker = await world.start();
    const login = simulatorLogin(world.dataDir);
    const publishers = await startAckedPublishers({ mqttUrl: world.mqttUrl, ...login, meterIds: ['R1', 'R2'], totalPerMeter: 100_000, startTsMs: Date.now() - 200_000 * 60_000 });
    cleanups.push(() => publishers.close());
    // Left running: its last publish may wait for a PUBACK forever once the broker is gone.
    void publishers.run().catch(() => undefined);
    await eventually(async () => publishers.acked.size, (n) => n > 500, 20_000, (n) => `${n} acknowledged`);

    const stopStarted = Date.now();
    const code = await broker.kill('SIGTERM');
    const stopMs = Date.now() - stopStarted;
    publishers.stop();
    expect(code).toBe(0);
    expect(stopMs).toBeLessThan(5000);
    await publishers.close();

    // Whatever was acknowledged before the stop is in InfluxDB, or in the store for the next start.
    const acked = new Set(publishers.acked);
    await world.start();
    const stored = await eventually(() => storedPairs(world.influx), (s) => s.points >= acked.size, 30_000, (s) => `${s.points} of ${acked.size}`);
    expect([...acked].filter((pair) => !stored.pairs.has(pair))).toEqual([]);
  });
});
