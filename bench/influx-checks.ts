import { createInfluxClient, quoteIdentifier, quoteString, type InfluxClient } from '@flowpilot/influx';
import { pollUntil } from './harness.ts';
import type { LoadClient } from './load-clients.ts';

/**
 * What the bench asks InfluxDB: how many readings it holds, and the (meterId, seq) check of
 * SPEC section 6: every pair a publisher got a PUBACK for must be stored.
 */

/** A client for the bench's own queries: long timeouts, since a check reads a million points. */
export function benchInflux(url: string, database: string): InfluxClient {
  return createInfluxClient({ url, database, timeoutMs: 180_000 });
}

export async function countReadings(influx: InfluxClient): Promise<number> {
  const series = await influx.query('SELECT count(seq) FROM reading');
  const value = series[0]?.values[0]?.[1];
  return typeof value === 'number' ? value : 0;
}

/** Polls the count until it reaches `expected`; returns when it did (epoch ms) or the last count. */
export async function waitForReadings(influx: InfluxClient, expected: number, intervalMs: number, timeoutMs: number): Promise<{ count: number; reachedAtMs: number | null }> {
  const { value, finished } = await pollUntil(() => countReadings(influx).catch(() => -1), (count) => count >= expected, intervalMs, timeoutMs);
  return { count: value, reachedAtMs: finished ? Date.now() : null };
}

export interface PairCheck {
  /** Acknowledged pairs checked. */
  checked: number;
  /** Acknowledged pairs missing from InfluxDB: must be 0. */
  lost: number;
  /** A few missing pairs, for the report. */
  examples: string[];
  /** Points InfluxDB holds for these meters. */
  stored: number;
}

/** The set check of SPEC section 6, meter by meter, 50 meters per query. */
export async function checkPairs(influx: InfluxClient, clients: readonly LoadClient[]): Promise<PairCheck> {
  const result: PairCheck = { checked: 0, lost: 0, examples: [], stored: 0 };
  for (let i = 0; i < clients.length; i += 50) {
    const slice = clients.slice(i, i + 50);
    const where = slice.map((c) => `${quoteIdentifier('meter')} = ${quoteString(c.meterId)}`).join(' OR ');
    const series = await influx.query(`SELECT seq FROM reading WHERE ${where} GROUP BY meter`);
    const stored = new Map<string, Set<number>>();
    for (const s of series) {
      const column = s.columns.indexOf('seq');
      const seqs = new Set<number>();
      for (const row of s.values) seqs.add(row[column] as number);
      result.stored += s.values.length;
      stored.set(s.tags?.meter ?? '', seqs);
    }
    for (const c of slice) {
      const seqs = stored.get(c.meterId);
      for (const seq of c.ackedSeqs) {
        result.checked += 1;
        if (!seqs?.has(seq)) {
          result.lost += 1;
          if (result.examples.length < 5) result.examples.push(`${c.meterId}#${seq}`);
        }
      }
    }
  }
  return result;
}

export async function dropDatabase(influx: InfluxClient, database: string): Promise<void> {
  await influx.query(`DROP DATABASE ${quoteIdentifier(database)}`).catch(() => undefined);
}
