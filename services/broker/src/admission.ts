import { readingLine, statusLine } from '@flowpilot/influx';
import { describeRejection, parseMeterTopic, validateReadingPayload, validateStatusPayload, type MeterRegistry, type Rejection } from '@flowpilot/schema';
import type { DeadLetterInput, SpoolRecord } from '@flowpilot/store';

/**
 * What one publish becomes: InfluxDB lines for the spool and dead letters with their reasons
 * (SPEC sections 1, 2 and 6). Pure apart from the time passed in; the broker calls it before
 * the PUBACK, and `flowpilot deadletters replay` calls it again for a dead letter after the
 * operator fixed its cause (a meter added to the pilot file, a meter's clock).
 */
export interface PublishToAdmit {
  topic: string;
  payload: Uint8Array | string;
  clientId: string | null;
}

export interface AdmissionContext {
  registry: MeterRegistry;
  nowMs: number;
  retentionMs: number;
  maxPayloadBytes: number;
}

export interface Admission {
  records: SpoolRecord[];
  deadLetters: DeadLetterInput[];
}

function payloadText(payload: Uint8Array | string): string {
  return typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
}

export function admitPublish(publish: PublishToAdmit, ctx: AdmissionContext): Admission {
  const receivedAtMs = ctx.nowMs;
  const records: SpoolRecord[] = [];
  const deadLetters: DeadLetterInput[] = [];
  const topic = parseMeterTopic(publish.topic);
  if (!topic) return { records, deadLetters };

  const deadLetter = (rejection: Rejection): void => {
    deadLetters.push({
      receivedAtMs,
      topic: publish.topic,
      meterId: topic.meterId,
      clientId: publish.clientId,
      code: rejection.code,
      reason: describeRejection(rejection),
      payload: rejection.item === undefined ? payloadText(publish.payload) : JSON.stringify(rejection.item),
    });
  };

  if (topic.kind === 'readings') {
    const result = validateReadingPayload(topic.meterId, publish.payload, {
      nowMs: receivedAtMs,
      isRegistered: (id) => ctx.registry.has(id),
      retentionMs: ctx.retentionMs,
      maxPayloadBytes: ctx.maxPayloadBytes,
    });
    const site = ctx.registry.get(topic.meterId)?.site ?? '';
    for (const reading of result.readings) {
      try {
        records.push({ receivedAtMs, line: readingLine(reading, site, receivedAtMs) });
      } catch (error) {
        // A value line protocol cannot carry (the schema should have caught it): keep it as a dead letter.
        deadLetter({ code: 'ERR_INFLUX_REJECTED_LINE', reason: (error as Error).message, item: reading });
      }
    }
    for (const rejection of result.rejections) deadLetter(rejection);
  } else {
    const status = validateStatusPayload(topic.meterId, publish.payload, receivedAtMs);
    if ('code' in status) deadLetter(status);
    else records.push({ receivedAtMs, line: statusLine(status) });
  }
  return { records, deadLetters };
}
