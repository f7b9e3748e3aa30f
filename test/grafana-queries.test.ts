import { readFileSync } from 'node:fs';
import { readingLine } from '@flowpilot/influx';
import type { InfluxSeries } from '@flowpilot/influx';
import type { MeterMetrics } from '@flowpilot/metrics';
import { ARRIVAL } from '@flowpilot/schema';
import type { Arrival, Reading } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createApi } from '../services/api/src/app.ts';
import { createMemoryLiveFeed } from '../services/api/src/live-feed.ts';
import { testPilot } from '../services/api/src/test-pilot.ts';
import { createMeterModel } from '../simulators/flowmeter/src/index.ts';
import {
  currentVariables,
  dashboardQueries,
  DATA_SOURCE_MIN_INTERVAL_MS,
  DEFAULT_MAX_DATA_POINTS,
  formatInterval,
  grafanaIntervalMs,
  interpolate,
  loadDashboard,
} from '../scripts/grafana-dashboard.ts';
import type { GrafanaRequest } from '../scripts/grafana-dashboard.ts';
import { createTestInflux } from './helpers/influx.ts';

/*
 * deploy/grafana against a real influxd (README "Grafana"): every query of the dashboard, as
 * Grafana interpolates it (scripts/grafana-dashboard.ts), runs over five local days of simulated
 * pilot data and answers something; then the dashboard's daily figures of two meters are compared
 * with GET /api/v1/metrics?per=day over the same database, for three whole local days:
 * - completeness: equal (both are readings of the local day / (86400 / intervalSec));
 * - the maximum latency of live readings: equal (both the max of latency_ms over arrival = 0);
 * - volume: FlowPilot interpolates the totals at each midnight (SPEC section 4), Grafana takes the
 *   day's last total minus the previous day's last total. So FlowPilot − Grafana = e(end) − e(start),
 *   e(b) being the volume between the last reading before midnight b and b itself, which lies in
 *   [0, step(b)], step(b) the step of the total across b. Tolerance: exactly that bound, a reading
 *   interval's volume at each edge (here ≤ 0.06 % of a day's volume for the 1-minute meter, ≤ 0.33 %
 *   for the 5-minute monitor), and 0.5 % of the day's volume overall. Where the flow at the two
 *   midnights is alike, the two edge terms nearly cancel (≤ 0.02 % seen).
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2026-10-01T00:00 in Asia/Almaty (UTC+5): the pilot's first local day. */
const LOCAL_DAY0 = Date.UTC(2026, 9, 1) - 5 * HOUR;
const DAYS = 5;
const COMPARED = ['2026-10-02', '2026-10-03', '2026-10-04'];
const pilot = testPilot();

interface Written {
  reading: Reading;
  receivedAtMs: number;
  arrival: Arrival;
}

/**
 * A meter's readings from the simulator's model, as the pipeline would store them: dropouts
 * missing, the readings of an offline stretch backfilled when it ends (arrival = backfill,
 * received then), the others alone a fraction of a second to a few seconds after their ts.
 */
function simulated(meterId: string, fromMs: number, toMs: number): Written[] {
  const meter = pilot.meters.find((m) => m.id === meterId);
  if (!meter) throw new Error(`no meter ${meterId}`);
  const model = createMeterModel(meter, pilot, { seed: 3, faults: { dropoutProbability: 0.003, duplicateProbability: 0, offlineProbabilityPerDay: 0.6, offlineIntervals: 45 } });
  const out: Written[] = [];
  let backOnlineMs = 0;
  for (let k = model.indexAtOrAfter(fromMs); model.timestampOf(k) < toMs; k++) {
    if (model.isDropped(k)) continue;
    const reading = model.reading(k);
    if (model.isOffline(k)) {
      if (backOnlineMs <= reading.tsMs) {
        let j = k;
        while (model.isOffline(j)) j++;
        backOnlineMs = model.timestampOf(j) + 1500;
      }
      out.push({ reading, receivedAtMs: backOnlineMs, arrival: ARRIVAL.backfill });
    } else {
      out.push({ reading, receivedAtMs: reading.tsMs + 200 + ((reading.seq * 37) % 2800), arrival: ARRIVAL.alone });
    }
  }
  return out;
}

/** The value of a meter's series at a bucket's time (the day's start for GROUP BY time(1d) tz()). */
function valueAt(series: readonly InfluxSeries[], meterId: string, column: string, tsMs: number): number | null {
  const s = series.find((x) => x.tags?.meter === meterId);
  const c = s?.columns.indexOf(column) ?? -1;
  const row = s?.values.find((r) => r[0] === tsMs);
  return row && c > 0 ? (row[c] as number | null) : null;
}

/** The step of a meter's stored total across instant b: first total at or after b minus the last before it. */
function stepAcross(readings: readonly Written[], b: number): number {
  const after = readings.findIndex((w) => w.reading.tsMs >= b);
  const before = readings[after - 1];
  const first = readings[after];
  if (!before || !first) throw new Error(`no readings on both sides of ${new Date(b).toISOString()}`);
  return first.reading.totalM3 - before.reading.totalM3;
}

describe('the Grafana dashboard (deploy/grafana) against a real influxd', () => {
  it('provisions one InfluxQL data source that every panel and variable of the dashboard uses', () => {
    const dashboard = loadDashboard();
    const datasources = parse(readFileSync(new URL('../deploy/grafana/provisioning/datasources/flowpilot.yaml', import.meta.url), 'utf8')) as {
      datasources: { uid: string; type: string; url: string; jsonData: { version: string; dbName: string; timeInterval: string } }[];
    };
    const providers = parse(readFileSync(new URL('../deploy/grafana/provisioning/dashboards/flowpilot.yaml', import.meta.url), 'utf8')) as { providers: { type: string; options: { path: string } }[] };
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ uid: 'flowpilot-influx', type: 'influxdb', url: '${FLOWPILOT_INFLUX_URL}', jsonData: expect.objectContaining({ version: 'InfluxQL', dbName: 'flowpilot', timeInterval: '1m' }) }),
    ]);
    expect(formatInterval(DATA_SOURCE_MIN_INTERVAL_MS)).toBe(datasources.datasources[0]?.jsonData.timeInterval);
    expect(providers.providers[0]).toMatchObject({ type: 'file', options: { path: '/var/lib/grafana/dashboards/flowpilot' } });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.timezone).toBe(pilot.pilot.timezone);
    // Every data source reference (panels, targets, variables) but the built-in annotations' is the provisioned one.
    const refs: unknown[] = [];
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node !== null && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) if (key === 'datasource') refs.push(value);
        else collect(value);
      }
    };
    collect({ ...dashboard, annotations: undefined });
    expect(refs.length).toBeGreaterThanOrEqual(9);
    expect(new Set(refs.map((ref) => JSON.stringify(ref)))).toEqual(new Set([JSON.stringify({ type: 'influxdb', uid: 'flowpilot-influx' })]));
    expect(dashboardQueries(dashboard).map((query) => query.source)).toEqual([
      'panel 1 "Live flow per meter" A',
      'panel 2 "Volume per local day" A',
      'panel 3 "Completeness per local day" A',
      'panel 4 "Latency of live readings" A',
      'variable meter',
    ]);
  });

  it('interpolates as Grafana does and refuses a macro Grafana would leave in place', () => {
    const dashboard = loadDashboard();
    const request: GrafanaRequest = { fromMs: 1000, toMs: 2000, intervalMs: 600_000, variables: { ...currentVariables(dashboard), meter: ['ALM-PS3.DUT1', 'b/c'] } };
    const [flow] = dashboardQueries(dashboard);
    expect(interpolate(flow?.influxql ?? '', dashboard, request)).toBe(
      'SELECT mean("flow") AS "flow" FROM "reading" WHERE "meter" =~ /^(ALM-PS3\\.DUT1|b\\/c)$/ AND time >= 1000ms and time <= 2000ms GROUP BY time(10m), "meter" fill(null) tz(\'Asia/Almaty\')',
    );
    expect(() => interpolate('SELECT 1 FROM x WHERE $__timeFilter', dashboard, request)).toThrow(/\$__timeFilter/);
    // Grafana's interval for five days on a panel 1,000 points wide: 432 s, rounded to 10m.
    expect(formatInterval(grafanaIntervalMs(0, 5 * DAY, DEFAULT_MAX_DATA_POINTS, DATA_SOURCE_MIN_INTERVAL_MS))).toBe('10m');
  });

  it("answers every query over pilot data, and its daily figures agree with /api/v1/metrics?per=day", async (ctx) => {
    const dashboard = loadDashboard();
    const influx = await createTestInflux({ timeoutMs: 60_000 });
    const written = new Map(pilot.meters.map((m) => [m.id, simulated(m.id, LOCAL_DAY0 - 2 * HOUR, LOCAL_DAY0 + DAYS * DAY + 2 * HOUR)]));
    const lines = [...written.entries()].flatMap(([meterId, readings]) => {
      const site = pilot.meters.find((m) => m.id === meterId)?.site ?? 'S';
      return readings.map((w) => readingLine(w.reading, site, w.receivedAtMs, w.arrival));
    });
    for (let i = 0; i < lines.length; i += 5000) await influx.write(lines.slice(i, i + 5000));

    // The dashboard as a user opens it over the five local days (Grafana's absolute range ends at .999).
    const fromMs = LOCAL_DAY0;
    const toMs = LOCAL_DAY0 + DAYS * DAY - 1;
    const allMeters = pilot.meters.map((m) => m.id).sort();
    const requestFor = (variables: GrafanaRequest['variables']): GrafanaRequest => ({
      fromMs,
      toMs,
      intervalMs: grafanaIntervalMs(fromMs, toMs, DEFAULT_MAX_DATA_POINTS, DATA_SOURCE_MIN_INTERVAL_MS),
      variables: { ...currentVariables(dashboard), ...variables },
      allValues: { meter: allMeters },
    });
    const answers = new Map<string, InfluxSeries[]>();
    const runAll = async (request: GrafanaRequest, key: string) => {
      for (const query of dashboardQueries(dashboard)) {
        const series = await influx.query(interpolate(query.influxql, dashboard, request));
        const values = series.flatMap((s) => s.values.flatMap((row) => row.slice(1)));
        expect(values.filter((v) => v !== null).length, `${query.source} answered nothing`).toBeGreaterThan(0);
        answers.set(`${key} ${query.panelTitle ?? query.source}`, series);
      }
    };
    // The meter variable's own query lists every meter: All is what it answered.
    const [meterValues] = await influx.query(interpolate(dashboardQueries(dashboard).find((q) => q.kind === 'variable')?.influxql ?? '', dashboard, requestFor({})));
    expect(meterValues?.values.map(([, value]) => value).sort()).toEqual(allMeters);
    // As the dashboard opens (All meters, 60 s), then the 5-minute monitor with its own interval.
    await runAll(requestFor({ meter: ['$__all'] }), 'all');
    await runAll(requestFor({ meter: ['T-MON'], report_interval_s: '300' }), 'T-MON');

    const app = await createApi({ pilot, influx, liveFeed: createMemoryLiveFeed() });
    try {
      const response = await app.inject(`/api/v1/metrics?from=${COMPARED[0]}&to=2026-10-05&per=day`);
      expect(response.statusCode).toBe(200);
      const body = response.json() as { timezone: string; days: { date: string; from: string; meters: MeterMetrics[] }[] };
      expect(body.days.map((day) => day.date)).toEqual(COMPARED);

      const table: string[] = ['meter  day         volume FlowPilot  Grafana     diff (bound)                completeness  latency max'];
      for (const [meterId, key] of [['T-DUT', 'all'], ['T-MON', 'T-MON']] as const) {
        const readings = written.get(meterId) ?? [];
        for (const day of body.days) {
          const dayMs = Date.parse(day.from);
          const flowpilot = day.meters.find((m) => m.meterId === meterId);
          if (!flowpilot) throw new Error(`no ${meterId} on ${day.date}`);
          const grafanaVolume = valueAt(answers.get(`${key} Volume per local day`) ?? [], meterId, 'volume', dayMs);
          const grafanaCompleteness = valueAt(answers.get(`${key} Completeness per local day`) ?? [], meterId, 'completeness', dayMs);
          const latency = answers.get(`${key} Latency of live readings`)?.find((s) => s.tags?.meter === meterId);
          const maxColumn = latency?.columns.indexOf('max') ?? -1;
          const grafanaLatencyMax = Math.max(...(latency?.values ?? []).filter((r) => (r[0] as number) >= dayMs && (r[0] as number) < dayMs + DAY).map((r) => r[maxColumn] as number));

          expect(grafanaCompleteness, `${meterId} ${day.date} completeness`).toBeCloseTo(flowpilot.completeness ?? NaN, 12);
          expect(grafanaLatencyMax, `${meterId} ${day.date} latency max`).toBe(flowpilot.latencyMs.max);
          // FlowPilot − Grafana = e(end) − e(start), each e in [0, step across that midnight].
          const diff = flowpilot.volumeM3 - (grafanaVolume ?? NaN);
          const [stepStart, stepEnd] = [stepAcross(readings, dayMs), stepAcross(readings, dayMs + DAY)];
          expect(diff, `${meterId} ${day.date} volume`).toBeGreaterThanOrEqual(-stepStart - 1e-9);
          expect(diff, `${meterId} ${day.date} volume`).toBeLessThanOrEqual(stepEnd + 1e-9);
          expect(Math.abs(diff) / flowpilot.volumeM3, `${meterId} ${day.date} volume, relative`).toBeLessThan(0.005);
          table.push(
            `${meterId}  ${day.date}  ${flowpilot.volumeM3.toFixed(3).padStart(10)}  ${(grafanaVolume ?? NaN).toFixed(3).padStart(10)}  ` +
              `${diff.toFixed(3).padStart(7)} (${(-stepStart).toFixed(3)}…${stepEnd.toFixed(3)}, ${((100 * diff) / flowpilot.volumeM3).toFixed(4)} %)  ` +
              `${(flowpilot.completeness ?? NaN).toFixed(6)}      ${flowpilot.latencyMs.max} ms`,
          );
        }
      }
      // Not trivial: on some compared days backfilled readings (excluded from latency on both sides) and dropouts exist.
      for (const meterId of ['T-DUT', 'T-MON']) {
        const days = body.days.map((day) => day.meters.find((m) => m.meterId === meterId));
        expect(days.some((m) => (m?.latencyMs.backfilled.count ?? 0) > 0), `${meterId} backfilled`).toBe(true);
        expect(days.some((m) => (m?.completeness ?? 1) < 1), `${meterId} dropouts`).toBe(true);
      }
      await ctx.annotate(table.join('\n'));
      if (process.env.FLOWPILOT_TEST_VERBOSE) console.log(table.join('\n'));
    } finally {
      await app.close();
    }
  });
});
