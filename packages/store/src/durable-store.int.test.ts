import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INGEST_HEARTBEAT_MS, INGEST_SILENCE_MS, openDurableStore, type DeadLetterInput, type SpoolRecord } from './durable-store.ts';

const dirs: string[] = [];
function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-store-'));
  dirs.push(dir);
  return join(dir, 'spool.sqlite');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const modeOf = (path: string): number => statSync(path).mode & 0o777;
const HOUR_MS = 3_600_000;
const T0 = 1_764_064_800_000; // 2025-11-25T10:00:00.000Z, the start of a UTC hour
const DAY_MS = 86_400_000;
/** A spooled reading (or status) whose line is opaque to the store: only meter, kind and time count. */
const rec = (meterId: string, line: string, receivedAtMs = T0, tsMs = receivedAtMs - 60_000, kind: SpoolRecord['kind'] = 'reading'): SpoolRecord => ({ receivedAtMs, line, meterId, kind, tsMs });

const letter = (code: string): DeadLetterInput => ({ receivedAtMs: 5, topic: 'meters/M1/readings', meterId: 'M1', clientId: 'M1', code, reason: 'why', payload: '{}' });

describe('durable store (SQLite, real file)', () => {
  it('keeps appended records across a reopen, in order, until acknowledged', async () => {
    const path = tempPath();
    const store = openDurableStore({ path });
    await Promise.all([store.append([rec('M1', 'a', 1)]), store.append([rec('M1', 'b', 2), rec('M1', 'c', 3)])]);
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
    await reopened.append([rec('M1', 'd', 4)]);
    expect(reopened.readHead(1)!.lastId).toBe(3);
    expect(reopened.depth().records).toBe(1);
    reopened.close();
  });

  it('commits appends of one event-loop turn together and tells listeners once', async () => {
    const store = openDurableStore({ path: tempPath() });
    let wakeups = 0;
    store.onAppended(() => (wakeups += 1));
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.append([rec(`M${i % 7}`, `l${i}`, i)])));
    expect(wakeups).toBe(1);
    expect(store.depth().records).toBe(100);
    store.close();
  });

  it('reports full at maxRecords and not after the ingest acknowledged', async () => {
    const store = openDurableStore({ path: tempPath(), maxRecords: 3 });
    await store.append([1, 2, 3].map((n) => rec('M1', `l${n}`, n)));
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
    // By meter, in the query: M2's one letter, none of M1's.
    expect(store.listDeadLetters({ meterId: 'M2' }).map((d) => d.id)).toEqual([4]);
    expect(store.listDeadLetters({ meterId: 'M1', code: 'ERR_TS_FUTURE' })).toEqual([]);
    store.close();
  });

  it('refuses appends after close', async () => {
    const store = openDurableStore({ path: tempPath() });
    store.close();
    await expect(store.append([rec('M1', 'x', 1)])).rejects.toThrow(/closed/);
  });
});

describe('the log of written meter-days (the API\'s cache drops exactly those)', () => {
  const D = 20_000; // an epoch day: D * DAY_MS is 2024-10-04T00:00:00Z

  it('logs, at acknowledge, the distinct UTC days of each meter\'s readings removed, from the time each was appended with', async () => {
    const store = openDurableStore({ path: tempPath() });
    // A live reading; a backfill array crossing midnight, in one row; a status (not a reading);
    // an append of two meters (split in two rows). The lines are opaque to the store.
    await store.append([rec('M1', 'live', T0, D * DAY_MS + 10)]);
    await store.append([rec('M1', 'b1', T0, (D + 1) * DAY_MS - 1), rec('M1', 'b2', T0, (D + 1) * DAY_MS), rec('M1', 'b3', T0, D * DAY_MS + 5), rec('M1', 'b4', T0, (D + 1) * DAY_MS + 7)]);
    await store.append([rec('M1', 'status', T0, (D + 9) * DAY_MS, 'status')]);
    await store.append([rec('M2', 'm2', T0, (D - 1) * DAY_MS), rec('M3', 'm3', T0, D * DAY_MS), rec('M2', 'm2b', T0, (D - 1) * DAY_MS + 1)]);
    expect(store.writtenDaysSince(0)).toEqual({ version: 0, days: [] });
    // Nothing removed, nothing logged: the version does not move.
    store.acknowledge(0);
    expect(store.writtenDaysSince(0)).toEqual({ version: 0, days: [] });

    const firstTwo = store.readHead(2)!;
    expect(firstTwo.lines).toEqual(['live', 'b1', 'b2', 'b3', 'b4']);
    store.acknowledge(firstTwo.lastId);
    const afterFirst = store.writtenDaysSince(0);
    expect(afterFirst.version).toBe(1);
    expect(afterFirst.days).toEqual(expect.arrayContaining([{ meterId: 'M1', dayMs: D * DAY_MS }, { meterId: 'M1', dayMs: (D + 1) * DAY_MS }]));
    expect(afterFirst.days).toHaveLength(2);

    store.acknowledge(store.readHead(10)!.lastId);
    const second = store.writtenDaysSince(afterFirst.version);
    expect(second.version).toBe(2);
    expect(second.days).toEqual(expect.arrayContaining([{ meterId: 'M2', dayMs: (D - 1) * DAY_MS }, { meterId: 'M3', dayMs: D * DAY_MS }]));
    expect(second.days).toHaveLength(2);
    expect(store.writtenDaysSince(2)).toEqual({ version: 2, days: [] });

    // A day written again moves to the new version: a cache at version 2 drops it once more.
    await store.append([rec('M1', 'again', T0, D * DAY_MS + 99)]);
    store.acknowledge(store.readHead(10)!.lastId);
    expect(store.writtenDaysSince(2)).toEqual({ version: 3, days: [{ meterId: 'M1', dayMs: D * DAY_MS }] });
    store.close();
  });

  it('is complete only while an ingest reads the store: its heartbeat, silent after a minute, cleared when it closes', async () => {
    const path = tempPath();
    let nowMs = T0;
    const clock = () => nowMs;
    const ingestSide = openDurableStore({ path, clock });
    // Another process on the same file: the API's, which never reads the spool itself.
    const apiSide = openDurableStore({ path, clock });
    // A store nobody consumes (a file left over on the API's host): its log names nothing that is written elsewhere.
    expect(apiSide.ingestAliveSince()).toBeNull();

    ingestSide.readAfter(0, 10);
    expect(apiSide.ingestAliveSince()).toBe(T0);
    nowMs += INGEST_SILENCE_MS;
    expect(apiSide.ingestAliveSince()).toBe(T0);
    nowMs += 1;
    expect(apiSide.ingestAliveSince()).toBeNull();
    // A beat after the silence starts a new stretch.
    const second = nowMs;
    ingestSide.readAfter(0, 10);
    expect(apiSide.ingestAliveSince()).toBe(second);
    // Every poll beats, at most once per INGEST_HEARTBEAT_MS, and the stretch goes on.
    nowMs += INGEST_SILENCE_MS;
    ingestSide.readAfter(0, 10);
    expect(apiSide.ingestAliveSince()).toBe(second);
    nowMs += INGEST_HEARTBEAT_MS - 1;
    ingestSide.readAfter(0, 10);
    nowMs += INGEST_SILENCE_MS - INGEST_HEARTBEAT_MS + 2;
    expect(apiSide.ingestAliveSince()).toBeNull();

    const third = nowMs;
    ingestSide.readAfter(0, 10);
    expect(apiSide.ingestAliveSince()).toBe(third);
    // A heartbeat "from the future" (the clock stepped back) is not trusted.
    nowMs -= 1000;
    expect(apiSide.ingestAliveSince()).toBeNull();
    nowMs += 1000;
    // A stopped ingest is silent at once.
    ingestSide.close();
    expect(apiSide.ingestAliveSince()).toBeNull();
    apiSide.close();
  });

  it('gives each line of a batch its meter, index for index', async () => {
    const store = openDurableStore({ path: tempPath() });
    await store.append([rec('M1', 'a'), rec('M2', 'b'), rec('M1', 'c')]);
    await store.append([rec('M3', 'd')]);
    const batch = store.readHead(10)!;
    expect(batch.lines).toEqual(['a', 'c', 'b', 'd']);
    expect(batch.meterIds).toEqual(['M1', 'M1', 'M2', 'M3']);
    store.close();
  });

  it('reads the days of a row written without them (a store or a process of an earlier version) from its lines, as that version did', async () => {
    const path = tempPath();
    // The previous version's spool: meter and n, no reading_days.
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, line TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 1, meter TEXT NOT NULL DEFAULT '');
      CREATE TABLE spool_depth (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), records INTEGER NOT NULL);
      INSERT INTO spool_depth (singleton, records) VALUES (1, 0);
    `);
    const oldAppend = (db: Database.Database, meter: string, lines: string[]): void => {
      db.prepare('INSERT INTO spool (received_at, line, n, meter) VALUES (?, ?, ?, ?)').run(T0, lines.join('\n'), lines.length, meter);
      db.prepare('UPDATE spool_depth SET records = records + ? WHERE singleton = 1').run(lines.length);
    };
    const fields = 'flow=1,total=2,seq=1i,alarms=0i,received_at=5i,latency_ms=1i';
    oldAppend(old, 'M1', [`reading,meter=M1,site=S ${fields} ${3 * DAY_MS + 10}`, `reading,meter=M1,site=S ${fields} ${4 * DAY_MS - 1}`, `reading,meter=M1,site=S ${fields} ${4 * DAY_MS}`]);
    oldAppend(old, 'M1', [`status,meter=M1 online=true ${9 * DAY_MS}`]);
    old.close();

    const store = openDurableStore({ path });
    // A process of the previous version still appending to the migrated file: its row has no days either.
    const stillOld = new Database(path);
    oldAppend(stillOld, 'ALM-PS3.DUT_1', [`reading,meter=ALM-PS3.DUT_1,site=Pump\\ station ${fields} ${DAY_MS}`]);
    stillOld.close();
    await store.append([rec('M2', 'new', T0, 5 * DAY_MS)]);
    expect(store.readHead(10)?.meterIds).toEqual(['M1', 'M1', 'M1', 'M1', 'ALM-PS3.DUT_1', 'M2']);
    store.acknowledge(store.readHead(10)!.lastId);
    const logged = store.writtenDaysSince(0);
    expect(logged.days).toHaveLength(4);
    expect(logged.days).toEqual(
      expect.arrayContaining([
        { meterId: 'M1', dayMs: 3 * DAY_MS },
        { meterId: 'M1', dayMs: 4 * DAY_MS },
        { meterId: 'ALM-PS3.DUT_1', dayMs: DAY_MS },
        { meterId: 'M2', dayMs: 5 * DAY_MS },
      ]),
    );
    expect(store.depth().records).toBe(0);
    store.close();
  });
});

describe('durable store limits (SPEC section 8)', () => {
  it('keeps the first 64 KiB of a 5 MiB dead letter payload and its original size', async () => {
    const store = openDurableStore({ path: tempPath() });
    const huge = 'x'.repeat(5 * 1024 * 1024);
    await store.addDeadLetters([{ ...letter('ERR_PAYLOAD_TOO_LARGE'), payload: huge }, letter('ERR_READING_JSON')]);
    const [big, small] = store.listDeadLetters();
    expect(big?.payload).toBe('x'.repeat(65_536));
    expect(big?.payloadBytes).toBe(5_242_880);
    expect(big?.truncated).toBe(true);
    expect(small).toMatchObject({ payload: '{}', payloadBytes: 2, truncated: false });
    store.close();
  });

  it('cuts a payload on a UTF-8 character boundary', async () => {
    // 'a' 1 byte, 'é' 2, '€' 3, '😀' 4: 10 bytes in all, ends after bytes 1, 3, 6 and 10.
    const text = 'aé€😀';
    const cases: [number, string][] = [[0, ''], [2, 'a'], [4, 'aé'], [6, 'aé€'], [9, 'aé€'], [10, text]];
    for (const [maxBytes, kept] of cases) {
      const store = openDurableStore({ path: tempPath(), deadLetterMaxPayloadBytes: maxBytes });
      await store.addDeadLetters([{ ...letter('ERR_READING_JSON'), payload: text }]);
      expect(store.listDeadLetters()[0], `limit ${maxBytes}`).toMatchObject({ payload: kept, payloadBytes: 10, truncated: kept !== text });
      store.close();
    }
  });

  it('counts a meter\'s dead letters beyond 1000 in an hour without keeping them; other meters and hours unaffected', async () => {
    const path = tempPath();
    const store = openDurableStore({ path });
    const m1 = (i: number): DeadLetterInput => ({ ...letter('ERR_READING_SCHEMA'), receivedAtMs: T0 + i });
    await store.addDeadLetters(Array.from({ length: 1000 }, (_, i) => m1(i)));
    // The 1001st of M1 in the hour [T0, T0 + 1 h), M2 in the same hour, M1 in the next hour.
    await store.addDeadLetters([{ ...m1(0), code: 'ERR_TS_FUTURE', receivedAtMs: T0 + HOUR_MS / 2 }]);
    await store.addDeadLetters([{ ...m1(0), meterId: 'M2', topic: 'meters/M2/readings', receivedAtMs: T0 + HOUR_MS / 2 }]);
    await store.addDeadLetters([{ ...m1(0), receivedAtMs: T0 + HOUR_MS }]);

    const kept = store.listDeadLetters({ limit: 5000 });
    expect(kept).toHaveLength(1002);
    expect(kept.filter((d) => d.code === 'ERR_TS_FUTURE')).toEqual([]);
    expect(store.deadLetterStats()).toEqual({ stored: 1002, notStored: 1 });
    expect(store.rejectionCounts()).toEqual({ ERR_READING_SCHEMA: 1002, ERR_TS_FUTURE: 1 });
    expect(store.rejectionCountsByMeter(T0, T0 + HOUR_MS)).toEqual({ M1: { ERR_READING_SCHEMA: 1000, ERR_TS_FUTURE: 1 }, M2: { ERR_READING_SCHEMA: 1 } });
    // The counted-only ones fall where the first of them was received (T0 + 30 min).
    expect(store.rejectionCountsByMeter(T0 + HOUR_MS / 2 + 1, T0 + 2 * HOUR_MS)).toEqual({ M1: { ERR_READING_SCHEMA: 1 } });
    store.close();

    // The tally survives a reopen: M1 is still over its quota for that hour.
    const reopened = openDurableStore({ path });
    await reopened.addDeadLetters([{ ...m1(0), code: 'ERR_TS_FUTURE', receivedAtMs: T0 + HOUR_MS - 1 }]);
    expect(reopened.deadLetterStats()).toEqual({ stored: 1002, notStored: 2 });
    expect(reopened.rejectionCounts()).toEqual({ ERR_READING_SCHEMA: 1002, ERR_TS_FUTURE: 2 });
    reopened.close();
  });

  it('applies the quota to letters without a meter as one bucket, and to InfluxDB\'s refusals at acknowledge', async () => {
    const store = openDurableStore({ path: tempPath(), deadLettersPerMeterHour: 2 });
    const orphan: DeadLetterInput = { ...letter('ERR_TOPIC'), topic: 'elsewhere', meterId: null, receivedAtMs: T0 };
    await store.addDeadLetters([orphan, orphan, orphan]);
    store.acknowledge(0, [1, 2, 3].map((i) => ({ ...letter('ERR_INFLUX_REJECTED_LINE'), meterId: 'M3', receivedAtMs: T0 + i })));
    expect(store.deadLetterStats()).toEqual({ stored: 4, notStored: 2 });
    expect(store.rejectionCountsByMeter(T0, T0 + HOUR_MS)).toEqual({ '': { ERR_TOPIC: 3 }, M3: { ERR_INFLUX_REJECTED_LINE: 3 } });
    store.close();
  });

  it('refuses a meter at its share of the spool while accepting the others, and again after acknowledge', async () => {
    // maxRecords 10 × meterShare 0.2: 2 records per meter.
    const store = openDurableStore({ path: tempPath(), maxRecords: 10, meterShare: 0.2 });
    await store.append([rec('M1', 'a')]);
    expect(store.refusal('M1')).toBeNull();
    await store.append([rec('M1', 'b')]);
    expect(store.meterDepth('M1')).toBe(2);
    expect(store.refusal('M1')).toBe('meter_share');
    expect(store.refusal('M2')).toBeNull();
    expect(store.isFull()).toBe(false);
    // A backfill array of 3 lines is 3 records, like maxRecords counts them.
    await store.append([rec('M2', 'c'), rec('M2', 'd'), rec('M2', 'e')]);
    expect(store.meterDepth('M2')).toBe(3);
    expect(store.refusal('M2')).toBe('meter_share');
    expect(store.depth().records).toBe(5);

    // The ingest confirms 'a' and 'b' (rows 1 and 2): M1 is accepted again, M2 still waits.
    store.acknowledge(store.readHead(2)!.lastId);
    expect(store.meterDepth('M1')).toBe(0);
    expect(store.refusal('M1')).toBeNull();
    expect(store.refusal('M2')).toBe('meter_share');
    expect(store.depth().records).toBe(3);
    store.acknowledge(store.readHead(10)!.lastId);
    expect(store.meterDepth('M2')).toBe(0);
    expect(store.depth().records).toBe(0);
    store.close();
  });

  it('says store_full before meter_share, keeps at least one record per meter, and splits an append by meter', async () => {
    // 4 × 0.5 → 2 per meter.
    const store = openDurableStore({ path: tempPath(), maxRecords: 4, meterShare: 0.5 });
    await store.append([rec('M1', 'a'), rec('M2', 'b'), rec('M1', 'c')]);
    expect([store.meterDepth('M1'), store.meterDepth('M2')]).toEqual([2, 1]);
    expect(store.readHead(10)?.lines).toEqual(['a', 'c', 'b']);
    expect(store.refusal('M1')).toBe('meter_share');
    expect(store.refusal('M3')).toBeNull();
    await store.append([rec('M3', 'd')]);
    expect(store.refusal('M3')).toBe('store_full');
    expect(store.refusal('M1')).toBe('store_full');
    expect(store.isFull()).toBe(true);
    store.close();
    // 3 × 0.1 = 0.3 → ceil 1: one record per meter.
    const tiny = openDurableStore({ path: tempPath(), maxRecords: 3, meterShare: 0.1 });
    expect(tiny.refusal('M1')).toBeNull();
    await tiny.append([rec('M1', 'a')]);
    expect(tiny.refusal('M1')).toBe('meter_share');
    tiny.close();
  });

  it('refuses invalid options, naming every one', () => {
    expect(() => openDurableStore({ path: tempPath(), maxRecords: 0, meterShare: 1.5, deadLettersPerMeterHour: -1 })).toThrow(
      /maxRecords=0.*\n.*deadLettersPerMeterHour=-1.*\n.*meterShare=1.5/,
    );
  });

  it('creates its directory 0700 and the database, -wal and -shm 0600', async () => {
    const path = join(dirname(tempPath()), 'data', 'store', 'spool.sqlite');
    const store = openDurableStore({ path });
    await store.append([rec('M1', 'a')]);
    expect(modeOf(dirname(path))).toBe(0o700);
    expect(modeOf(dirname(dirname(path)))).toBe(0o700);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      expect(existsSync(file), file).toBe(true);
      expect(modeOf(file), file).toBe(0o600);
    }
    store.close();
  });

  it('opens a store written by the previous version and migrates it', async () => {
    const path = tempPath();
    // The previous schema, as that version created it, with a 0644 file.
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, line TEXT NOT NULL);
      CREATE TABLE dead_letter (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, topic TEXT NOT NULL, meter_id TEXT,
        client_id TEXT, code TEXT NOT NULL, reason TEXT NOT NULL, payload TEXT NOT NULL, replayed_at INTEGER);
      CREATE INDEX dead_letter_code ON dead_letter (code);
      CREATE TABLE written_day (meter TEXT NOT NULL, day_ms INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (meter, day_ms)) WITHOUT ROWID;
      CREATE INDEX written_day_version ON written_day (version);
      ALTER TABLE spool ADD COLUMN n INTEGER NOT NULL DEFAULT 1;
      CREATE TABLE spool_depth (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), records INTEGER NOT NULL);
    `);
    old.prepare('INSERT INTO spool (received_at, line, n) VALUES (?, ?, ?)').run(T0, 'a\nb\nc', 3);
    old.prepare('INSERT INTO spool (received_at, line, n) VALUES (?, ?, ?)').run(T0 + 1, 'd', 1);
    old.exec('INSERT INTO spool_depth (singleton, records) VALUES (1, 4)');
    const insertLetter = old.prepare(
      'INSERT INTO dead_letter (received_at, topic, meter_id, client_id, code, reason, payload) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    insertLetter.run(T0, 'meters/M1/readings', 'M1', 'M1', 'ERR_READING_JSON', 'why', '{"é"'); // 5 bytes
    insertLetter.run(T0 + 1, 'meters/M1/readings', 'M1', 'M1', 'ERR_READING_JSON', 'why', '{');
    old.close();
    chmodSync(path, 0o644);

    // maxRecords 10 × 0.2: 2 per meter; the old rows all count under meter ''. Quota: 3 an hour.
    const store = openDurableStore({ path, maxRecords: 10, deadLettersPerMeterHour: 3 });
    expect(modeOf(path)).toBe(0o600);
    expect(store.depth()).toEqual({ records: 4, oldestReceivedAtMs: T0 });
    expect(store.meterDepth('')).toBe(4);
    expect(store.refusal('')).toBe('meter_share');
    expect(store.refusal('M1')).toBeNull();
    expect(store.readHead(10)?.lines).toEqual(['a', 'b', 'c', 'd']);
    expect(store.listDeadLetters().map((d) => [d.payloadBytes, d.truncated])).toEqual([[5, false], [1, false]]);

    store.acknowledge(store.readHead(1)!.lastId);
    expect(store.meterDepth('')).toBe(1);
    expect(store.refusal('')).toBeNull();
    await store.append([rec('M1', 'e')]);
    expect([store.meterDepth(''), store.meterDepth('M1'), store.depth().records]).toEqual([1, 1, 2]);
    // The two old letters of M1 in hour T0 count toward its quota: one more is kept, the next counted.
    await store.addDeadLetters([{ ...letter('ERR_READING_JSON'), receivedAtMs: T0 + 2 }, { ...letter('ERR_READING_JSON'), receivedAtMs: T0 + 3 }]);
    expect(store.deadLetterStats()).toEqual({ stored: 3, notStored: 1 });
    expect(store.rejectionCounts()).toEqual({ ERR_READING_JSON: 4 });
    store.close();

    // And it opens again as the new version left it.
    const again = openDurableStore({ path });
    expect(again.depth().records).toBe(2);
    again.close();
  });
});
