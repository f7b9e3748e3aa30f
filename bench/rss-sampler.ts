import { readFileSync } from 'node:fs';

/**
 * Memory of a child process from /proc/<pid>/status: VmRSS (resident now) and VmHWM (the
 * kernel's peak resident mark), in MiB. The bench samples its FlowPilot children once a second
 * and keeps the peak; the steady load and the soak keep the whole curve.
 */
export interface MemorySample {
  atMs: number;
  rssMiB: number;
  hwmMiB: number;
}

export function readMemory(pid: number): MemorySample | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (key: string): number => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  };
  return { atMs: Date.now(), rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

export interface RssSampler {
  /** Takes one sample now (also kept in the curve). */
  sample(): MemorySample | null;
  /** Highest VmRSS seen and the last VmHWM read: the process's peak. */
  peakMiB(): number;
  curve(): readonly MemorySample[];
  stop(): void;
}

export function startRssSampler(pid: number, intervalMs: number, keepCurve = false): RssSampler {
  let peak = 0;
  const curve: MemorySample[] = [];
  const take = (): MemorySample | null => {
    const sample = readMemory(pid);
    if (sample) {
      peak = Math.max(peak, sample.rssMiB, sample.hwmMiB);
      if (keepCurve) curve.push(sample);
    }
    return sample;
  };
  take();
  const timer = setInterval(take, intervalMs);
  timer.unref();
  return {
    sample: take,
    peakMiB: () => peak,
    curve: () => curve,
    stop: () => clearInterval(timer),
  };
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export function readCpuSec(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Fields after "pid (comm) ": state is the first; utime and stime are the 12th and 13th.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU use of several processes over a phase, as % of one core: shows which process saturates
 * (on 2 cores the sum cannot pass 200 %). `self` is the bench process, the load generator.
 */
export function startCpuMeter(pids: Record<string, number | undefined>): () => Record<string, number> {
  const startedAt = Date.now();
  const selfStart = process.cpuUsage();
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, pid === undefined ? null : readCpuSec(pid)]));
  return () => {
    const wallSec = (Date.now() - startedAt) / 1000;
    const shares: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) {
      const before = start[name];
      const after = pid === undefined ? null : readCpuSec(pid);
      if (before !== null && before !== undefined && after !== null) shares[name] = Math.round(((after - before) / wallSec) * 100);
    }
    const self = process.cpuUsage(selfStart);
    shares['load generator (bench)'] = Math.round(((self.user + self.system) / 1e6 / wallSec) * 100);
    return shares;
  };
}
