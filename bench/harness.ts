import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { TIMED_OUT, withTimeout } from '@flowpilot/async';

/**
 * What every bench part shares: the repository root and a registry of everything to tear down
 * (children, temp dirs, influxd) that runs on success, on error and on Ctrl-C. Every loop in the
 * bench is bounded in count and in time: free ports and bounded waits come from the tests'
 * helpers (test/helpers/ports.ts, test/helpers/wait.ts), pools and timeouts from @flowpilot/async.
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
      const run = Promise.resolve()
        .then(step.run)
        .then(() => null, (error: unknown) => error as Error);
      const outcome = await withTimeout(run, 15_000);
      if (outcome === TIMED_OUT) console.error(`bench: teardown "${step.name}" did not finish within 15 s`);
      else if (outcome !== null) console.error(`bench: teardown "${step.name}" failed: ${outcome.message}`);
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
