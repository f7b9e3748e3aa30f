import { z } from 'zod';
import { ALARMS, METER_ROLES } from '@flowpilot/schema';
import { ERROR_CONVENTION, EXCLUSION_REASONS, TEST_FLOW_BINS } from '@flowpilot/metrics';

/**
 * Schemas of the evaluator's routes (SPEC sections 4 and 5): /metrics, /meters/{id}/error-curve
 * and the CSV reports. Field names are those of packages/metrics (units in the names: M3, M3h,
 * Ms, Pct), so the JSON and the pure functions read the same.
 */

export const MAX_ERROR_CURVE_BINS = 100;
export const DEFAULT_ERROR_CURVE_BINS = 12;

/** `bins` of the error curve. */
export const binsSchema = z.coerce
  .number()
  .int()
  .min(2)
  .max(MAX_ERROR_CURVE_BINS)
  .optional()
  .describe(`Log-spaced bins from Q1 to Q4, split at Q2, 2 to ${MAX_ERROR_CURVE_BINS}. Default ${DEFAULT_ERROR_CURVE_BINS}.`);

/** `per` of /metrics: one set of figures per local day instead of one for the window. */
export const perSchema = z
  .enum(['day'])
  .optional()
  .describe('`day`: the metrics of each local day of the window (the pilot\'s time zone), each day cut to the window, in one answer. Default: the window as a whole.');

const nullableNumber = (description: string) => z.number().nullable().describe(description);

const uncertaintySchema = z
  .object({
    expandedPct: z.number().describe('U = 2·√(u_ref² + u_res² + u_rep²), percentage points (k = 2)'),
    referencePct: z.number().describe("u_ref: half the reference's expanded calibration uncertainty"),
    resolutionPct: z.number().describe('u_res: both registers\' resolution over the contiguous stretches'),
    repeatabilityPct: z.number().describe('u_rep: standard deviation of the daily errors / √days (at least 3 days)'),
    stretches: z.number().int(),
    days: z.number().int(),
    dailyErrorStdPct: nullableNumber('Standard deviation of the daily errors, pp; null with fewer than 2 days'),
    notes: z.array(z.string()).describe('What was counted as 0 and why'),
  })
  .describe('Expanded uncertainty of the error and its budget (SPEC section 4)');

const temperatureSchema = z.object({
  source: z.enum(['reference', 'test', 'none', 'mixed']).describe("Whose temperature chose each interval's MPE"),
  intervalsBySource: z.object({ none: z.number().int(), reference: z.number().int(), test: z.number().int() }),
  minC: nullableNumber('°C'),
  medianC: nullableNumber('°C'),
  maxC: nullableNumber('°C'),
  volumeShareAbove30C: nullableNumber('Share of the reference volume in intervals warmer than 30 °C, 0–1'),
});

const VERDICTS = ['pass', 'fail', 'inconclusive', 'insufficient'] as const;

const evidenceShape = {
  error: nullableNumber('E = (ΣΔV_test − ΣΔV_ref) / ΣΔV_ref × 100, %; null without reference volume'),
  mpe: z.number().describe("Maximum permissible error, ± %: the ΔV_ref-weighted mean of the intervals' MPEs (OIML R49-1)"),
  verdict: z.enum(VERDICTS).describe('OIML G 19 decision rule (SPEC section 4)'),
  rule: z.string().describe('What decided: intervals, simple acceptance, guarded acceptance, bin <name>, zones'),
  intervals: z.number().int(),
  minIntervals: z.number().int(),
  volumeTestM3: z.number(),
  volumeRefM3: z.number(),
  uncertainty: uncertaintySchema,
  uncertaintyToMpe: z.number().describe('U / MPE; simple acceptance at ≤ 1/3'),
  dailyErrors: z.array(z.object({ date: z.string(), error: z.number(), intervals: z.number().int() })),
  temperature: temperatureSchema,
};

const zoneAccuracySchema = z.object({ ...evidenceShape, zone: z.enum(['lower', 'upper']) });
const binAccuracySchema = z.object({
  ...evidenceShape,
  bin: z.enum(TEST_FLOW_BINS),
  zone: z.enum(['lower', 'upper']),
  qFromM3h: z.number(),
  qToM3h: z.number(),
});
const resolutionSchema = z.object({ m3: z.number().nullable(), source: z.enum(['pilot file', 'inferred from data', 'unknown']) });

export const accuracySchema = z
  .object({
    convention: z.literal(ERROR_CONVENTION),
    meterId: z.string(),
    referenceId: z.string(),
    accuracyClass: z.union([z.literal(1), z.literal(2)]),
    grid: z.enum(['reference', 'test']).describe('Whose readings make the grid of paired intervals: the meter with the longer interval'),
    gridIntervalSec: z.number(),
    q1M3h: z.number().describe('Q1 = Q3 / R'),
    q2M3h: z.number().describe('Q2 = 1.6 · Q1'),
    q3M3h: z.number().describe('Q3, from the pilot file'),
    q4M3h: z.number().describe('Q4 = 1.25 · Q3'),
    minIntervals: z.number().int(),
    overall: z.object(evidenceShape).describe("Both zones; its verdict from the zones' (pass only when both pass)"),
    lower: zoneAccuracySchema.describe('Q1 ≤ q < Q2'),
    upper: zoneAccuracySchema.describe('Q2 ≤ q ≤ Q4'),
    bins: z.array(binAccuracySchema).describe('R49 test-flow bins, each with its own verdict'),
    pairedIntervals: z.number().int().describe('Rows of intervals.csv: counted and excluded'),
    excluded: z.object(Object.fromEntries(EXCLUSION_REASONS.map((reason) => [reason, z.number().int()])) as Record<(typeof EXCLUSION_REASONS)[number], z.ZodNumber>),
    resolution: z.object({ test: resolutionSchema, reference: resolutionSchema }),
    reference: z.object({
      serial: z.string().nullable(),
      certificate: z.string().nullable(),
      calibratedOn: z.string().nullable(),
      expandedUncertaintyPct: nullableNumber("The reference's expanded uncertainty (k = 2) of volume, %, from the pilot file"),
    }),
  })
  .describe(`Accuracy of a test meter against its reference (SPEC section 4, OIML R49, OIML G 19). ${ERROR_CONVENTION}`);

const nightSchema = z.object({
  night: z.string().describe('Local date the night window ends on'),
  fromMs: z.number(),
  toMs: z.number(),
  meanM3h: z.number().nullable().describe('Mean forward flow, m³/h: negative flow counts as 0; null without readings'),
  reverseM3: z.number().nullable().describe('Reverse volume of the night, m³; null with fewer than two readings in the night'),
  reverseSource: z.enum(['totalReverse', 'flow']).nullable().describe('totalReverse: the steps of the reverse totalizer; flow: the trapezoidal integral of the reverse flow over readings ≤ 3Δ apart'),
  readings: z.number().int(),
  expected: z.number().int(),
  counted: z.boolean().describe('readings ≥ half of expected'),
});

export const meterMetricsSchema = z.object({
  meterId: z.string(),
  role: z.enum(METER_ROLES),
  reference: z.string().nullable(),
  window: z.object({ fromMs: z.number(), toMs: z.number() }),
  intervalSec: z.number(),
  expected: z.number().int().describe('⌊|W| / Δ⌋'),
  received: z.number().int().describe('Distinct reading timestamps stored in W'),
  completeness: nullableNumber('min(1, received / expected), 0…1'),
  delivery: nullableNumber('distinct seq / seq produced, 0…1 (a seq that goes down starts a new run)'),
  seq: z.object({ distinct: z.number().int(), produced: z.number().int(), restarts: z.number().int() }),
  gaps: z.object({
    count: z.number().int(),
    longestMs: z.number(),
    totalMs: z.number(),
    thresholdMs: z.number().describe('3Δ: a stretch without readings longer than this is a gap'),
    longest: z.object({ fromMs: z.number(), toMs: z.number() }).nullable(),
  }),
  latencyMs: z
    .object({
      count: z.number().int().describe('Readings in W that arrived one at a time (published alone) with a received_at: the percentiles are over these'),
      p50: nullableNumber('received_at − ts, ms, nearest rank; null when count is 0'),
      p95: z.number().nullable(),
      p99: z.number().nullable(),
      max: z.number().nullable(),
      backfilled: z
        .object({
          count: z.number().int().describe('Readings in W that arrived in a backfill array'),
          share: nullableNumber('count / readings in W with a received_at (however they arrived), 0…1; null when there are none'),
          maxMs: nullableNumber('The longest received_at − ts among them, ms: how far back the meter\'s store reached; null when count is 0'),
        })
        .describe('Store-and-forward arrays, counted apart: their delay is how long the meter kept them, not how late the link was'),
      replayed: z.number().int().describe('Dead-letter replays in W, left out: their received_at is the time of the replay'),
    })
    .describe('Latency of the link (SPEC section 4): over readings that arrived one at a time; backfill arrays apart; replays left out'),
  volumeM3: z.number().describe('Forward volume in W: total(to) − total(from), each interpolated at the window edge from the readings on both sides (at most 3Δ apart), reset steps counted as 0 (SPEC section 4)'),
  totalizerResets: z.number().int(),
  flow: z.object({ count: z.number().int(), meanM3h: z.number().nullable(), minM3h: z.number().nullable(), maxM3h: z.number().nullable() }),
  minNightFlow: z.object({
    minM3h: z.number().nullable(),
    minNight: z.string().nullable(),
    minReverseM3: z.number().nullable().describe('Reverse volume of the minimum night, m³'),
    latestM3h: z.number().nullable(),
    latestNight: z.string().nullable(),
    latestReverseM3: z.number().nullable().describe('Reverse volume of the latest night, m³'),
    nights: z.number().int(),
    byNight: z.array(nightSchema),
  }),
  totalizerConsistency: z.object({
    percent: nullableNumber('(∫flow dt − volume) / volume × 100 over pairs of readings ≤ 3Δ apart without a reset'),
    integralM3: z.number(),
    volumeM3: z.number(),
    pairs: z.number().int(),
    skippedPairs: z.object({ gap: z.number().int(), reset: z.number().int() }),
  }),
  alarms: z.object(Object.fromEntries(ALARMS.map((name) => [name, z.number().int()])) as Record<(typeof ALARMS)[number], z.ZodNumber>),
  rejected: z
    .record(z.string(), z.number().int())
    .nullable()
    .describe('Rejected messages of this meter in W, by reason code; null when the API has no dead-letter store at hand (unknown, not 0)'),
  accuracy: accuracySchema.nullable().describe('Test meters only; null otherwise'),
});

const clampedSchema = z.boolean().describe('true when the `to` asked for was later than now: W ends now instead (SPEC section 4)');

export const metricsResponseSchema = z.object({
  pilotId: z.string(),
  from: z.string().describe('Start of W (ISO 8601, UTC)'),
  to: z.string().describe('End of W, exclusive (ISO 8601, UTC)'),
  clamped: clampedSchema,
  convention: z.literal(ERROR_CONVENTION).describe('The sign convention of every accuracy error'),
  meters: z.array(meterMetricsSchema),
});

export const dailyMetricsResponseSchema = z.object({
  pilotId: z.string(),
  from: z.string().describe('Start of W (ISO 8601, UTC)'),
  to: z.string().describe('End of W, exclusive (ISO 8601, UTC)'),
  clamped: clampedSchema,
  convention: z.literal(ERROR_CONVENTION),
  per: z.literal('day'),
  timezone: z.string().describe('The pilot\'s IANA zone: the days are its local days'),
  days: z.array(
    z.object({
      date: z.string().describe('The local date, YYYY-MM-DD'),
      from: z.string().describe('Start of the day, or of W on its first day (ISO 8601, UTC)'),
      to: z.string().describe('End of the day, or of W on its last day, exclusive (ISO 8601, UTC)'),
      meters: z.array(meterMetricsSchema),
    }),
  ),
});

export const errorCurveResponseSchema = z.object({
  meterId: z.string(),
  reference: z.string(),
  from: z.string(),
  to: z.string(),
  clamped: clampedSchema,
  convention: z.literal(ERROR_CONVENTION),
  bins: z.array(
    z.object({
      qFromM3h: z.number(),
      qToM3h: z.number(),
      qMidM3h: z.number().describe('Geometric mid-point'),
      zone: z.enum(['lower', 'upper']).describe('Bins never straddle Q2: each is in one zone'),
      error: nullableNumber('%, volume-weighted; null for an empty bin'),
      intervals: z.number().int(),
      mpe: z.number().describe("The MPE that applies: the reference-volume-weighted MPE of the bin's intervals (each from its temperature), or the zone's stricter MPE when empty, ± %"),
      volumeTestM3: z.number(),
      volumeRefM3: z.number(),
    }),
  ),
});
