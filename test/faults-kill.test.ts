import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAckedPublishers } from './helpers/acked-publisher.ts';
import { createTestInflux } from './helpers/influx.ts';
import { storedPairs } from './helpers/pipeline.ts';
import { eventually } from './helpers/wait.ts';
import { seededRandom, simulatorLogin, startService, writePilotFile, type ServiceProcess } from './helpers/processes.ts';
import { freePort, waitForPort } from './helpers/ports.ts';

/**
 * SPEC section 6, checked the way Jepsen checks a set: every reading a meter got a PUBACK for
 * must be in InfluxDB after FlowPilot's processes were SIGKILLed at random (seeded) moments
 * and restarted. Reported as acknowledged / lost.
 */
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const METERS = Array.from({ length: 10 }, (_, i) => `K-${String(i).padStart(2, '0')}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function world() {
  const influx = await createTestInflux({ timeoutMs: 5000 });
  const dataDir = mkdtempSync(join(tmpdir(), 'flowpilot-fault-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const mqttPort = await freePort();
  const env = {
    FLOWPILOT_DATA_DIR: dataDir,
    FLOWPILOT_PILOT: writePilotFile(dataDir, METERS),
    FLOWPILOT_MQTT_PORT: String(mqttPort),
    FLOWPILOT_METRICS_PORT: String(await freePort()),
    FLOWPILOT_INGEST_METRICS_PORT: String(await freePort()),
    FLOWPILOT_INFLUX_URL: influx.config.url,
    FLOWPILOT_INFLUX_DB: influx.config.database,
  };
  const track = (service: ServiceProcess) => {
    cleanups.push(() => service.kill('SIGKILL'));
    return service;
  };
  return { influx, dataDir, mqttPort, env, track };
}

async function checkAllStored(influx: Awaited<ReturnType<typeof createTestInflux>>, acked: Set<string>, label: string) {
  const stored = await eventually(() => storedPairs(influx), (s) => s.points >= acked.size, 60_000, (s) => `${s.points} of ${acked.size} stored`);
  const lost = [...acked].filter((pair) => !stored.pairs.has(pair));
  console.log(`[${label}] acknowledged ${acked.size}, stored ${stored.points} distinct points, lost ${lost.length}`);
  expect(lost).toEqual([]);
  // Each (meter, seq) has its own timestamp: a reading written twice is still one point.
  expect(stored.points).toBe(acked.size);
}

describe('processes killed with SIGKILL (SPEC section 6)', () => {
  it('loses nothing when the standalone ingest is killed at 5 random moments', async () => {
    const { influx, dataDir, mqttPort, env, track } = await world();
    track(startService(['broker', '--no-ingest'], env));
    await waitForPort(mqttPort, 30_000);
    let ingest = track(startService(['ingest'], env));
    const login = simulatorLogin(dataDir);
    const publishers = await startAckedPublishers({ mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, ...login, meterIds: METERS, totalPerMeter: 300, startTsMs: Date.now() - 400 * 60_000, pauseMs: 15 });
    cleanups.push(() => publishers.close());
    const publishing = publishers.run();

    const random = seededRandom(20261125);
    for (let trial = 0; trial < 5; trial++) {
      await sleep(400 + random() * 1200);
      await ingest.kill('SIGKILL');
      await sleep(random() * 500);
      ingest = track(startService(['ingest'], env));
    }
    await publishing;
    await checkAllStored(influx, publishers.acked, 'ingest killed ×5');
  });

  it('loses nothing when the broker (with its ingest) is killed at 5 random moments; meters resend what was not acknowledged', async () => {
    const { influx, dataDir, mqttPort, env, track } = await world();
    let broker = track(startService(['broker'], env));
    await waitForPort(mqttPort, 30_000);
    const login = simulatorLogin(dataDir);
    const publishers = await startAckedPublishers({ mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, ...login, meterIds: METERS, totalPerMeter: 300, startTsMs: Date.now() - 400 * 60_000, pauseMs: 15 });
    cleanups.push(() => publishers.close());
    const publishing = publishers.run();

    const random = seededRandom(7);
    for (let trial = 0; trial < 5; trial++) {
      await sleep(500 + random() * 1500);
      await broker.kill('SIGKILL');
      await sleep(random() * 500);
      broker = track(startService(['broker'], env));
      await waitForPort(mqttPort, 30_000);
    }
    await publishing;
    expect(publishers.acked.size).toBe(METERS.length * 300);
    await checkAllStored(influx, publishers.acked, 'broker killed ×5');
  });
});
