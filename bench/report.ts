import type { ApiBenchResult } from './api-bench.ts';
import type { AedesCeiling, InfluxCeiling } from './ceilings.ts';
import type { MachineInfo } from './machine.ts';
import type { BackfillResult, LatencyResult, SingleReadingsResult, SteadyLoadResult } from './pipeline-scenarios.ts';

/**
 * The results of one run (bench-results/latest.json) and their table: every FlowPilot figure
 * beside its ceiling, as a ratio, with its target and whether this run met it.
 */
export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  durationSec?: number;
  sections: string[];
  machine: MachineInfo;
  loadAverageAtEnd?: number[];
  config: Record<string, number>;
  ceilings: { aedes?: AedesCeiling; influx?: InfluxCeiling };
  single?: SingleReadingsResult;
  backfill?: BackfillResult;
  latency?: LatencyResult;
  api?: ApiBenchResult;
  steady?: SteadyLoadResult;
  memory: { peaks: { process: string; peakRssMiB: number }[] };
  targets?: { name: string; met: boolean | null }[];
  errors: { section: string; message: string }[];
}

export interface Row {
  figure: string;
  value: string;
  ceiling: string;
  ratio: string;
  target: string;
  verdict: string;
}

const n0 = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : '—');
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const cpuText = (cpu: Record<string, number>) =>
  Object.entries(cpu)
    .map(([name, share]) => `${name} ${share}`)
    .join(', ');
const verdict = (met: boolean | null) => (met === null ? '?' : met ? 'met' : 'MISSED');

/**
 * Growth we call bounded over the steady load: the median RSS of the last third exceeds the
 * median of the first third by less than this. (A least-squares slope over 3 minutes mostly
 * measures where the garbage collector happened to be; the soak shows the long curve.)
 */
export const MAX_STEADY_GROWTH_MIB = 10;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Median RSS of the last third of the curve minus that of the first third, MiB. */
export function steadyGrowthMiB(curve: readonly { atSec: number; rssMiB: number }[]): number {
  const third = Math.max(1, Math.floor(curve.length / 3));
  return median(curve.slice(-third).map((p) => p.rssMiB)) - median(curve.slice(0, third).map((p) => p.rssMiB));
}

export function buildRows(results: BenchResults): { rows: Row[]; targets: { name: string; met: boolean | null }[] } {
  const rows: Row[] = [];
  const targets: { name: string; met: boolean | null }[] = [];
  const blank = { ceiling: '', ratio: '', target: '', verdict: '' };
  const { aedes, influx } = results.ceilings;
  if (aedes) {
    rows.push({ figure: 'Ceiling: bare Aedes QoS 1 (1 publisher, 1 subscriber)', value: `${n0(aedes.messagesPerSec)} msg/s`, ...blank });
    rows.push({ figure: '  CPU, % of one core', value: cpuText(aedes.cpuPercent), ...blank });
  }
  if (influx) {
    rows.push({ figure: `Ceiling: InfluxDB direct /write (${n0(influx.batchLines)}-line batches)`, value: `${n0(influx.linesPerSec)} lines/s`, ...blank });
  }
  const s = results.single;
  if (s) {
    const ratio = aedes ? s.readingsPerSec / aedes.messagesPerSec : null;
    const met = ratio === null ? null : ratio >= 0.5;
    targets.push({ name: 'single readings ≥ 50 % of bare Aedes', met });
    rows.push({
      figure: `Single readings: ${s.connections} connections, ${s.drive.windowSec} s`,
      value: `${n0(s.readingsPerSec)} readings/s`,
      ceiling: aedes ? `${n0(aedes.messagesPerSec)} msg/s` : '—',
      ratio: ratio === null ? '—' : pct(ratio),
      target: '≥ 50 %',
      verdict: verdict(met),
    });
    rows.push({ figure: '  slowest 10 s of the window', value: `${n0(s.minBucketPerSec)} readings/s`, ...blank });
    rows.push({ figure: '  CPU, % of one core', value: cpuText(s.cpuPercent), ...blank });
    const brokerCpu = s.cpuPercent.broker;
    if (brokerCpu !== undefined) {
      const perReadingUs = (brokerCpu * 10_000) / s.readingsPerSec;
      const aedesCpu = aedes?.cpuPercent.broker;
      const aedesUs = aedes && aedesCpu !== undefined ? (aedesCpu * 10_000) / aedes.messagesPerSec : null;
      // Per CPU second of the broker process: insensitive to what else the machine runs.
      rows.push({
        figure: '  broker CPU per reading (broker + ingest process)',
        value: `${perReadingUs.toFixed(1)} µs`,
        ceiling: aedesUs === null ? '' : `${aedesUs.toFixed(1)} µs/msg`,
        ratio: aedesUs === null ? '' : pct(aedesUs / perReadingUs),
        target: '',
        verdict: '',
      });
    }
    targets.push({ name: 'single readings: lost = 0', met: s.check.lost === 0 });
    rows.push({ figure: '  (meterId, seq) check: lost / checked', value: `${n0(s.check.lost)} / ${n0(s.check.checked)}`, ceiling: '', ratio: '', target: 'lost = 0', verdict: verdict(s.check.lost === 0) });
  }
  const b = results.backfill;
  if (b) {
    const ratio = influx ? b.readingsPerSec / influx.linesPerSec : null;
    const met = ratio === null ? null : ratio >= 0.5;
    targets.push({ name: 'backfill ≥ 50 % of InfluxDB direct write', met });
    rows.push({
      figure: `Backfill: ${n0(b.readings)} readings in arrays of ${n0(b.batchReadings)}, publish → stored`,
      value: `${n0(b.readingsPerSec)} readings/s`,
      ceiling: influx ? `${n0(influx.linesPerSec)} lines/s` : '—',
      ratio: ratio === null ? '—' : pct(ratio),
      target: '≥ 50 %',
      verdict: verdict(met),
    });
    rows.push({ figure: '  accepted (first publish → last PUBACK)', value: `${n0(b.acceptedPerSec)} readings/s`, ...blank });
    rows.push({ figure: '  CPU, % of one core', value: cpuText(b.cpuPercent), ...blank });
    rows.push({ figure: '  (meterId, seq) check: lost / checked', value: `${n0(b.check.lost)} / ${n0(b.check.checked)}`, ceiling: '', ratio: '', target: 'lost = 0', verdict: verdict(b.check.lost === 0) });
    targets.push({ name: 'backfill: lost = 0', met: b.check.lost === 0 });
  }
  const l = results.latency;
  if (l) {
    const met = l.latencyMs.p99 < 1000 && l.unresolved === 0;
    targets.push({ name: 'latency p99 < 1 s at 2,000/s', met });
    rows.push({
      figure: `Latency publish → queryable at ${n0(l.ratePerSec)}/s (${n0(l.latencyMs.count)} probes)`,
      value: `p50 ${ms(l.latencyMs.p50)}, p99 ${ms(l.latencyMs.p99)}, max ${ms(l.latencyMs.max)}`,
      ceiling: '',
      ratio: '',
      target: 'p99 < 1 s',
      verdict: verdict(met),
    });
    rows.push({ figure: '  achieved rate; lost / checked', value: `${n0(l.achievedPerSec)}/s; ${n0(l.check.lost)} / ${n0(l.check.checked)}`, ...blank });
    rows.push({ figure: '  CPU, % of one core', value: cpuText(l.cpuPercent), ...blank });
  }
  const a = results.api;
  if (a) {
    for (const c of a.cases) {
      rows.push({
        figure: `API ${c.name}, ${a.days} d × ${a.meters} meters, sequential`,
        value: `median ${ms(c.sequential.medianMs)}, p95 ${ms(c.sequential.p95Ms)}`,
        ...blank,
        verdict: c.sequential.failures > 0 ? `${c.sequential.failures} failed` : '',
      });
      rows.push({
        figure: '  concurrency 4',
        value: `median ${ms(c.concurrent.medianMs)}, p95 ${ms(c.concurrent.p95Ms)}, ${c.concurrent.requestsPerSec.toFixed(1)} req/s`,
        ...blank,
        verdict: c.concurrent.failures > 0 ? `${c.concurrent.failures} failed` : '',
      });
    }
  }
  for (const peak of results.memory.peaks) rows.push({ figure: `Peak RSS: ${peak.process}`, value: `${peak.peakRssMiB.toFixed(0)} MiB`, ...blank });
  const m = results.steady;
  if (m) {
    const growth = steadyGrowthMiB(m.curve);
    const met = growth < MAX_STEADY_GROWTH_MIB;
    targets.push({ name: 'no unbounded memory growth', met });
    rows.push({
      figure: `Steady ${n0(m.ratePerSec)}/s for ${(m.durationSec / 60).toFixed(1)} min: broker RSS start → end`,
      value: `${m.startRssMiB.toFixed(0)} → ${m.endRssMiB.toFixed(0)} MiB (${m.growthMiB >= 0 ? '+' : ''}${m.growthMiB.toFixed(0)})`,
      ceiling: '',
      ratio: '',
      target: `last third − first third < ${MAX_STEADY_GROWTH_MIB} MiB`,
      verdict: `${verdict(met)} (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB)`,
    });
    rows.push({ figure: '  achieved rate; lost / checked', value: `${n0(m.achievedPerSec)}/s; ${n0(m.check.lost)} / ${n0(m.check.checked)}`, ...blank });
  }
  return { rows, targets };
}

const HEADER: Row = { figure: 'figure', value: 'value', ceiling: 'ceiling', ratio: 'ratio', target: 'target', verdict: 'this run' };
const KEYS = ['figure', 'value', 'ceiling', 'ratio', 'target', 'verdict'] as const;

export function formatTable(rows: readonly Row[]): string {
  const all = [HEADER, ...rows];
  const widths = KEYS.map((k) => Math.max(...all.map((r) => r[k].length)));
  const line = (r: Row) => KEYS.map((k, i) => r[k].padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(HEADER), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatMarkdown(results: BenchResults, rows: readonly Row[]): string {
  const m = results.machine;
  const esc = (text: string) => text.replace(/\|/g, '\\|');
  return [
    `Run ${results.startedAt} (${results.durationSec ?? '?'} s), sections: ${results.sections.join(', ')}`,
    '',
    `Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ${m.influxd}; load average at start ${m.loadAverageAtStart.join(' ')}, at end ${results.loadAverageAtEnd?.join(' ') ?? '?'}`,
    '',
    `| ${KEYS.map((k) => HEADER[k]).join(' | ')} |`,
    `|${KEYS.map(() => '---').join('|')}|`,
    // An indented (detail) row keeps its place under its figure with a leading ↳.
    ...rows.map((r) => `| ${KEYS.map((k) => (k === 'figure' && r.figure.startsWith('  ') ? `↳ ${esc(r.figure.trim())}` : esc(r[k].trim()) || ' ')).join(' | ')} |`),
  ].join('\n');
}
