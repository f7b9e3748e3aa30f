import { z } from 'zod';
import { ALARMS, METER_ROLES, METER_TECHNOLOGIES } from '@flowpilot/schema';

/**
 * The zod schemas of the HTTP API (SPEC section 5): they validate requests, serialize responses
 * and generate the OpenAPI document at /docs, so the three never disagree.
 */

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const EVERY = /^([1-9]\d{0,5})([smhd])$/;

export interface Every {
  /** As asked for, e.g. `15m`: echoed in the answer. */
  literal: string;
  ms: number;
}

/** `every` of the readings routes: a bucket length (SPEC section 5). */
export const everySchema = z
  .string()
  .transform((text, ctx): Every => {
    const match = EVERY.exec(text.trim());
    if (!match) {
      ctx.addIssue({ code: 'custom', message: `must be a duration such as 30s, 1m, 15m, 1h or 1d; got "${text}"` });
      return z.NEVER;
    }
    const [, count, unit] = match as unknown as [string, string, keyof typeof UNIT_MS];
    return { literal: `${count}${unit}`, ms: Number(count) * UNIT_MS[unit] };
  })
  .optional()
  .describe('Bucket length (`30s`, `1m`, `15m`, `1h`, `1d`; buckets are aligned to UTC). With it, one point per bucket: mean, min and max flow, last total, count. Without it, the raw readings.');

export const meterIdParamsSchema = z.object({
  id: z.string().min(1).describe('Meter id, as in the pilot file (SPEC section 3).'),
});

const isoTime = (description: string) => z.string().describe(`${description} (ISO 8601, UTC)`);

/** A reading in the API's JSON: the wire names and units of SPEC section 1. */
export const apiReadingSchema = z
  .object({
    ts: isoTime('Measurement time, as the meter stamped it'),
    flow: z.number().describe('Volumetric flow rate, m³/h; negative means reverse flow'),
    total: z.number().describe('Forward totalizer, m³'),
    totalReverse: z.number().optional().describe('Reverse totalizer, m³'),
    velocity: z.number().optional().describe('Flow velocity, m/s'),
    pressure: z.number().optional().describe('Pressure, bar'),
    temperature: z.number().optional().describe('Water temperature, °C'),
    battery: z.number().optional().describe('Battery, %'),
    rssi: z.number().optional().describe('Radio signal strength, dBm'),
    alarms: z.array(z.enum(ALARMS)).describe('Active alarms'),
    seq: z.number().int().describe('Sequence number: +1 per reading the meter produces'),
    receivedAt: isoTime('When the pipeline received it').optional(),
  })
  .describe('A reading with the field names and units of the MQTT wire format (SPEC section 1)');
export type ApiReading = z.infer<typeof apiReadingSchema>;

export const liveReadingSchema = apiReadingSchema.extend({ meterId: z.string() }).describe('An `event: reading` of /api/v1/live');
export type LiveReading = z.infer<typeof liveReadingSchema>;

export const bucketSchema = z.object({
  ts: isoTime('Start of the bucket'),
  flow: z.number().describe('Mean flow rate in the bucket, m³/h'),
  flowMin: z.number().describe('Lowest flow rate in the bucket, m³/h'),
  flowMax: z.number().describe('Highest flow rate in the bucket, m³/h'),
  total: z.number().nullable().describe('Last forward totalizer value in the bucket, m³'),
  count: z.number().int().describe('Readings in the bucket'),
});
export type Bucket = z.infer<typeof bucketSchema>;

export const meterViewSchema = z.object({
  id: z.string(),
  label: z.string().optional(),
  site: z.string(),
  role: z.enum(METER_ROLES),
  reference: z.string().optional().describe('The reference meter a test meter is installed in series with'),
  technology: z.enum(METER_TECHNOLOGIES).optional(),
  manufacturer: z.string().optional(),
  dn: z.number().optional().describe('Nominal diameter, mm'),
  q3: z.number().optional().describe('Permanent flow rate Q3, m³/h'),
  r: z.number().optional().describe('Q3/Q1'),
  accuracyClass: z.number().optional().describe('1 or 2 (OIML R49 / ISO 4064)'),
  intervalSec: z.number().describe('Reporting interval, s'),
  online: z
    .boolean()
    .describe('From the meter\'s last status message; without one, whether a reading arrived within the last 3 reporting intervals'),
  lastSeen: isoTime('When its last reading arrived').nullable(),
  lastReading: apiReadingSchema.nullable().describe('Its newest reading: live from the broker, else the newest in InfluxDB over the last 30 days'),
  firmware: z.string().optional().describe('Firmware version from its status message'),
});
export type MeterView = z.infer<typeof meterViewSchema>;

export const pilotViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  timezone: z.string().describe('IANA time zone; days and nights are local'),
  nightWindow: z.object({ start: z.string(), end: z.string() }).describe('Local night window for the minimum night flow, HH:MM'),
  meters: z.array(meterViewSchema),
});

export const rawReadingsSchema = z.object({
  meterId: z.string(),
  from: isoTime('Start of the window, inclusive'),
  to: isoTime('End of the window, exclusive'),
  every: z.null().describe('null: raw readings'),
  readings: z.array(apiReadingSchema),
});

export const bucketedReadingsSchema = z.object({
  meterId: z.string(),
  from: isoTime('Start of the window, inclusive'),
  to: isoTime('End of the window, exclusive'),
  every: z.string().describe('The bucket length asked for'),
  buckets: z.array(bucketSchema).describe('Only buckets holding readings'),
});

export const errorResponseSchema = z
  .object({
    error: z.object({
      code: z.string().describe('A stable code from the error catalogue'),
      message: z.string().describe('What was wrong and what to do'),
    }),
  })
  .describe('An error');

export const healthSchema = z.object({ status: z.literal('ok') });

export const readinessSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  checks: z
    .object({
      influx: z.object({ ok: z.boolean(), version: z.string().optional(), error: z.string().optional() }),
      broker: z.object({ ok: z.boolean() }),
    })
    // Checks the process adds (ApiOptions.readinessChecks), e.g. the durable store's lag.
    .catchall(z.object({ ok: z.boolean(), reason: z.string().optional() })),
});
export type Readiness = z.infer<typeof readinessSchema>;
