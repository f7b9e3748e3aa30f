import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runFlowpilot } from '../../../test/helpers/processes.ts';

// `flowpilot alerts prometheus-rules` checked by Prometheus's own tool: `promtool check rules`
// (syntax, PromQL, templates, duplicates) and `promtool test rules` (the rules fire on the
// series FlowPilot exports as the API's own rules do). promtool comes with Debian's
// `prometheus` package, installed here with apt-get when missing, as test/global-setup.ts does
// for influxd.

const execFileAsync = promisify(execFile);

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-prometheus-rules-'));
  dirs.push(dir);
  return dir;
}

function findPromtool(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, 'promtool'))) return join(dir, 'promtool');
  return existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : undefined;
}

async function ensurePromtool(): Promise<string> {
  const found = findPromtool();
  if (found) return found;
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('promtool is not installed: install Debian\'s prometheus package (apt-get install prometheus) to run this test');
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) =>
    new Promise<string>((done) => {
      const child = spawn('apt-get', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('close', () => done(output));
    });
  if (spawnSync('apt-cache', ['show', 'prometheus'], { stdio: 'ignore' }).status !== 0) await run(['update']);
  const output = await run(['install', '-y', '--no-install-recommends', 'prometheus']);
  const installed = findPromtool();
  if (!installed) throw new Error(`apt-get install prometheus did not install promtool: ${output.trim().split('\n').slice(-5).join('\n')}`);
  return installed;
}

async function promtool(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(promtoolPath, args);
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

let promtoolPath = '';
beforeAll(async () => {
  promtoolPath = await ensurePromtool();
}, 600_000);

/** A pilot with two stale thresholds, a meter id with a dot, and a store lag of its own. */
function writePilot(dir: string): string {
  const path = join(dir, 'pilot.yaml');
  writeFileSync(
    path,
    `pilot: { id: rules-test, name: Rules test, timezone: Asia/Almaty }
meters:
  - { id: ALM-1, site: S, role: monitor, intervalSec: 60, leakM3h: 2 }
  - { id: B.1, site: S, role: monitor, intervalSec: 10 }
  - { id: Bx1, site: S, role: monitor, intervalSec: 10 }
alerts:
  storeLagSec: 120
  meters:
    Bx1: { staleIntervals: 60 }
`,
  );
  return path;
}

describe('flowpilot alerts prometheus-rules', () => {
  it('writes a rules file that promtool accepts, and that fires as the API\'s rules do', async () => {
    const dir = tempDir();
    const out = join(dir, 'flowpilot-rules.yml');
    const result = await runFlowpilot(['alerts', 'prometheus-rules', '--out', out], { FLOWPILOT_PILOT: writePilot(dir), FLOWPILOT_DATA_DIR: dir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Wrote ${out}: 9 Prometheus alerting rules for pilot "rules-test"`);

    const check = await promtool(['check', 'rules', out]);
    expect(check.output).toContain('SUCCESS: 9 rules found');
    expect(check.code).toBe(0);

    // Ages at 0, 1, 2, 3 minutes. ALM-1: 3 × 60 s = 180 s; B.1: 3 × 10 s = 30 s; Bx1: 60 × 10 s = 600 s.
    const rules = readFileSync(out, 'utf8');
    const description = /description: ("SPEC section 9 stale[^\n]*")/.exec(rules)?.[1];
    expect(description).toBeDefined();
    const expected = (alertname: string, labels: Record<string, string>, annotations: Record<string, string>) => ({ alertname, labels, annotations });
    const staleOf = (meter: string, age: string) =>
      expected('FlowPilotMeterStale', { severity: 'warning', rule: 'stale', pilot: 'rules-test', meter }, { summary: `Meter ${meter} sent no reading for ${age}`, description: JSON.parse(description as string) as string });
    const cases = [
      { time: '3m', alerts: [staleOf('ALM-1', '3m 20s'), staleOf('B.1', '40s')], name: 'FlowPilotMeterStale' },
      {
        time: '3m',
        name: 'FlowPilotMeterLeak',
        alerts: [
          expected(
            'FlowPilotMeterLeak',
            { severity: 'critical', rule: 'leak', pilot: 'rules-test', meter: 'ALM-1' },
            { summary: 'Meter ALM-1: the night\'s mean flow is above its leak threshold', description: 'Evaluated by the FlowPilot API (SPEC section 9 leak); GET /api/v1/alerts?state=firing has its message and figures.' },
          ),
        ],
      },
      {
        time: '3m',
        name: 'FlowPilotStoreLag',
        alerts: [
          expected('FlowPilotStoreLag', { severity: 'critical', rule: 'store_lag', pilot: 'rules-test' }, {
            summary: 'The oldest accepted reading has waited 2m 1s for InfluxDB (threshold 120 s)',
            description: 'SPEC section 9 store_lag: the durable store holds readings the ingest could not write yet; when it fills, the broker stops acknowledging.',
          }),
        ],
      },
      // Down since minute 1: held for 1m (for: 1m) at minute 2, not yet at minute 1.
      { time: '1m', name: 'FlowPilotInfluxDown', alerts: [] },
      {
        time: '2m',
        name: 'FlowPilotInfluxDown',
        alerts: [
          expected('FlowPilotInfluxDown', { severity: 'critical', rule: 'influx_down', pilot: 'rules-test' }, {
            summary: 'InfluxDB does not accept the ingest\'s writes; readings wait in the durable store',
            description: 'SPEC section 9 influx_down, from the ingest\'s last write.',
          }),
        ],
      },
    ];
    const yaml = (value: unknown) => JSON.stringify(value);
    const testFile = [
      `rule_files: [${yaml(out)}]`,
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      `      - { series: ${yaml('flowpilot_meter_last_reading_age_seconds{meter="ALM-1"}')}, values: "10 60 120 200" }`,
      `      - { series: ${yaml('flowpilot_meter_last_reading_age_seconds{meter="B.1"}')}, values: "5 5 5 40" }`,
      // Bx1 would match an unescaped "B.1", and is below its own 600 s.
      `      - { series: ${yaml('flowpilot_meter_last_reading_age_seconds{meter="Bx1"}')}, values: "500 500 500 500" }`,
      `      - { series: ${yaml('flowpilot_alerts_firing{rule="leak",meter="ALM-1"}')}, values: "1 1 1 1" }`,
      `      - { series: ${yaml('flowpilot_store_oldest_age_seconds')}, values: "0 0 30 121" }`,
      `      - { series: ${yaml('flowpilot_influx_available')}, values: "1 0 0 0" }`,
      '    alert_rule_test:',
      ...cases.flatMap((c) => [
        `      - eval_time: ${c.time}`,
        `        alertname: ${c.name}`,
        `        exp_alerts: ${yaml(c.alerts.map((a) => ({ exp_labels: a.labels, exp_annotations: a.annotations })))}`,
      ]),
    ].join('\n');
    const testPath = join(dir, 'flowpilot-rules.test.yml');
    writeFileSync(testPath, `${testFile}\n`);
    const tested = await promtool(['test', 'rules', testPath]);
    expect(tested.output).toContain('SUCCESS');
    expect(tested.code).toBe(0);
  });

  it('prints the rules without --out, and names a wrong subcommand as a usage error (exit 2)', async () => {
    const dir = tempDir();
    const env = { FLOWPILOT_PILOT: writePilot(dir), FLOWPILOT_DATA_DIR: dir };
    const printed = await runFlowpilot(['alerts', 'prometheus-rules'], env);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/^# Prometheus alerting rules for FlowPilot pilot "rules-test"/);
    const wrong = await runFlowpilot(['alerts', 'rules'], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.trim()).toBe("flowpilot: unknown command 'rules' (see flowpilot alerts --help)");
  });
});
