import type { InfluxClient } from './client.ts';
import { InfluxError } from './errors.ts';

export interface IsolatedWriteResult {
  /** Lines InfluxDB confirmed (204). */
  written: number;
  /** Lines InfluxDB refuses on their own, each with InfluxDB's reason. */
  rejected: { line: string; reason: string }[];
}

/**
 * Writes a batch so that one bad line never costs the good ones (the ingest dead-letters only
 * what InfluxDB refuses, SPEC section 6). On 'too-large' the batch is halved; on 'bad-lines' it is
 * bisected down to the single lines refused. 'unavailable', 'auth' and 'database' are thrown: the
 * caller retries the whole batch with backoff.
 *
 * Re-sending lines is safe: InfluxDB 1.x writes the good lines of a partial write, and writing the
 * same series and time again overwrites the point with the same values (SPEC section 2).
 * Cost: about 2·log2(n) extra requests per refused line; a clean batch is one request.
 */
export async function writeIsolating(client: InfluxClient, lines: readonly string[]): Promise<IsolatedWriteResult> {
  const result: IsolatedWriteResult = { written: 0, rejected: [] };

  async function writePart(part: readonly string[]): Promise<void> {
    if (part.length === 0) return;
    try {
      await client.write(part);
      result.written += part.length;
    } catch (error) {
      if (!(error instanceof InfluxError) || (error.kind !== 'bad-lines' && error.kind !== 'too-large')) throw error;
      if (part.length === 1) {
        result.rejected.push({ line: part[0] as string, reason: error.detail });
        return;
      }
      // In order, one half after the other: the halves of a batch stay in the order they came.
      const middle = Math.ceil(part.length / 2);
      await writePart(part.slice(0, middle));
      await writePart(part.slice(middle));
    }
  }

  await writePart(lines);
  return result;
}
