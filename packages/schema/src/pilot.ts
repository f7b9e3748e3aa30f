import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FlowPilotError } from './errors.ts';
import { isValidMeterId } from './topics.ts';

/** The pilot file (SPEC section 3). */
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, { message: 'must be a time of day as "HH:MM"' });

function isIanaZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export const METER_ROLES = ['reference', 'test', 'monitor'] as const;
export const METER_TECHNOLOGIES = ['electromagnetic', 'ultrasonic', 'mechanical', 'other'] as const;

const positive = z.number({ error: 'must be a number' }).positive({ message: 'must be greater than 0' });

export const meterConfigSchema = z.object({
  id: z.string({ error: 'must be a string' }).refine(isValidMeterId, { message: 'must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
  label: z.string().min(1).optional(),
  // Stored as an InfluxDB tag: a backslash or a line break cannot round-trip through line protocol.
  site: z
    .string({ error: 'must be a string (the site the meter is installed at)' })
    .min(1, { message: 'must not be empty' })
    .regex(/^[^\\\r\n]+$/, { message: 'must not contain a backslash or a line break' }),
  role: z.enum(METER_ROLES, { error: `must be one of ${METER_ROLES.join(', ')}` }),
  reference: z.string().optional(),
  technology: z.enum(METER_TECHNOLOGIES, { error: `must be one of ${METER_TECHNOLOGIES.join(', ')}` }).optional(),
  manufacturer: z.string().optional(),
  dn: positive.optional(),
  q3: positive.optional(),
  r: positive.optional(),
  accuracyClass: z.union([z.literal(1), z.literal(2)], { error: 'must be 1 or 2' }).optional(),
  intervalSec: z.number({ error: 'must be a number of seconds' }).int({ message: 'must be a whole number of seconds' }).positive({ message: 'must be greater than 0' }),
  // "A meter is simulated only when it says `simulate: true`" (SPEC section 3): a real pilot file
  // must never get invented readings mixed into a real meter's series. Absent means false; it
  // stays optional in the parsed type so a MeterConfig written by hand need not spell it out.
  simulate: z.boolean({ error: 'must be true or false' }).optional(),
  /** The maker's serial number, printed in the report beside the meter. */
  serial: z.string({ error: 'must be a string' }).min(1, { message: 'must not be empty' }).optional(),
  /**
   * Register resolution of `total`, m³ (the smallest step it can show). It bounds the volume an
   * interval can be read to (SPEC section 4, u_res); absent, it is inferred from the data and the
   * report says so.
   */
  resolution: positive.optional(),
  /** A reference meter's calibration (SPEC section 3): its expanded uncertainty (k = 2) of volume is u_ref of every verdict against it. */
  /**
   * The `leak` alert's threshold (SPEC section 9): the minimum night flow above which this meter's
   * network is said to leak, m³/h. Absent: no leak alert for the meter (unless `alerts.meters` sets one).
   */
  leakM3h: positive.optional(),
  calibration: z
    .object({
      certificate: z.string({ error: 'must be a string (the calibration certificate number)' }).min(1, { message: 'must not be empty' }),
      calibratedOn: z.string({ error: 'must be a date as "YYYY-MM-DD"' }).regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date as "YYYY-MM-DD"' }),
      uncertaintyPct: z
        .number({ error: 'must be a number (expanded uncertainty, k = 2, in % of volume)' })
        .nonnegative({ message: 'must be 0 or more' })
        .max(10, { message: 'must be at most 10 (% of volume): a reference this uncertain cannot judge a class 1 or 2 meter' }),
    })
    .optional(),
});

/** The languages FlowPilot writes in (reports, notifications): SPEC section 5 `lang`. */
export const PILOT_LANGUAGES = ['en', 'ru', 'kk', 'ko'] as const;
export type PilotLanguage = (typeof PILOT_LANGUAGES)[number];

/**
 * The thresholds of SPEC section 9's rules, with the defaults stated there (STYLE habit 4: one
 * exported constant). `flapMinutes`: a condition that returns within this long of its resolution
 * is the same alert, not a new one.
 */
export const DEFAULT_ALERT_THRESHOLDS = {
  staleIntervals: 3,
  lowBatteryPct: 20,
  totalizerPct: 2,
  rejectedPerHour: 10,
  storeLagSec: 300,
  flapMinutes: 10,
} as const;

const nonNegative = z.number({ error: 'must be a number' }).nonnegative({ message: 'must be 0 or more' });
const percent = z.number({ error: 'must be a number (%)' }).min(0, { message: 'must be between 0 and 100' }).max(100, { message: 'must be between 0 and 100' });
const wholeCount = z.number({ error: 'must be a whole number' }).int({ message: 'must be a whole number' }).nonnegative({ message: 'must be 0 or more' });

/** One meter's own thresholds (`alerts.meters.<id>`): each overrides the pilot-wide one. */
const meterAlertOverridesSchema = z.strictObject(
  {
    staleIntervals: positive.optional(),
    lowBatteryPct: percent.optional(),
    totalizerPct: positive.optional(),
    rejectedPerHour: wholeCount.optional(),
    leakM3h: positive.optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}: expected staleIntervals, lowBatteryPct, totalizerPct, rejectedPerHour or leakM3h` : 'must be a map of settings') },
);

/** The pilot file's `alerts:` section (SPEC section 9); every field optional, defaults from DEFAULT_ALERT_THRESHOLDS. */
export const alertsConfigSchema = z
  .strictObject(
    {
      staleIntervals: positive.default(DEFAULT_ALERT_THRESHOLDS.staleIntervals),
      lowBatteryPct: percent.default(DEFAULT_ALERT_THRESHOLDS.lowBatteryPct),
      totalizerPct: positive.default(DEFAULT_ALERT_THRESHOLDS.totalizerPct),
      rejectedPerHour: wholeCount.default(DEFAULT_ALERT_THRESHOLDS.rejectedPerHour),
      storeLagSec: positive.default(DEFAULT_ALERT_THRESHOLDS.storeLagSec),
      flapMinutes: nonNegative.default(DEFAULT_ALERT_THRESHOLDS.flapMinutes),
      meters: z.record(z.string(), meterAlertOverridesSchema, { error: 'must be a map from meter id to its thresholds' }).default({}),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}: expected staleIntervals, lowBatteryPct, totalizerPct, rejectedPerHour, storeLagSec, flapMinutes or meters`
          : 'must be a map of alert settings',
    },
  )
  .prefault({});

const httpUrl = z.string({ error: 'must be a URL' }).refine(
  (text) => {
    try {
      const url = new URL(text);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
    } catch {
      return false;
    }
  },
  { message: 'must be an http:// or https:// URL' },
);
const email = z.email({ error: 'must be an e-mail address such as ops@example.org' });

/** The pilot file's `notify:` section (SPEC section 9): where alerts are sent when they fire and resolve. */
export const notifyConfigSchema = z
  .strictObject(
    {
      webhooks: z
        .array(
          z.strictObject({
            url: httpUrl,
            /** Signs each body: `X-FlowPilot-Signature: sha256=<HMAC>` (SPEC section 9). */
            secret: z.string({ error: 'must be a string' }).min(1, { message: 'must not be empty (leave it out for no signature)' }).optional(),
          }),
          { error: 'must be a list of {url, secret}' },
        )
        .optional(),
      email: z
        .strictObject({
          smtp: z.strictObject({
            host: z.string({ error: 'must be a host name' }).min(1, { message: 'must not be empty' }),
            port: z.number({ error: 'must be a TCP port number' }).int({ message: 'must be a TCP port number' }).min(1, { message: 'must be a TCP port number (1-65535)' }).max(65535, { message: 'must be a TCP port number (1-65535)' }),
            /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
            secure: z.boolean({ error: 'must be true or false' }).optional(),
            user: z.string({ error: 'must be a string' }).min(1).optional(),
            password: z.string({ error: 'must be a string' }).optional(),
            /** A file holding the password, so the pilot file need not. */
            passwordFile: z.string({ error: 'must be a path' }).min(1).optional(),
          }),
          from: email,
          to: z.array(email, { error: 'must be a list of e-mail addresses' }).min(1, { message: 'must list at least one address' }),
        })
        .optional(),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}: expected webhooks or email` : 'must be a map with webhooks and/or email') },
  )
  .prefault({});

export const pilotConfigSchema = z
  .object({
    pilot: z.object({
      id: z.string({ error: 'must be a string' }).min(1),
      name: z.string({ error: 'must be a string' }).min(1),
      timezone: z.string({ error: 'must be an IANA time zone such as Asia/Almaty' }).refine(isIanaZone, {
        message: 'must be an IANA time zone such as Asia/Almaty',
      }),
      nightWindow: z.object({ start: hhmm, end: hhmm }).default({ start: '02:00', end: '04:00' }),
      /** The language of notifications (SPEC section 9). */
      language: z.enum(PILOT_LANGUAGES, { error: `must be one of ${PILOT_LANGUAGES.join(', ')}` }).default('en'),
    }),
    meters: z.array(meterConfigSchema, { error: 'must be a list of meters' }).min(1, { message: 'must list at least one meter' }),
    alerts: alertsConfigSchema,
    notify: notifyConfigSchema,
  })
  .superRefine((config, ctx) => {
    const byId = new Map<string, (typeof config.meters)[number]>();
    config.meters.forEach((meter, i) => {
      if (byId.has(meter.id)) ctx.addIssue({ code: 'custom', path: ['meters', i, 'id'], message: `"${meter.id}" is listed twice` });
      byId.set(meter.id, meter);
    });
    // Defensive: zod runs this refinement after non-fatal issues elsewhere in the file too.
    for (const meterId of Object.keys(config.alerts?.meters ?? {})) {
      if (!byId.has(meterId)) ctx.addIssue({ code: 'custom', path: ['alerts', 'meters', meterId], message: `no meter "${meterId}" in this file` });
    }
    const smtp = config.notify?.email?.smtp;
    if (smtp && smtp.password !== undefined && smtp.passwordFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['notify', 'email', 'smtp', 'passwordFile'], message: 'give password or passwordFile, not both' });
    }
    if (smtp && (smtp.password !== undefined || smtp.passwordFile !== undefined) && smtp.user === undefined) {
      ctx.addIssue({ code: 'custom', path: ['notify', 'email', 'smtp', 'user'], message: 'required with a password (the SMTP login)' });
    }
    config.meters.forEach((meter, i) => {
      if (meter.role !== 'test') return;
      if (meter.reference === undefined) {
        ctx.addIssue({ code: 'custom', path: ['meters', i, 'reference'], message: 'a test meter needs the id of its reference meter' });
      } else {
        const reference = byId.get(meter.reference);
        if (!reference) ctx.addIssue({ code: 'custom', path: ['meters', i, 'reference'], message: `no meter "${meter.reference}" in this file` });
        else if (reference.role !== 'reference') {
          ctx.addIssue({ code: 'custom', path: ['meters', i, 'reference'], message: `"${meter.reference}" has role ${reference.role}, expected reference` });
        }
      }
      if (meter.calibration !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['meters', i, 'calibration'], message: 'only a reference meter carries a calibration (its uncertainty enters the verdicts of the meters tested against it)' });
      }
      for (const field of ['q3', 'r', 'accuracyClass'] as const) {
        if (meter[field] === undefined) {
          ctx.addIssue({ code: 'custom', path: ['meters', i, field], message: 'required for a test meter (accuracy per OIML R49)' });
        }
      }
    });
  });

export type PilotConfig = z.infer<typeof pilotConfigSchema>;
export type MeterConfig = PilotConfig['meters'][number];
/** The `alerts:` section with every default filled in. */
export type AlertsConfig = PilotConfig['alerts'];
/** One meter's overrides in `alerts.meters`. */
export type MeterAlertOverrides = AlertsConfig['meters'][string];
/** The `notify:` section (an empty object when the file has none). */
export type NotifyConfig = PilotConfig['notify'];

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key)), '');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses a pilot file (YAML or JSON: YAML is a superset) and reports every problem at once,
 * each with the path of its field, then freezes the result (STYLE habit 3).
 */
export function parsePilotConfig(text: string, source = 'pilot file'): PilotConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new FlowPilotError('ERR_PILOT_CONFIG', `${source} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  const parsed = pilotConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  - ${formatPath(issue.path) || '(file)'}: ${issue.message}`);
    throw new FlowPilotError('ERR_PILOT_CONFIG', `${source} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.join('\n')}\n`);
  }
  return deepFreeze(parsed.data);
}

/** Does the simulator publish for this meter? Only when the pilot file says `simulate: true` (SPEC section 3). */
export function isSimulated(meter: MeterConfig): boolean {
  return meter.simulate === true;
}

/** The meters of a pilot the simulator publishes for, in file order. */
export function simulatedMeters(config: PilotConfig): MeterConfig[] {
  return config.meters.filter(isSimulated);
}

/** Looks meters up by id; the broker asks it whether a meter is registered. */
export interface MeterRegistry {
  has(meterId: string): boolean;
  get(meterId: string): MeterConfig | undefined;
  all(): readonly MeterConfig[];
}

export function createMeterRegistry(config: PilotConfig): MeterRegistry {
  const byId = new Map(config.meters.map((meter) => [meter.id, meter]));
  return {
    has: (meterId) => byId.has(meterId),
    get: (meterId) => byId.get(meterId),
    all: () => config.meters,
  };
}
