import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDurableStore, type DeadLetterInput } from './durable-store.ts';

const dirs: string[] = [];
function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-store-'));
  dirs.push(dir);
  return join(dir, 'spool.sqlite');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const letter = (code: string): DeadLetterInput => ({ receivedAtMs: 5, topic: 'meters/M1/readings', meterId: 'M1', clientId: 'M1', code, reason: 'why', payload: '{}' });

describe('durable store (SQLite, real file)', () => {
  it('keeps appended records across a reopen, in order, until acknowledged', async () => {
    const path = tempPath();
    const store = openDurableStore({ path });
    await Promise.all([store.append([{ receivedAtMs: 1, line: 'a' }]), store.append([{ receivedAtMs: 2, line: 'b' }, { receivedAtMs: 3, line: 'c' }])]);
    store.close();

    const reopened = openDurableStore({ path });
    expect(reopened.depth()).toEqual({ records: 3, oldestReceivedAtMs: 1 });
    // One row per append: a batch never splits a message, so a limit of 1 still takes 'a' alone
    // and a limit of 2 takes both rows.
    expect(reopened.readHead(1)?.lines).toEqual(['a']);
    expect(reopened.readHead(2)?.lines).toEqual(['a', 'b', 'c']);
    const head = reopened.readHead(1)!;
    reopened.acknowledge(head.lastId, [letter('ERR_INFLUX_REJECTED_LINE')]);
    expect(reopened.readHead(10)?.lines).toEqual(['b', 'c']);
    expect(reopened.readAfter(head.lastId, 10)?.lines).toEqual(['b', 'c']);
    expect(reopened.depth()).toEqual({ records: 2, oldestReceivedAtMs: 2 });
    expect(reopened.rejectionCounts()).toEqual({ ERR_INFLUX_REJECTED_LINE: 1 });
    reopened.acknowledge(reopened.readHead(10)!.lastId);
    expect(reopened.readHead(10)).toBeNull();
    // Ids never repeat after the spool was emptied (AUTOINCREMENT): rows 1 ('a') and 2 ('b', 'c') are gone.
    await reopened.append([{ receivedAtMs: 4, line: 'd' }]);
    expect(reopened.readHead(1)!.lastId).toBe(3);
    expect(reopened.depth().records).toBe(1);
    reopened.close();
  });

  it('commits appends of one event-loop turn together and tells listeners once', async () => {
    const store = openDurableStore({ path: tempPath() });
    let wakeups = 0;
    store.onAppended(() => (wakeups += 1));
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.append([{ receivedAtMs: i, line: `l${i}` }])));
    expect(wakeups).toBe(1);
    expect(store.depth().records).toBe(100);
    store.close();
  });

  it('reports full at maxRecords and not after the ingest acknowledged', async () => {
    const store = openDurableStore({ path: tempPath(), maxRecords: 3 });
    await store.append([1, 2, 3].map((n) => ({ receivedAtMs: n, line: `l${n}` })));
    expect(store.isFull()).toBe(true);
    store.acknowledge(store.readHead(1)!.lastId);
    expect(store.isFull()).toBe(false);
    store.close();
  });

  it('lists dead letters by code and marks replays', async () => {
    const store = openDurableStore({ path: tempPath() });
    await store.addDeadLetters([letter('ERR_READING_JSON'), letter('ERR_METER_UNKNOWN'), letter('ERR_METER_UNKNOWN')]);
    expect(store.rejectionCounts()).toEqual({ ERR_READING_JSON: 1, ERR_METER_UNKNOWN: 2 });
    await store.addDeadLetters([{ ...letter('ERR_TS_FUTURE'), meterId: 'M2', receivedAtMs: 10 }]);
    expect(store.rejectionCountsByMeter(0, 10)).toEqual({ M1: { ERR_READING_JSON: 1, ERR_METER_UNKNOWN: 2 } });
    expect(store.rejectionCountsByMeter(0, 11)).toEqual({ M1: { ERR_READING_JSON: 1, ERR_METER_UNKNOWN: 2 }, M2: { ERR_TS_FUTURE: 1 } });
    const unknown = store.listDeadLetters({ code: 'ERR_METER_UNKNOWN' });
    expect(unknown.map((d) => d.id)).toEqual([2, 3]);
    store.markReplayed([2], 99);
    expect(store.listDeadLetters({ code: 'ERR_METER_UNKNOWN', includeReplayed: false }).map((d) => d.id)).toEqual([3]);
    store.close();
  });

  it('refuses appends after close', async () => {
    const store = openDurableStore({ path: tempPath() });
    store.close();
    await expect(store.append([{ receivedAtMs: 1, line: 'x' }])).rejects.toThrow(/closed/);
  });
});
