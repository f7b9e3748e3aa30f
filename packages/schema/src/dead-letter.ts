/**
 * A dead letter (SPEC section 1: a rejected message is counted by reason and kept): what the
 * broker hands the durable store, and what the store, `flowpilot deadletters` and the admin's
 * API route give back. Data only; the store owns where it is kept.
 */
export interface DeadLetterInput {
  receivedAtMs: number;
  topic: string;
  meterId: string | null;
  clientId: string | null;
  code: string;
  reason: string;
  payload: string;
}

export interface DeadLetter extends DeadLetterInput {
  id: number;
  replayedAtMs: number | null;
  /** The payload's size as received, in UTF-8 bytes. */
  payloadBytes: number;
  /** `payload` holds only its first bytes, up to the store's limit (cut on a character boundary). */
  truncated: boolean;
}
