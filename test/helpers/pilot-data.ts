import { computeMeterMetrics, localDays, pairIntervals } from '@flowpilot/metrics';
import type { MetricsSource } from '@flowpilot/report';
import type { MeterMetrics, TimeWindow } from '@flowpilot/metrics';
import { parsePilotConfig } from '@flowpilot/schema';
import { intervalsCsvSha256 } from '../../services/api/src/intervals-csv.ts';
import type { MeterConfig, PilotConfig, Reading } from '@flowpilot/schema';

/**
 * A small pilot and deterministic readings for the dashboard and report tests: two meters under
 * test with known errors against their references (one within the MPE, one over it in the
 * upper zone), and a monitor with a gap. Flow follows a day: a low night (lower zone) and a
 * high day (upper zone), in the pilot's local time.
 */
export const DASHBOARD_PILOT_ERRORS_PCT: Readonly<Record<string, number>> = { 'D-DUT1': 1, 'D-DUT2': 3.5 };

export function dashboardPilot(): PilotConfig {
  return parsePilotConfig(
    JSON.stringify({
      pilot: { id: 'dash-pilot', name: 'Dashboard test pilot', timezone: 'Asia/Almaty', nightWindow: { start: '02:00', end: '04:00' } },
      meters: [
        { id: 'D-REF1', label: 'Station 1, reference', site: 'S1', role: 'reference', intervalSec: 60 },
        { id: 'D-DUT1', label: 'Station 1, under test', site: 'S1', role: 'test', reference: 'D-REF1', technology: 'electromagnetic', dn: 150, q3: 100, r: 160, accuracyClass: 2, intervalSec: 60 },
        { id: 'D-REF2', label: 'Station 2, reference', site: 'S2', role: 'reference', intervalSec: 60 },
        { id: 'D-DUT2', label: 'Station 2, under test', site: 'S2', role: 'test', reference: 'D-REF2', technology: 'ultrasonic', dn: 100, q3: 63, r: 100, accuracyClass: 2, intervalSec: 60 },
        { id: 'D-MON', label: 'District inlet, monitor', site: 'S3', role: 'monitor', intervalSec: 60 },
      ],
    }),
    'dashboard test pilot',
  );
}

const HOUR_MS = 3_600_000;

/** Reference flow, m³/h, at `tsMs`: low from 01:00 to 05:00 local (UTC+5), a daytime hump otherwise. */
function referenceFlowM3h(tsMs: number, scale: number): number {
  const localHour = (((tsMs + 5 * HOUR_MS) % (24 * HOUR_MS)) + 24 * HOUR_MS) % (24 * HOUR_MS) / HOUR_MS;
  // 0.8 m³/h lies in both test meters' lower zone (Q1 0.625–0.63, Q2 1.0–1.008).
  if (localHour >= 1 && localHour < 5) return 0.8;
  return scale * (20 + 60 * Math.sin((Math.PI * (localHour - 5)) / 20) ** 2);
}

/** Every meter's readings over [from, to), one per interval, the monitor missing 10:00–11:00 UTC of the first day. */
export function dashboardReadings(pilot: PilotConfig, window: TimeWindow): Reading[] {
  const readings: Reading[] = [];
  const scales: Record<string, number> = { 'D-REF1': 1, 'D-DUT1': 1, 'D-REF2': 0.6, 'D-DUT2': 0.6, 'D-MON': 0.4 };
  for (const meter of pilot.meters) {
    const stepMs = meter.intervalSec * 1000;
    const errorFactor = 1 + (DASHBOARD_PILOT_ERRORS_PCT[meter.id] ?? 0) / 100;
    const scale = scales[meter.id] ?? 1;
    let totalM3 = 1000;
    let seq = 0;
    for (let t = window.fromMs; t < window.toMs; t += stepMs) {
      // Volume of the interval ending at t, at the flow of its middle (the reference's truth times the meter's error).
      const flowM3h = referenceFlowM3h(t, scale) * errorFactor;
      totalM3 += referenceFlowM3h(t - stepMs / 2, scale) * errorFactor * (stepMs / HOUR_MS);
      seq++;
      const gap = meter.id === 'D-MON' && t >= window.fromMs + 10 * HOUR_MS && t < window.fromMs + 11 * HOUR_MS;
      if (gap) continue;
      readings.push({ meterId: meter.id, seq, tsMs: t, flowM3h, totalM3, pressureBar: 3.1, temperatureC: 12, alarms: meter.id === 'D-MON' && seq % 500 === 0 ? ['low_battery'] : [] });
    }
  }
  return readings;
}

/** SPEC section 4 computed in memory over the same readings: what /api/v1/metrics answers, for tests of the rendering alone. */
export function localMetrics(pilot: PilotConfig, readings: readonly Reading[], window: TimeWindow): MeterMetrics[] {
  const byMeter = new Map<string, Reading[]>();
  for (const r of readings) byMeter.set(r.meterId, [...(byMeter.get(r.meterId) ?? []), r]);
  const series = (meter: MeterConfig) =>
    (byMeter.get(meter.id) ?? []).map((r) => ({ tsMs: r.tsMs, seq: r.seq, flowM3h: r.flowM3h, totalM3: r.totalM3, temperatureC: r.temperatureC, receivedAtMs: r.tsMs + 800 }));
  return pilot.meters.map((meter) => {
    const reference = meter.reference ? pilot.meters.find((m) => m.id === meter.reference) : undefined;
    return computeMeterMetrics(series(meter), meter, window, pilot.pilot, {}, reference ? { reference: series(reference) } : {});
  });
}

/** The report's MetricsSource over the fixture's readings, computed in memory by @flowpilot/metrics. */
export function localMetricsSource(pilot: PilotConfig, readings: readonly Reading[]): MetricsSource {
  const metersOf = (window: TimeWindow) => localMetrics(pilot, readings, window);
  return {
    metrics: async (window) => ({ window, meters: metersOf(window) }),
    dailyMetrics: async (window) => ({ window, days: localDays(window, pilot.pilot.timezone).map((day) => ({ ...day, meters: metersOf(day.window) })) }),
    errorCurve: async (meterId, window) => metersOf(window).find((meter) => meter.meterId === meterId)?.errorCurve ?? [],
    // What the API's intervals.csv would hash to over the same readings (services/api intervals-csv.ts).
    intervalsSha256: async (meterId, window) => {
      const meter = pilot.meters.find((m) => m.id === meterId);
      const reference = pilot.meters.find((m) => m.id === meter?.reference);
      if (!meter || !reference) throw new Error(`${meterId} is not a test meter of the fixture`);
      const series = (id: string) => readings.filter((r) => r.meterId === id).map((r) => ({ tsMs: r.tsMs, seq: r.seq, flowM3h: r.flowM3h, totalM3: r.totalM3, temperatureC: r.temperatureC }));
      return intervalsCsvSha256(pairIntervals(series(meter.id), series(reference.id), meter, window, { referenceMeter: reference }));
    },
  };
}
