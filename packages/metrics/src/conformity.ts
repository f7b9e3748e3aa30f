/**
 * The expanded uncertainty of a measured error and the conformity decision that uses it (SPEC
 * section 4, after OIML G 19:2017 "The role of measurement uncertainty in conformity assessment
 * decisions in legal metrology" and JCGM 106:2012). Pure arithmetic on sums the accuracy module
 * has already made.
 */

export type Verdict = 'pass' | 'fail' | 'inconclusive' | 'insufficient';

/**
 * Which rule decided a verdict:
 * - `intervals`: fewer intervals than the minimum (30): `insufficient`;
 * - `simple acceptance`: U ≤ MPE/3 (G 19's test uncertainty ratio of at least 3), |E| ≤ MPE;
 * - `guarded acceptance`: U > MPE/3, the error with its uncertainty against the limit;
 * - `bin <name>`: a zone's own rule was overridden by one of its test-flow bins;
 * - `zones`: the overall verdict, from the zones'.
 */
export type DecisionRule = 'intervals' | 'simple acceptance' | 'guarded acceptance' | `bin ${string}` | 'zones';

/** |E| against a limit is judged with this slack (percentage points), so float noise in an error exactly at the limit does not flip it. */
export const VERDICT_TOLERANCE_PCT = 1e-9;

export interface Decision {
  verdict: Verdict;
  rule: DecisionRule;
}

/**
 * SPEC section 4 decision rule. Edge cases: fewer than `minIntervals` intervals, or no reference
 * volume (error null): `insufficient`, whatever the error. U exactly MPE/3 is simple acceptance.
 * Guarded: |E| + U exactly MPE passes; |E| − U exactly MPE is not a fail (inconclusive): only an
 * error that exceeds the limit by more than its uncertainty is a fail.
 */
export function decide(errorPct: number | null, expandedUncertaintyPct: number, mpePct: number, intervals: number, minIntervals: number): Decision {
  if (errorPct === null || intervals < minIntervals) return { verdict: 'insufficient', rule: 'intervals' };
  const e = Math.abs(errorPct);
  const slack = VERDICT_TOLERANCE_PCT;
  if (expandedUncertaintyPct <= mpePct / 3 + slack) return { verdict: e <= mpePct + slack ? 'pass' : 'fail', rule: 'simple acceptance' };
  if (e + expandedUncertaintyPct <= mpePct + slack) return { verdict: 'pass', rule: 'guarded acceptance' };
  if (e - expandedUncertaintyPct > mpePct + slack) return { verdict: 'fail', rule: 'guarded acceptance' };
  return { verdict: 'inconclusive', rule: 'guarded acceptance' };
}

/**
 * A zone's verdict with its test-flow bins (SPEC section 4): bins that are `insufficient` do not
 * count; a failing bin fails its zone (the first failing bin names the rule); an `inconclusive`
 * bin makes a passing zone `inconclusive`. An insufficient zone stays insufficient (its bins
 * have fewer intervals still).
 */
export function decideWithBins(zone: Decision, bins: readonly { bin: string; verdict: Verdict }[]): Decision {
  if (zone.verdict === 'insufficient') return zone;
  const failing = bins.find((b) => b.verdict === 'fail');
  if (failing) return zone.verdict === 'fail' ? zone : { verdict: 'fail', rule: `bin ${failing.bin}` };
  const unsure = bins.find((b) => b.verdict === 'inconclusive');
  if (unsure && zone.verdict === 'pass') return { verdict: 'inconclusive', rule: `bin ${unsure.bin}` };
  return zone;
}

/**
 * The overall verdict over the zones: `fail` when a zone fails; else `insufficient` when a zone
 * cannot be judged (a meter is not signed off on one zone); else `inconclusive` when one is;
 * `pass` only when both zones pass.
 */
export function decideOverall(zones: readonly Verdict[]): Decision {
  for (const verdict of ['fail', 'insufficient', 'inconclusive'] as const) if (zones.includes(verdict)) return { verdict, rule: 'zones' };
  return { verdict: 'pass', rule: 'zones' };
}

export interface UncertaintyInputs {
  /** The reference's expanded uncertainty (k = 2) of volume from the pilot file, %; null when not given. */
  referenceExpandedPct: number | null;
  /** Register resolutions, m³; null when unknown. */
  resolutionRefM3: number | null;
  resolutionTestM3: number | null;
  /** Contiguous stretches of the group's intervals (each has two end readings per meter). */
  stretches: number;
  /** Σ ΔV_ref of the group, m³. */
  volumeRefM3: number;
  /** The group's error per local day (days with reference volume), %. */
  dailyErrorsPct: readonly number[];
}

export interface UncertaintyBudget {
  /** U = 2·√(u_ref² + u_res² + u_rep²), percentage points (k = 2). */
  expandedPct: number;
  /** Standard uncertainties (k = 1), percentage points. */
  referencePct: number;
  resolutionPct: number;
  repeatabilityPct: number;
  stretches: number;
  days: number;
  /** Standard deviation of the daily errors, pp; null with fewer than 2 days. */
  dailyErrorStdPct: number | null;
  /** What was assumed, in words, for the report (e.g. "reference uncertainty not given: 0"). */
  notes: string[];
}

/** Days of daily errors needed before their scatter enters U (SPEC section 4). */
export const MIN_REPEATABILITY_DAYS = 3;

/** Sample standard deviation (n − 1); null with fewer than 2 values. */
export function sampleStd(values: readonly number[]): number | null {
  const n = values.length;
  if (n < 2) return null;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  return Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
}

/**
 * SPEC section 4 expanded uncertainty of a zone's or bin's error:
 * - u_ref = half the reference's expanded uncertainty (k = 2 → k = 1); 0 and said so when the
 *   pilot file does not give it.
 * - u_res: each contiguous stretch is read at two end readings per meter, each uniform within
 *   ± resolution/2 (variance r²/12), so u_res = 100·√(n_stretches·(r_ref² + r_test²)/6)/ΣΔV_ref.
 *   An unknown resolution counts as 0 and is said so; no volume gives 0 (the verdict is then
 *   insufficient anyway).
 * - u_rep = standard deviation of the daily errors / √days, with at least 3 days; 0 and said so
 *   with fewer.
 */
export function expandedUncertainty(inputs: UncertaintyInputs): UncertaintyBudget {
  const notes: string[] = [];
  const referencePct = inputs.referenceExpandedPct === null ? 0 : inputs.referenceExpandedPct / 2;
  if (inputs.referenceExpandedPct === null) notes.push("reference meter's calibration uncertainty not given in the pilot file: counted as 0");
  const rRef = inputs.resolutionRefM3 ?? 0;
  const rTest = inputs.resolutionTestM3 ?? 0;
  if (inputs.resolutionRefM3 === null) notes.push("reference register resolution unknown: counted as 0");
  if (inputs.resolutionTestM3 === null) notes.push('test register resolution unknown: counted as 0');
  const resolutionPct = inputs.volumeRefM3 > 0 ? (100 * Math.sqrt((inputs.stretches * (rRef * rRef + rTest * rTest)) / 6)) / inputs.volumeRefM3 : 0;
  const days = inputs.dailyErrorsPct.length;
  const dailyErrorStdPct = sampleStd(inputs.dailyErrorsPct);
  let repeatabilityPct = 0;
  if (days >= MIN_REPEATABILITY_DAYS && dailyErrorStdPct !== null) repeatabilityPct = dailyErrorStdPct / Math.sqrt(days);
  else notes.push(`repeatability needs ${MIN_REPEATABILITY_DAYS} days of data, ${days} ${days === 1 ? 'day' : 'days'} here: counted as 0`);
  const expandedPct = 2 * Math.sqrt(referencePct ** 2 + resolutionPct ** 2 + repeatabilityPct ** 2);
  return { expandedPct, referencePct, resolutionPct, repeatabilityPct, stretches: inputs.stretches, days, dailyErrorStdPct, notes };
}
