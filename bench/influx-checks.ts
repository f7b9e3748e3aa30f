import { createInfluxClient, createReadingsRepository, dropDatabase as dropInfluxDatabase, type InfluxClient, type ReadingsRepository } from '@flowpilot/influx';
import { pollUntil } from '../test/helpers/wait.ts';
import type { LoadClient } from './load-clients.ts';

/**
 * What the bench asks InfluxDB, through the readings repository of packages/influx (STYLE habit
 * 12: it owns every query on measurement `reading`): how many readings it holds, and the
 * (meterId, seq) check of SPEC section 6: every pair a publisher got a PUBACK for must be stored.
 */

/** A client for the bench's own queries: long timeouts, since a check reads a million points. */
export function benchInflux(url: string, database: string): InfluxClient {
  return createInfluxClient({ url, database, timeoutMs: 180_000 });
}

export function countReadings(influx: InfluxClient): Promise<number> {
  return createReadingsRepository(influx).count();
}

/** Polls the count until it reaches `expected`; returns when it did (epoch ms) or the last count. */
export async function waitForReadings(influx: InfluxClient, expected: number, intervalMs: number, timeoutMs: number): Promise<{ count: number; reachedAtMs: number | null }> {
  const { value, finished } = await pollUntil(() => countReadings(influx).catch(() => -1), (count) => count >= expected, { intervalMs, timeoutMs });
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

/** Meters whose stored seqs are held in memory at once. */
const CHECK_SLICE = 50;

/** The set check of SPEC section 6, meter by meter, 50 meters per query. */
export async function checkPairs(influx: InfluxClient, clients: readonly LoadClient[]): Promise<PairCheck> {
  const readings: ReadingsRepository = createReadingsRepository(influx);
  const result: PairCheck = { checked: 0, lost: 0, examples: [], stored: 0 };
  for (let i = 0; i < clients.length; i += CHECK_SLICE) {
    const slice = clients.slice(i, i + CHECK_SLICE);
    const stored = await readings.seqs(slice.map((c) => c.meterId));
    for (const seqs of stored.values()) result.stored += seqs.length;
    for (const c of slice) {
      const seqs = new Set(stored.get(c.meterId));
      for (const seq of c.ackedSeqs) {
        result.checked += 1;
        if (!seqs.has(seq)) {
          result.lost += 1;
          if (result.examples.length < 5) result.examples.push(`${c.meterId}#${seq}`);
        }
      }
    }
  }
  return result;
}

export async function dropDatabase(influx: InfluxClient, database: string): Promise<void> {
  await dropInfluxDatabase(influx, database);
}
