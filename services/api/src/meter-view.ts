import type { ReadingsRepository } from '@flowpilot/influx';
import type { MeterConfig } from '@flowpilot/schema';
import type { FastifyBaseLogger } from 'fastify';
import type { ApiReading, MeterView } from './api-schemas.ts';
import type { LiveFeed, MeterLiveState } from './live-feed.ts';
import { toApiReading } from './reading-json.ts';

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

/** How far back /pilot and /meters/{id} look in InfluxDB for a meter the live feed has not heard from. */
export const LATEST_LOOKBACK_DAYS = 30;

/**
 * The newest stored reading of every meter the live feed has not heard from. InfluxDB being
 * down must not blank the field engineer's view of what is live, so this degrades to none.
 */
export async function storedLatest(readings: ReadingsRepository, liveFeed: LiveFeed, meterIds: readonly string[], log: FastifyBaseLogger): Promise<Map<string, ApiReading>> {
  const missing = meterIds.filter((id) => !liveFeed.state(id)?.lastReading);
  if (missing.length === 0) return new Map();
  try {
    // One meter: its own query; several: one query for all.
    const only = missing.length === 1 ? (missing[0] as string) : undefined;
    const stored = only === undefined ? await readings.latestOfEvery(LATEST_LOOKBACK_DAYS) : new Map([[only, await readings.latest(only, LATEST_LOOKBACK_DAYS)]]);
    const latest = new Map<string, ApiReading>();
    for (const [id, reading] of stored) if (reading) latest.set(id, toApiReading(reading, reading.receivedAtMs));
    return latest;
  } catch (error) {
    log.warn({ err: error }, 'could not read the latest readings from InfluxDB; answering with live data only');
    return new Map();
  }
}
