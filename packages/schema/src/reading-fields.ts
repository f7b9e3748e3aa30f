/**
 * The one table of a reading's fields (SPEC sections 1 and 2): for each, its name on the wire,
 * its property of a normalised `Reading`, its field in InfluxDB measurement `reading`, the type
 * it is stored as and its unit. Pure data: the schema's normalise/toWireReading, the line
 * protocol, the InfluxQL SELECT lists and row mapping, and the CSV columns all derive from it,
 * so a field is added or renamed here and nowhere else.
 *
 * Order: as SPEC section 2 lists the stored fields (and the CSV prints them).
 */

/** How a field is stored (SPEC section 2): a bare float, an `i` integer, or the integer bit mask of `alarms`. */
export type StoredFieldType = 'float' | 'integer' | 'bitmask';

export interface ReadingFieldSpec {
  /** The name in the MQTT payload and the API's JSON (SPEC section 1). */
  readonly wire: string;
  /** The property of a normalised `Reading` (units in the name). */
  readonly reading: string;
  /** The field of measurement `reading` in InfluxDB (SPEC section 2). */
  readonly stored: string;
  readonly type: StoredFieldType;
  /** Its unit, as SPEC section 1 gives it; '' for counts and names. */
  readonly unit: string;
  /** Every reading carries it (SPEC section 1 "required"); `alarms` is always stored, as 0 for none. */
  readonly required: boolean;
  /** Its column in readings.csv (units in the name). */
  readonly csv: string;
}

export const READING_FIELDS = [
  { wire: 'flow', reading: 'flowM3h', stored: 'flow', type: 'float', unit: 'm³/h', required: true, csv: 'flow_m3h' },
  { wire: 'total', reading: 'totalM3', stored: 'total', type: 'float', unit: 'm³', required: true, csv: 'total_m3' },
  { wire: 'totalReverse', reading: 'totalReverseM3', stored: 'total_rev', type: 'float', unit: 'm³', required: false, csv: 'total_reverse_m3' },
  { wire: 'velocity', reading: 'velocityMps', stored: 'velocity', type: 'float', unit: 'm/s', required: false, csv: 'velocity_mps' },
  { wire: 'pressure', reading: 'pressureBar', stored: 'pressure', type: 'float', unit: 'bar', required: false, csv: 'pressure_bar' },
  { wire: 'temperature', reading: 'temperatureC', stored: 'temperature', type: 'float', unit: '°C', required: false, csv: 'temperature_c' },
  { wire: 'battery', reading: 'batteryPct', stored: 'battery', type: 'float', unit: '%', required: false, csv: 'battery_pct' },
  { wire: 'rssi', reading: 'rssiDbm', stored: 'rssi', type: 'float', unit: 'dBm', required: false, csv: 'rssi_dbm' },
  { wire: 'seq', reading: 'seq', stored: 'seq', type: 'integer', unit: '', required: true, csv: 'seq' },
  // Bit i of the mask is ALARMS[i] (reading.ts); on the wire a list of names.
  { wire: 'alarms', reading: 'alarms', stored: 'alarms', type: 'bitmask', unit: '', required: true, csv: 'alarms' },
] as const satisfies readonly ReadingFieldSpec[];

export type ReadingField = (typeof READING_FIELDS)[number];
/** The fields that are numbers on the wire and in a `Reading` (all but `alarms`). */
export type NumericReadingField = Exclude<ReadingField, { type: 'bitmask' }>;

export const NUMERIC_READING_FIELDS: readonly NumericReadingField[] = READING_FIELDS.filter((f): f is NumericReadingField => f.type !== 'bitmask');

/**
 * What the ingest stores beside a reading's own fields (SPEC section 2): when it received the
 * reading, the derived latency (InfluxQL cannot subtract a point's time from a field, so
 * the percentiles need it stored), and how it arrived (`ARRIVAL`).
 */
export const RECEIPT_FIELDS = {
  receivedAt: { stored: 'received_at', type: 'integer', unit: 'ms', csv: 'received_at' },
  latency: { stored: 'latency_ms', type: 'integer', unit: 'ms' },
  arrival: { stored: 'arrival', type: 'integer', unit: '' },
} as const;

/**
 * How a reading reached the broker, stored as the integer field `arrival` (an extension of SPEC
 * section 2, docs/ARCHITECTURE.md "Storage"). SPEC section 4 takes `latencyMs` over the readings
 * that arrived alone, counts those of a backfill array apart and leaves replays out, because
 * their received_at says when the meter forwarded its store or the operator replayed a letter,
 * not how late the link was. A point without the field (older data, other tools) arrived alone.
 */
export const ARRIVAL = {
  /** Published on its own, as a JSON object (SPEC section 1). */
  alone: 0,
  /** One element of a JSON array: the meter's store-and-forward backfill (SPEC section 1). */
  backfill: 1,
  /** Admitted again from the dead letters by `flowpilot deadletters replay`: received_at is the replay's time. */
  replay: 2,
} as const;

export type Arrival = (typeof ARRIVAL)[keyof typeof ARRIVAL];
