import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { readingLine } from '@flowpilot/influx';
import type { InfluxClient } from '@flowpilot/influx';
import { withTimeout } from '@flowpilot/async';
import { log, onTeardown, REPO_ROOT, sleep, trackChild } from './harness.ts';
import { drive, readingJson, type LoadClient } from './load-clients.ts';
import { percentile } from './stats.ts';
import { startCpuMeter, startRssSampler } from './rss-sampler.ts';

/**
 * The ceilings every FlowPilot figure is divided by, measured in the same run on the same
 * machine: what bare Aedes accepts at QoS 1 with no FlowPilot code in the path, and what the
 * local influxd accepts through /write in the ingest's batch size.
 */

export interface AedesCeiling {
  /** PUBACKs per second to the one publisher, over the measured window. */
  messagesPerSec: number;
  durationSec: number;
  acked: number;
  /** Messages the one QoS 1 subscriber received. */
  subscriberReceived: number;
  windowPerClient: number;
  ackLatencyMs: { p50: number; p99: number };
  brokerPeakRssMiB: number;
  /** CPU use over the window, % of one core, per process. */
  cpuPercent: Record<string, number>;
}

export interface InfluxCeiling {
  linesPerSec: number;
  batchLines: number;
  batches: number;
  durationSec: number;
}

const CHILD = join(REPO_ROOT, 'bench/aedes-ceiling-child.ts');

interface JsonChild {
  child: ChildProcess;
  next(timeoutMs: number): Promise<Record<string, unknown>>;
  stop(): Promise<Record<string, unknown> | null>;
}

function spawnJsonChild(args: string[], name: string): JsonChild {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  const messages: Record<string, unknown>[] = [];
  const waiters: ((message: Record<string, unknown>) => void)[] = [];
  let stderr = '';
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (!line.startsWith('{')) continue;
      const message = JSON.parse(line) as Record<string, unknown>;
      const waiter = waiters.shift();
      if (waiter) waiter(message);
      else messages.push(message);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const next = (timeoutMs: number) =>
    new Promise<Record<string, unknown>>((done, fail) => {
      const queued = messages.shift();
      if (queued) return done(queued);
      const timer = setTimeout(() => fail(new Error(`${name}: no answer within ${timeoutMs / 1000} s\n${stderr}`)), timeoutMs);
      waiters.push((message) => {
        clearTimeout(timer);
        done(message);
      });
      void exited.then(() => fail(new Error(`${name} exited\n${stderr}`)));
    });
  let stopping: Promise<Record<string, unknown> | null> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return null;
      const last = next(5_000).catch(() => null);
      child.kill('SIGTERM');
      const answer = await last;
      await withTimeout(exited, 5_000);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return answer;
    })();
    return stopping;
  };
  onTeardown(`stop ${name}`, async () => void (await stop()));
  return { child, next, stop };
}

/**
 * Bare Aedes (`Aedes.createBroker()` defaults, in its own process), one MQTT.js publisher in the
 * bench process with the same number of unacknowledged publishes as the whole single-readings
 * load, and one QoS 1 subscriber in a third process.
 */
export async function measureAedesCeiling(options: { durationMs: number; window: number; meterIds: readonly string[] }): Promise<AedesCeiling> {
  const broker = spawnJsonChild(['broker'], 'bare Aedes broker');
  const port = (await broker.next(30_000)).port as number;
  const sampler = startRssSampler(broker.child.pid ?? 0, 1_000);
  const subscriber = spawnJsonChild(['subscriber', String(port)], 'bare Aedes subscriber');
  await subscriber.next(30_000);
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'bench-ceiling-publisher', protocolVersion: 4, clean: false, reconnectPeriod: 0 });
  // One publisher, but the same topics and payloads as the single-readings load.
  const publisher: LoadClient = { meterId: 'publisher', topic: '', client, nextSeq: 0, inFlight: 0, dead: false, ackedSeqs: [], publishedAtMs: new Map() };
  const ids = options.meterIds;
  const baseTsMs = Date.now() - 2 * 86_400_000;
  try {
    log(`bare Aedes: one publisher, window ${options.window}, ${options.durationMs / 1000} s`);
    const cpu = startCpuMeter({ broker: broker.child.pid, subscriber: subscriber.child.pid });
    const result = await drive([publisher], {
      durationMs: options.durationMs,
      windowPerClient: options.window,
      message: (c, seq) => {
        const meterId = ids[seq % ids.length]!;
        c.topic = `meters/${meterId}/readings`;
        return { payload: readingJson(meterId, seq, baseTsMs + seq), readings: 1 };
      },
    });
    const cpuPercent = cpu();
    await sleep(500);
    const answer = await subscriber.stop();
    const sorted = [...result.ackLatencyMs].sort((a, b) => a - b);
    const durationSec = (result.stoppedAtMs - result.startedAtMs) / 1000;
    return {
      messagesPerSec: result.readingsAckedInWindow / durationSec,
      durationSec,
      acked: result.readingsAcked,
      subscriberReceived: (answer?.received as number | undefined) ?? 0,
      windowPerClient: options.window,
      ackLatencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
      brokerPeakRssMiB: sampler.peakMiB(),
      cpuPercent,
    };
  } finally {
    sampler.stop();
    await client.endAsync(true).catch(() => undefined);
    await subscriber.stop();
    await broker.stop();
  }
}

/**
 * InfluxDB's direct write rate: batches of `batchLines` reading lines (readingLine, as the broker
 * spools them), prepared before the clock starts, written one at a time like the ingest does.
 */
export async function measureInfluxCeiling(influx: InfluxClient, options: { durationMs: number; batchLines: number; maxBatches: number; meters: number }): Promise<InfluxCeiling> {
  await influx.ensureDatabase();
  const baseTsMs = Date.now() - 20 * 86_400_000;
  const batches: string[][] = [];
  let k = 0;
  for (let b = 0; b < options.maxBatches; b++) {
    const lines = new Array<string>(options.batchLines);
    for (let i = 0; i < options.batchLines; i++, k++) {
      const meter = k % options.meters;
      const seq = Math.floor(k / options.meters);
      lines[i] = readingLine(
        { meterId: `CEIL-${meter}`, seq, tsMs: baseTsMs + seq * 1_000, flowM3h: 40 + (seq % 7) + 0.25, totalM3: 1000 + seq * 0.7, alarms: [] },
        `S${meter % 10}`,
        baseTsMs,
      );
    }
    batches.push(lines);
  }
  log(`InfluxDB direct write: up to ${options.maxBatches} batches of ${options.batchLines} lines, ${options.durationMs / 1000} s`);
  // One warm-up batch (creates the shard), then the clock.
  await influx.write(batches[0]!);
  const startedAt = Date.now();
  let written = 0;
  let count = 0;
  for (const batch of batches.slice(1)) {
    if (Date.now() - startedAt >= options.durationMs) break;
    await influx.write(batch);
    written += batch.length;
    count += 1;
  }
  const durationSec = (Date.now() - startedAt) / 1000;
  return { linesPerSec: written / durationSec, batchLines: options.batchLines, batches: count, durationSec };
}
