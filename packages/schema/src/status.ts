import { z } from 'zod';
import { describeZodError, parseTimestamp } from './reading.ts';
import type { Rejection } from './reading.ts';

/** `meters/{id}/status`, retained; the last will sets `{"online": false}` (SPEC section 1). */
export const meterStatusSchema = z.object({
  online: z.boolean(),
  ts: z.union([z.iso.datetime({ offset: true }), z.number().int().nonnegative()]).optional(),
  firmware: z.string().max(128).optional(),
});

export interface MeterStatus {
  meterId: string;
  online: boolean;
  /** The meter's time if it sent one, else the time the broker received it. */
  tsMs: number;
  firmware?: string;
}

export function validateStatusPayload(meterId: string, payload: Uint8Array | string, receivedAtMs: number): MeterStatus | Rejection {
  let body: unknown;
  try {
    body = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch (error) {
    return { code: 'ERR_READING_JSON', reason: (error as Error).message };
  }
  const parsed = meterStatusSchema.safeParse(body);
  if (!parsed.success) return { code: 'ERR_STATUS_SCHEMA', reason: describeZodError(parsed.error) };
  const tsMs = parsed.data.ts === undefined ? receivedAtMs : parseTimestamp(parsed.data.ts);
  const status: MeterStatus = { meterId, online: parsed.data.online, tsMs: Number.isFinite(tsMs) ? tsMs : receivedAtMs };
  if (parsed.data.firmware !== undefined) status.firmware = parsed.data.firmware;
  return status;
}
