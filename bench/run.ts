import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalInflux } from '@flowpilot/influx';
import { addApiTargets, benchApi } from './api-bench.ts';
import { PROFILES_DIR } from './flowpilot-process.ts';
import { summarizeProfile } from './profile-summary.ts';
import { measureAedesCeiling, measureInfluxCeiling } from './ceilings.ts';
import { benchCluster, clusterRows, type ClusterBenchResult } from './cluster-bench.ts';
import { envNumber, installSignalHandlers, log, makeTempDir, onTeardown, readInfluxdPid, RESULTS_DIR, teardownAll } from './harness.ts';
import { benchGateway, gatewayRows, type GatewayBenchResult } from './gateway-bench.ts';
import { benchInflux, dropDatabase } from './influx-checks.ts';
import { describeMachine } from './machine.ts';
import {
  benchBackfill,
  benchLatency,
  benchSingleReadings,
  benchSteadyLoad,
  closeLoadSession,
  openLoadSession,
  writeBenchPilot,
  type BenchWorld,
  type LoadSession,
} from './pipeline-scenarios.ts';
import { buildRows, formatMarkdown, formatTable, type BenchResults } from './report.ts';

/**
 * `npm run bench`: the ceilings and every FlowPilot figure in one run, on this machine, with
 * FlowPilot as separate processes like production. Prints the table and writes
 * bench-results/latest.json (and latest.md, the table for docs/BENCHMARKS.md).
 *
 *   npx tsx bench/run.ts                    everything (about 12 minutes on 2 cores, with the gateway and cluster sections)
 *   npx tsx bench/run.ts --only api         one or more sections: ceilings, backfill, single, latency, memory, api, gateway, cluster
 *
 * Durations and sizes come from BENCH_* variables (docs/BENCHMARKS.md lists them) so a quick
 * run can shrink them; the defaults are the issue's.
 */

const SECTIONS = ['ceilings', 'backfill', 'single', 'latency', 'memory', 'api', 'gateway', 'cluster'] as const;
type Section = (typeof SECTIONS)[number];

const CONFIG = {
  meters: envNumber('BENCH_METERS', 500),
  windowPerClient: envNumber('BENCH_WINDOW', 4),
  aedesCeilingSec: envNumber('BENCH_CEILING_SEC', 15),
  influxCeilingSec: envNumber('BENCH_INFLUX_CEILING_SEC', 15),
  influxCeilingMaxLines: envNumber('BENCH_INFLUX_CEILING_LINES', 1_000_000),
  singleSec: envNumber('BENCH_SINGLE_SEC', 60),
  backfillReadings: envNumber('BENCH_BACKFILL_READINGS', 300_000),
  backfillClients: envNumber('BENCH_BACKFILL_CLIENTS', 20),
  backfillWindow: envNumber('BENCH_BACKFILL_WINDOW', 2),
  latencyRate: envNumber('BENCH_LATENCY_RATE', 2_000),
  latencySec: envNumber('BENCH_LATENCY_SEC', 30),
  latencyProbeMeters: envNumber('BENCH_LATENCY_PROBES', 25),
  latencyPollMs: envNumber('BENCH_LATENCY_POLL_MS', 50),
  apiMeters: envNumber('BENCH_API_METERS', 100),
  apiDays: envNumber('BENCH_API_DAYS', 30),
  apiSequentialCalls: envNumber('BENCH_API_CALLS', 60),
  apiConcurrentCalls: envNumber('BENCH_API_CONCURRENT_CALLS', 120),
  steadyRate: envNumber('BENCH_STEADY_RATE', 1_000),
  steadySec: envNumber('BENCH_STEADY_SEC', 180),
  steadySampleSec: envNumber('BENCH_STEADY_SAMPLE_SEC', 10),
  gatewayDevices: envNumber('BENCH_GATEWAY_DEVICES', 50),
  gatewayServers: envNumber('BENCH_GATEWAY_SERVERS', 1),
  gatewaySec: envNumber('BENCH_GATEWAY_SEC', 60),
  gatewayProbeMeters: envNumber('BENCH_GATEWAY_PROBES', 10),
  gatewayPollMs: envNumber('BENCH_GATEWAY_POLL_MS', 50),
  clusterClients: envNumber('BENCH_CLUSTER_METERS', 300),
  clusterSec: envNumber('BENCH_CLUSTER_SEC', 20),
};

function parseSections(argv: string[]): Section[] {
  const { values } = parseArgs({ args: argv, options: { only: { type: 'string' } } });
  if (!values.only) return [...SECTIONS];
  const picked = values.only.split(',').map((s) => s.trim());
  const unknown = picked.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0) throw new Error(`--only ${values.only}: unknown section ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
  return SECTIONS.filter((s) => picked.includes(s));
}

async function main(): Promise<void> {
  installSignalHandlers();
  const sections = parseSections(process.argv.slice(2));
  const started = Date.now();
  const results: BenchResults & { gateway?: GatewayBenchResult; cluster?: ClusterBenchResult } = {
    startedAt: new Date(started).toISOString(),
    sections,
    machine: describeMachine(),
    config: { ...CONFIG },
    ceilings: {},
    memory: { peaks: [] },
    errors: [],
  };
  log(`bench: ${sections.join(', ')} on ${results.machine.nproc} × ${results.machine.cpuModel}, Node ${results.machine.node}`);

  const profiling = process.env.BENCH_PROFILE === '1';
  if (profiling) rmSync(PROFILES_DIR, { recursive: true, force: true });

  const influxDir = makeTempDir('influxd');
  const influxd = await startLocalInflux({ dataDir: influxDir });
  onTeardown('stop influxd', () => influxd.stop());
  log(`influxd on ${influxd.url}`);
  const { pilotFile, meterIds } = writeBenchPilot(Math.max(CONFIG.meters, CONFIG.apiMeters, CONFIG.backfillClients, CONFIG.gatewayDevices, CONFIG.clusterClients));
  const world: BenchWorld = { influxUrl: influxd.url, pilotFile, meterIds, peaks: results.memory.peaks, influxdPid: readInfluxdPid(influxDir) };

  // One failed section is reported and the run goes on: the other figures still mean something.
  const run = async (section: Section, body: () => Promise<void>) => {
    if (!sections.includes(section)) return;
    try {
      await body();
    } catch (error) {
      const message = (error as Error).stack ?? String(error);
      log(`${section} failed: ${message}`);
      results.errors.push({ section, message: (error as Error).message });
    }
  };

  await run('ceilings', async () => {
    results.ceilings.aedes = await measureAedesCeiling({
      durationMs: CONFIG.aedesCeilingSec * 1000,
      window: CONFIG.meters * CONFIG.windowPerClient,
      meterIds: meterIds.slice(0, CONFIG.meters),
    });
    log(`bare Aedes: ${Math.round(results.ceilings.aedes.messagesPerSec)} msg/s`);
    const influx = benchInflux(influxd.url, 'bench_ceiling');
    results.ceilings.influx = await measureInfluxCeiling(influx, {
      durationMs: CONFIG.influxCeilingSec * 1000,
      batchLines: 5_000,
      maxBatches: Math.ceil(CONFIG.influxCeilingMaxLines / 5_000) + 1,
      meters: CONFIG.meters,
    });
    await dropDatabase(influx, 'bench_ceiling');
    log(`InfluxDB direct write: ${Math.round(results.ceilings.influx.linesPerSec)} lines/s`);
  });
  await run('backfill', async () => {
    results.backfill = await benchBackfill(world, { clients: CONFIG.backfillClients, readings: CONFIG.backfillReadings, batch: 1_000, window: CONFIG.backfillWindow });
  });

  // single, latency and memory share one broker and its connected clients (pipeline-scenarios.ts).
  let session: LoadSession | null = null;
  const loadSession = async (): Promise<LoadSession> => {
    session ??= await openLoadSession(world, 'single readings, latency, steady load', 'bench_load', meterIds.slice(0, CONFIG.meters));
    return session;
  };
  await run('single', async () => {
    results.single = await benchSingleReadings(await loadSession(), { durationMs: CONFIG.singleSec * 1000, window: CONFIG.windowPerClient });
  });
  await run('latency', async () => {
    results.latency = await benchLatency(await loadSession(), {
      ratePerSec: CONFIG.latencyRate,
      durationMs: CONFIG.latencySec * 1000,
      window: CONFIG.windowPerClient,
      probeMeters: CONFIG.latencyProbeMeters,
      pollIntervalMs: CONFIG.latencyPollMs,
    });
  });
  await run('memory', async () => {
    results.steady = await benchSteadyLoad(await loadSession(), {
      label: 'steady load',
      ratePerSec: CONFIG.steadyRate,
      durationMs: CONFIG.steadySec * 1000,
      window: CONFIG.windowPerClient,
      sampleIntervalMs: CONFIG.steadySampleSec * 1000,
    });
  });
  if (session) await closeLoadSession(world, session);

  await run('api', async () => {
    results.api = await benchApi(world, {
      meters: CONFIG.apiMeters,
      days: CONFIG.apiDays,
      sequentialCalls: CONFIG.apiSequentialCalls,
      concurrentCalls: CONFIG.apiConcurrentCalls,
      maxModeMs: 90_000,
    });
  });

  await run('gateway', async () => {
    results.gateway = await benchGateway(world, {
      devices: CONFIG.gatewayDevices,
      servers: CONFIG.gatewayServers,
      durationMs: CONFIG.gatewaySec * 1000,
      probeMeters: CONFIG.gatewayProbeMeters,
      pollIntervalMs: CONFIG.gatewayPollMs,
    });
  });

  // SPEC section 11: three nodes over Redis behind HAProxy, beside one node and bare Aedes.
  await run('cluster', async () => {
    results.cluster = await benchCluster(world, {
      clients: CONFIG.clusterClients,
      durationMs: CONFIG.clusterSec * 1000,
      window: CONFIG.windowPerClient,
      ...(results.ceilings.aedes ? { aedes: results.ceilings.aedes } : {}),
    });
  });

  results.finishedAt = new Date().toISOString();
  results.durationSec = Math.round((Date.now() - started) / 1000);
  results.loadAverageAtEnd = loadavg().map((x) => Number(x.toFixed(2)));
  const { rows, targets } = buildRows(results);
  // The API's targets (its concurrent p95 beside the 1 s) sit on the API's own rows.
  targets.push(...addApiTargets(rows, results.api));
  const gateway = gatewayRows(results.gateway);
  rows.push(...gateway.rows);
  targets.push(...gateway.targets);
  const cluster = clusterRows(results.cluster);
  rows.push(...cluster.rows);
  targets.push(...cluster.targets);
  results.targets = targets;

  mkdirSync(RESULTS_DIR, { recursive: true });
  // A partial run (--only) must not replace the full run's latest.json.
  const stem = sections.length === SECTIONS.length ? 'latest' : `latest-${sections.join('-')}`;
  writeFileSync(join(RESULTS_DIR, `${stem}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, `${stem}.md`), `${formatMarkdown(results, rows)}\n`);

  const m = results.machine;
  console.log(`\nFlowPilot benchmark, ${results.startedAt}, ${results.durationSec} s`);
  console.log(`${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.influxd}; load average ${m.loadAverageAtStart.join(' ')} → ${results.loadAverageAtEnd.join(' ')}\n`);
  console.log(formatTable(rows));
  for (const error of results.errors) console.log(`\n${error.section} FAILED: ${error.message}`);
  if (profiling && existsSync(PROFILES_DIR)) {
    // The children wrote their profiles (one per thread) when they exited; a summary beside each.
    for (const dir of readdirSync(PROFILES_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
      const files = readdirSync(join(PROFILES_DIR, dir)).filter((f) => f.endsWith('.cpuprofile'));
      for (const file of files) {
        const path = join(PROFILES_DIR, dir, file);
        writeFileSync(path.replace(/\.cpuprofile$/, '.txt'), `${summarizeProfile(path, 30)}\n`);
      }
    }
    console.log('\nCPU profiles of the FlowPilot children (one per thread) and their summaries (.txt): bench-results/profiles/');
  }
  console.log(`\nWritten: bench-results/${stem}.json, bench-results/${stem}.md`);
  const lost = [results.single, results.backfill, results.latency, results.steady].some((r) => r && r.check.lost > 0) || (results.gateway?.lost ?? 0) > 0 || (results.cluster?.lost ?? 0) > 0;
  process.exitCode = results.errors.length > 0 || lost ? 1 : 0;
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => teardownAll());
