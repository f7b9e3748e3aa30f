/**
 * What a water meter can plausibly report, per wire field (SPEC section 1, "Plausibility
 * bounds"). A finite number beyond these is a unit or scaling bug, a sensor fault or a hostile
 * client, and storing it would poison every sum and average of the pilot's metrics, so it is
 * rejected with ERR_OUT_OF_RANGE. Both ends are inclusive.
 *
 * Which code a bad number gets, consistently: the field table of SPEC section 1 is the schema,
 * so a value of the wrong type or sign there (seq not an integer ≥ 0, total or totalReverse
 * < 0, battery outside 0–100) is ERR_READING_SCHEMA, checked first; a value the table allows
 * but the plausibility bounds of the same section do not is ERR_OUT_OF_RANGE. The lower ends of
 * seq, total, totalReverse and battery below repeat the field table, so that this one constant
 * states the whole accepted range of every field.
 */
export const PLAUSIBILITY_BOUNDS = Object.freeze({
  flow: Object.freeze({ min: -1e6, max: 1e6, unit: 'm³/h' }),
  total: Object.freeze({ min: 0, max: 1e12, unit: 'm³' }),
  totalReverse: Object.freeze({ min: 0, max: 1e12, unit: 'm³' }),
  velocity: Object.freeze({ min: -100, max: 100, unit: 'm/s' }),
  pressure: Object.freeze({ min: -1, max: 1000, unit: 'bar' }),
  temperature: Object.freeze({ min: -50, max: 150, unit: '°C' }),
  battery: Object.freeze({ min: 0, max: 100, unit: '%' }),
  rssi: Object.freeze({ min: -200, max: 0, unit: 'dBm' }),
  // An integer both JavaScript and InfluxDB's int64 hold exactly (SPEC section 2: seq is an integer field).
  seq: Object.freeze({ min: 0, max: Number.MAX_SAFE_INTEGER, unit: '' }),
});

export type PlausibleField = keyof typeof PLAUSIBILITY_BOUNDS;

export interface PlausibilityBound {
  readonly min: number;
  readonly max: number;
  readonly unit: string;
}

/**
 * The first field of a wire reading outside its bound, described for an operator (field, value,
 * bound), or null. Fields that are absent or not numbers are left to the schema.
 */
export function findImplausible(wire: Readonly<Partial<Record<PlausibleField, unknown>>>): string | null {
  for (const field of Object.keys(PLAUSIBILITY_BOUNDS) as PlausibleField[]) {
    const value = wire[field];
    if (typeof value !== 'number') continue;
    const bound: PlausibilityBound = PLAUSIBILITY_BOUNDS[field];
    const unit = bound.unit ? ` ${bound.unit}` : '';
    if (value > bound.max) return `${field} ${value}${unit} is above the plausible maximum ${bound.max}${unit}`;
    if (value < bound.min) return `${field} ${value}${unit} is below the plausible minimum ${bound.min}${unit}`;
  }
  return null;
}
