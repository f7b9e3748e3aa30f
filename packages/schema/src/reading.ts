import { z } from 'zod';
import { ERROR_CATALOGUE, type RejectionCode } from './errors.ts';
import { isValidMeterId } from './topics.ts';

/** Alarm names in bit order: bit i of the stored `alarms` mask is ALARMS[i] (SPEC section 2). */
export const ALARMS = ['reverse_flow', 'empty_pipe', 'leak', 'tamper', 'low_battery', 'sensor_fault', 'overload'] as const;
export type AlarmName = (typeof ALARMS)[number];

export const WIRE_VERSION = 1;
export const MAX_BATCH_READINGS = 1000;
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

const meterIdSchema = z.string().refine(isValidMeterId, { message: 'must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' });
const tsSchema = z.union([z.iso.datetime({ offset: true }), z.number().int().nonnegative()], {
  error: 'must be an ISO 8601 string with an offset, or epoch milliseconds',
});

/** One reading as a meter sends it (SPEC section 1). Unknown fields are ignored. */
export const wireReadingSchema = z.object({
  v: z.literal(WIRE_VERSION),
  meterId: meterIdSchema,
  seq: z.number().int().nonnegative(),
  ts: tsSchema,
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

/** JSON.parse turns 1e999 into Infinity: name the first non-finite number, if any. */
function findNonFinite(value: unknown, path: string): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : path || '(value)';
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNonFinite(value[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const found = findNonFinite(child, path ? `${path}.${key}` : key);
      if (found) return found;
    }
  }
  return null;
}

export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

function normalise(wire: WireReading, tsMs: number): Reading {
  const reading: Reading = {
    meterId: wire.meterId,
    seq: wire.seq,
    tsMs,
    flowM3h: wire.flow,
    totalM3: wire.total,
    alarms: wire.alarms ?? [],
  };
  if (wire.totalReverse !== undefined) reading.totalReverseM3 = wire.totalReverse;
  if (wire.velocity !== undefined) reading.velocityMps = wire.velocity;
  if (wire.pressure !== undefined) reading.pressureBar = wire.pressure;
  if (wire.temperature !== undefined) reading.temperatureC = wire.temperature;
  if (wire.battery !== undefined) reading.batteryPct = wire.battery;
  if (wire.rssi !== undefined) reading.rssiDbm = wire.rssi;
  return reading;
}

function validateOne(item: unknown, topicMeterId: string, ctx: ReadingValidationContext, index?: number): Reading | Rejection {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    return reject('ERR_READING_SCHEMA', 'a reading must be a JSON object', index);
  }
  const version = (item as { v?: unknown }).v;
  if (version !== WIRE_VERSION) {
    return version === undefined
      ? reject('ERR_READING_SCHEMA', 'v: required (the wire format version, 1)', index)
      : reject('ERR_READING_VERSION', `v is ${JSON.stringify(version)}, expected 1`, index);
  }
  const nonFinite = findNonFinite(item, '');
  if (nonFinite) return reject('ERR_READING_NON_FINITE', `${nonFinite} is not a finite number`, index);

  const parsed = wireReadingSchema.safeParse(item);
  if (!parsed.success) return reject('ERR_READING_SCHEMA', describeZodError(parsed.error), index);
  const wire = parsed.data;

  if (wire.meterId !== topicMeterId) {
    return reject('ERR_METER_MISMATCH', `meterId "${wire.meterId}" was published on the topic of "${topicMeterId}"`, index);
  }
  const tsMs = parseTimestamp(wire.ts);
  if (!Number.isFinite(tsMs)) return reject('ERR_READING_SCHEMA', `ts: ${JSON.stringify(wire.ts)} is not a valid time`, index);
  if (tsMs > ctx.nowMs + FUTURE_TOLERANCE_MS) {
    return reject('ERR_TS_FUTURE', `ts ${new Date(tsMs).toISOString()} is ${Math.round((tsMs - ctx.nowMs) / 1000)} s ahead of the server clock`, index);
  }
  if (tsMs < ctx.nowMs - ctx.retentionMs) {
    const hint = typeof wire.ts === 'number' && wire.ts < 1e11 ? ' (it looks like epoch seconds; send milliseconds)' : '';
    return reject('ERR_TS_TOO_OLD', `ts ${new Date(tsMs).toISOString()} is older than the retention window${hint}`, index);
  }
  return normalise(wire, tsMs);
}

/**
 * Validates the payload of `meters/{topicMeterId}/readings`: one reading or an array of up to
 * 1000 (SPEC section 1). In a batch each reading stands alone: the good ones are kept and each
 * bad one is rejected with its index, so one bad element never costs the others.
 */
export function validateReadingPayload(topicMeterId: string, payload: Uint8Array | string, ctx: ReadingValidationContext): ReadingValidation {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > ctx.maxPayloadBytes) {
    return { readings: [], rejections: [reject('ERR_PAYLOAD_TOO_LARGE', `${size} bytes, limit ${ctx.maxPayloadBytes}`)] };
  }
  if (!ctx.isRegistered(topicMeterId)) {
    return { readings: [], rejections: [reject('ERR_METER_UNKNOWN', `meter "${topicMeterId}" is not in the pilot file`)] };
  }
  let body: unknown;
  try {
    body = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch (error) {
    return { readings: [], rejections: [reject('ERR_READING_JSON', (error as Error).message)] };
  }
  if (!Array.isArray(body)) {
    const one = validateOne(body, topicMeterId, ctx);
    return 'code' in one ? { readings: [], rejections: [one] } : { readings: [one], rejections: [] };
  }
  if (body.length > MAX_BATCH_READINGS) {
    return { readings: [], rejections: [reject('ERR_BATCH_TOO_LARGE', `${body.length} readings in one array, limit ${MAX_BATCH_READINGS}`)] };
  }
  const result: ReadingValidation = { readings: [], rejections: [] };
  body.forEach((item, index) => {
    const one = validateOne(item, topicMeterId, ctx, index);
    if ('code' in one) result.rejections.push({ ...one, item });
    else result.readings.push(one);
  });
  return result;
}

/** The operator-facing sentence for a rejection: what was wrong, then what to do. */
export function describeRejection(rejection: Rejection): string {
  const where = rejection.index === undefined ? '' : `reading [${rejection.index}]: `;
  return `${where}${rejection.reason}. ${ERROR_CATALOGUE[rejection.code].message}`;
}

/** A wire reading from a normalised one (the simulator and tests publish these). */
export function toWireReading(reading: Reading): WireReading {
  const wire: WireReading = {
    v: 1,
    meterId: reading.meterId,
    seq: reading.seq,
    ts: new Date(reading.tsMs).toISOString(),
    flow: reading.flowM3h,
    total: reading.totalM3,
  };
  if (reading.totalReverseM3 !== undefined) wire.totalReverse = reading.totalReverseM3;
  if (reading.velocityMps !== undefined) wire.velocity = reading.velocityMps;
  if (reading.pressureBar !== undefined) wire.pressure = reading.pressureBar;
  if (reading.temperatureC !== undefined) wire.temperature = reading.temperatureC;
  if (reading.batteryPct !== undefined) wire.battery = reading.batteryPct;
  if (reading.rssiDbm !== undefined) wire.rssi = reading.rssiDbm;
  if (reading.alarms.length > 0) wire.alarms = reading.alarms;
  return wire;
}
