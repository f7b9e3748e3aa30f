import { z } from 'zod';
import type { RejectionCode } from './errors.ts';
import { checkTimeWindow, describeZodError, NESTING_TOO_DEEP, parseTimestamp, wireTimestampSchema } from './reading.ts';
import type { Rejection } from './reading.ts';
import { errorMessage, inspectJson, parseJson, payloadBytes } from './wire-guards.ts';

/**
 * A status follows a reading's rules (SPEC section 1): bounded size, `ts` in the same window,
 * no nesting beyond the format's. The format is one flat object, so depth 1.
 */
export const MAX_STATUS_PAYLOAD_BYTES = 4096;
export const MAX_STATUS_DEPTH = 1;
export const MAX_FIRMWARE_CHARS = 128;

/** `meters/{id}/status`, retained; the last will sets `{"online": false}` (SPEC section 1). Unknown fields are ignored. */
export const meterStatusSchema = z.object({
  online: z.boolean(),
  ts: wireTimestampSchema.optional(),
  firmware: z.string().max(MAX_FIRMWARE_CHARS).optional(),
});

export interface MeterStatus {
  meterId: string;
  online: boolean;
  /** The meter's time if it sent one, else the time the broker received it. */
  tsMs: number;
  firmware?: string;
}

export interface StatusValidationContext {
  /** The server clock; also the status's time when it carries no `ts` (a last will does not). */
  nowMs: number;
  /** A status older than now − retentionMs is rejected, as a reading would be. */
  retentionMs: number;
  /** Is this meter registered in the pilot? */
  isRegistered: (meterId: string) => boolean;
}

function reject(code: RejectionCode, reason: string): Rejection {
  return { code, reason };
}

function validateStatus(meterId: string, payload: Uint8Array | string, ctx: StatusValidationContext): MeterStatus | Rejection {
  // Size first: the limit bounds every later step's time and memory.
  const size = payloadBytes(payload);
  if (size > MAX_STATUS_PAYLOAD_BYTES) return reject('ERR_PAYLOAD_TOO_LARGE', `status of ${size} bytes, limit ${MAX_STATUS_PAYLOAD_BYTES}`);
  if (!ctx.isRegistered(meterId)) return reject('ERR_METER_UNKNOWN', `meter "${meterId}" is not in the pilot file`);
  const json = parseJson(payload);
  if (!json.ok) return reject('ERR_READING_JSON', json.message);
  const shape = inspectJson(json.value, MAX_STATUS_DEPTH);
  if (shape.kind === 'too-deep') return reject('ERR_STATUS_SCHEMA', `${NESTING_TOO_DEEP} (a status is one flat object)`);
  if (shape.kind === 'non-finite') return reject('ERR_READING_NON_FINITE', `${shape.path} is not a finite number`);
  const parsed = meterStatusSchema.safeParse(json.value);
  if (!parsed.success) return reject('ERR_STATUS_SCHEMA', describeZodError(parsed.error));
  const { online, ts, firmware } = parsed.data;
  let tsMs = ctx.nowMs;
  if (ts !== undefined) {
    tsMs = parseTimestamp(ts);
    const outside = checkTimeWindow(ts, tsMs, ctx);
    if (outside) return reject(outside.code === 'ERR_READING_SCHEMA' ? 'ERR_STATUS_SCHEMA' : outside.code, outside.reason);
  }
  const status: MeterStatus = { meterId, online, tsMs };
  if (firmware !== undefined) status.firmware = firmware;
  return status;
}

/**
 * Validates the payload of `meters/{meterId}/status` (SPEC section 1). Never throws, whatever
 * the bytes (SPEC section 8): an unexpected failure is a rejection.
 */
export function validateStatusPayload(meterId: string, payload: Uint8Array | string, ctx: StatusValidationContext): MeterStatus | Rejection {
  try {
    return validateStatus(meterId, payload, ctx);
  } catch (error) {
    return reject('ERR_STATUS_SCHEMA', `could not be validated: ${errorMessage(error)}`);
  }
}
