import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeMeterMetrics, localDays } from '@flowpilot/metrics';
import type { MetricReading, TimeWindow } from '@flowpilot/metrics';
import { ALARMS } from '@flowpilot/schema';
import type { MeterConfig } from '@flowpilot/schema';
import type { ReportData, ReportMeterMetrics } from './types.ts';

/**
 * Shared by the unit tests of the report only (not exported from index.ts): a pilot with two
 * meters under test against one calibrated reference, three local days of minute readings that
 * fill every R49 test-flow bin (upper-4 only for 20 minutes, so it is `insufficient`), warm water
 * in the afternoons, an alarm, a reset and a hole in the reference's data, so the PDF has every
 * verdict (pass, fail, inconclusive, insufficient), every rule, exclusions and notes to show.
 */

const MIN_MS = 60_000;
const HOUR_MS = 3_600_000;
const ZONE_OFFSET_MS = 5 * HOUR_MS; // Asia/Almaty

export const FIXTURE_TZ = 'Asia/Almaty';
/** Three local days from 20 Nov 2026 00:00 in Almaty. */
export const FIXTURE_WINDOW: TimeWindow = { fromMs: Date.parse('2026-11-20T00:00:00+05:00'), toMs: Date.parse('2026-11-23T00:00:00+05:00') };

export const fixtureMeters: MeterConfig[] = [
  {
    id: 'F-REF',
    label: 'Reference',
    site: 'S1',
    role: 'reference',
    intervalSec: 60,
    serial: 'REF-0042',
    resolution: 0.001,
    calibration: { certificate: 'CAL-2026-117', calibratedOn: '2026-06-01', uncertaintyPct: 0.3 },
  },
  { id: 'F-DUT1', label: 'Meter under test, +1 % (+2.5 % in upper-2)', site: 'S1', role: 'test', reference: 'F-REF', q3: 10, r: 100, accuracyClass: 2, intervalSec: 60 },
  { id: 'F-DUT2', label: 'Meter under test, +6 %', site: 'S1', role: 'test', reference: 'F-REF', q3: 10, r: 100, accuracyClass: 2, intervalSec: 60, resolution: 0.01 },
  { id: 'F-MON', label: 'Monitor', site: 'S2', role: 'monitor', intervalSec: 60 },
];

export const fixturePilot = { id: 'fixture', name: 'Report fixture pilot', timezone: FIXTURE_TZ, nightWindow: { start: '02:00', end: '04:00' }, meters: fixtureMeters };

/**
 * Reference flow, m³/h, by local time (Q1 0.1, Q2 0.16, Q3 10, Q4 12.5): lower bin at night,
 * upper-1 in the morning and evening, upper-2 before noon, upper-3 in the afternoon, upper-4
 * for 20 minutes of the first evening only.
 */
function flowAt(tsMs: number, firstDay: boolean): number {
  const local = (tsMs + ZONE_OFFSET_MS) % (24 * HOUR_MS);
  const hour = local / HOUR_MS;
  if (hour < 3) return 0.13;
  if (hour < 6) return 1;
  if (hour < 12) return 5;
  if (hour < 18) return 8.5;
  if (firstDay && hour < 18 + 20 / 60) return 11;
  return 2;
}

/** 32 °C in the afternoons (the warm-water MPE), 18 °C otherwise. */
const temperatureAt = (tsMs: number): number => {
  const hour = ((tsMs + ZONE_OFFSET_MS) % (24 * HOUR_MS)) / HOUR_MS;
  return hour >= 12 && hour < 18 ? 32 : 18;
};

/**
 * Each meter's error at a flow, %: F-DUT1 +1 % but +2.5 % in upper-2 (its upper zone passes on
 * its own, the bin fails it: rule `bin upper-2`), F-DUT2 +6 % (its lower zone, read on a coarse
 * 0.01 m³ register, is `inconclusive` by the guarded rule; its upper zone fails).
 */
function errorPctAt(meterId: string, flowM3h: number): number {
  if (meterId === 'F-DUT1') return flowM3h >= 3.556 && flowM3h < 7.112 ? 2.5 : 1;
  return meterId === 'F-DUT2' ? 6 : 0;
}

export function fixtureReadings(window: TimeWindow = FIXTURE_WINDOW): Record<string, MetricReading[]> {
  const out: Record<string, MetricReading[]> = {};
  for (const meter of fixtureMeters) {
    const readings: MetricReading[] = [];
    let total = 100;
    let seq = 0;
    for (let t = window.fromMs - 5 * MIN_MS; t <= window.toMs + 5 * MIN_MS; t += MIN_MS) {
      const firstDay = t < window.fromMs + 24 * HOUR_MS;
      const flow = flowAt(t, firstDay);
      const mid = flowAt(t - MIN_MS / 2, firstDay);
      total += (mid * (1 + errorPctAt(meter.id, mid) / 100) * MIN_MS) / HOUR_MS;
      seq++;
      const minute = Math.round((t - window.fromMs) / MIN_MS);
      // Half an hour without the reference on the second day: its intervals are `missing`/`gap`.
      if (meter.id === 'F-REF' && minute >= 1500 && minute < 1530) continue;
      const alarmsMask = meter.id === 'F-DUT1' && minute >= 2000 && minute < 2010 ? 1 << ALARMS.indexOf('sensor_fault') : 0;
      readings.push({
        tsMs: t,
        seq,
        flowM3h: flow * (1 + errorPctAt(meter.id, flow) / 100),
        // F-DUT2's register is reset once (back to 0) on the third day.
        totalM3: meter.id === 'F-DUT2' && minute >= 3000 ? total - 100 : total,
        temperatureC: temperatureAt(t),
        receivedAtMs: t + 900,
        alarmsMask,
      });
    }
    out[meter.id] = readings;
  }
  return out;
}

function metricsFor(window: TimeWindow, readings: Record<string, MetricReading[]>, rejected: Record<string, number> | null): ReportMeterMetrics[] {
  return fixtureMeters.map((meter) => {
    const referenceMeter = meter.reference ? fixtureMeters.find((m) => m.id === meter.reference) : undefined;
    const options = referenceMeter ? { reference: readings[referenceMeter.id] ?? [], referenceMeter } : {};
    const { duplicates: _duplicates, ...metrics } = computeMeterMetrics(readings[meter.id] ?? [], meter, window, fixturePilot, rejected, options);
    return metrics;
  });
}

export const FIXTURE_PILOT_SHA256 = '5f1d9a0c3b7e2d4f6a8c0e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f';
export const FIXTURE_COMMIT = '0123456789abcdef0123456789abcdef01234567';
/** Stand-ins for the intervals.csv hashes a MetricsSource gives (the integration test checks real ones). */
export const FIXTURE_INTERVALS_SHA256: Record<string, string> = {
  'F-DUT1': 'aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899',
  'F-DUT2': 'bb22cc33dd44ee55ff6600778899aabbccddeeff0011223344556677889900aa',
};

/** The fixture's ReportData; `rejected: null` is the API without a dead-letter store (unknown counts). */
export function fixtureReportData(rejected: Record<string, number> | null = null): ReportData {
  const readings = fixtureReadings();
  const window = FIXTURE_WINDOW;
  return {
    pilot: fixturePilot,
    window,
    meters: metricsFor(window, readings, rejected),
    days: localDays(window, FIXTURE_TZ).map((day) => ({ date: day.date, window: day.window, meters: metricsFor(day.window, readings, rejected) })),
    readAt: { startMs: window.toMs + 3_000, endMs: window.toMs + 5_500 },
    intervalsSha256: FIXTURE_INTERVALS_SHA256,
  };
}

export function hasPoppler(): boolean {
  try {
    execFileSync('pdftotext', ['-v'], { stdio: 'ignore' });
    execFileSync('pdffonts', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs a poppler tool on the PDF's bytes (written to a temporary file, removed after). */
export function poppler(tool: 'pdftotext' | 'pdffonts' | 'pdfinfo', pdf: Uint8Array, args: readonly string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-report-'));
  try {
    const file = join(dir, 'report.pdf');
    writeFileSync(file, pdf);
    const argv = tool === 'pdftotext' ? ['-enc', 'UTF-8', ...args, file, '-'] : [...args, file];
    return execFileSync(tool, argv, { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * pdftotext's text in its physical layout (each table row's first line on one line of text,
 * whatever wraps below it), with every run of white space folded to one space.
 */
export const pdfText = (pdf: Uint8Array): string => fold(poppler('pdftotext', pdf, ['-layout']));

/** Runs of white space (with the no-break spaces of Russian thousands) as one space: how pdfText reads a figure. */
export const fold = (text: string): string => text.replace(/\s+/g, ' ');
