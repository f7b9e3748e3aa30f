import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InfluxError, type InfluxClient } from '@flowpilot/influx';
import { openDurableStore, type DurableStore } from '@flowpilot/store';
import { createIngest } from './ingest.ts';

/**
 * The ingest keeps two writes in flight but must remove batches from the spool strictly in
 * order. InfluxDB is scripted here (which write fails, which answers first) because no real
 * server can be made to answer out of order on cue; the spool is the real SQLite store.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function store(): DurableStore {
  const dir = mkdtempSync(join(tmpdir(), 'fp-ingest-'));
  dirs.push(dir);
  return openDurableStore({ path: join(dir, 'spool.sqlite') });
}

interface PendingWrite {
  lines: readonly string[];
  resolve: () => void;
  reject: (error: Error) => void;
}

function scriptedInflux(): { client: InfluxClient; writes: PendingWrite[]; written: string[] } {
  const writes: PendingWrite[] = [];
  const written: string[] = [];
  const client = {
    config: { url: 'http://scripted', database: 'db' },
    ping: async () => ({ version: 'scripted' }),
    ensureDatabase: async () => {},
    query: async () => [],
    write: (lines: readonly string[]) =>
      new Promise<void>((resolve, reject) => {
        writes.push({ lines, resolve: () => (written.push(...lines), resolve()), reject });
      }),
  } as unknown as InfluxClient;
  return { client, writes, written };
}

describe('ingest ordering with two writes in flight', () => {
  it('does not acknowledge a later batch before an earlier one, and resends both after the earlier one fails', async () => {
    const spool = store();
    // Six messages of one reading each: six spool rows, two batches of three.
    await Promise.all(Array.from({ length: 6 }, (_, i) => spool.append([{ receivedAtMs: i, line: `l${i}`, meterId: 'M1', kind: 'reading', tsMs: i }])));
    const influx = scriptedInflux();
    // What the spool held each time the ingest reported a fact: proof that it acted, then what it did.
    const depthAtFailure: number[] = [];
    const depthAtWritten: number[] = [];
    const ingest = createIngest({
      store: spool,
      influx: influx.client,
      log: pino({ level: 'silent' }),
      batchSize: 3,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5))),
      events: {
        writeFailed: () => depthAtFailure.push(spool.depth().records),
        batchWritten: () => depthAtWritten.push(spool.depth().records),
      },
    });
    ingest.start();

    await vi.waitFor(() => expect(influx.writes).toHaveLength(2));
    expect(influx.writes.map((w) => w.lines)).toEqual([['l0', 'l1', 'l2'], ['l3', 'l4', 'l5']]);
    // The second batch is confirmed first, then the first fails: once the ingest has handled the
    // failure, nothing may have left the spool in between, and no batch counts as written.
    influx.writes[1]!.resolve();
    influx.writes[0]!.reject(new InfluxError('unavailable', 'down'));
    await vi.waitFor(() => expect(depthAtFailure).toHaveLength(1));
    expect(depthAtFailure).toEqual([6]);
    expect(depthAtWritten).toEqual([]);
    // Both are sent again from the head.
    await vi.waitFor(() => expect(influx.writes).toHaveLength(4));
    expect(influx.writes.slice(2).map((w) => w.lines)).toEqual([['l0', 'l1', 'l2'], ['l3', 'l4', 'l5']]);
    influx.writes[2]!.resolve();
    await vi.waitFor(() => expect(depthAtWritten).toEqual([3]));
    influx.writes[3]!.resolve();
    await vi.waitFor(() => expect(depthAtWritten).toEqual([3, 0]));
    expect(depthAtFailure).toEqual([6]);
    await ingest.stop();
    spool.close();
  });
});
