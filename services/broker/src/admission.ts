import { readingLine, statusLine } from '@flowpilot/influx';
import { ARRIVAL, describeRejection, parseMeterTopic, validateReadingPayload, validateStatusPayload, type MeterRegistry, type MeterTopic, type Rejection } from '@flowpilot/schema';
import type { DeadLetterInput, SpoolRecord } from '@flowpilot/store';

/**
 * What one publish becomes: InfluxDB lines for the spool, each with its meter, kind and time
 * (the ingest's bookkeeping reads those, never the line), and dead letters with their reasons
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
  /**
   * A dead letter admitted again (`flowpilot deadletters replay`): its readings are stored with
   * `arrival` = replay, so SPEC section 4 leaves them out of latency (their received_at is the
   * replay's time, nowMs). The broker leaves it unset.
   */
  replay?: boolean;
}

export interface Admission {
  records: SpoolRecord[];
  deadLetters: DeadLetterInput[];
}

function payloadText(payload: Uint8Array | string): string {
  return typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
}

/** The message of anything thrown, without trusting it: a thrown value may itself throw on String(). */
function thrownMessage(error: unknown): string {
  try {
    return (error instanceof Error ? error.message : String(error)) || 'unknown error';
  } catch {
    return 'unknown error';
  }
}

/**
 * A rejected batch element's own text, so its dead letter holds just that reading; the whole
 * payload when the element cannot be serialised (JSON.stringify recurses, and throws on a
 * value nested deeper than the stack).
 */
function itemText(item: unknown, payload: Uint8Array | string): string {
  try {
    const text = JSON.stringify(item) as string | undefined;
    if (text !== undefined) return text;
  } catch {
    // fall through to the whole payload
  }
  return payloadText(payload);
}

function admit(publish: PublishToAdmit, topic: MeterTopic, ctx: AdmissionContext, admission: Admission): void {
  const receivedAtMs = ctx.nowMs;
  const { records } = admission;
  const deadLetter = (rejection: Rejection): void => {
    admission.deadLetters.push({
      receivedAtMs,
      topic: publish.topic,
      meterId: topic.meterId,
      clientId: publish.clientId,
      code: rejection.code,
      reason: describeRejection(rejection),
      payload: rejection.item === undefined ? payloadText(publish.payload) : itemText(rejection.item, publish.payload),
    });
  };
  const isRegistered = (id: string): boolean => ctx.registry.has(id);

  if (topic.kind === 'readings') {
    const result = validateReadingPayload(topic.meterId, publish.payload, {
      nowMs: receivedAtMs,
      isRegistered,
      retentionMs: ctx.retentionMs,
      maxPayloadBytes: ctx.maxPayloadBytes,
    });
    const site = ctx.registry.get(topic.meterId)?.site ?? '';
    // How the readings came (SPEC section 4 latency): alone, in a backfill array, or replayed.
    const arrival = ctx.replay ? ARRIVAL.replay : result.batch ? ARRIVAL.backfill : ARRIVAL.alone;
    for (const reading of result.readings) {
      try {
        records.push({ receivedAtMs, meterId: topic.meterId, kind: 'reading', tsMs: reading.tsMs, line: readingLine(reading, site, receivedAtMs, arrival) });
      } catch (error) {
        // A value line protocol cannot carry (the schema should have caught it): keep it as a dead letter.
        deadLetter({ code: 'ERR_INFLUX_REJECTED_LINE', reason: thrownMessage(error), item: reading });
      }
    }
    for (const rejection of result.rejections) deadLetter(rejection);
  } else {
    const status = validateStatusPayload(topic.meterId, publish.payload, { nowMs: receivedAtMs, retentionMs: ctx.retentionMs, isRegistered });
    if ('code' in status) deadLetter(status);
    else {
      try {
        records.push({ receivedAtMs, meterId: topic.meterId, kind: 'status', tsMs: status.tsMs, line: statusLine(status) });
      } catch (error) {
        deadLetter({ code: 'ERR_INFLUX_REJECTED_LINE', reason: thrownMessage(error) });
      }
    }
  }
}

/**
 * Never throws (SPEC section 8: a failure inside a hook is a refusal or a dead letter, never a
 * crash). A throw nobody foresaw drops whatever the publish had produced so far and keeps the
 * whole payload as one dead letter, which `flowpilot deadletters replay` can admit again once
 * the cause is fixed; the PUBACK still goes out, so the meter does not resend it forever.
 */
export function admitPublish(publish: PublishToAdmit, ctx: AdmissionContext): Admission {
  let topic: MeterTopic | null = null;
  try {
    topic = parseMeterTopic(publish.topic);
    if (!topic) return { records: [], deadLetters: [] };
    const admission: Admission = { records: [], deadLetters: [] };
    admit(publish, topic, ctx, admission);
    return admission;
  } catch (error) {
    let payload = '';
    try {
      payload = payloadText(publish.payload);
    } catch {
      // a payload that cannot even be read: the dead letter still says what happened
    }
    const rejection: Rejection = { code: 'ERR_READING_SCHEMA', reason: `could not be validated: ${thrownMessage(error)}` };
    return {
      records: [],
      deadLetters: [
        {
          receivedAtMs: ctx.nowMs,
          topic: String(publish.topic),
          meterId: topic?.meterId ?? null,
          clientId: publish.clientId,
          code: rejection.code,
          reason: describeRejection(rejection),
          payload,
        },
      ],
    };
  }
}
