/** MQTT topics of wire format v1 (SPEC section 1). */
export const METER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export type MeterTopicKind = 'readings' | 'status';

export interface MeterTopic {
  meterId: string;
  kind: MeterTopicKind;
}

export const READINGS_SUBSCRIPTION = 'meters/+/readings';
export const STATUS_SUBSCRIPTION = 'meters/+/status';

export function isValidMeterId(id: string): boolean {
  return METER_ID_PATTERN.test(id);
}

export function readingsTopic(meterId: string): string {
  return `meters/${meterId}/readings`;
}

export function statusTopic(meterId: string): string {
  return `meters/${meterId}/status`;
}

/** `meters/{id}/readings` or `meters/{id}/status` with a valid id, else null. */
export function parseMeterTopic(topic: string): MeterTopic | null {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== 'meters') return null;
  const [, meterId, kind] = parts as [string, string, string];
  if (!isValidMeterId(meterId)) return null;
  if (kind !== 'readings' && kind !== 'status') return null;
  return { meterId, kind };
}
