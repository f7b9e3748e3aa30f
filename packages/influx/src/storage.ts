import { READING_FIELDS, RECEIPT_FIELDS } from '@flowpilot/schema';
import type { ReadingField } from '@flowpilot/schema';

/**
 * The storage schema of SPEC section 2: the two measurements FlowPilot writes and their tags.
 * The fields of `reading` come from the one field table of @flowpilot/schema (reading-fields.ts);
 * line-protocol.ts writes them and readings-repository.ts reads them, and nothing else names them.
 */

export const READING_MEASUREMENT = 'reading';
export const STATUS_MEASUREMENT = 'status';
export const METER_TAG = 'meter';
export const SITE_TAG = 'site';
/** The one field of measurement `status` (boolean). */
export const ONLINE_FIELD = 'online';

/** Every field of `reading` a query reads back: the reading's own and `received_at` (latency_ms is only for InfluxQL's own aggregates). */
export const STORED_READING_FIELDS: readonly string[] = [...READING_FIELDS.map((f) => f.stored), RECEIPT_FIELDS.receivedAt.stored];

/** The stored field of each `Reading` property, e.g. STORED_FIELD.flowM3h === 'flow' (from the field table). */
export const STORED_FIELD = Object.fromEntries(READING_FIELDS.map((f) => [f.reading, f.stored])) as { readonly [F in ReadingField as F['reading']]: F['stored'] };
