import type { Arrival, MeterStatus, Reading } from '@flowpilot/schema';
import { alarmMask, ARRIVAL, READING_FIELDS, RECEIPT_FIELDS } from '@flowpilot/schema';
import { InfluxError } from './errors.ts';
import { METER_TAG, ONLINE_FIELD, READING_MEASUREMENT, SITE_TAG, STATUS_MEASUREMENT } from './storage.ts';

/*
 * Line protocol for the two measurements of SPEC section 2. In line protocol a bare number is a
 * float and `42i` an integer; the first write of a field fixes its type for the shard, so every
 * float field is always written bare and every integer field always with `i`, or later points of
 * the same field would be refused as a type conflict.
 *
 * Backslashes: InfluxDB 1.x keeps `\\` in a tag value literally (it only unescapes `\,` `\=` `\ `;
 * checked against 1.6.7) and refuses a tag value that ends in `\`, while 3.x reads `\\` as one
 * backslash. No escaping means the same on every server, so a backslash in a measurement or tag is
 * refused, like a newline (which would end the line).
 */

// Cheap tests before any work: meter ids (SPEC section 1) and most site names need no escaping.
const TAG_SPECIAL = /[,= ]/;
const TAG_SPECIAL_ALL = /[,= ]/g;
const MEASUREMENT_SPECIAL = /[, ]/;
const MEASUREMENT_SPECIAL_ALL = /[, ]/g;
const FORBIDDEN = /[\n\r\\]/;

function refuse(what: string, value: string): never {
  const found = /[\n\r]/.test(value) ? 'a line break' : 'a backslash';
  throw new InfluxError('bad-lines', `${what} ${JSON.stringify(value)} contains ${found}, which InfluxDB line protocol cannot carry; rename it`);
}

/** Escapes a tag key or value: commas, equals signs and spaces (line protocol spec). */
export function escapeTag(value: string, what = 'tag value'): string {
  if (value.length === 0) throw new InfluxError('bad-lines', `${what} is empty; InfluxDB refuses an empty tag value`);
  if (FORBIDDEN.test(value)) refuse(what, value);
  return TAG_SPECIAL.test(value) ? value.replace(TAG_SPECIAL_ALL, '\\$&') : value;
}

/** Escapes a measurement name: commas and spaces (line protocol spec). */
export function escapeMeasurement(name: string): string {
  if (name.length === 0) throw new InfluxError('bad-lines', 'measurement name is empty');
  if (FORBIDDEN.test(name)) refuse('measurement', name);
  return MEASUREMENT_SPECIAL.test(name) ? name.replace(MEASUREMENT_SPECIAL_ALL, '\\$&') : name;
}

function float(field: string, value: number): string {
  // Line protocol has no NaN or infinity; the schema rejects them at the broker (SPEC section 1),
  // so reaching here is a bug upstream, refused as a bad line rather than written as garbage.
  if (!Number.isFinite(value)) throw new InfluxError('bad-lines', `field ${field} is ${value}, not a finite number`);
  // String(n) gives `42`, `1.5e-7`, `1e+21`: all floats in line protocol (checked against 1.6.7).
  return String(value);
}

function integer(field: string, value: number): string {
  if (!Number.isSafeInteger(value)) throw new InfluxError('bad-lines', `field ${field} is ${value}, not an integer`);
  return `${value}i`;
}

function timestampMs(value: number): string {
  if (!Number.isSafeInteger(value)) throw new InfluxError('bad-lines', `timestamp ${value} is not an integer number of milliseconds`);
  return String(value);
}

const RECEIVED_AT = RECEIPT_FIELDS.receivedAt.stored;
const LATENCY = RECEIPT_FIELDS.latency.stored;
const ARRIVED = RECEIPT_FIELDS.arrival.stored;

/**
 * One reading as a point of measurement `reading` (SPEC section 2), for a write with precision=ms:
 * the fields of the schema's field table, in its order, each with the type it is stored as.
 * Hot path (once per reading at thousands per second): plain string concatenation, optional
 * fields omitted when absent. Tags in key order (meter < site), as InfluxDB sorts them anyway.
 * `arrival` says how the reading came (ARRIVAL in @flowpilot/schema; SPEC section 4 latency).
 */
export function readingLine(reading: Reading, site: string, receivedAtMs: number, arrival: Arrival = ARRIVAL.alone): string {
  let line = `${READING_MEASUREMENT},${METER_TAG}=${escapeTag(reading.meterId, 'meter id')},${SITE_TAG}=${escapeTag(site, 'site')} `;
  let separator = '';
  for (const field of READING_FIELDS) {
    let text: string;
    if (field.type === 'bitmask') {
      // alarms is always written (0 = none), so "readings carrying alarm X" is a plain bit test (SPEC section 4).
      text = integer(field.stored, alarmMask(reading.alarms));
    } else {
      const value = reading[field.reading];
      if (value === undefined) continue;
      text = field.type === 'float' ? float(field.stored, value) : integer(field.stored, value);
    }
    line += `${separator}${field.stored}=${text}`;
    separator = ',';
  }
  // latency_ms (received_at − ts) is derived, beside SPEC section 2's fields: InfluxQL cannot subtract
  // a point's time from a field, and with it the latency percentiles are computed inside InfluxDB.
  // arrival is written even when 0: a point written again (a redelivery, a replay) merges its fields
  // into the stored one, so received_at and arrival must be overwritten together or not at all.
  return `${line},${RECEIVED_AT}=${integer(RECEIVED_AT, receivedAtMs)},${LATENCY}=${integer(LATENCY, receivedAtMs - reading.tsMs)},${ARRIVED}=${integer(ARRIVED, arrival)} ${timestampMs(reading.tsMs)}`;
}

/** A meter's online state as a point of measurement `status` (SPEC section 2). */
export function statusLine(status: MeterStatus): string {
  return `${STATUS_MEASUREMENT},${METER_TAG}=${escapeTag(status.meterId, 'meter id')} ${ONLINE_FIELD}=${status.online ? 'true' : 'false'} ${timestampMs(status.tsMs)}`;
}
