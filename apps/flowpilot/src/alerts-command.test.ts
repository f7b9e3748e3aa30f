import { FlowPilotError, parsePilotConfig } from '@flowpilot/schema';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { prometheusRuleGroups, prometheusRules, runAlertsCommand } from './alerts-command.ts';

// The rules file's content; promtool checks it in alerts-command.int.test.ts.

const pilot = parsePilotConfig(`
pilot: { id: demo, name: Demo, timezone: UTC }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60 }
  - { id: B.1, site: S, role: monitor, intervalSec: 60 }
  - { id: C, site: S, role: monitor, intervalSec: 10 }
alerts:
  storeLagSec: 120
  meters:
    C: { staleIntervals: 18 }
`);

describe('prometheusRuleGroups', () => {
  it('stale per meter with its own N × interval, meters with one threshold in one term', () => {
    const stale = prometheusRuleGroups(pilot)[0]?.rules.filter((r) => r.alert === 'FlowPilotMeterStale');
    // A and B.1: 3 × 60 s; C: 18 × 10 s = 180 s as well; so one term.
    expect(stale).toHaveLength(1);
    expect(stale?.[0]?.expr).toBe('flowpilot_meter_last_reading_age_seconds{meter=~"A|B\\\\.1|C"} > 180');
    const other = parsePilotConfig(`
pilot: { id: demo, name: Demo, timezone: UTC }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60 }
  - { id: C, site: S, role: monitor, intervalSec: 10 }
`);
    const rules = prometheusRuleGroups(other)[0]?.rules.filter((r) => r.alert === 'FlowPilotMeterStale');
    expect(rules?.map((r) => r.expr)).toEqual(['flowpilot_meter_last_reading_age_seconds{meter=~"A"} > 180 or flowpilot_meter_last_reading_age_seconds{meter=~"C"} > 30']);
    expect(rules?.[0]?.annotations.description).toContain('A: 180 s; C: 30 s');
  });

  it('passes the rules the API evaluates through, and states the pipeline\'s over the store and ingest gauges', () => {
    const rules = prometheusRuleGroups(pilot).flatMap((g) => g.rules);
    const byRule = Object.fromEntries(rules.map((r) => [r.labels.rule, r]));
    expect(Object.keys(byRule).sort()).toEqual(['alarm', 'influx_down', 'leak', 'low_battery', 'offline', 'rejected', 'stale', 'store_lag', 'totalizer']);
    expect(byRule.leak).toMatchObject({ expr: 'flowpilot_alerts_firing{rule="leak"} == 1', labels: { severity: 'critical', pilot: 'demo' } });
    expect(byRule.store_lag?.expr).toBe('flowpilot_store_oldest_age_seconds > 120');
    expect(byRule.influx_down).toMatchObject({ expr: 'flowpilot_influx_available == 0', for: '1m' });
    // Never one condition under two names: stale, store_lag and influx_down are not passed through.
    expect(rules.filter((r) => r.expr.includes('flowpilot_alerts_firing')).map((r) => r.labels.rule).sort()).toEqual(['alarm', 'leak', 'low_battery', 'offline', 'rejected', 'totalizer']);
    for (const rule of rules) expect(rule.annotations.summary).toBeTruthy();
  });
});

describe('prometheusRules', () => {
  it('is YAML of groups → rules with alert, expr, for, labels and annotations', () => {
    const parsed = parseYaml(prometheusRules(pilot)) as { groups: Array<{ name: string; rules: Array<Record<string, unknown>> }> };
    expect(parsed.groups.map((g) => g.name)).toEqual(['flowpilot-demo-meters', 'flowpilot-demo-pipeline']);
    expect(parsed.groups).toEqual(prometheusRuleGroups(pilot));
  });
});

describe('runAlertsCommand', () => {
  const io = () => {
    const lines: string[] = [];
    const files = new Map<string, string>();
    return { lines, files, io: { loadPilot: () => pilot, print: (line: string) => lines.push(line), writeFile: (path: string, text: string) => files.set(path, text) } };
  };

  it('prints the rules, or writes them to --out', async () => {
    const printed = io();
    await runAlertsCommand(['prometheus-rules'], printed.io);
    expect(printed.lines.join('\n')).toContain('groups:');
    const written = io();
    await runAlertsCommand(['prometheus-rules', '--out', '/tmp/rules.yml'], written.io);
    expect(written.files.get('/tmp/rules.yml')).toBe(prometheusRules(pilot));
    expect(written.lines).toEqual([expect.stringMatching(/^Wrote \/tmp\/rules\.yml: 9 Prometheus alerting rules for pilot "demo"/)]);
  });

  it.each([
    [[], /^usage: flowpilot alerts prometheus-rules/],
    [['rules'], /unknown alerts command "rules"; usage/],
    [['prometheus-rules', 'extra'], /unexpected argument "extra"/],
    [['prometheus-rules', '--output', 'x'], /Unknown option '--output'/],
  ])('%j is a usage error', async (args, message) => {
    const error = await runAlertsCommand(args, io().io).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FlowPilotError);
    expect((error as FlowPilotError).code).toBe('ERR_USAGE');
    expect((error as Error).message).toMatch(message);
  });
});
