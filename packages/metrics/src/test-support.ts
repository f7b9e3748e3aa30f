import type { MeterConfig } from '@flowpilot/schema';
import type { MetricReading } from './series.ts';

/** Shared by the unit tests only; not exported from index.ts. */
export const MIN = 60_000;
export const HOUR = 3_600_000;
/** 2026-11-25T00:00:00Z. */
export const T0 = Date.UTC(2026, 10, 25);

/** Readings one per minute at the given minute offsets from T0, seq = minute, total = minute (m³). */
export function atMinutes(minutes: readonly number[], extra: (minute: number) => Partial<MetricReading> = () => ({})): MetricReading[] {
  return minutes.map((m) => ({ tsMs: T0 + m * MIN, seq: m, flowM3h: 60, totalM3: m, ...extra(m) }));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

export const monitor: MeterConfig = { id: 'MON', site: 'S', role: 'monitor', intervalSec: 60 };
export const testMeter: MeterConfig = { id: 'DUT', site: 'S', role: 'test', reference: 'REF', q3: 100, r: 160, accuracyClass: 2, intervalSec: 60, resolution: 0.001 };
