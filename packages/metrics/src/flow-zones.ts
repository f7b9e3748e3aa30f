/**
 * The flow rates, zones, test-flow bins and maximum permissible errors of OIML R49-1:2013 (and
 * ISO 4064-1, which states the same requirements), as SPEC section 4 applies them. Pure
 * classification: no readings here.
 */

export type AccuracyClass = 1 | 2;
export type FlowZone = 'lower' | 'upper';

export interface FlowRates {
  q1M3h: number;
  q2M3h: number;
  q3M3h: number;
  q4M3h: number;
}

/** R49-1 3.1 / 4.1: Q1 = Q3 / R, Q2 = 1.6 · Q1 (Q2/Q1 = 1.6), Q4 = 1.25 · Q3 (Q4/Q3 = 1.25). */
export function flowRates(q3M3h: number, r: number): FlowRates {
  const q1M3h = q3M3h / r;
  return { q1M3h, q2M3h: 1.6 * q1M3h, q3M3h, q4M3h: 1.25 * q3M3h };
}

/**
 * Water temperature above which the upper zone's wider MPE applies (R49-1 4.2.2/4.2.3: the ±2 %
 * (class 2) and ±1 % (class 1) limits hold for water up to 30 °C).
 */
export const WARM_WATER_ABOVE_C = 30;

/**
 * R49-1 4.2 maximum permissible error, ± %: class 2: lower zone (Q1 ≤ Q < Q2) 5 %, upper zone
 * (Q2 ≤ Q ≤ Q4) 2 % for water ≤ 30 °C, 3 % above; class 1: lower 3 %, upper 1 % / 2 %.
 * Edge cases: exactly 30 °C is the cold limit ("up to 30 °C"); an unknown temperature (null or
 * NaN) takes the cold limit, the stricter one, so a meter never passes on an assumed warm water.
 */
export function maxPermissibleErrorPct(accuracyClass: AccuracyClass, zone: FlowZone, waterTemperatureC: number | null): number {
  const warm = waterTemperatureC !== null && waterTemperatureC > WARM_WATER_ABOVE_C;
  if (accuracyClass === 1) return zone === 'lower' ? 3 : warm ? 2 : 1;
  return zone === 'lower' ? 5 : warm ? 3 : 2;
}

/**
 * Where one flow value falls: BELOW_Q1 (q < Q1, no flow included), LOWER (Q1 ≤ q < Q2), UPPER
 * (Q2 ≤ q ≤ Q4), ABOVE_Q4 (q > Q4). Q2 itself is upper (R49-1: the upper zone is Q2 ≤ Q ≤ Q4);
 * Q4 itself is upper. NaN is BELOW_Q1 here: callers exclude an unknown flow before asking.
 */
export const BELOW_Q1 = -1;
export const LOWER = 0;
export const UPPER = 1;
export const ABOVE_Q4 = 2;
export type FlowClass = typeof BELOW_Q1 | typeof LOWER | typeof UPPER | typeof ABOVE_Q4;

export function classifyFlow(qM3h: number, rates: FlowRates): FlowClass {
  if (!(qM3h >= rates.q1M3h)) return BELOW_Q1;
  if (qM3h < rates.q2M3h) return LOWER;
  if (qM3h <= rates.q4M3h) return UPPER;
  return ABOVE_Q4;
}

/**
 * The test-flow bins of SPEC section 4, after the test points of R49-2 7.4.4 (Q1 to 1.1 Q1,
 * Q2 to 1.1 Q2, 0.33 to 0.37 (Q2 + Q3), 0.67 to 0.74 (Q2 + Q3), 0.9 Q3 to Q3, 0.95 Q4 to Q4): a
 * pilot cannot hold a flow at a test point, so each bin takes the flows around one test point.
 * Edges: lower [Q1, Q2); upper-1 [Q2, 0.35(Q2+Q3)); upper-2 [0.35(Q2+Q3), 0.7(Q2+Q3));
 * upper-3 [0.7(Q2+Q3), Q3]; upper-4 (Q3, Q4]. Q3 itself is upper-3.
 */
export const TEST_FLOW_BINS = ['lower', 'upper-1', 'upper-2', 'upper-3', 'upper-4'] as const;
export type TestFlowBin = (typeof TEST_FLOW_BINS)[number];

export interface BinEdges {
  bin: TestFlowBin;
  zone: FlowZone;
  qFromM3h: number;
  qToM3h: number;
}

export function testFlowBins(rates: FlowRates): BinEdges[] {
  const { q1M3h, q2M3h, q3M3h, q4M3h } = rates;
  const a = 0.35 * (q2M3h + q3M3h);
  const b = 0.7 * (q2M3h + q3M3h);
  return [
    { bin: 'lower', zone: 'lower', qFromM3h: q1M3h, qToM3h: q2M3h },
    { bin: 'upper-1', zone: 'upper', qFromM3h: q2M3h, qToM3h: a },
    { bin: 'upper-2', zone: 'upper', qFromM3h: a, qToM3h: b },
    { bin: 'upper-3', zone: 'upper', qFromM3h: b, qToM3h: q3M3h },
    { bin: 'upper-4', zone: 'upper', qFromM3h: q3M3h, qToM3h: q4M3h },
  ];
}

/**
 * Index into TEST_FLOW_BINS of a flow already known to be in a zone (LOWER or UPPER), else -1.
 * 0.35(Q2+Q3) > Q2 holds for every R > 3 (R49 ratios start at 40); were it not so, upper-1 would
 * simply stay empty.
 */
export function binOfFlow(qM3h: number, rates: FlowRates): number {
  const { q1M3h, q2M3h, q3M3h, q4M3h } = rates;
  if (!(qM3h >= q1M3h) || qM3h > q4M3h) return -1;
  if (qM3h < q2M3h) return 0;
  if (qM3h < 0.35 * (q2M3h + q3M3h)) return 1;
  if (qM3h < 0.7 * (q2M3h + q3M3h)) return 2;
  if (qM3h <= q3M3h) return 3;
  return 4;
}
