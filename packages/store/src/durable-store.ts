import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The broker's durable spool (SPEC section 6). A reading is committed here, fsynced, before
 * the broker sends its PUBACK; the ingest reads the spool from its head, writes to InfluxDB
 * and deletes what InfluxDB confirmed. The spool is therefore both the queue and the
 * checkpoint: whatever is still in it has not been confirmed, and survives SIGKILL.
 *
 * SQLite in WAL mode with synchronous=FULL: each transaction is durable when commit returns.
 * Appends arriving in the same event-loop turn share one transaction (group commit), so one
 * fsync covers every reading that a burst of clients sent.
 */
export interface SpoolRecord {
  receivedAtMs: number;
  line: string;
}

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
}

export interface SpoolBatch {
  /** Id of the last record in the batch: acknowledge(lastId) removes the batch. */
  lastId: number;
  lines: string[];
  oldestReceivedAtMs: number;
}

/** A UTC day of one meter's readings that the ingest wrote to InfluxDB. */
export interface WrittenDay {
  meterId: string;
  dayMs: number;
}

export interface SpoolDepth {
  records: number;
  oldestReceivedAtMs: number | null;
}

export interface DurableStoreOptions {
  path: string;
  /** Refuse appends once this many records wait for InfluxDB (the broker then withholds PUBACKs). */
  maxRecords: number;
  /** Open read-mostly from another process (the standalone ingest); still may delete. */
  busyTimeoutMs: number;
}

export const DEFAULT_DURABLE_STORE_OPTIONS: Omit<DurableStoreOptions, 'path'> = {
  maxRecords: 5_000_000,
  busyTimeoutMs: 5_000,
};

export interface DurableStore {
  /** Commits records and dead letters durably; resolves after the fsync. */
  append(records: readonly SpoolRecord[], deadLetters?: readonly DeadLetterInput[]): Promise<void>;
  /** True when the spool holds maxRecords or more: stop accepting (SPEC section 6). */
  isFull(): boolean;
  readHead(limit: number): SpoolBatch | null;
  /** The records after `afterId` (the ingest reads ahead of what InfluxDB confirmed). */
  readAfter(afterId: number, limit: number): SpoolBatch | null;
  /**
   * Removes records up to lastId (InfluxDB confirmed them) and, in the same transaction, keeps
   * the lines InfluxDB refused as dead letters and logs which meter-days the batch wrote.
   */
  acknowledge(lastId: number, deadLetters?: readonly DeadLetterInput[], writtenDays?: readonly WrittenDay[]): void;
  /** The meter-days written to InfluxDB after `version` (the API's cache drops exactly those), and the version now. */
  writtenDaysSince(version: number): { version: number; days: WrittenDay[] };
  depth(): SpoolDepth;
  addDeadLetters(deadLetters: readonly DeadLetterInput[]): Promise<void>;
  listDeadLetters(options?: { limit?: number; afterId?: number; code?: string; includeReplayed?: boolean }): DeadLetter[];
  markReplayed(ids: readonly number[], atMs: number): void;
  rejectionCounts(): Record<string, number>;
  /** Rejections received in [fromMs, toMs), per meter (null: no meter in the topic) and reason (SPEC section 4, `rejected`). */
  rejectionCountsByMeter(fromMs: number, toMs: number): Record<string, Record<string, number>>;
  /** Called after each commit that added spool records (the in-process ingest wakes on it). */
  onAppended(listener: () => void): () => void;
  close(): void;
}

interface PendingAppend {
  records: readonly SpoolRecord[];
  deadLetters: readonly DeadLetterInput[];
  resolve: () => void;
  reject: (error: Error) => void;
}

interface DeadLetterRow {
  id: number;
  received_at: number;
  topic: string;
  meter_id: string | null;
  client_id: string | null;
  code: string;
  reason: string;
  payload: string;
  replayed_at: number | null;
}


export function openDurableStore(options: Partial<DurableStoreOptions> & { path: string }): DurableStore {
  const settings: DurableStoreOptions = { ...DEFAULT_DURABLE_STORE_OPTIONS, ...options };
  mkdirSync(dirname(settings.path), { recursive: true });
  const db = new Database(settings.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${settings.busyTimeoutMs}`);
  // A spool row holds the lines of one append (one MQTT message: a reading, or a backfill array
  // of up to 1000) joined by newlines, and their count n: a 1000-reading array costs one row.
  // AUTOINCREMENT: ids never repeat, even after the spool was emptied, so an id names one row forever.
  db.exec(`
    CREATE TABLE IF NOT EXISTS spool (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      received_at INTEGER NOT NULL,
      line TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS dead_letter (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      received_at INTEGER NOT NULL,
      topic TEXT NOT NULL,
      meter_id TEXT,
      client_id TEXT,
      code TEXT NOT NULL,
      reason TEXT NOT NULL,
      payload TEXT NOT NULL,
      replayed_at INTEGER
    );
    CREATE INDEX IF NOT EXISTS dead_letter_code ON dead_letter (code);
  `);
  // Which meter-days the ingest wrote, with a version that grows per acknowledgement: the API's
  // column cache asks "what changed since version v" instead of rescanning InfluxDB.
  db.exec(`
    CREATE TABLE IF NOT EXISTS written_day (
      meter TEXT NOT NULL,
      day_ms INTEGER NOT NULL,
      version INTEGER NOT NULL,
      PRIMARY KEY (meter, day_ms)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS written_day_version ON written_day (version);
  `);
  const spoolColumns = (db.prepare('PRAGMA table_info(spool)').all() as { name: string }[]).map((c) => c.name);
  if (!spoolColumns.includes('n')) db.exec('ALTER TABLE spool ADD COLUMN n INTEGER NOT NULL DEFAULT 1');
  // The number of records waiting, kept in the same transactions that add and remove them, so
  // every process reads it exactly with one primary-key lookup.
  db.exec(`
    CREATE TABLE IF NOT EXISTS spool_depth (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), records INTEGER NOT NULL);
    INSERT OR IGNORE INTO spool_depth (singleton, records) VALUES (1, (SELECT coalesce(sum(n), 0) FROM spool));
  `);

  const insertRow = db.prepare('INSERT INTO spool (received_at, line, n) VALUES (?, ?, ?)');
  const addDepth = db.prepare('UPDATE spool_depth SET records = records + ? WHERE singleton = 1');
  const insertDeadLetter = db.prepare(
    'INSERT INTO dead_letter (received_at, topic, meter_id, client_id, code, reason, payload) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const selectAfter = db.prepare('SELECT id, received_at, line FROM spool WHERE id > ? ORDER BY id').raw(true);
  const selectDepth = db.prepare('SELECT records FROM spool_depth WHERE singleton = 1').pluck();
  const selectOldest = db.prepare('SELECT received_at FROM spool ORDER BY id LIMIT 1').pluck();
  const selectCounts = db.prepare('SELECT code, count(*) AS n FROM dead_letter GROUP BY code');
  const selectCountsByMeter = db.prepare(
    'SELECT coalesce(meter_id, \'\') AS meter, code, count(*) AS n FROM dead_letter WHERE received_at >= ? AND received_at < ? GROUP BY meter_id, code',
  );
  const selectWrittenSince = db.prepare('SELECT meter, day_ms, version FROM written_day WHERE version > ? ORDER BY version').raw(true);
  const selectWrittenVersion = db.prepare('SELECT coalesce(max(version), 0) FROM written_day').pluck();
  const updateReplayed = db.prepare('UPDATE dead_letter SET replayed_at = ? WHERE id = ?');

  const commit = db.transaction((batch: readonly PendingAppend[]) => {
    let added = 0;
    for (const item of batch) {
      const first = item.records[0];
      if (first) {
        insertRow.run(first.receivedAtMs, item.records.length === 1 ? first.line : item.records.map((r) => r.line).join('\n'), item.records.length);
        added += item.records.length;
      }
      for (const d of item.deadLetters) insertDeadLetter.run(d.receivedAtMs, d.topic, d.meterId, d.clientId, d.code, d.reason, d.payload);
    }
    if (added > 0) addDepth.run(added);
  });

  // Acknowledgements go through a second connection without an fsync of their own: losing one
  // in a crash only means InfluxDB gets that batch again, which stores the same points (SPEC
  // section 2). The next FULL commit of an append syncs the shared WAL, acknowledgements included.
  // Dead letters from InfluxDB's refusals ride along; at worst one is recorded twice.
  const ackDb = new Database(settings.path);
  ackDb.pragma('synchronous = NORMAL');
  ackDb.pragma(`busy_timeout = ${settings.busyTimeoutMs}`);
  const ackDeleteUpTo = ackDb.prepare('DELETE FROM spool WHERE id <= ?');
  const ackCountUpTo = ackDb.prepare('SELECT coalesce(sum(n), 0) FROM spool WHERE id <= ?').pluck();
  const ackSubtractDepth = ackDb.prepare('UPDATE spool_depth SET records = max(0, records - ?) WHERE singleton = 1');
  const ackInsertDeadLetter = ackDb.prepare(
    'INSERT INTO dead_letter (received_at, topic, meter_id, client_id, code, reason, payload) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const ackNextVersion = ackDb.prepare('SELECT coalesce(max(version), 0) + 1 FROM written_day').pluck();
  const ackUpsertDay = ackDb.prepare(
    'INSERT INTO written_day (meter, day_ms, version) VALUES (?, ?, ?) ON CONFLICT (meter, day_ms) DO UPDATE SET version = excluded.version',
  );
  const acknowledgeTx = ackDb.transaction((lastId: number, deadLetters: readonly DeadLetterInput[], writtenDays: readonly WrittenDay[]) => {
    for (const d of deadLetters) ackInsertDeadLetter.run(d.receivedAtMs, d.topic, d.meterId, d.clientId, d.code, d.reason, d.payload);
    if (writtenDays.length > 0) {
      const version = ackNextVersion.get() as number;
      for (const day of writtenDays) ackUpsertDay.run(day.meterId, day.dayMs, version);
    }
    ackSubtractDepth.run(ackCountUpTo.get(lastId) as number);
    ackDeleteUpTo.run(lastId);
  });

  let pending: PendingAppend[] = [];
  let flushScheduled = false;
  let closed = false;
  const listeners = new Set<() => void>();
  function countRecords(): number {
    return selectDepth.get() as number;
  }

  function flush(): void {
    flushScheduled = false;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    try {
      commit(batch);
    } catch (error) {
      for (const item of batch) item.reject(error as Error);
      return;
    }
    for (const item of batch) item.resolve();
    if (batch.some((item) => item.records.length > 0)) for (const listener of listeners) listener();
  }

  function enqueue(records: readonly SpoolRecord[], deadLetters: readonly DeadLetterInput[]): Promise<void> {
    if (closed) return Promise.reject(new Error('The durable store is closed'));
    return new Promise<void>((resolve, reject) => {
      pending.push({ records, deadLetters, resolve, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        // setImmediate runs after the I/O callbacks of this turn: every packet parsed from the
        // sockets in this turn joins the same transaction.
        setImmediate(flush);
      }
    });
  }

  return {
    append: (records, deadLetters = []) => enqueue(records, deadLetters),
    addDeadLetters: (deadLetters) => enqueue([], deadLetters),
    isFull() {
      return countRecords() >= settings.maxRecords;
    },
    readHead(limit) {
      return this.readAfter(0, limit);
    },
    readAfter(afterId, limit) {
      // Whole rows only (a message is never split across batches), until `limit` lines are in.
      const lines: string[] = [];
      let lastId = -1;
      let oldestReceivedAtMs = 0;
      for (const [id, receivedAt, text] of selectAfter.iterate(afterId) as IterableIterator<[number, number, string]>) {
        if (lastId === -1) oldestReceivedAtMs = receivedAt;
        lastId = id;
        if (text.includes('\n')) for (const line of text.split('\n')) lines.push(line);
        else lines.push(text);
        if (lines.length >= limit) break;
      }
      return lastId === -1 ? null : { lastId, lines, oldestReceivedAtMs };
    },
    acknowledge(lastId, deadLetters = [], writtenDays = []) {
      acknowledgeTx(lastId, deadLetters, writtenDays);
    },
    depth() {
      const records = countRecords();
      return { records, oldestReceivedAtMs: records === 0 ? null : (selectOldest.get() as number) };
    },
    listDeadLetters({ limit = 100, afterId = 0, code, includeReplayed = true } = {}) {
      const where = ['id > @afterId'];
      if (code) where.push('code = @code');
      if (!includeReplayed) where.push('replayed_at IS NULL');
      const rows = db
        .prepare(`SELECT * FROM dead_letter WHERE ${where.join(' AND ')} ORDER BY id LIMIT @limit`)
        .all({ afterId, code, limit }) as DeadLetterRow[];
      return rows.map((row) => ({
        id: row.id,
        receivedAtMs: row.received_at,
        topic: row.topic,
        meterId: row.meter_id,
        clientId: row.client_id,
        code: row.code,
        reason: row.reason,
        payload: row.payload,
        replayedAtMs: row.replayed_at,
      }));
    },
    markReplayed(ids, atMs) {
      db.transaction(() => {
        for (const id of ids) updateReplayed.run(atMs, id);
      })();
    },
    rejectionCounts() {
      const counts: Record<string, number> = {};
      for (const row of selectCounts.all() as { code: string; n: number }[]) counts[row.code] = row.n;
      return counts;
    },
    writtenDaysSince(since) {
      const rows = selectWrittenSince.all(since) as [string, number, number][];
      const version = rows.length > 0 ? rows[rows.length - 1]![2] : Math.max(since, selectWrittenVersion.get() as number);
      return { version, days: rows.map(([meterId, dayMs]) => ({ meterId, dayMs })) };
    },
    rejectionCountsByMeter(fromMs, toMs) {
      const counts: Record<string, Record<string, number>> = {};
      for (const row of selectCountsByMeter.all(fromMs, toMs) as { meter: string; code: string; n: number }[]) {
        (counts[row.meter] ??= {})[row.code] = row.n;
      }
      return counts;
    },
    onAppended(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
      listeners.clear();
      ackDb.close();
      db.close();
    },
  };
}
