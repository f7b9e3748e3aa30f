import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './harness.ts';

/**
 * Where a FlowPilot child spent its CPU: `npx tsx bench/profile-summary.ts <file.cpuprofile> [top]`
 * on a profile written by `BENCH_PROFILE=1 npm run bench` (bench-results/profiles/). Prints the
 * functions by self time and by inclusive time (each function counted once per sample), and the
 * self time per package, as shares of the samples (idle included, so shares of wall time).
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('node_modules/');
  if (modules >= 0) return path.slice(modules + 'node_modules/'.length);
  return path.startsWith('/') ? relative(REPO_ROOT, path) : path;
}

function packageOf(url: string): string {
  if (url === '') return '(native/V8)';
  if (url.startsWith('node:')) return 'node core';
  const path = where(url);
  if (url.includes('node_modules/')) {
    const parts = path.split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? path);
  }
  return path.split('/').slice(0, 2).join('/');
}

export function summarizeProfile(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: ProfileNode) => {
    const name = n.callFrame.functionName || '(anonymous)';
    return n.callFrame.url ? `${name}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : name;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const perPackage = new Map<string, number>();
  const total = profile.samples.length;
  let idle = 0;
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (!node) continue;
    const k = key(node);
    if (node.callFrame.functionName === '(idle)') idle += 1;
    self.set(k, (self.get(k) ?? 0) + 1);
    perPackage.set(packageOf(node.callFrame.url), (perPackage.get(packageOf(node.callFrame.url)) ?? 0) + 1);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (!n) break;
      const nk = key(n);
      if (seen.has(nk)) continue;
      seen.add(nk);
      inclusive.set(nk, (inclusive.get(nk) ?? 0) + 1);
    }
  }
  const pct = (count: number) => `${((count / total) * 100).toFixed(1).padStart(5)} %`;
  const list = (map: Map<string, number>, skip: (k: string) => boolean = () => false) =>
    [...map.entries()]
      .filter(([k]) => !skip(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `  ${pct(v)}  ${k}`)
      .join('\n');
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  const structural = (k: string) => k.startsWith('(root)') || k.startsWith('(program)') || k.startsWith('(idle)');
  return [
    `${file}: ${seconds.toFixed(1)} s, ${total} samples, busy ${(((total - idle) / total) * 100).toFixed(1)} %`,
    'self time by package:',
    list(perPackage),
    'self time by function:',
    list(self),
    'inclusive time by function:',
    list(inclusive, structural),
  ].join('\n');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, topArg] = process.argv.slice(2);
  if (!file) {
    console.error('usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(summarizeProfile(file, topArg ? Number(topArg) : 25));
}
