import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { RULE_SEVERITY } from '@flowpilot/api';
import type { AlertRule } from '@flowpilot/api';
import { FlowPilotError } from '@flowpilot/schema';
import type { AlertsConfig, MeterConfig, PilotConfig } from '@flowpilot/schema';
import { loadPilot } from './run-services.ts';
import { loadSettings } from './settings.ts';

/**
 * `flowpilot alerts prometheus-rules [--out F]`: SPEC section 9's rules as a Prometheus rules
 * file, for a site that runs Prometheus and Alertmanager, with the pilot file's thresholds.
 *
 * Over what FlowPilot exports:
 * - the API's /metrics: `flowpilot_meter_last_reading_age_seconds{meter}` (stale, per meter with
 *   its own N × interval) and `flowpilot_alerts_firing{rule,meter}` (the API's own evaluation of
 *   the rules that need InfluxDB, the live status or the dead letters, passed through);
 * - the broker's process (`start`, `broker`): `flowpilot_store_oldest_age_seconds` (store_lag);
 * - the ingest's: `flowpilot_influx_available` (influx_down).
 * Those three are evaluated by Prometheus itself, so they hold even when the API is down; the
 * passthrough leaves them out, so Alertmanager never gets one condition under two names.
 */

export const ALERTS_USAGE = 'usage: flowpilot alerts prometheus-rules [--out FILE]';

function usage(problem?: string): FlowPilotError {
  return new FlowPilotError('ERR_USAGE', problem ? `${problem}; ${ALERTS_USAGE}` : ALERTS_USAGE);
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage((error as Error).message.split(/\.\s/)[0]?.replace(/\.$/, ''));
  }
}

export interface AlertsCommandIo {
  /** The pilot file to take the thresholds from (default: FLOWPILOT_PILOT). */
  loadPilot(): PilotConfig;
  print(line: string): void;
  writeFile(path: string, text: string): void;
}

const defaultIo: AlertsCommandIo = {
  loadPilot: () => loadPilot(loadSettings().pilotFile),
  print: (line) => console.log(line),
  writeFile: (path, text) => writeFileSync(path, text, 'utf8'),
};

/**
 * `flowpilot alerts prometheus-rules [--out F]`: prints the rules file, or writes it to `out`.
 * The command line parses with commander (cli/program.ts) and calls this.
 */
export async function runPrometheusRules(options: { out?: string }, io: Partial<AlertsCommandIo> = {}): Promise<void> {
  const { loadPilot: load, print, writeFile } = { ...defaultIo, ...io };
  const { out } = options;
  if (out === '') throw usage('--out needs a file name');
  const pilot = load();
  const text = prometheusRules(pilot);
  if (out === undefined) {
    print(text.trimEnd());
    return;
  }
  try {
    writeFile(out, text);
  } catch (error) {
    throw new FlowPilotError('ERR_CONFIG', `--out ${out} cannot be written (${(error as NodeJS.ErrnoException).code ?? 'error'}): choose a writable path`, { cause: error });
  }
  print(`Wrote ${out}: ${countRules(pilot)} Prometheus alerting rules for pilot "${pilot.pilot.id}" (check it with: promtool check rules ${out}).`);
}

/** `alerts …` from an argument list (for scripts and tests); misuse throws FlowPilotError('ERR_USAGE') with the usage (exit code 2). */
export async function runAlertsCommand(args: readonly string[], io: Partial<AlertsCommandIo> = {}): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'prometheus-rules') throw usage(action === undefined ? undefined : `unknown alerts command "${action.slice(0, 60)}"`);
  const { values, positionals } = parse(rest, { out: { type: 'string' } });
  if (positionals.length > 0) throw usage(`unexpected argument "${String(positionals[0]).slice(0, 60)}"`);
  await runPrometheusRules(typeof values.out === 'string' ? { out: values.out } : {}, io);
}

/** One alerting rule of a Prometheus rules file. */
export interface PrometheusRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface PrometheusRuleGroup {
  name: string;
  rules: PrometheusRule[];
}


/** The rules the API evaluates and Prometheus only passes through (their facts live in InfluxDB, the live status, the dead letters). */
const PASSTHROUGH: ReadonlyArray<{ rule: AlertRule; alert: string; summary: string }> = [
  { rule: 'offline', alert: 'FlowPilotMeterOffline', summary: 'Meter {{ $labels.meter }} is offline (its status says online: false)' },
  { rule: 'leak', alert: 'FlowPilotMeterLeak', summary: 'Meter {{ $labels.meter }}: the night\'s mean flow is above its leak threshold' },
  { rule: 'alarm', alert: 'FlowPilotMeterAlarm', summary: 'Meter {{ $labels.meter }} reports an alarm' },
  { rule: 'low_battery', alert: 'FlowPilotMeterLowBattery', summary: 'Meter {{ $labels.meter }}: low battery' },
  { rule: 'totalizer', alert: 'FlowPilotMeterTotalizer', summary: 'Meter {{ $labels.meter }}: its totalizer disagrees with its flow' },
  { rule: 'rejected', alert: 'FlowPilotMeterRejected', summary: 'Meter {{ $labels.meter }}: many messages rejected in the last hour' },
];

/** A meter's stale threshold in seconds: its own `staleIntervals` (or the pilot's) × its interval. */
function staleSeconds(alerts: AlertsConfig, meter: MeterConfig): number {
  return (alerts.meters[meter.id]?.staleIntervals ?? alerts.staleIntervals) * meter.intervalSec;
}

/** A regular expression matching exactly these meter ids (PromQL's =~ anchors it). */
function meterRegex(ids: readonly string[]): string {
  // Meter ids are [A-Za-z0-9_.-] (SPEC section 1): only the dot means something to RE2.
  return ids.map((id) => id.replace(/[.\\+*?[^\]$(){}|]/g, '\\$&')).join('|');
}

/** A PromQL string literal. */
const promString = (text: string): string => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function prometheusRuleGroups(pilot: PilotConfig): PrometheusRuleGroup[] {
  const { alerts } = pilot;
  const pilotLabel = { pilot: pilot.pilot.id };
  // Meters that share a threshold share a rule.
  const byThreshold = new Map<number, string[]>();
  for (const meter of pilot.meters) {
    const seconds = staleSeconds(alerts, meter);
    byThreshold.set(seconds, [...(byThreshold.get(seconds) ?? []), meter.id]);
  }
  // One rule (one alert name, one set of labels: promtool rejects duplicates), one term per threshold.
  const terms = [...byThreshold].map(([seconds, ids]) => `flowpilot_meter_last_reading_age_seconds{meter=~${promString(meterRegex(ids))}} > ${seconds}`);
  const thresholds = [...byThreshold].map(([seconds, ids]) => `${ids.join(', ')}: ${seconds} s`).join('; ');
  const stale: PrometheusRule[] = [
    {
      alert: 'FlowPilotMeterStale',
      expr: terms.join(' or '),
      for: '0s',
      labels: { severity: RULE_SEVERITY.stale, rule: 'stale', ...pilotLabel },
      annotations: {
        summary: 'Meter {{ $labels.meter }} sent no reading for {{ $value | humanizeDuration }}',
        description: `SPEC section 9 stale: no reading for the meter's staleIntervals × intervalSec (${thresholds}).`,
      },
    },
  ];
  const passthrough: PrometheusRule[] = PASSTHROUGH.map(({ rule, alert, summary }) => ({
    alert,
    expr: `flowpilot_alerts_firing{rule=${promString(rule)}} == 1`,
    for: '0s',
    labels: { severity: RULE_SEVERITY[rule], rule, ...pilotLabel },
    annotations: { summary, description: `Evaluated by the FlowPilot API (SPEC section 9 ${rule}); GET /api/v1/alerts?state=firing has its message and figures.` },
  }));
  const pipeline: PrometheusRule[] = [
    {
      alert: 'FlowPilotStoreLag',
      expr: `flowpilot_store_oldest_age_seconds > ${alerts.storeLagSec}`,
      for: '0s',
      labels: { severity: RULE_SEVERITY.store_lag, rule: 'store_lag', ...pilotLabel },
      annotations: {
        summary: `The oldest accepted reading has waited {{ $value | humanizeDuration }} for InfluxDB (threshold ${alerts.storeLagSec} s)`,
        description: 'SPEC section 9 store_lag: the durable store holds readings the ingest could not write yet; when it fills, the broker stops acknowledging.',
      },
    },
    {
      alert: 'FlowPilotInfluxDown',
      expr: 'flowpilot_influx_available == 0',
      // One failed write is retried at once; a minute of failures is an outage.
      for: '1m',
      labels: { severity: RULE_SEVERITY.influx_down, rule: 'influx_down', ...pilotLabel },
      annotations: {
        summary: 'InfluxDB does not accept the ingest\'s writes; readings wait in the durable store',
        description: 'SPEC section 9 influx_down, from the ingest\'s last write.',
      },
    },
  ];
  return [
    { name: `flowpilot-${pilot.pilot.id}-meters`, rules: [...stale, ...passthrough] },
    { name: `flowpilot-${pilot.pilot.id}-pipeline`, rules: pipeline },
  ];
}

function countRules(pilot: PilotConfig): number {
  return prometheusRuleGroups(pilot).reduce((n, group) => n + group.rules.length, 0);
}

/** A YAML scalar: JSON's double-quoted strings are YAML's too, so every value is quoted that way. */
const scalar = (text: string): string => JSON.stringify(text);

/** The Prometheus rules file (YAML) of the pilot. */
export function prometheusRules(pilot: PilotConfig): string {
  const lines = [
    `# Prometheus alerting rules for FlowPilot pilot "${pilot.pilot.id}" (SPEC section 9), written by`,
    '# `flowpilot alerts prometheus-rules` from the pilot file\'s thresholds. Load it with `rule_files:`',
    '# in prometheus.yml; scrape the API\'s /metrics (a token of role evaluator) and the broker\'s and',
    '# ingest\'s /metrics. Write it again after changing the pilot file.',
    'groups:',
  ];
  for (const group of prometheusRuleGroups(pilot)) {
    lines.push(`  - name: ${scalar(group.name)}`, '    rules:');
    for (const rule of group.rules) {
      lines.push(`      - alert: ${scalar(rule.alert)}`, `        expr: ${scalar(rule.expr)}`, `        for: ${scalar(rule.for)}`, '        labels:');
      for (const [key, value] of Object.entries(rule.labels)) lines.push(`          ${key}: ${scalar(value)}`);
      lines.push('        annotations:');
      for (const [key, value] of Object.entries(rule.annotations)) lines.push(`          ${key}: ${scalar(value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
