import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import pino from 'pino';
import { createBroker, openCredentialsStore, type BrokerOptions, type CredentialsStore, type FlowPilotBroker } from '@flowpilot/broker';
import type { InfluxClient } from '@flowpilot/influx';
import { createIngest, type Ingest } from '@flowpilot/ingest';
import { createMeterRegistry, parsePilotConfig, type PilotConfig } from '@flowpilot/schema';
import { openDurableStore, type DurableStore } from '@flowpilot/store';

/**
 * A whole FlowPilot pipeline for one test (STYLE habit 9): a real Aedes broker on a free
 * loopback port, the durable store and credentials in a temp folder, the ingest writing to
 * the test's own InfluxDB database. close() tears it all down.
 */
export interface TestPipeline {
  mqttUrl: string;
  dataDir: string;
  store: DurableStore;
  broker: FlowPilotBroker;
  ingest: Ingest;
  credentials: CredentialsStore;
  close(): Promise<void>;
}

export function makePilot(meterIds: readonly string[], extra = ''): PilotConfig {
  const meters = meterIds.map((id) => `  - { id: ${id}, site: S${id.length % 3}, role: monitor, intervalSec: 60 }`).join('\n');
  return parsePilotConfig(`pilot: { id: test, name: Test pilot, timezone: Asia/Almaty }\nmeters:\n${meters}\n${extra}`);
}

export const quietLog = pino({ level: process.env.FLOWPILOT_TEST_LOG ?? 'silent' });

export interface TestPipelineOptions {
  pilot: PilotConfig;
  influx: InfluxClient;
  maxPayloadBytes?: number;
  storeMaxRecords?: number;
  /** The share of the store one meter may hold (0.2 unless given). */
  storeMeterShare?: number;
  /** More broker options (limits, persistence, heartbeat). */
  broker?: Partial<BrokerOptions>;
  /** An existing data dir (a restart); a new temp folder when absent. It is removed on close only when it was made here. */
  dataDir?: string;
}

export async function startTestPipeline(options: TestPipelineOptions): Promise<TestPipeline> {
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'flowpilot-test-'));
  const store = openDurableStore({
    path: join(dataDir, 'spool.sqlite'),
    ...(options.storeMaxRecords ? { maxRecords: options.storeMaxRecords } : {}),
    ...(options.storeMeterShare ? { meterShare: options.storeMeterShare } : {}),
  });
  const credentials = openCredentialsStore(join(dataDir, 'credentials.json'));
  const broker = await createBroker({
    registry: createMeterRegistry(options.pilot),
    credentials,
    store,
    log: quietLog,
    ...(options.maxPayloadBytes ? { maxPayloadBytes: options.maxPayloadBytes } : {}),
    ...options.broker,
  });
  const address = await broker.listen(0, '127.0.0.1');
  const ingest = createIngest({ store, influx: options.influx, log: quietLog });
  ingest.start();
  return {
    mqttUrl: `mqtt://127.0.0.1:${address.port}`,
    dataDir,
    store,
    broker,
    ingest,
    credentials,
    async close() {
      await broker.close();
      await ingest.stop();
      store.close();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Connects like a meter: MQTT 3.1.1, persistent session, client id = login. */
export function connectMeter(mqttUrl: string, username: string, password: string, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
  return connectAsync(mqttUrl, {
    clientId: username,
    username,
    password,
    protocolVersion: 4,
    clean: false,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...extra,
  });
}

/** The (meter, seq) pairs InfluxDB holds, as "meter#seq" strings, and the number of points. */
export async function storedPairs(influx: InfluxClient): Promise<{ pairs: Set<string>; points: number }> {
  const series = await influx.query('SELECT seq FROM reading GROUP BY meter');
  const pairs = new Set<string>();
  let points = 0;
  for (const s of series) {
    const seqIndex = s.columns.indexOf('seq');
    for (const row of s.values) {
      pairs.add(`${s.tags?.meter}#${row[seqIndex]}`);
      points += 1;
    }
  }
  return { pairs, points };
}

export function wireReading(meterId: string, seq: number, tsMs: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: 1, meterId, seq, ts: new Date(tsMs).toISOString(), flow: 40 + (seq % 7), total: 1000 + seq * 0.7, ...extra };
}
