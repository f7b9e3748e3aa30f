import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TIMED_OUT, withTimeout } from '@flowpilot/async';
import { freePort, waitForPort } from '../test/helpers/ports.ts';
import { makeTempDir, onTeardown, REPO_ROOT, RESULTS_DIR, trackChild } from './harness.ts';
import { readMemory, startRssSampler, type RssSampler } from './rss-sampler.ts';

/**
 * FlowPilot as production runs it: `node apps/flowpilot/bin/flowpilot.js broker` (broker and ingest
 * in one process) and `… api`, each a child process configured only through FLOWPILOT_* variables
 * (SPEC section 7). BENCH_PROFILE=1 runs each child with --cpu-prof; the profile is written into
 * bench-results/profiles/ when the child exits after SIGTERM.
 */

export const CLI = join(REPO_ROOT, 'apps/flowpilot/bin/flowpilot.js');
export const PROFILES_DIR = join(RESULTS_DIR, 'profiles');

export interface FlowPilotProcess {
  /** A label such as `broker (single readings)`, used in the memory table. */
  name: string;
  pid: number;
  dataDir: string;
  sampler: RssSampler;
  /** Stops the child (SIGTERM, then SIGKILL after 15 s) and returns its peak RSS in MiB. */
  stop(): Promise<number>;
  /** The last lines the child wrote, for error messages. */
  outputTail(): string;
}

export interface BrokerProcess extends FlowPilotProcess {
  mqttPort: number;
  mqttUrl: string;
  /** The `flowpilot-simulator` service login the broker created (service-logins.json). */
  simulatorLogin: { username: string; password: string };
}

export interface ApiProcess extends FlowPilotProcess {
  httpUrl: string;
}

export interface FlowPilotEnv {
  pilotFile: string;
  influxUrl: string;
  database: string;
}

const profiling = process.env.BENCH_PROFILE === '1';

function spawnCli(command: 'broker' | 'api' | 'gateway', name: string, env: Record<string, string>, args: readonly string[] = []): ChildProcess {
  const nodeArgs: string[] = [];
  if (profiling) {
    // One directory per child: Node writes a profile per thread (tsx's loader runs in a worker),
    // named CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile.
    const dir = join(PROFILES_DIR, name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, ''));
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const child = spawn(process.execPath, [...nodeArgs, CLI, command, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, FLOWPILOT_LOG_LEVEL: process.env.BENCH_CHILD_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  return child;
}

function wrap(name: string, child: ChildProcess, dataDir: string): FlowPilotProcess {
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) tail.push(line);
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name}`);
  const sampler = startRssSampler(pid, 1_000);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let stopping: Promise<number> | undefined;
  const stop = (): Promise<number> => {
    stopping ??= (async () => {
      sampler.sample();
      const last = readMemory(pid);
      sampler.stop();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        if ((await withTimeout(exited, 15_000)) === TIMED_OUT) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      return Math.max(sampler.peakMiB(), last?.hwmMiB ?? 0);
    })();
    return stopping;
  };
  onTeardown(`stop ${name}`, async () => void (await stop()));
  return { name, pid, dataDir, sampler, stop, outputTail: () => tail.join('\n') };
}

/** `flowpilot broker` (with its ingest) on a free port, its data in a fresh temp dir. */
/** `flowpilot gateway --config F` as a child, with the same output tail, RSS sampling and stop as the broker and the API. */
export function startGatewayCliProcess(name: string, configFile: string, dataDir: string): FlowPilotProcess {
  return wrap(name, spawnCli('gateway', name, {}, ['--config', configFile]), dataDir);
}

export async function startBrokerProcess(name: string, env: FlowPilotEnv): Promise<BrokerProcess> {
  const dataDir = makeTempDir('broker');
  const mqttPort = await freePort();
  const child = spawnCli('broker', name, {
    FLOWPILOT_DATA_DIR: dataDir,
    FLOWPILOT_PILOT: env.pilotFile,
    FLOWPILOT_MQTT_PORT: String(mqttPort),
    FLOWPILOT_INFLUX_URL: env.influxUrl,
    FLOWPILOT_INFLUX_DB: env.database,
  });
  const proc = wrap(name, child, dataDir);
  try {
    await waitForPort(mqttPort, 60_000, { alive: () => child.exitCode === null, what: name });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${proc.outputTail()}`);
  }
  const logins = JSON.parse(readFileSync(join(dataDir, 'service-logins.json'), 'utf8')) as Record<string, string>;
  const password = logins['flowpilot-simulator'];
  if (password === undefined) throw new Error(`${name}: no flowpilot-simulator login in ${dataDir}/service-logins.json`);
  return { ...proc, mqttPort, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, simulatorLogin: { username: 'flowpilot-simulator', password } };
}

/** `flowpilot api` on a free port, reading the broker's data dir for its MQTT service login. */
export async function startApiProcess(name: string, env: FlowPilotEnv, broker: BrokerProcess): Promise<ApiProcess> {
  const httpPort = await freePort();
  const child = spawnCli('api', name, {
    FLOWPILOT_DATA_DIR: broker.dataDir,
    FLOWPILOT_PILOT: env.pilotFile,
    FLOWPILOT_MQTT_URL: broker.mqttUrl,
    FLOWPILOT_HTTP_PORT: String(httpPort),
    FLOWPILOT_INFLUX_URL: env.influxUrl,
    FLOWPILOT_INFLUX_DB: env.database,
    // The bench measures what the API can serve; the per-client limit on expensive requests
    // (SPEC section 8, 30 a minute by default) would measure the limit instead.
    FLOWPILOT_HTTP_RATE_LIMIT: '1000000',
  });
  const proc = wrap(name, child, broker.dataDir);
  try {
    await waitForPort(httpPort, 60_000, { alive: () => child.exitCode === null, what: name });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${proc.outputTail()}`);
  }
  return { ...proc, httpUrl: `http://127.0.0.1:${httpPort}` };
}
