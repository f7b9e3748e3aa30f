import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { InfluxV1ContractOptions } from '../packages/influx/src/v1-contract.ts';

/*
 * The InfluxQL of deploy/grafana/dashboards/flowpilot.json as Grafana sends it to InfluxDB, for
 * test/grafana-queries.test.ts and `npm run test:influx`. Grafana (InfluxQL, proxy access)
 * interpolates a raw query in two steps, mirrored here:
 * 1. the browser replaces the dashboard's variables with format `regex` (datasource.ts
 *    applyVariables: templateSrv.replace(query, scopedVars without __interval, 'regex')): a value
 *    is regex-escaped, several values become (a|b), All is every value, ${var:raw} is the value as it is;
 *    ${__from} and ${__to} are the range in epoch ms;
 * 2. the server replaces $timeFilter with `time >= <from>ms and time <= <to>ms`, then $interval,
 *    $__interval_ms and $__interval (pkg/tsdb/influxdb/models/query.go Build).
 * Anything else that starts with $ would reach InfluxDB as it is and fail there; interpolate()
 * refuses it instead.
 */

export const DASHBOARD_PATH = fileURLToPath(new URL('../deploy/grafana/dashboards/flowpilot.json', import.meta.url));

interface Target {
  refId?: string;
  query?: string;
  rawQuery?: boolean;
  hide?: boolean;
}

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}

interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  multi?: boolean;
  includeAll?: boolean;
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  timezone?: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

/** One query of the dashboard: a panel's target or a query variable. */
export interface DashboardQuery {
  /** "panel 2 "Volume per local day" A" or "variable meter". */
  source: string;
  kind: 'panel' | 'variable';
  panelTitle?: string;
  influxql: string;
}

export function loadDashboard(path = DASHBOARD_PATH): GrafanaDashboard {
  return JSON.parse(readFileSync(path, 'utf8')) as GrafanaDashboard;
}

/** Every raw InfluxQL query of the dashboard, panels (rows included) and query variables. */
export function dashboardQueries(dashboard: GrafanaDashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const visit = (panel: Panel): void => {
    for (const target of panel.targets ?? []) {
      if (target.hide) continue;
      if (!target.rawQuery || typeof target.query !== 'string') {
        throw new Error(`panel ${panel.id} "${panel.title}" target ${target.refId}: only raw InfluxQL queries are kept to SPEC section 2's subset; this one is built by Grafana's editor`);
      }
      out.push({ source: `panel ${panel.id} "${panel.title}" ${target.refId}`, kind: 'panel', panelTitle: panel.title ?? '', influxql: target.query });
    }
    for (const inner of panel.panels ?? []) visit(inner);
  };
  for (const panel of dashboard.panels) visit(panel);
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    if (typeof query !== 'string') throw new Error(`variable ${variable.name} has no query`);
    out.push({ source: `variable ${variable.name}`, kind: 'variable', influxql: query });
  }
  return out;
}

/** @grafana/data escapeRegex: what format `regex` does to each value. */
export function escapeRegex(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
}

/**
 * Grafana's rounding of range / max data points to a "nice" bucket (rangeutil.roundInterval), in ms.
 * The thresholds are Grafana's; each bucket is the nice value below the next threshold.
 */
const ROUNDED_INTERVALS: ReadonlyArray<readonly [below: number, interval: number]> = [
  [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1500, 1000], [3500, 2000], [7500, 5000],
  [12_500, 10_000], [17_500, 15_000], [25_000, 20_000], [45_000, 30_000], [90_000, 60_000], [150_000, 120_000],
  [270_000, 300_000], [450_000, 600_000], [750_000, 900_000], [1_050_000, 1_200_000], [1_500_000, 1_800_000],
  [2_700_000, 3_600_000], [5_400_000, 7_200_000], [9_000_000, 10_800_000], [16_200_000, 21_600_000],
  [32_400_000, 43_200_000], [86_400_000, 86_400_000], [604_800_000, 86_400_000], [1_814_400_000, 604_800_000],
  [3_628_800_000, 2_592_000_000],
];

export function roundInterval(ms: number): number {
  for (const [below, interval] of ROUNDED_INTERVALS) if (ms < below) return interval;
  return 31_536_000_000;
}

/** $__interval of a panel: the range over its max data points, rounded, never below the data source's min interval (rangeutil.calculateInterval). */
export function grafanaIntervalMs(fromMs: number, toMs: number, maxDataPoints: number, minIntervalMs: number): number {
  return Math.max(roundInterval((toMs - fromMs) / maxDataPoints), minIntervalMs);
}

/** gtime.FormatInterval (grafana-plugin-sdk-go): the largest whole unit, truncated. */
export function formatInterval(ms: number): string {
  const units: ReadonlyArray<readonly [string, number]> = [['y', 31_536_000_000], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]];
  for (const [unit, size] of units) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return '1ms';
}

export interface GrafanaRequest {
  fromMs: number;
  toMs: number;
  intervalMs: number;
  /** The selected value of each variable: a string, a list (multi-value), or '$__all'. */
  variables: Record<string, string | readonly string[]>;
  /** Every value of each query variable, for All (what its query answered). */
  allValues?: Record<string, readonly string[]>;
}

const VARIABLE = /\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]/g;

/** A query as Grafana sends it to InfluxDB for this request (see the head of this file). */
export function interpolate(query: string, dashboard: GrafanaDashboard, request: GrafanaRequest): string {
  const defined = new Map(dashboard.templating.list.map((v) => [v.name, v]));
  const builtIn: Record<string, string> = { __from: String(request.fromMs), __to: String(request.toMs) };
  // Step 1, the browser: dashboard variables and ${__from}/${__to}; Grafana leaves what it does not know.
  const step1 = query.replace(VARIABLE, (whole, plain?: string, braced?: string, bracedFormat?: string, old?: string, oldFormat?: string) => {
    const name = plain ?? braced ?? old ?? '';
    const format = bracedFormat ?? oldFormat ?? 'regex';
    if (name in builtIn) return builtIn[name] as string;
    const variable = defined.get(name);
    if (!variable) return whole;
    let value = request.variables[name];
    if (value === undefined) throw new Error(`the request gives no value for variable $${name}`);
    if (value === '$__all' || (Array.isArray(value) && value.length === 1 && value[0] === '$__all')) {
      const all = request.allValues?.[name];
      if (!all) throw new Error(`$${name} is All but the request lists none of its values`);
      value = all;
    }
    const values = typeof value === 'string' ? [value] : value;
    if (format === 'raw') return values.join(',');
    if (format !== 'regex') throw new Error(`format ${format} of $${name} is not one this dashboard uses`);
    const escaped = values.map(escapeRegex);
    return escaped.length === 1 ? (escaped[0] as string) : `(${escaped.join('|')})`;
  });
  // Step 2, Grafana's server.
  const intervalText = formatInterval(request.intervalMs);
  const step2 = step1
    .replaceAll('$timeFilter', `time >= ${request.fromMs}ms and time <= ${request.toMs}ms`)
    .replaceAll('$interval', intervalText)
    .replaceAll('$__interval_ms', String(request.intervalMs))
    .replaceAll('$__interval', intervalText);
  // A regex's end anchor ($/ or $)) is InfluxQL; a $ before a name is a macro nobody replaced.
  const left = /\$[A-Za-z_{[]/.exec(step2);
  if (left) throw new Error(`"${step2.slice(left.index, left.index + 20)}" is left in the query after Grafana's substitutions: InfluxDB would refuse it`);
  return step2;
}

/** Each variable's value as the dashboard file selects it (`current`), All as '$__all'. */
export function currentVariables(dashboard: GrafanaDashboard): Record<string, string | string[]> {
  const values: Record<string, string | string[]> = {};
  for (const variable of dashboard.templating.list as (Variable & { current?: { value?: string | string[] } })[]) {
    const value = variable.current?.value;
    if (value !== undefined) values[variable.name] = value;
  }
  return values;
}

/** Max data points of a panel ~1,000 px wide: Grafana asks for one point per pixel. */
export const DEFAULT_MAX_DATA_POINTS = 1000;

/** The data source's min interval (provisioning/datasources/flowpilot.yaml timeInterval). */
export const DATA_SOURCE_MIN_INTERVAL_MS = 60_000;

/**
 * Every query of the dashboard for the contract suite (packages/influx/src/v1-contract.ts): over its
 * data set's span, for the one meter with 10-minute readings, each variable otherwise as the
 * dashboard file selects it.
 */
export function dashboardContractQueries(dashboard: GrafanaDashboard = loadDashboard()): NonNullable<InfluxV1ContractOptions['extraQueries']> {
  return {
    title: 'the queries of the Grafana dashboard (deploy/grafana), each answering something',
    build: (world) => {
      const request: GrafanaRequest = {
        fromMs: world.fromMs,
        toMs: world.toMs - 1,
        intervalMs: grafanaIntervalMs(world.fromMs, world.toMs - 1, DEFAULT_MAX_DATA_POINTS, DATA_SOURCE_MIN_INTERVAL_MS),
        variables: { ...currentVariables(dashboard), meter: [world.meterId], report_interval_s: '600' },
      };
      return dashboardQueries(dashboard).map((query) => ({ name: query.source, influxql: interpolate(query.influxql, dashboard, request) }));
    },
  };
}
