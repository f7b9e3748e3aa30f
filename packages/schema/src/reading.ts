import { z } from 'zod';
import { ERROR_CATALOGUE, type RejectionCode } from './errors.ts';
import { findImplausible } from './plausibility.ts';
import { NUMERIC_READING_FIELDS, type NumericReadingField } from './reading-fields.ts';
import { isValidMeterId } from './topics.ts';
import { clip, describeInstant, errorMessage, inspectJson, parseJson, payloadBytes, preview, type JsonShape } from './wire-guards.ts';

// The field table is part of this module's public surface (index.ts re-exports reading.ts).
export * from './reading-fields.ts';

/** Alarm names in bit order: bit i of the stored `alarms` mask is ALARMS[i] (SPEC section 2). */
export const ALARMS = ['reverse_flow', 'empty_pipe', 'leak', 'tamper', 'low_battery', 'sensor_fault', 'overload'] as const;
export type AlarmName = (typeof ALARMS)[number];

export const WIRE_VERSION = 1;
export const MAX_BATCH_READINGS = 1000;
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/**
 * How deep a reading nests: the reading object is depth 1 and its only nested value, `alarms`,
 * an array of strings, depth 2 (SPEC section 1: "no nesting beyond what the format has"). A
 * batch array adds one level around its readings. Anything deeper is refused before it is
 * walked any further, so a 10 KB `[[[[…]]]]` costs no stack.
 */
export const MAX_READING_DEPTH = 2;
export const NESTING_TOO_DEEP = 'nesting deeper than the wire format allows';

const meterIdSchema = z.string().refine(isValidMeterId, { message: 'must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' });
// `.int()` would refuse integers above 2⁵³ as a schema error; those are plausibility (seq) and
// time-window (ts) questions, answered with their own codes after the schema.
const wholeNumber = z.number().refine(Number.isInteger, { message: 'must be a whole number' });
/** A message's `ts` (SPEC section 1): ISO 8601 with an offset, or epoch milliseconds. */
export const wireTimestampSchema = z.union([z.iso.datetime({ offset: true }), wholeNumber.refine((ms) => ms >= 0, { message: 'must be ≥ 0' })], {
  error: 'must be an ISO 8601 string with an offset, or epoch milliseconds',
});

/**
 * One reading as a meter sends it (SPEC section 1). Unknown fields are ignored. The schema holds
 * the field table (types, integer, ≥ 0, 0–100); PLAUSIBILITY_BOUNDS the rest (plausibility.ts).
 */
export const wireReadingSchema = z.object({
  v: z.literal(WIRE_VERSION),
  meterId: meterIdSchema,
  seq: wholeNumber.refine((n) => n >= 0, { message: 'must be ≥ 0' }),
  ts: wireTimestampSchema,
  flow: z.number(),
  total: z.number().nonnegative(),
  totalReverse: z.number().nonnegative().optional(),
  velocity: z.number().optional(),
  pressure: z.number().optional(),
  temperature: z.number().optional(),
  battery: z.number().min(0).max(100).optional(),
  rssi: z.number().optional(),
  alarms: z.array(z.enum(ALARMS)).optional(),
});
export type WireReading = z.infer<typeof wireReadingSchema>;

/** A validated reading, normalised: epoch-ms time and units in the names. */
export interface Reading {
  meterId: string;
  seq: number;
  tsMs: number;
  flowM3h: number;
  totalM3: number;
  totalReverseM3?: number;
  velocityMps?: number;
  pressureBar?: number;
  temperatureC?: number;
  batteryPct?: number;
  rssiDbm?: number;
  alarms: AlarmName[];
}

export interface Rejection {
  code: RejectionCode;
  /** What was wrong, specifically; the catalogue message says what to do. */
  reason: string;
  /** Position in a batch array; absent when the whole payload was rejected. */
  index?: number;
  /** The rejected element of a batch, kept so its dead letter holds just that reading. */
  item?: unknown;
}

export interface ReadingValidationContext {
  nowMs: number;
  /** Is this meter registered in the pilot? */
  isRegistered: (meterId: string) => boolean;
  /** Readings older than now − retentionMs are rejected. */
  retentionMs: number;
  maxPayloadBytes: number;
}

export interface ReadingValidation {
  readings: Reading[];
  rejections: Rejection[];
  /** The payload was a JSON array (SPEC section 1: store-and-forward backfill), not one reading. */
  batch: boolean;
}

export function alarmMask(alarms: readonly AlarmName[]): number {
  let mask = 0;
  for (const name of alarms) mask |= 1 << ALARMS.indexOf(name);
  return mask;
}

export function alarmsFromMask(mask: number): AlarmName[] {
  return ALARMS.filter((_, bit) => (mask & (1 << bit)) !== 0);
}

/** Epoch ms from a wire `ts`, or NaN. */
export function parseTimestamp(ts: string | number): number {
  return typeof ts === 'number' ? ts : Date.parse(ts);
}

function reject(code: RejectionCode, reason: string, index?: number): Rejection {
  return index === undefined ? { code, reason } : { code, reason, index };
}

export function describeZodError(error: z.ZodError): string {
  const text = error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
  // 1000 bad alarms are 1000 issues: the first few say what to fix.
  return clip(text, 600);
}

/** The normalised reading of a valid wire reading: the field table (reading-fields.ts) maps the names. */
function normalise(wire: WireReading, tsMs: number): Reading {
  const reading = { meterId: wire.meterId, tsMs, alarms: wire.alarms ?? [] } as Reading;
  const target = reading as unknown as Record<string, number>;
  for (const field of NUMERIC_READING_FIELDS) {
    const value = wire[field.wire];
    if (value !== undefined) target[field.reading] = value;
  }
  return reading;
}

export interface TimeWindowContext {
  nowMs: number;
  retentionMs: number;
}

/**
 * A message's `ts` against the server clock (SPEC section 1): not more than 5 minutes ahead,
 * not older than the retention window. Outside it InfluxDB would refuse or drop the point (its
 * nanosecond timestamps end in 2262), so the window is what keeps a batch writable.
 */
export function checkTimeWindow(ts: string | number, tsMs: number, ctx: TimeWindowContext): { code: RejectionCode; reason: string } | null {
  if (!Number.isFinite(tsMs)) return { code: 'ERR_READING_SCHEMA', reason: `ts: ${preview(ts)} is not a valid time` };
  if (tsMs > ctx.nowMs + FUTURE_TOLERANCE_MS) {
    return { code: 'ERR_TS_FUTURE', reason: `ts ${describeInstant(tsMs)} is ${Math.round((tsMs - ctx.nowMs) / 1000)} s ahead of the server clock` };
  }
  if (tsMs < ctx.nowMs - ctx.retentionMs) {
    const hint = typeof ts === 'number' && ts < 1e11 ? ' (it looks like epoch seconds; send milliseconds)' : '';
    return { code: 'ERR_TS_TOO_OLD', reason: `ts ${describeInstant(tsMs)} is older than the retention window${hint}` };
  }
  return null;
}

function validateOne(item: unknown, shape: JsonShape, topicMeterId: string, ctx: ReadingValidationContext, index?: number): Reading | Rejection {
  if (shape.kind === 'too-deep') return reject('ERR_READING_SCHEMA', `${NESTING_TOO_DEEP} (a reading's only nested value is alarms, an array of strings)`, index);
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    return reject('ERR_READING_SCHEMA', 'a reading must be a JSON object', index);
  }
  const version = (item as { v?: unknown }).v;
  if (version !== WIRE_VERSION) {
    return version === undefined
      ? reject('ERR_READING_SCHEMA', 'v: required (the wire format version, 1)', index)
      : reject('ERR_READING_VERSION', `v is ${preview(version)}, expected 1`, index);
  }
  if (shape.kind === 'non-finite') return reject('ERR_READING_NON_FINITE', `${shape.path} is not a finite number`, index);

  const parsed = wireReadingSchema.safeParse(item);
  if (!parsed.success) return reject('ERR_READING_SCHEMA', describeZodError(parsed.error), index);
  const wire = parsed.data;

  if (wire.meterId !== topicMeterId) {
    return reject('ERR_METER_MISMATCH', `meterId "${wire.meterId}" was published on the topic of "${topicMeterId}"`, index);
  }
  const implausible = findImplausible(wire);
  if (implausible) return reject('ERR_OUT_OF_RANGE', implausible, index);
  const tsMs = parseTimestamp(wire.ts);
  const outside = checkTimeWindow(wire.ts, tsMs, ctx);
  if (outside) return reject(outside.code, outside.reason, index);
  return normalise(wire, tsMs);
}

function rejectAll(code: RejectionCode, reason: string): ReadingValidation {
  return { readings: [], rejections: [reject(code, reason)], batch: false };
}

function validateReadings(topicMeterId: string, payload: Uint8Array | string, ctx: ReadingValidationContext): ReadingValidation {
  // Size first: the limit bounds every later step's time and memory.
  const size = payloadBytes(payload);
  if (size > ctx.maxPayloadBytes) return rejectAll('ERR_PAYLOAD_TOO_LARGE', `${size} bytes, limit ${ctx.maxPayloadBytes}`);
  if (!ctx.isRegistered(topicMeterId)) return rejectAll('ERR_METER_UNKNOWN', `meter "${topicMeterId}" is not in the pilot file`);
  const json = parseJson(payload);
  if (!json.ok) return rejectAll('ERR_READING_JSON', json.message);
  const body = json.value;
  if (!Array.isArray(body)) {
    const one = validateOne(body, inspectJson(body, MAX_READING_DEPTH), topicMeterId, ctx);
    return 'code' in one ? { readings: [], rejections: [one], batch: false } : { readings: [one], rejections: [], batch: false };
  }
  if (body.length > MAX_BATCH_READINGS) {
    return rejectAll('ERR_BATCH_TOO_LARGE', `${body.length} readings in one array, limit ${MAX_BATCH_READINGS}`);
  }
  const result: ReadingValidation = { readings: [], rejections: [], batch: true };
  body.forEach((item: unknown, index) => {
    const shape = inspectJson(item, MAX_READING_DEPTH);
    const one = validateOne(item, shape, topicMeterId, ctx, index);
    if (!('code' in one)) result.readings.push(one);
    // A too-deep element is not kept as `item`: serialising it again would recurse as deep as it
    // nests. Its dead letter holds the whole payload instead, which is within the size limit.
    else result.rejections.push(shape.kind === 'too-deep' ? one : { ...one, item });
  });
  return result;
}

/**
 * Validates the payload of `meters/{topicMeterId}/readings`: one reading or an array of up to
 * 1000 (SPEC section 1). In a batch each reading stands alone: the good ones are kept and each
 * bad one is rejected with its index, so one bad element never costs the others.
 *
 * Never throws, whatever the bytes (SPEC section 8: nothing a client sends may stop a service):
 * an unexpected failure is a rejection of the whole payload.
 */
export function validateReadingPayload(topicMeterId: string, payload: Uint8Array | string, ctx: ReadingValidationContext): ReadingValidation {
  try {
    return validateReadings(topicMeterId, payload, ctx);
  } catch (error) {
    return rejectAll('ERR_READING_SCHEMA', `could not be validated: ${errorMessage(error)}`);
  }
}

/** The operator-facing sentence for a rejection: what was wrong, then what to do. */
export function describeRejection(rejection: Rejection): string {
  const where = rejection.index === undefined ? '' : `reading [${rejection.index}]: `;
  return `${where}${rejection.reason}. ${ERROR_CATALOGUE[rejection.code].message}`;
}

/** A wire reading from a normalised one (the simulator and tests publish these), named by the field table. */
export function toWireReading(reading: Reading): WireReading {
  // The envelope first, in the order of SPEC section 1.
  const wire = { v: 1, meterId: reading.meterId, seq: reading.seq, ts: new Date(reading.tsMs).toISOString() } as WireReading;
  const target = wire as unknown as Record<string, number>;
  for (const field of NUMERIC_READING_FIELDS) {
    const value = reading[field.reading];
    if (value !== undefined && field.wire !== 'seq') target[field.wire] = value;
  }
  if (reading.alarms.length > 0) wire.alarms = reading.alarms;
  return wire;
}

/**
 * The field table names exactly the number properties of these types: a field added to one and
 * not the other fails to compile here.
 */
type Assert<T extends true> = T;
type NumericProperty<T> = { [K in keyof T]-?: NonNullable<T[K]> extends number ? K : never }[keyof T];
type _FieldTableMatchesTypes = Assert<
  [NumericReadingField['wire']] extends [NumericProperty<WireReading>]
    ? [Exclude<NumericProperty<WireReading>, 'v'>] extends [NumericReadingField['wire']]
      ? [NumericReadingField['reading']] extends [NumericProperty<Reading>]
        ? [Exclude<NumericProperty<Reading>, 'tsMs'>] extends [NumericReadingField['reading']]
          ? true
          : false
        : false
      : false
    : false
>;
