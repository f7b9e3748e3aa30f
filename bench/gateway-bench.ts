import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createReadingsRepository, quoteString, timeLiteral, type InfluxClient } from '@flowpilot/influx';
import { startModbusDevice, type DeviceRegisterMap, type ModbusDevice } from '../test/helpers/modbus-device.ts';
import { freePort, waitForPort } from '../test/helpers/ports.ts';
import { runFlowpilot } from '../test/helpers/processes.ts';
import { pollUntil } from '../test/helpers/wait.ts';
import { startBrokerProcess, startGatewayCliProcess } from './flowpilot-process.ts';
import { log, makeTempDir, onTeardown, sleep } from './harness.ts';
import { benchInflux, dropDatabase } from './influx-checks.ts';
import type { BenchWorld } from './pipeline-scenarios.ts';
import type { Row } from './report.ts';
import { startCpuMeter } from './rss-sampler.ts';
import { summarize, type Summary } from './stats.ts';

/**
 * The field gateway (SPEC section 10, issue 12): `devices` meters played by Debian's pymodbus
 * (`servers` Modbus TCP servers, each answering as several unit ids: the meters behind one
 * TCP-to-RTU converter, polled one after another on its link), `flowpilot gateway` polling each
 * at 1 s, `flowpilot broker` with its ingest, a local influxd, all as separate processes.
 *
 * Measured over a steady window after the gateway caught up (every meter connected, its outbox
 * empty):
 * - poll → stored: for the probe meters' readings, the moment InfluxDB first showed them minus
 *   their ts (the poll's boundary). A poller asks InfluxDB for each probe meter's max(seq) every
 *   `pollIntervalMs`; a meter's readings are published, spooled and written in order, so once
 *   seq n is visible every earlier one is too. An upper bound, coarse by the poll interval and
 *   the query's own time.
 * - poll → broker: received_at − ts of every reading of the window (the broker's clock at
 *   admission, SPEC section 2).
 * - the (meterId, seq) check of SPEC section 6 for a gateway: every seq the gateway numbered in
 *   the window is stored, or was a poll it counted as skipped (its /metrics).
 */

export interface GatewayBenchOptions {
  devices: number;
  servers: number;
  durationMs: number;
  probeMeters: number;
  pollIntervalMs: number;
}

export interface GatewayBenchResult {
  devices: number;
  servers: number;
  intervalSec: number;
  windowSec: number;
  probeMeters: number;
  pollIntervalMs: number;
  /** From the gateway's start until every meter was connected and its outbox empty. */
  catchUpSec: number;
  /** ts → first visible in InfluxDB, probe meters' readings of the window. */
  pollToStoredMs: Summary;
  /** received_at − ts, every reading of the window. */
  pollToBrokerMs: Summary;
  /** Readings of the window that reached the broker inside an array (the gateway had fallen behind). */
  backfilled: number;
  /** Seqs the gateway numbered in the window, readings among them, skips by kind, and the check. */
  polls: number;
  made: number;
  skipped: Record<string, number>;
  stored: number;
  lost: number;
  lostExamples: string[];
  /** Probe readings never seen while the poller ran (counted in `lost` if they are not stored at all). */
  unresolved: number;
  cpuPercent: Record<string, number>;
  gatewayPeakRssMiB: number;
}

const INTERVAL_SEC = 1;
const LOGIN = 'bench-gateway';
const PASSWORD = 'bench-gateway-password';
const DEVICE_MAP = {
  flow: { table: 'input', address: 0, type: 'float32' },
  temperature: { table: 'input', address: 4, type: 'int16', scale: 0.1, value: 11.8 },
  total: { table: 'holding', address: 0, type: 'float64' },
} as const satisfies DeviceRegisterMap;
const REGISTERS = '{ flow: { table: input, address: 0, type: float32 }, total: { table: holding, address: 0, type: float64 }, temperature: { table: input, address: 4, type: int16, scale: 0.1, unit: C } }';

interface GatewayFigures {
  polls: Map<string, number>;
  readings: Map<string, number>;
  connected: Map<string, number>;
  failures: Map<string, Record<string, number>>;
  outboxReadings: number;
}

function parseFigures(text: string): GatewayFigures {
  const figures: GatewayFigures = { polls: new Map(), readings: new Map(), connected: new Map(), failures: new Map(), outboxReadings: Number.NaN };
  for (const line of text.split('\n')) {
    const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const [, name, labelText = '', valueText] = match;
    const labels = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const value = Number(valueText);
    const meter = labels.meter;
    if (name === 'flowpilot_gateway_outbox_readings') figures.outboxReadings = value;
    if (meter === undefined) continue;
    if (name === 'flowpilot_gateway_polls_total') figures.polls.set(meter, value);
    else if (name === 'flowpilot_gateway_readings_total') figures.readings.set(meter, value);
    else if (name === 'flowpilot_gateway_connected') figures.connected.set(meter, value);
    else if (name === 'flowpilot_gateway_poll_failures_total' && labels.kind !== undefined) figures.failures.set(meter, { ...(figures.failures.get(meter) ?? {}), [labels.kind]: value });
  }
  return figures;
}

const round = (value: number, digits = 0) => Number(value.toFixed(digits));
const roundSummary = (s: Summary): Summary => ({ count: s.count, p50: round(s.p50, 1), p95: round(s.p95, 1), p99: round(s.p99, 1), max: round(s.max, 1) });

/** `flowpilot gateway --config F` as a child (bench/flowpilot-process.ts): its pid, its /metrics, and a stop that reports its peak RSS. */
async function startGatewayProcess(configFile: string, metricsPort: number, dataDir: string): Promise<{ pid: number; figures(): Promise<GatewayFigures>; stop(): Promise<number>; outputTail(): string }> {
  const gateway = startGatewayCliProcess('flowpilot gateway', configFile, dataDir);
  const alive = (): boolean => {
    try {
      process.kill(gateway.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    await waitForPort(metricsPort, 60_000, { alive, what: 'flowpilot gateway' });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${gateway.outputTail()}`);
  }
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  return { pid: gateway.pid, figures: async () => parseFigures(await (await fetch(url)).text()), stop: gateway.stop, outputTail: gateway.outputTail };
}

/** Every reading of these meters in [fromMs, toMs): seq, ts, received_at and arrival. */
async function windowReadings(influx: InfluxClient, meterIds: readonly string[], fromMs: number, toMs: number): Promise<Map<string, { seq: number; ts: number; receivedAt: number; arrival: number }[]>> {
  const byMeter = new Map<string, { seq: number; ts: number; receivedAt: number; arrival: number }[]>();
  for (const meterId of meterIds) {
    const [series] = await influx.query(`SELECT seq, received_at, arrival FROM reading WHERE meter = ${quoteString(meterId)} AND time >= ${timeLiteral(fromMs)} AND time < ${timeLiteral(toMs)}`);
    const at = (name: string) => series?.columns.indexOf(name) ?? -1;
    byMeter.set(
      meterId,
      (series?.values ?? []).map((row) => ({ ts: row[at('time')] as number, seq: row[at('seq')] as number, receivedAt: row[at('received_at')] as number, arrival: (row[at('arrival')] as number | null) ?? 0 })),
    );
  }
  return byMeter;
}

export async function benchGateway(world: BenchWorld, options: GatewayBenchOptions): Promise<GatewayBenchResult> {
  if (options.devices > world.meterIds.length) throw new Error(`the bench pilot has ${world.meterIds.length} meters, fewer than ${options.devices} devices`);
  const meterIds = world.meterIds.slice(0, options.devices);
  const database = 'bench_gateway';
  const influx = benchInflux(world.influxUrl, database);
  await dropDatabase(influx, database);
  await influx.ensureDatabase();
  const broker = await startBrokerProcess('broker (gateway)', { pilotFile: world.pilotFile, influxUrl: world.influxUrl, database });
  try {
    // The login's password in a file of its own, read by `credentials add` and by the gateway (SPEC section 8: never on a command line).
    const dir = makeTempDir('gateway');
    const passwordFile = join(dir, `${LOGIN}.password`);
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const added = await runFlowpilot(['credentials', 'add', LOGIN, '--role', 'gateway', '--meters', meterIds.join(','), '--password-file', passwordFile], {
      FLOWPILOT_DATA_DIR: broker.dataDir,
      FLOWPILOT_PILOT: world.pilotFile,
    });
    if (added.code !== 0) throw new Error(`flowpilot credentials add failed: ${added.stderr}`);

    // The devices: `servers` pymodbus TCP servers, the meters spread over them as unit ids 1, 2, …
    const perServer = Math.ceil(options.devices / options.servers);
    const devices: { device: ModbusDevice; unitIds: number[] }[] = [];
    onTeardown('stop the pymodbus devices', () => Promise.all(devices.map(({ device }) => device.stop())).then(() => undefined));
    for (let first = 0; first < options.devices; first += perServer) {
      const unitIds = Array.from({ length: Math.min(perServer, options.devices - first) }, (_, i) => i + 1);
      const device = await startModbusDevice({ transport: 'tcp', unitIds, map: DEVICE_MAP, profile: [[0, 42.7], [30, 17.25], [60, 63.5]], initialTotal: 1_000 });
      devices.push({ device, unitIds });
    }
    log(`gateway: ${options.devices} devices on ${devices.length} pymodbus ${devices[0]!.device.pymodbusVersion} server(s) of up to ${perServer} unit ids`);

    const metricsPort = await freePort();
    const lines = [`broker: { url: "${broker.mqttUrl}", username: ${LOGIN}, passwordFile: ${passwordFile} }`, `dataDir: ${join(dir, 'data')}`, `metrics: { host: 127.0.0.1, port: ${metricsPort} }`, 'devices:'];
    let index = 0;
    for (const { device, unitIds } of devices) {
      if (device.transport !== 'tcp') continue;
      for (const unitId of unitIds) {
        // One attempt and one retry of 400 ms fit in the 1 s interval (SPEC section 10: retried within its interval).
        lines.push(`  - { meterId: ${meterIds[index++]}, transport: tcp, host: ${device.host}, port: ${device.port}, unitId: ${unitId}, intervalSec: ${INTERVAL_SEC}, timeoutMs: 400, retries: 1, registers: ${REGISTERS} }`);
      }
    }
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, `${lines.join('\n')}\n`);

    const startedAt = Date.now();
    const gateway = await startGatewayProcess(configFile, metricsPort, dir);
    const caughtUp = await pollUntil(
      () => gateway.figures(),
      (f) => f.outboxReadings === 0 && meterIds.every((id) => f.connected.get(id) === 1 && (f.readings.get(id) ?? 0) > 0),
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    if (!caughtUp.finished) throw new Error(`the gateway did not catch up within 120 s (outbox ${caughtUp.value.outboxReadings}):\n${gateway.outputTail()}`);
    const catchUpSec = (Date.now() - startedAt) / 1000;
    log(`gateway: every meter connected and its outbox empty after ${catchUpSec.toFixed(1)} s; measuring for ${options.durationMs / 1000} s`);

    // The window: from the next boundary on, for durationMs.
    await sleep(Math.ceil(Date.now() / 1000) * 1000 - Date.now() + 5);
    const before = await gateway.figures();
    const windowStartMs = Math.floor(Date.now() / 1000) * 1000;
    const cpu = startCpuMeter({ gateway: gateway.pid, broker: broker.pid, influxd: world.influxdPid, ...Object.fromEntries(devices.map(({ device }, i) => [devices.length === 1 ? 'pymodbus' : `pymodbus[${i + 1}]`, device.pid])) });

    // Probe meters spread over each server's queue (its first unit id is polled first, its last last).
    const step = Math.max(1, Math.floor(meterIds.length / options.probeMeters));
    const probes = meterIds.filter((_, i) => i % step === 0).slice(0, options.probeMeters);
    const firstSeen = new Map<string, Map<number, number>>(probes.map((id) => [id, new Map()]));
    const resolved = new Map<string, number>();
    const readings = createReadingsRepository(influx);
    for (const [id, max] of await readings.maxSeqs(probes, windowStartMs - 60_000)) resolved.set(id, max);
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const started = Date.now();
        try {
          const maxSeqs = await readings.maxSeqs(probes, windowStartMs - 60_000);
          const seenAt = Date.now();
          for (const [id, max] of maxSeqs) {
            for (let seq = (resolved.get(id) ?? -1) + 1; seq <= max; seq++) firstSeen.get(id)!.set(seq, seenAt);
            resolved.set(id, Math.max(max, resolved.get(id) ?? -1));
          }
        } catch (error) {
          log(`gateway: a latency poll failed: ${(error as Error).message}`);
        }
        await sleep(Math.max(0, options.pollIntervalMs - (Date.now() - started)));
      }
    })();
    await sleep(options.durationMs);
    const after = await gateway.figures();
    const windowEndMs = Date.now();
    const cpuPercent = cpu();
    // The seqs numbered in the window: [before.polls, after.polls) of each meter (its seqs start at 0 in this fresh data dir).
    const expectedVisible = (f: GatewayFigures) => probes.every((id) => (resolved.get(id) ?? -1) >= (f.polls.get(id) ?? 0) - 1);
    await pollUntil(() => undefined, () => expectedVisible(after), { timeoutMs: 30_000, intervalMs: 100 });
    polling = false;
    await poller;

    let made = 0;
    let polls = 0;
    let stored = 0;
    let lost = 0;
    const lostExamples: string[] = [];
    const skipped: Record<string, number> = {};
    const storedSeqs = await pollUntil(
      () => readings.seqs(meterIds),
      (seqs) => meterIds.every((id) => (seqs.get(id) ?? []).filter((seq) => seq >= (before.polls.get(id) ?? 0) && seq < (after.polls.get(id) ?? 0)).length >= (after.readings.get(id) ?? 0) - (before.readings.get(id) ?? 0)),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    for (const id of meterIds) {
      const from = before.polls.get(id) ?? 0;
      const to = after.polls.get(id) ?? 0;
      const skips = Object.entries(after.failures.get(id) ?? {}).map(([kind, n]) => [kind, n - (before.failures.get(id)?.[kind] ?? 0)] as const);
      const skippedHere = skips.reduce((sum, [, n]) => sum + n, 0);
      for (const [kind, n] of skips) if (n > 0) skipped[kind] = (skipped[kind] ?? 0) + n;
      const seqs = new Set((storedSeqs.value.get(id) ?? []).filter((seq) => seq >= from && seq < to));
      polls += to - from;
      made += to - from - skippedHere;
      stored += seqs.size;
      // A missing seq beyond the skips counted is a reading lost.
      const missing = Array.from({ length: to - from }, (_, i) => from + i).filter((seq) => !seqs.has(seq));
      if (missing.length > skippedHere) {
        lost += missing.length - skippedHere;
        if (lostExamples.length < 5) lostExamples.push(...missing.slice(0, 5 - lostExamples.length).map((seq) => `${id}#${seq}`));
      }
    }

    const window = await windowReadings(influx, meterIds, windowStartMs, windowEndMs);
    const toBroker: number[] = [];
    let backfilled = 0;
    for (const points of window.values()) {
      for (const point of points) {
        toBroker.push(point.receivedAt - point.ts);
        if (point.arrival === 1) backfilled += 1;
      }
    }
    const toStored: number[] = [];
    let unresolved = 0;
    for (const id of probes) {
      for (const point of window.get(id) ?? []) {
        const seenAt = firstSeen.get(id)!.get(point.seq);
        if (seenAt === undefined) unresolved += 1;
        else toStored.push(seenAt - point.ts);
      }
    }
    const peak = await gateway.stop();
    const result: GatewayBenchResult = {
      devices: options.devices,
      servers: devices.length,
      intervalSec: INTERVAL_SEC,
      windowSec: round((windowEndMs - windowStartMs) / 1000, 1),
      probeMeters: probes.length,
      pollIntervalMs: options.pollIntervalMs,
      catchUpSec: round(catchUpSec, 1),
      pollToStoredMs: roundSummary(summarize(toStored)),
      pollToBrokerMs: roundSummary(summarize(toBroker)),
      backfilled,
      polls,
      made,
      skipped,
      stored,
      lost,
      lostExamples,
      unresolved,
      cpuPercent,
      gatewayPeakRssMiB: round(peak, 1),
    };
    log(
      `gateway: poll → stored p50 ${result.pollToStoredMs.p50} ms, p95 ${result.pollToStoredMs.p95} ms, max ${result.pollToStoredMs.max} ms (${result.pollToStoredMs.count} probes); poll → broker p50 ${result.pollToBrokerMs.p50} ms; made ${made}, stored ${stored}, lost ${lost}`,
    );
    return result;
  } finally {
    const peak = await broker.stop();
    world.peaks.push({ process: broker.name, peakRssMiB: round(peak, 1) });
    await dropDatabase(influx, database).catch(() => undefined);
  }
}

/** The section's rows in the bench's table (bench/report.ts), and its target: nothing lost. */
export function gatewayRows(g: GatewayBenchResult | undefined): { rows: Row[]; targets: { name: string; met: boolean | null }[] } {
  if (!g) return { rows: [], targets: [] };
  const blank = { ceiling: '', ratio: '', target: '', verdict: '' };
  const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : '—');
  const n0 = (x: number) => Math.round(x).toLocaleString('en-US');
  const skipped = Object.entries(g.skipped).map(([kind, n]) => `${kind} ${n}`).join(', ') || 'none';
  const cpu = Object.entries(g.cpuPercent).map(([name, share]) => `${name} ${share}`).join(', ');
  const met = g.lost === 0;
  return {
    rows: [
      {
        figure: `Gateway: ${g.devices} Modbus TCP devices (${g.servers} pymodbus server${g.servers === 1 ? '' : 's'}) at ${g.intervalSec} s, poll → stored (${n0(g.pollToStoredMs.count)} probes)`,
        value: `p50 ${ms(g.pollToStoredMs.p50)}, p95 ${ms(g.pollToStoredMs.p95)}, max ${ms(g.pollToStoredMs.max)}`,
        ...blank,
      },
      { figure: '  poll → broker (received_at − ts)', value: `p50 ${ms(g.pollToBrokerMs.p50)}, p95 ${ms(g.pollToBrokerMs.p95)}, max ${ms(g.pollToBrokerMs.max)}`, ...blank },
      { figure: `  readings made / stored in ${g.windowSec} s; polls skipped`, value: `${n0(g.made)} / ${n0(g.stored)}; ${skipped}`, ...blank },
      { figure: '  (meterId, seq) check: lost / made', value: `${n0(g.lost)} / ${n0(g.made)}`, ceiling: '', ratio: '', target: 'lost = 0', verdict: met ? 'met' : 'MISSED' },
      { figure: '  CPU, % of one core', value: cpu, ...blank },
      { figure: '  Peak RSS: flowpilot gateway', value: `${g.gatewayPeakRssMiB.toFixed(0)} MiB`, ...blank },
    ],
    targets: [{ name: 'gateway: lost = 0', met }],
  };
}
