import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.ts';
import { ensureDebianCommand, spawnGuarded } from './system-tools.ts';

/**
 * Debian's HAProxy in front of a FlowPilot cluster (SPEC section 11: "meters reach the nodes
 * through any TCP load balancer"): mode tcp, leastconn, a TCP check of each node every 500 ms,
 * and a redispatch when a node refuses, so a meter whose node died reconnects to another one.
 * Its runtime socket answers which nodes it counts as up.
 */
export interface HaproxyBackend {
  /** The server's name in haproxy.cfg (the node id). */
  name: string;
  port: number;
}

export interface TestHaproxy {
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>`: where the meters connect. */
  readonly mqttUrl: string;
  readonly configFile: string;
  /** HAProxy's process id (for a bench's CPU share). */
  readonly pid: number;
  /** Each backend server's status as HAProxy sees it now: `UP`, `DOWN`, `UP 1/2`, … */
  serverStatus(): Promise<Record<string, string>>;
  output(): string;
  close(): Promise<void>;
}

export function ensureHaproxyInstalled(): string {
  return ensureDebianCommand('haproxy', 'haproxy', 'The cluster tests (SPEC section 11)');
}

/** The configuration: MQTT connections live for hours, so the client and server timeouts are long. */
export function haproxyConfig(options: { port: number; backends: readonly HaproxyBackend[]; statsSocket: string; maxConnections?: number }): string {
  const servers = options.backends.map((b) => `  server ${b.name} 127.0.0.1:${b.port} check inter 500ms fall 2 rise 2`).join('\n');
  return `global
  # Two descriptors per connection: stay well under the usual open-file limit.
  maxconn ${options.maxConnections ?? 4_000}
  stats socket ${options.statsSocket} mode 600 level admin

defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  # A node that refuses (killed, restarting) sends the meter to another one.
  retries 3
  option redispatch

frontend meters
  bind 127.0.0.1:${options.port}
  default_backend nodes

backend nodes
  balance leastconn
${servers}
`;
}

/** Asks the runtime socket one command and answers its whole reply. */
function askSocket(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let reply = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error(`haproxy's socket did not answer "${command}" within 5 s`)));
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
}

export async function startTestHaproxy(backends: readonly HaproxyBackend[], options: { maxConnections?: number } = {}): Promise<TestHaproxy> {
  const binary = ensureHaproxyInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-haproxy-'));
  const statsSocket = join(dir, 'admin.sock');
  const configFile = join(dir, 'haproxy.cfg');
  // A free port can be taken between asking and binding: try another one then.
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    writeFileSync(configFile, haproxyConfig({ port, backends, statsSocket, ...options }));
    const started = spawnGuarded(binary, ['-f', configFile, '-db'], { cwd: dir });
    try {
      await waitForPort(port, 15_000, { alive: () => started.running(), what: 'haproxy' });
    } catch (error) {
      await started.stop();
      if (attempt < 3 && /cannot bind|Address already in use/i.test(started.output())) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${(error as Error).message}\n${started.output()}`);
    }
    const running = started;
    return {
      port,
      mqttUrl: `mqtt://127.0.0.1:${port}`,
      configFile,
      pid: running.pid,
      async serverStatus() {
        // `show stat` is CSV: # pxname,svname,…; the status is the 18th column.
        const csv = await askSocket(statsSocket, 'show stat');
        const [header, ...rows] = csv.trim().split('\n');
        const columns = (header ?? '').replace(/^# /, '').split(',');
        const [proxyAt, serverAt, statusAt] = ['pxname', 'svname', 'status'].map((name) => columns.indexOf(name)) as [number, number, number];
        const status: Record<string, string> = {};
        for (const row of rows) {
          const cells = row.split(',');
          if (cells[proxyAt] === 'nodes' && cells[serverAt] !== 'BACKEND') status[cells[serverAt]!] = cells[statusAt]!;
        }
        return status;
      },
      output: () => running.output(),
      async close() {
        await running.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}
