import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';

/** The machine a run measured: the figures mean little without it (docs/BENCHMARKS.md). */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  influxd: string;
  kernel: string;
  loadAverageAtStart: number[];
}

export function describeMachine(): MachineInfo {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    // Not Linux: leave it unknown.
  }
  const influxd = spawnSync('influxd', ['version'], { encoding: 'utf8' });
  const kernel = spawnSync('uname', ['-r'], { encoding: 'utf8' });
  return {
    nproc: availableParallelism(),
    cpuModel,
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    influxd: influxd.status === 0 ? influxd.stdout.trim() : 'not found',
    kernel: kernel.status === 0 ? kernel.stdout.trim() : 'unknown',
    loadAverageAtStart: loadavg().map((x) => Number(x.toFixed(2))),
  };
}
