import { admitPublish, type AdmissionContext } from '@flowpilot/broker';
import type { DurableStore } from '@flowpilot/store';

/**
 * `flowpilot deadletters replay`: validates dead letters again against the pilot as it is now
 * (say, after a meter that was unknown was added to the pilot file) and moves the ones that
 * pass into the spool, from where the ingest writes them; each replayed letter is marked so it
 * is never replayed twice. A letter that still fails stays as it was; so does one whose payload
 * was kept only in part (over deadLetterMaxPayloadBytes: it can no longer be validated), and one
 * whose meter the store refuses now (the store full, or the meter at its share: SPEC section 8).
 */
export interface ReplayOutcome {
  replayed: number;
  records: number;
  stillRejected: Record<string, number>;
  /** Letters left as they were because only the start of their payload was kept. */
  truncated: number;
  /** Letters left as they were because the store refused their meter (replay them later). */
  refusedByStore: number;
}

export async function replayDeadLetters(
  store: DurableStore,
  ctx: AdmissionContext,
  filter: { code?: string; meterId?: string; limit: number },
): Promise<ReplayOutcome> {
  const outcome: ReplayOutcome = { replayed: 0, records: 0, stillRejected: {}, truncated: 0, refusedByStore: 0 };
  let afterId = 0;
  let seen = 0;
  while (seen < filter.limit) {
    const page = store.listDeadLetters({
      afterId,
      limit: Math.min(500, filter.limit - seen),
      includeReplayed: false,
      ...(filter.code ? { code: filter.code } : {}),
      ...(filter.meterId ? { meterId: filter.meterId } : {}),
    });
    if (page.length === 0) break;
    afterId = page[page.length - 1]!.id;
    seen += page.length;
    for (const letter of page) {
      // Lines InfluxDB refused are not MQTT messages; they need a fix in InfluxDB, not a replay.
      if (!letter.topic.startsWith('meters/')) continue;
      if (letter.truncated) {
        outcome.truncated += 1;
        continue;
      }
      // Stored as replayed (SPEC section 4: replays are left out of latency; received_at is now).
      const admission = admitPublish({ topic: letter.topic, payload: letter.payload, clientId: letter.clientId }, { ...ctx, replay: true });
      if (admission.deadLetters.length > 0 || admission.records.length === 0) {
        const code = admission.deadLetters[0]?.code ?? letter.code;
        outcome.stillRejected[code] = (outcome.stillRejected[code] ?? 0) + 1;
        continue;
      }
      // The broker would withhold the PUBACK here; a replay leaves the letter for later.
      if (admission.records.some((record) => store.refusal(record.meterId) !== null)) {
        outcome.refusedByStore += 1;
        continue;
      }
      await store.append(admission.records);
      store.markReplayed([letter.id], ctx.nowMs);
      outcome.replayed += 1;
      outcome.records += admission.records.length;
    }
  }
  return outcome;
}
