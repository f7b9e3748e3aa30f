import type { ReadingBucket } from '@flowpilot/influx';
import { toWireReading } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import type { ApiReading, Bucket } from './api-schemas.ts';

/** The API's JSON for a reading: the wire names of SPEC section 1 (the schema's field table), alarms always listed, times as ISO. */
export function toApiReading(reading: Reading, receivedAtMs?: number): ApiReading {
  const { v: _v, meterId: _meterId, ts, alarms: _alarms, ...fields } = toWireReading(reading);
  const api: ApiReading = { ...fields, ts: String(ts), alarms: [...reading.alarms] };
  if (receivedAtMs !== undefined) api.receivedAt = new Date(receivedAtMs).toISOString();
  return api;
}

/** The API's JSON for a bucket of `every` (SPEC section 5). */
export function toApiBucket(bucket: ReadingBucket): Bucket {
  return {
    ts: new Date(bucket.tsMs).toISOString(),
    flow: bucket.flowMeanM3h,
    flowMin: bucket.flowMinM3h,
    flowMax: bucket.flowMaxM3h,
    total: bucket.totalLastM3,
    count: bucket.count,
  };
}
