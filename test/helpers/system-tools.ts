import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Programs nobody here wrote (Debian's redis-server, haproxy), for the tests and the bench that
 * run FlowPilot beside them: found on the PATH or in the sbin folders, installed with apt-get
 * when missing (as test/global-setup.ts does for influxd and modbus-device.ts for pymodbus), and
 * run so that they never outlive the process that started them.
 */

const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The absolute path of `command`, from the PATH or the usual sbin/bin folders (haproxy lives in /usr/sbin). */
export function findCommand(command: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const path = join(dir, command);
    if (existsSync(path)) return path;
  }
  return null;
}

/**
 * The path of `command`, installing Debian's `debianPackage` with apt-get when it is missing and
 * we are root on Debian; otherwise one error that says what to install.
 */
export function ensureDebianCommand(command: string, debianPackage: string, purpose: string): string {
  const found = findCommand(command);
  if (found) return found;
  const hint = `${purpose} needs Debian's ${debianPackage} (${command}): sudo apt-get install -y ${debianPackage}`;
  const canInstall = process.getuid?.() === 0 && existsSync('/etc/debian_version') && findCommand('apt-get') !== null;
  if (!canInstall) throw new Error(hint);
  console.log(`[test] installing Debian's ${debianPackage} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // apt-get update only when the package lists do not know the package yet (a fresh container).
  if (spawnSync('apt-cache', ['show', debianPackage], { stdio: 'ignore' }).status !== 0) spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const installed = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', debianPackage], { stdio: 'inherit', env });
  const path = findCommand(command);
  if (installed.status !== 0 || !path) throw new Error(`${hint} (apt-get install failed with status ${installed.status})`);
  return path;
}

export interface GuardedProcess {
  /** The program's own process id (the shell execs it). */
  readonly pid: number;
  readonly child: ChildProcessWithoutNullStreams;
  /** Its stdout and stderr so far (the last 20,000 characters), for a failing test's message. */
  output(): string;
  /** Whether it still runs. */
  running(): boolean;
  /** Resolves with the exit code, or the signal's name, once it has exited. */
  exited(): Promise<number | string>;
  /** Sends `signal` and waits for the exit. */
  kill(signal: NodeJS.Signals): Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); safe to call twice. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Runs `path args…` through a shell that first starts a watcher on its stdin, then execs the
 * program (so `pid` is the program's). Should the test runner or the bench die without stopping
 * it, the watcher sees stdin close and SIGKILLs the program: a redis-server or an haproxy never
 * keeps a port of a finished run. (A background job of `sh` reads /dev/null unless told
 * otherwise, hence the copy of stdin on fd 3.)
 */
export function spawnGuarded(path: string, args: readonly string[], options: { cwd?: string } = {}): GuardedProcess {
  const script = 'exec 3<&0; (cat <&3 >/dev/null; kill -KILL $$ 2>/dev/null) & exec "$@" </dev/null 3<&-';
  const child = spawn('sh', ['-c', script, 'sh', path, ...args], { stdio: 'pipe', ...(options.cwd ? { cwd: options.cwd } : {}) });
  child.stdin.on('error', () => {}); // EPIPE once it has exited
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exit = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      // Let the watcher go too: it holds the other end of stdin.
      child.stdin.end();
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  let stopping: Promise<number | string> | undefined;
  return {
    pid: child.pid as number,
    child,
    output: () => output,
    running,
    exited: () => exit,
    async kill(signal) {
      if (running()) child.kill(signal);
      return exit;
    },
    stop(graceMs = 5_000) {
      stopping ??= (async () => {
        if (!running()) return exit;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const outcome = await exit;
        clearTimeout(timer);
        return outcome;
      })();
      return stopping;
    },
  };
}
