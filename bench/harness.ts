import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * What every bench part shares: the repository root, a registry of everything to tear down
 * (children, temp dirs, influxd) that runs on success, on error and on Ctrl-C, free ports and
 * bounded waits. Every loop in the bench is bounded in count and in time.
 */

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const RESULTS_DIR = join(REPO_ROOT, 'bench-results');

export { sleep };

type Teardown = { name: string; run: () => Promise<void> | void };

const teardowns: Teardown[] = [];
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Registers a teardown step; steps run in reverse registration order. Returns a remover. */
export function onTeardown(name: string, run: () => Promise<void> | void): () => void {
  const step = { name, run };
  teardowns.push(step);
  return () => {
    const index = teardowns.indexOf(step);
    if (index >= 0) teardowns.splice(index, 1);
  };
}

/** A child the bench must never leave behind: SIGKILLed on exit if still alive. */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `flowpilot-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

let tearingDown: Promise<void> | undefined;

/** Runs every registered teardown (each bounded to 15 s), then removes what is left. */
export function teardownAll(): Promise<void> {
  tearingDown ??= (async () => {
    for (const step of teardowns.splice(0).reverse()) {
      const outcome = await Promise.race([
        Promise.resolve()
          .then(step.run)
          .then(() => 'done', (error: unknown) => error),
        sleep(15_000).then(() => 'timeout'),
      ]);
      if (outcome === 'timeout') console.error(`bench: teardown "${step.name}" did not finish within 15 s`);
      else if (outcome !== 'done') console.error(`bench: teardown "${step.name}" failed: ${(outcome as Error).message}`);
    }
    killChildrenNow();
    for (const dir of [...tempDirs]) removeTempDir(dir);
  })();
  return tearingDown;
}

function killChildrenNow(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Ctrl-C or SIGTERM: tear everything down, then exit 130; a second signal exits at once. */
export function installSignalHandlers(): void {
  let signalled = false;
  const onSignal = (signal: string) => {
    if (signalled) {
      killChildrenNow();
      process.exit(130);
    }
    signalled = true;
    console.error(`\nbench: ${signal}, tearing down…`);
    void teardownAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Last resort (an uncaught error, process.exit): nothing survives the bench.
  process.on('exit', () => {
    killChildrenNow();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => done(port));
    });
  });
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
    socket.once('error', () => done(false));
  });
}

/** Waits until 127.0.0.1:port accepts a TCP connection; fails early if `alive()` turns false. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what} exited before listening on port ${port}`);
    if (await portAccepts(port)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on port ${port} within ${timeoutMs / 1000} s`);
}

/** Polls `probe` every `intervalMs` until `done(value)` or the deadline; returns the last value and whether it finished. */
export async function pollUntil<T>(probe: () => Promise<T>, done: (value: T) => boolean, intervalMs: number, timeoutMs: number): Promise<{ value: T; finished: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return { value, finished: true };
    if (Date.now() >= deadline) return { value, finished: false };
    await sleep(intervalMs);
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}="${raw}": expected a positive number`);
  return value;
}

export function log(message: string): void {
  const at = new Date().toISOString().slice(11, 19);
  console.error(`[${at}] ${message}`);
}

/** startLocalInflux writes influxd.pid in its data dir; the bench reads it for influxd's CPU share. */
export function readInfluxdPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'influxd.pid'), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}
