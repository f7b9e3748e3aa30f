import { TIMED_OUT, withTimeout } from '@flowpilot/async';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FlowPilotError } from '@flowpilot/schema';

/*
 * A local influxd for `flowpilot start` without FLOWPILOT_INFLUX_URL (SPEC section 7) and for the
 * integration tests: Debian's influxdb package (1.6.7), configured entirely by a file we write, on
 * loopback ports of its own, with all its state under one data directory.
 */

export interface LocalInflux {
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

export interface LocalInfluxOptions {
  dataDir: string;
  /** 0 or absent: a free loopback port. */
  port?: number;
  log?: (msg: string) => void;
}

export const LOCAL_INFLUX_START_TIMEOUT_MS = 30_000;
export const LOCAL_INFLUX_STOP_GRACE_MS = 5_000;
const PING_INTERVAL_MS = 50;

const NOT_INSTALLED =
  "influxd is not installed: install Debian's influxdb package (apt-get install influxdb) or set FLOWPILOT_INFLUX_URL to an existing InfluxDB";

/** The first executable `name` on a PATH-style list, or undefined. */
export function findOnPath(name: string, pathList: string | undefined): string | undefined {
  for (const dir of (pathList ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

/**
 * The path of influxd, installing Debian's influxdb package first when that is possible without
 * asking anyone (root, apt-get present). Otherwise one sentence that says what to do.
 */
export async function ensureInfluxdInstalled(log: (msg: string) => void = () => {}): Promise<string> {
  const found = findOnPath('influxd', process.env.PATH);
  if (found) return found;
  const aptGet = findOnPath('apt-get', process.env.PATH);
  if (process.getuid?.() !== 0 || aptGet === undefined) throw new FlowPilotError('ERR_CONFIG', NOT_INSTALLED);

  log('influxd is not installed: installing Debian\'s influxdb package with apt-get (this takes a minute)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = async (args: string[]): Promise<{ ok: boolean; output: string }> =>
    new Promise((done) => {
      const child = spawn(aptGet, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('error', (error) => done({ ok: false, output: error.message }));
      child.on('close', (code) => done({ ok: code === 0, output }));
    });
  // apt-get update only when the package lists do not know influxdb yet (a fresh container).
  const known = spawnSync('apt-cache', ['show', 'influxdb'], { stdio: 'ignore' }).status === 0;
  if (!known) await run(['update']);
  const installed = await run(['install', '-y', '--no-install-recommends', 'influxdb']);
  const path = findOnPath('influxd', process.env.PATH) ?? (existsSync('/usr/bin/influxd') ? '/usr/bin/influxd' : undefined);
  if (!installed.ok || path === undefined) {
    const tail = installed.output.trim().split('\n').slice(-5).join('\n');
    throw new FlowPilotError('ERR_CONFIG', `${NOT_INSTALLED} (apt-get install influxdb failed: ${tail})`);
  }
  return path;
}

/** Free loopback ports, distinct, found by letting the kernel pick and closing again. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((done, fail) => {
      const server = createServer();
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => done(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  return ports;
}

/** An explicit port that something else holds would let /ping answer from the wrong server. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((done, fail) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      fail(new FlowPilotError('ERR_CONFIG', `port ${port} for the local influxd is not free (${error.code ?? error.message}): choose another or stop what holds it`)),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => done()));
  });
}

/**
 * The data directory and influxd's own meta, data and WAL folders are owner-only (SPEC section 8:
 * they hold every reading): created, or tightened when an earlier run left them 0755, with 0700.
 * influxd creates its files inside with modes of its own; the folders keep others out.
 */
export function prepareInfluxDataDirs(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  for (const name of ['meta', 'data', 'wal']) {
    const dir = join(dataDir, name);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    } catch (error) {
      // Something that is not a folder sits there: influxd says so in its log, which the error names.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** TOML basic strings accept JSON's escapes. */
const tomlString = (text: string): string => JSON.stringify(text);

export function influxdConfig(dataDir: string, httpPort: number, rpcPort: number): string {
  return `# Written by FlowPilot (packages/influx/src/local-influx.ts) at every start; edits are overwritten.
# Upstream 1.x reads reporting-disabled, Debian's build reads reporting-enabled: set both.
reporting-disabled = true
reporting-enabled = false
bind-address = ${tomlString(`127.0.0.1:${rpcPort}`)}

[meta]
  dir = ${tomlString(join(dataDir, 'meta'))}
  logging-enabled = false

[data]
  dir = ${tomlString(join(dataDir, 'data'))}
  wal-dir = ${tomlString(join(dataDir, 'wal'))}
  # fsync the WAL before answering 204: a confirmed write survives a host crash (SPEC section 6).
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  # No _internal database: nothing reads it here, and it would grow for weeks.
  store-enabled = false

[http]
  enabled = true
  bind-address = ${tomlString(`127.0.0.1:${httpPort}`)}
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  # SPEC section 2: no continuous queries (3.x has none).
  enabled = false

[logging]
  level = "info"
  suppress-logo = true
`;
}

function lastLines(file: string, count: number): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-count).join('\n');
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * An influxd left running on this data directory by a FlowPilot that was killed (SIGKILL skips
 * the 'exit' handler) must not share the files with a new one. It is ours only if its command line
 * names our config file, so nothing else is ever touched.
 */
async function stopLeftover(pidFile: string, configFile: string, log: (msg: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 1 || !isAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!cmdline.includes('influxd') || !cmdline.includes(configFile)) return;
  log(`stopping influxd (pid ${pid}) left running on ${configFile} by an earlier run`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + LOCAL_INFLUX_STOP_GRACE_MS;
  while (isAlive(pid) && Date.now() < deadline) await sleep(PING_INTERVAL_MS);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(PING_INTERVAL_MS);
}

async function pings(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) });
    await response.arrayBuffer();
    return response.status === 204;
  } catch {
    return false;
  }
}

/**
 * Starts influxd on loopback with its own config, meta, data and WAL under `dataDir`, and resolves
 * once it answers /ping. A data directory left behind by an earlier influxd is reused as it is.
 */
export async function startLocalInflux(options: LocalInfluxOptions): Promise<LocalInflux> {
  const log = options.log ?? (() => {});
  const dataDir = resolve(options.dataDir);
  prepareInfluxDataDirs(dataDir);
  const configFile = join(dataDir, 'influxd.conf');
  const logFile = join(dataDir, 'influxd.log');
  const pidFile = join(dataDir, 'influxd.pid');
  await stopLeftover(pidFile, configFile, log);

  const influxd = await ensureInfluxdInstalled(log);
  if (options.port) await assertPortFree(options.port);
  const [picked, rpcPort] = options.port ? [options.port, ...(await freePorts(1))] : await freePorts(2);
  const port = picked as number;
  // 0600 like everything under the data dir; chmod too, for a file an earlier run left 0644.
  writeFileSync(configFile, influxdConfig(dataDir, port, rpcPort as number), { mode: 0o600 });
  chmodSync(configFile, 0o600);

  const url = `http://127.0.0.1:${port}`;
  log(`starting influxd on ${url} (data in ${dataDir}, log in ${logFile})`);
  // influxd writes its log straight to the file, so it keeps logging even if we stop reading.
  const logFd = openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    // Its own process group: a Ctrl-C in the terminal reaches only FlowPilot, which stops influxd
    // last, after the ingest wrote what it holds (a stale one is reaped through influxd.pid).
    child = spawn(influxd, ['-config', configFile], { stdio: ['ignore', logFd, logFd], cwd: dataDir, detached: true });
  } finally {
    closeSync(logFd);
  }
  let exited = false;
  let exitReason = '';
  const exitedPromise = new Promise<void>((done) => {
    child.once('exit', (code, signal) => {
      exited = true;
      exitReason = signal ? `signal ${signal}` : `code ${code}`;
      done();
    });
    child.once('error', (error) => {
      exited = true;
      exitReason = error.message;
      done();
    });
  });
  // The child must not outlive us: 'exit' runs on a normal exit and after process.exit().
  const killOnExit = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  if (child.pid !== undefined) writeFileSync(pidFile, `${child.pid}\n`);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const graceful = (await withTimeout(exitedPromise, LOCAL_INFLUX_STOP_GRACE_MS)) !== TIMED_OUT;
        if (!graceful) {
          log(`influxd did not stop within ${LOCAL_INFLUX_STOP_GRACE_MS} ms of SIGTERM: killing it`);
          child.kill('SIGKILL');
          await exitedPromise;
        }
      }
      process.off('exit', killOnExit);
      rmSync(pidFile, { force: true });
    })();
    return stopping;
  };

  const deadline = Date.now() + LOCAL_INFLUX_START_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await stop();
      const tail = lastLines(logFile, 5);
      throw new FlowPilotError('ERR_INFLUX_UNAVAILABLE', `influxd exited (${exitReason}) before answering ${url}/ping; see ${logFile}${tail ? `:\n${tail}\n` : ''}`);
    }
    if (await pings(url)) break;
    if (Date.now() >= deadline) {
      await stop();
      throw new FlowPilotError('ERR_INFLUX_UNAVAILABLE', `influxd did not answer ${url}/ping within ${LOCAL_INFLUX_START_TIMEOUT_MS / 1000} s; see ${logFile}`);
    }
    await sleep(PING_INTERVAL_MS);
  }
  return { url, port, dataDir, stop };
}
