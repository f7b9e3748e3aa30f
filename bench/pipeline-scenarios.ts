import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createReadingsRepository, type InfluxClient } from '@flowpilot/influx';
import { startBrokerProcess, type BrokerProcess } from './flowpilot-process.ts';
import { log, makeTempDir, sleep } from './harness.ts';
import { benchInflux, checkPairs, dropDatabase, waitForReadings, type PairCheck } from './influx-checks.ts';
import { batchJson, closeLoadClients, connectLoadClients, drive, readingJson, type DriveResult, type LoadClient } from './load-clients.ts';
import { startCpuMeter, startRssSampler, type MemorySample } from './rss-sampler.ts';
import { slope, summarize, type Summary } from './stats.ts';

/**
 * The FlowPilot scenarios. A load session is one `flowpilot broker` child (fresh data dir, fresh
 * InfluxDB database) with its MQTT clients connected once: connecting 500 clients costs the broker
 * 500 scrypt hashes (20-50 s on 2 cores), so the single-readings, latency and steady-load phases
 * share one session, one after the other. Each phase loads the broker from the bench process,
 * waits until InfluxDB holds every reading acknowledged in it, and runs the (meterId, seq) check
 * of SPEC section 6 over that phase's pairs. Backfill has a session of its own.
 */

const DAY_MS = 86_400_000;

export interface BenchWorld {
  influxUrl: string;
  pilotFile: string;
  meterIds: readonly string[];
  /** Peak RSS of every FlowPilot child, in start order. */
  peaks: { process: string; peakRssMiB: number }[];
  /** The local influxd, for its CPU share. */
  influxdPid?: number;
}

/** A pilot file with the bench's meters, all monitors reporting every 60 s (SPEC section 3). */
export function writeBenchPilot(meterCount: number): { pilotFile: string; meterIds: string[] } {
  const dir = makeTempDir('pilot');
  const meterIds = Array.from({ length: meterCount }, (_, i) => `BENCH-${String(i + 1).padStart(4, '0')}`);
  const meters = meterIds.map((id, i) => `  - { id: ${id}, site: S${i % 10}, role: monitor, intervalSec: 60 }`).join('\n');
  const pilotFile = join(dir, 'pilot.yaml');
  writeFileSync(pilotFile, `pilot:\n  id: bench\n  name: FlowPilot benchmark pilot\n  timezone: UTC\nmeters:\n${meters}\n`);
  return { pilotFile, meterIds };
}

export interface LoadSession {
  database: string;
  influx: InfluxClient;
  broker: BrokerProcess;
  clients: LoadClient[];
  connectSec: number;
  /** Readings InfluxDB held when the current phase began. */
  storedBefore: number;
  influxdPid?: number;
  closed?: Promise<number>;
}

type Session = LoadSession;

export async function openLoadSession(world: BenchWorld, label: string, database: string, meterIds: readonly string[]): Promise<Session> {
  const influx = benchInflux(world.influxUrl, database);
  await dropDatabase(influx, database);
  await influx.ensureDatabase();
  const broker = await startBrokerProcess(`broker (${label})`, { pilotFile: world.pilotFile, influxUrl: world.influxUrl, database });
  const connectStarted = Date.now();
  log(`${label}: connecting ${meterIds.length} MQTT clients`);
  const clients = await connectLoadClients(broker.mqttUrl, broker.simulatorLogin, meterIds);
  const connectSec = (Date.now() - connectStarted) / 1000;
  log(`${label}: ${clients.length} clients connected in ${connectSec.toFixed(1)} s`);
  return { database, influx, broker, clients, connectSec, storedBefore: 0, influxdPid: world.influxdPid };
}

/** A new phase: only the pairs acknowledged from now on enter its check. Returns its CPU meter. */
function beginPhase(session: Session): () => Record<string, number> {
  for (const c of session.clients) {
    c.ackedSeqs = [];
    c.publishedAtMs.clear();
  }
  return startCpuMeter({ broker: session.broker.pid, influxd: session.influxdPid });
}

/** Closes the clients, stops the broker (recording its peak RSS) and drops the database; once. */
export function closeLoadSession(world: BenchWorld, session: Session): Promise<number> {
  session.closed ??= (async () => {
    await closeLoadClients(session.clients);
    const peak = await session.broker.stop();
    world.peaks.push({ process: session.broker.name, peakRssMiB: round(peak, 1) });
    await dropDatabase(session.influx, session.database);
    return peak;
  })();
  return session.closed;
}

/** Waits for InfluxDB to hold every acknowledged reading, then checks the pairs. */
async function settle(session: Session, acked: number, timeoutMs: number): Promise<{ check: PairCheck; storedAtMs: number | null }> {
  const expected = session.storedBefore + acked;
  const { count, reachedAtMs } = await waitForReadings(session.influx, expected, 100, timeoutMs);
  if (reachedAtMs === null) log(`InfluxDB holds ${count} readings of ${expected} expected after ${timeoutMs / 1000} s; checking anyway`);
  if (count > session.storedBefore) session.storedBefore = count;
  const check = await checkPairs(session.influx, session.clients);
  log(`check: ${check.checked} acknowledged pairs checked, ${check.lost} lost${check.examples.length ? ` (e.g. ${check.examples.join(', ')})` : ''}`);
  return { check, storedAtMs: reachedAtMs };
}

const round = (value: number, digits = 0) => Number(value.toFixed(digits));

function driveSummary(result: DriveResult) {
  const windowSec = (result.stoppedAtMs - result.startedAtMs) / 1000;
  const perBucket = result.ackedPerBucket.filter((_, i) => (i + 1) * result.bucketMs <= result.stoppedAtMs - result.startedAtMs).map((n) => n / (result.bucketMs / 1000));
  return {
    windowSec: round(windowSec, 1),
    messagesPublished: result.messagesPublished,
    readingsAcked: result.readingsAcked,
    publishErrors: result.publishErrors,
    deadClients: result.deadClients,
    bucketRatesPerSec: perBucket.map((r) => round(r)),
    pubackLatencyMs: result.ackLatencyMs.length > 0 ? roundSummary(summarize(result.ackLatencyMs)) : null,
  };
}

function roundSummary(summary: Summary): Summary {
  return { count: summary.count, p50: round(summary.p50, 1), p95: round(summary.p95, 1), p99: round(summary.p99, 1), max: round(summary.max, 1) };
}

export interface SingleReadingsResult {
  connections: number;
  connectSec: number;
  windowPerClient: number;
  readingsPerSec: number;
  minBucketPerSec: number;
  drive: ReturnType<typeof driveSummary>;
  /** From the end of the window until InfluxDB held every acknowledged reading. */
  catchUpSec: number | null;
  /** CPU use over the window, % of one core, per process. */
  cpuPercent: Record<string, number>;
  check: PairCheck;
  brokerPeakRssMiB: number;
}

/** Section 2 of the issue: many meters, one reading per message, as fast as the broker accepts. */
export async function benchSingleReadings(session: LoadSession, options: { durationMs: number; window: number }): Promise<SingleReadingsResult> {
  const cpu = beginPhase(session);
  const baseTsMs = Date.now() - 3 * DAY_MS;
  log(`single readings: ${session.clients.length} clients × window ${options.window}, ${options.durationMs / 1000} s`);
  const result = await drive(session.clients, {
    durationMs: options.durationMs,
    windowPerClient: options.window,
    // One reading per message; a meter's readings 100 ms apart, so each (meter, seq) is its own point.
    message: (c, seq) => ({ payload: readingJson(c.meterId, seq, baseTsMs + seq * 100), readings: 1 }),
  });
  const cpuPercent = cpu();
  const summary = driveSummary(result);
  log(`single readings: ${result.readingsAckedInWindow} accepted in ${summary.windowSec} s (CPU % of a core: ${JSON.stringify(cpuPercent)}); waiting for InfluxDB`);
  const { check, storedAtMs } = await settle(session, result.readingsAcked, 180_000);
  return {
    connections: session.clients.length,
    connectSec: round(session.connectSec, 1),
    windowPerClient: options.window,
    readingsPerSec: round(result.readingsAckedInWindow / summary.windowSec),
    minBucketPerSec: summary.bucketRatesPerSec.length > 0 ? Math.min(...summary.bucketRatesPerSec) : 0,
    drive: summary,
    catchUpSec: storedAtMs === null ? null : round((storedAtMs - result.stoppedAtMs) / 1000, 1),
    cpuPercent,
    check,
    brokerPeakRssMiB: round(session.broker.sampler.peakMiB(), 1),
  };
}

export interface BackfillResult {
  clients: number;
  batchReadings: number;
  readings: number;
  /** Readings per second from the first publish to the last reading stored in InfluxDB. */
  readingsPerSec: number;
  /** Readings per second acknowledged (first publish to last PUBACK). */
  acceptedPerSec: number;
  totalSec: number;
  /** CPU use from the first publish to the last reading stored, % of one core, per process. */
  cpuPercent: Record<string, number>;
  drive: ReturnType<typeof driveSummary>;
  check: PairCheck;
  brokerPeakRssMiB: number;
}

/** Section 3: store-and-forward backfill, arrays of 1,000 readings (SPEC section 1). */
export async function benchBackfill(world: BenchWorld, options: { clients: number; readings: number; batch: number; window: number }): Promise<BackfillResult> {
  const session = await openLoadSession(world, 'backfill', 'bench_backfill', world.meterIds.slice(0, options.clients));
  try {
    const messages = Math.ceil(options.readings / options.batch);
    // One-minute data reaching back 20 days: a meter that was offline and now sends its history.
    const baseTsMs = Math.floor(Date.now() / 60_000) * 60_000 - 20 * DAY_MS;
    log(`backfill: ${messages} messages of ${options.batch} readings from ${session.clients.length} clients × window ${options.window}`);
    const cpu = beginPhase(session);
    const result = await drive(session.clients, {
      durationMs: 300_000,
      maxMessages: messages,
      windowPerClient: options.window,
      message: (c, firstSeq) => ({ payload: batchJson(c.meterId, firstSeq, options.batch, (seq) => baseTsMs + seq * 60_000), readings: options.batch }),
    });
    const { count, reachedAtMs } = await waitForReadings(session.influx, result.readingsAcked, 50, 300_000);
    const cpuPercent = cpu();
    if (reachedAtMs === null) log(`backfill: InfluxDB holds ${count} of ${result.readingsAcked} after 300 s`);
    const { check, storedAtMs } = await settle(session, result.readingsAcked, 1_000);
    const endMs = reachedAtMs ?? storedAtMs ?? Date.now();
    const totalSec = (endMs - result.startedAtMs) / 1000;
    const peak = await closeLoadSession(world, session);
    return {
      clients: session.clients.length,
      batchReadings: options.batch,
      readings: result.readingsAcked,
      readingsPerSec: round(result.readingsAcked / totalSec),
      acceptedPerSec: round(result.readingsAcked / ((result.drainedAtMs - result.startedAtMs) / 1000)),
      totalSec: round(totalSec, 1),
      cpuPercent,
      drive: driveSummary(result),
      check,
      brokerPeakRssMiB: round(peak, 1),
    };
  } finally {
    await closeLoadSession(world, session).catch(() => undefined);
  }
}

export interface LatencyResult {
  ratePerSec: number;
  achievedPerSec: number;
  probeMeters: number;
  pollIntervalMs: number;
  /** Publish → queryable in InfluxDB, ms. */
  latencyMs: Summary;
  unresolved: number;
  cpuPercent: Record<string, number>;
  drive: ReturnType<typeof driveSummary>;
  check: PairCheck;
  brokerPeakRssMiB: number;
}

/**
 * Section 4: at a fixed rate, the time from publish to queryable. A meter's readings are spooled
 * and written in order, so once `max(seq)` of a probe meter is visible every earlier seq is too;
 * a poller asks for it every `pollIntervalMs` and dates each newly visible reading by the moment
 * the answer arrived (an upper bound, coarse by the poll interval plus the query's own time).
 */
export async function benchLatency(session: LoadSession, options: { ratePerSec: number; durationMs: number; window: number; probeMeters: number; pollIntervalMs: number }): Promise<LatencyResult> {
  const cpu = beginPhase(session);
  const probes = session.clients.slice(0, options.probeMeters);
  // Per probe meter, the highest seq known to be queryable; the phase starts after the last one sent.
  const resolved = new Map<string, number>(probes.map((c) => [c.meterId, c.nextSeq - 1]));
  const latencies: number[] = [];
  const lastTs = new Map<string, number>();
  const readings = createReadingsRepository(session.influx);
  const probeIds = probes.map((c) => c.meterId);
  let driving = true;
  const poll = async (): Promise<void> => {
    const sentAt = Date.now();
    const maxSeqs = await readings.maxSeqs(probeIds, sentAt - DAY_MS - 60_000);
    const seenAt = Date.now();
    for (const [meterId, max] of maxSeqs) {
      const c = probes.find((p) => p.meterId === meterId);
      if (!c) continue;
      for (let seq = (resolved.get(c.meterId) ?? -1) + 1; seq <= max; seq++) {
        const publishedAt = c.publishedAtMs.get(seq);
        if (publishedAt !== undefined) latencies.push(seenAt - publishedAt);
      }
      resolved.set(c.meterId, Math.max(max, resolved.get(c.meterId) ?? -1));
    }
  };
  const allResolved = () => probes.every((c) => (resolved.get(c.meterId) ?? -1) >= c.nextSeq - 1);
  const poller = (async () => {
    const deadline = Date.now() + options.durationMs + 60_000;
    while ((driving || !allResolved()) && Date.now() < deadline) {
      const started = Date.now();
      await poll().catch((error: unknown) => log(`latency poll failed: ${(error as Error).message}`));
      await sleep(Math.max(0, options.pollIntervalMs - (Date.now() - started)));
    }
  })();
  log(`latency: ${options.ratePerSec} readings/s over ${session.clients.length} clients for ${options.durationMs / 1000} s, ${probes.length} probe meters`);
  const result = await drive(session.clients, {
    durationMs: options.durationMs,
    windowPerClient: options.window,
    ratePerSec: options.ratePerSec,
    trackPublishTimes: true,
    // ts = publish time a day ago, strictly increasing per meter: in the past, each its own point.
    message: (c, seq, nowMs) => {
      const ts = Math.max(nowMs - DAY_MS, (lastTs.get(c.meterId) ?? 0) + 1);
      lastTs.set(c.meterId, ts);
      return { payload: readingJson(c.meterId, seq, ts), readings: 1 };
    },
  }).finally(() => (driving = false));
  const cpuPercent = cpu();
  await poller;
  const unresolved = probes.reduce((n, c) => n + Math.max(0, c.nextSeq - 1 - (resolved.get(c.meterId) ?? -1)), 0);
  const { check } = await settle(session, result.readingsAcked, 120_000);
  const summary = driveSummary(result);
  return {
    ratePerSec: options.ratePerSec,
    achievedPerSec: round(result.readingsAckedInWindow / summary.windowSec),
    probeMeters: probes.length,
    pollIntervalMs: options.pollIntervalMs,
    latencyMs: roundSummary(summarize(latencies)),
    unresolved,
    cpuPercent,
    drive: summary,
    check,
    brokerPeakRssMiB: round(session.broker.sampler.peakMiB(), 1),
  };
}

export interface SteadyLoadResult {
  ratePerSec: number;
  achievedPerSec: number;
  durationSec: number;
  startRssMiB: number;
  endRssMiB: number;
  growthMiB: number;
  /** Least-squares slope of RSS over the second half of the run, MiB per minute. */
  secondHalfSlopeMiBPerMin: number;
  /** One sample per `sampleIntervalMs`: seconds since the load started, RSS MiB. */
  curve: { atSec: number; rssMiB: number }[];
  cpuPercent: Record<string, number>;
  check: PairCheck;
  brokerPeakRssMiB: number;
}

/** Section 6 (and `npm run soak`): a steady moderate load, with the broker's RSS curve. */
export async function benchSteadyLoad(
  session: LoadSession,
  options: { label: string; ratePerSec: number; durationMs: number; window: number; sampleIntervalMs: number; onSample?: (sample: { atSec: number; rssMiB: number }) => void },
): Promise<SteadyLoadResult> {
  const cpu = beginPhase(session);
  const baseTsMs = Date.now() - 7 * DAY_MS;
  const curve: { atSec: number; rssMiB: number }[] = [];
  const sampler = startRssSampler(session.broker.pid, options.sampleIntervalMs, true);
  const startedAt = Date.now();
  let seen = 0;
  const collect = (samples: readonly MemorySample[]) => {
    for (; seen < samples.length; seen++) {
      const sample = samples[seen]!;
      const point = { atSec: round((sample.atMs - startedAt) / 1000, 1), rssMiB: round(sample.rssMiB, 1) };
      curve.push(point);
      options.onSample?.(point);
    }
  };
  log(`${options.label}: ${options.ratePerSec} readings/s over ${session.clients.length} clients for ${options.durationMs / 1000} s, RSS every ${options.sampleIntervalMs / 1000} s`);
  const result = await drive(session.clients, {
    durationMs: options.durationMs,
    windowPerClient: options.window,
    ratePerSec: options.ratePerSec,
    // Readings 10 ms apart per meter: a 30-minute soak at 1,000/s stays within the last week.
    message: (c, seq) => ({ payload: readingJson(c.meterId, seq, baseTsMs + seq * 10), readings: 1 }),
    onTick: () => collect(sampler.curve()),
  });
  const cpuPercent = cpu();
  sampler.sample();
  sampler.stop();
  collect(sampler.curve());
  const { check } = await settle(session, result.readingsAcked, 120_000);
  const summary = driveSummary(result);
  const start = curve[0]?.rssMiB ?? 0;
  const end = curve[curve.length - 1]?.rssMiB ?? 0;
  const secondHalf = curve.filter((p) => p.atSec >= summary.windowSec / 2).map((p) => ({ x: p.atSec / 60, y: p.rssMiB }));
  return {
    ratePerSec: options.ratePerSec,
    achievedPerSec: round(result.readingsAckedInWindow / summary.windowSec),
    durationSec: summary.windowSec,
    startRssMiB: start,
    endRssMiB: end,
    growthMiB: round(end - start, 1),
    secondHalfSlopeMiBPerMin: round(slope(secondHalf), 2),
    curve,
    cpuPercent,
    check,
    brokerPeakRssMiB: round(session.broker.sampler.peakMiB(), 1),
  };
}
