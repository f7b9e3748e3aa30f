import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * FlowPilot services as real processes (`flowpilot broker`, `flowpilot ingest`), for the
 * fault tests that SIGKILL them. Each runs with the test's own data dir, ports and database.
 */
const CLI = fileURLToPath(new URL('../../apps/flowpilot/bin/flowpilot.js', import.meta.url));

export interface CommandOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

const execFileAsync = promisify(execFile);

/** Runs `flowpilot <args>` as an operator would, to its end: its exit code and what it printed. */
export async function runFlowpilot(args: string[], env: Record<string, string> = {}): Promise<CommandOutcome> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as CommandOutcome;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

export interface ServiceProcess {
  readonly child: ChildProcess;
  /** stderr and stdout so far, for a failing test's message. */
  output(): string;
  kill(signal: NodeJS.Signals): Promise<number | null>;
  exited(): Promise<number | null>;
}

export function startService(command: string[], env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [CLI, ...command], {
    env: { ...process.env, FLOWPILOT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
    exited: () => exit,
  };
}

export function writePilotFile(dir: string, meterIds: readonly string[]): string {
  const path = join(dir, 'pilot.yaml');
  const meters = meterIds.map((id) => `  - { id: ${id}, site: S1, role: monitor, intervalSec: 60 }`).join('\n');
  writeFileSync(path, `pilot: { id: fault-test, name: Fault test, timezone: Asia/Almaty }\nmeters:\n${meters}\n`);
  return path;
}

/** The login `flowpilot broker` created for the simulator service in its data dir. */
export function simulatorLogin(dataDir: string): { username: string; password: string } {
  const secrets = JSON.parse(readFileSync(join(dataDir, 'service-logins.json'), 'utf8')) as Record<string, string>;
  return { username: 'flowpilot-simulator', password: secrets['flowpilot-simulator']! };
}

/** A small seeded PRNG (mulberry32), so a fault schedule is the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
