import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, portAccepts, waitForPort } from './ports.ts';
import { ensureDebianCommand, spawnGuarded, type GuardedProcess } from './system-tools.ts';

/**
 * Debian's redis-server for the cluster tests and the bench (SPEC section 11), on a free
 * loopback port, in a temp dir of its own, with no persistence (no RDB snapshot, no AOF): what
 * a cluster keeps in Redis is sessions and forwarding, never an accepted reading (SPEC section
 * 6), so a restarted Redis starts empty on purpose. `stop()` and `start()` make an outage on
 * the same port; `close()` ends it and removes its folder.
 */
export interface TestRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, as FLOWPILOT_CLUSTER_REDIS_URL takes it. */
  readonly url: string;
  readonly dir: string;
  running(): boolean;
  /** The running redis-server's process id (for a bench's CPU share); undefined while stopped. */
  pid(): number | undefined;
  /** Stops redis-server (SIGKILL unless told: a crash, not a shutdown); the port is taken again by start(). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** redis-server's output and its log file's last lines, for a failing test's message. */
  output(): string;
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;

export function ensureRedisInstalled(): string {
  return ensureDebianCommand('redis-server', 'redis-server', 'The cluster tests (SPEC section 11)');
}

export async function startTestRedis(): Promise<TestRedis> {
  const binary = ensureRedisInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-redis-'));
  const port = await freePort();
  let server: GuardedProcess | null = null;

  const launch = async (): Promise<void> => {
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--logfile', '',
      '--protected-mode', 'no',
      '--daemonize', 'no',
    ];
    const started = spawnGuarded(binary, args, { cwd: dir });
    server = started;
    try {
      await waitForPort(port, START_TIMEOUT_MS, { alive: () => started.running(), what: 'redis-server' });
    } catch (error) {
      await started.stop();
      throw new Error(`${(error as Error).message}\n${started.output()}`);
    }
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    running: () => server?.running() ?? false,
    pid: () => (server?.running() ? server.pid : undefined),
    async stop(signal = 'SIGKILL') {
      await server?.kill(signal);
      // Until the port refuses, a client could still reach the old process.
      for (let i = 0; i < 50 && (await portAccepts(port)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    },
    async start() {
      if (server?.running()) return;
      await launch();
    },
    output: () => server?.output() ?? '',
    async close() {
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
