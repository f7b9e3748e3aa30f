import type { MeterConfig } from '@flowpilot/schema';
import type { ApiReading, MeterView } from './api-schemas.ts';
import { toApiReading } from './influx-readings.ts';
import type { MeterLiveState } from './live-feed.ts';

/** A meter without a status message counts as online while readings keep coming: within 3 intervals. */
export const ONLINE_WITHIN_INTERVALS = 3;

/**
 * A meter's config plus its live status (SPEC section 5). `stored` is its newest reading in
 * InfluxDB, asked for only when the live feed has seen none since the API started.
 */
export function meterView(meter: MeterConfig, live: MeterLiveState | undefined, stored: ApiReading | null, nowMs: number): MeterView {
  const liveReading = live?.lastReading ? toApiReading(live.lastReading, live.lastReadingReceivedAtMs) : null;
  const lastReading = liveReading ?? stored;
  // Last seen is when a reading arrived; an InfluxDB row without received_at falls back to its ts.
  const lastSeenMs = live?.lastSeenMs ?? (stored ? Date.parse(stored.receivedAt ?? stored.ts) : undefined);
  const online = live?.status
    ? live.status.online
    : lastSeenMs !== undefined && nowMs - lastSeenMs <= ONLINE_WITHIN_INTERVALS * meter.intervalSec * 1000;

  const view: MeterView = {
    ...meter,
    online,
    lastSeen: lastSeenMs === undefined ? null : new Date(lastSeenMs).toISOString(),
    lastReading,
  };
  if (live?.status?.firmware !== undefined) view.firmware = live.status.firmware;
  return view;
}
