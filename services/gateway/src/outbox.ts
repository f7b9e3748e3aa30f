import Database from 'better-sqlite3';
import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { FlowPilotError } from '@flowpilot/schema';
import { ensurePrivateDir, PRIVATE_FILE_MODE, restrictFileMode } from '@flowpilot/store';

/**
 * The gateway's durable outbox (SPEC section 10): every reading is committed here before it is
 * published, and deleted only when the broker's PUBACK for it came (SPEC section 6: a reading
 * is accepted at its PUBACK; until then its sender keeps it). The same engine and pragmas as
 * the broker's durable store (packages/store): SQLite in WAL mode with synchronous=FULL, so a
 * commit is on disk when it returns and survives SIGKILL or a power cut.
 *
 * Each meter's `seq` (SPEC section 1: "increases by 1 per reading the meter produces") lives in
 * the same database and advances in the same transaction as the reading it numbers, so a
 * restart never reuses a number nor skips one. A poll that produced no reading advances it too
 * (commitSkip): the pipeline's `delivery` then counts that reading as lost, which it was.
 *
 * One process owns the file (locking_mode=EXCLUSIVE): two gateways on one data dir would number
 * the same meter's readings twice, so the second one is refused at start.
 *
 * The outbox is bounded (maxReadings): when it is full the readings already in it are kept and
 * new polls are refused (the caller counts them as `outbox_full` skips); nothing in it is ever
 * overwritten.
 */

export interface OutboxOptions {
  /** The SQLite file; its directory is created 0700, the file 0600. */
  path: string;
  /** Readings kept at most while the broker is unreachable. */
  maxReadings: number;
  /** How long opening waits for a file another process holds before it reports it. */
  busyTimeoutMs: number;
}

export const DEFAULT_OUTBOX_OPTIONS: Omit<OutboxOptions, 'path'> = {
  maxReadings: 1_000_000,
  busyTimeoutMs: 2_000,
};

/** One committed reading waiting for its PUBACK. */
export interface OutboxRow {
  id: number;
  meterId: string;
  seq: number;
  /** The poll's boundary time (the reading's `ts`), epoch ms. */
  tsMs: number;
  /** The reading as it goes on the wire (SPEC section 1), one JSON object. */
  payload: string;
}

export interface OutboxDepth {
  readings: number;
  /** The `ts` of the oldest reading waiting, or null when none waits. */
  oldestTsMs: number | null;
}

export interface Outbox {
  readonly maxReadings: number;
  /** The seq the meter's next poll gets (0 for a meter never polled). */
  nextSeq(meterId: string): number;
  /**
   * Commits one reading (durable when this returns) with the meter's next seq, which it also
   * advances; `payloadFor(seq)` renders the wire JSON with that seq. Throws when full (isFull()).
   */
  commitReading(meterId: string, tsMs: number, payloadFor: (seq: number) => string): OutboxRow;
  /** Advances the meter's seq past a poll that produced no reading; returns the seq it consumed. */
  commitSkip(meterId: string): number;
  /**
   * The meter's oldest waiting readings, in order: at most `limit`, and no more than `maxBytes`
   * of payload together (but always the first one).
   */
  pending(meterId: string, limit: number, maxBytes?: number): OutboxRow[];
  /** Deletes the meter's readings with firstId ≤ id ≤ lastId (their PUBACK came); returns how many. */
  remove(meterId: string, firstId: number, lastId: number): number;
  isFull(): boolean;
  depth(): OutboxDepth;
  meterDepth(meterId: string): number;
  /** Meters with readings waiting, each with its count (meters dropped from the config show here). */
  meters(): Record<string, number>;
  close(): void;
}

function migrate(db: Database.Database): void {
  // AUTOINCREMENT: ids never repeat, so "delete ids first..last of meter M" names exactly the
  // rows that one PUBLISH carried, even after the table was emptied.
  db.exec(`
    CREATE TABLE IF NOT EXISTS reading (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      meter TEXT NOT NULL,
      seq INTEGER NOT NULL,
      ts_ms INTEGER NOT NULL,
      payload TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS reading_meter_id ON reading (meter, id);
    CREATE TABLE IF NOT EXISTS meter_seq (
      meter TEXT PRIMARY KEY,
      next_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
  `);
}

function validate(settings: OutboxOptions): void {
  const problems: string[] = [];
  if (!settings.path) problems.push('path is empty: name the SQLite file');
  if (!Number.isSafeInteger(settings.maxReadings) || settings.maxReadings < 1) problems.push(`maxReadings=${String(settings.maxReadings)}: expected a whole number >= 1`);
  if (!Number.isSafeInteger(settings.busyTimeoutMs) || settings.busyTimeoutMs < 0) problems.push(`busyTimeoutMs=${String(settings.busyTimeoutMs)}: expected a whole number >= 0`);
  if (problems.length > 0) throw new Error(`invalid outbox options:\n  - ${problems.join('\n  - ')}`);
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

export function openOutbox(options: Partial<OutboxOptions> & { path: string }): Outbox {
  const settings: OutboxOptions = { ...DEFAULT_OUTBOX_OPTIONS, ...options };
  validate(settings);
  // The outbox holds every reading not yet accepted: its owner's only (SPEC section 8), as the broker's store.
  ensurePrivateDir(dirname(settings.path));
  closeSync(openSync(settings.path, 'a', PRIVATE_FILE_MODE));
  restrictFileMode(settings.path, PRIVATE_FILE_MODE);
  const db = new Database(settings.path);
  try {
    db.pragma(`busy_timeout = ${settings.busyTimeoutMs}`);
    // EXCLUSIVE before WAL: the lock is taken by the first transaction and kept until close,
    // and the WAL needs no shared-memory file another process could attach to.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.transaction(() => migrate(db)).immediate();
  } catch (error) {
    db.close();
    if (isBusy(error)) {
      throw new FlowPilotError('ERR_GATEWAY_CONFIG', `the outbox ${settings.path} is in use by another process: run one flowpilot gateway per dataDir (give each its own dataDir)`, { cause: error });
    }
    throw error;
  }
  restrictFileMode(`${settings.path}-wal`, PRIVATE_FILE_MODE);

  const selectSeq = db.prepare('SELECT next_seq FROM meter_seq WHERE meter = ?').pluck();
  const upsertSeq = db.prepare('INSERT INTO meter_seq (meter, next_seq) VALUES (?, ?) ON CONFLICT (meter) DO UPDATE SET next_seq = excluded.next_seq');
  const insertReading = db.prepare('INSERT INTO reading (meter, seq, ts_ms, payload) VALUES (?, ?, ?, ?)');
  const selectPending = db.prepare('SELECT id, seq, ts_ms, payload FROM reading WHERE meter = ? ORDER BY id LIMIT ?').raw(true);
  const deleteRange = db.prepare('DELETE FROM reading WHERE meter = ? AND id >= ? AND id <= ?');
  const selectCount = db.prepare('SELECT count(*) FROM reading').pluck();
  const selectMeterCount = db.prepare('SELECT count(*) FROM reading WHERE meter = ?').pluck();
  const selectOldest = db.prepare('SELECT ts_ms FROM reading ORDER BY id LIMIT 1').pluck();
  const selectMeters = db.prepare('SELECT meter, count(*) FROM reading GROUP BY meter').raw(true);

  // Only this process writes the file (EXCLUSIVE): the depth is counted once, then kept.
  let depth = selectCount.get() as number;
  let closed = false;

  const seqOf = (meterId: string): number => (selectSeq.get(meterId) as number | undefined) ?? 0;

  const commitReading = db.transaction((meterId: string, tsMs: number, payloadFor: (seq: number) => string): OutboxRow => {
    const seq = seqOf(meterId);
    const payload = payloadFor(seq);
    const id = Number(insertReading.run(meterId, seq, tsMs, payload).lastInsertRowid);
    upsertSeq.run(meterId, seq + 1);
    return { id, meterId, seq, tsMs, payload };
  });

  const commitSkip = db.transaction((meterId: string): number => {
    const seq = seqOf(meterId);
    upsertSeq.run(meterId, seq + 1);
    return seq;
  });

  function open(): void {
    if (closed) throw new Error('the outbox is closed');
  }

  return {
    maxReadings: settings.maxReadings,
    nextSeq(meterId) {
      open();
      return seqOf(meterId);
    },
    commitReading(meterId, tsMs, payloadFor) {
      open();
      if (depth >= settings.maxReadings) throw new Error(`the outbox is full (${depth} readings)`);
      const row = commitReading.immediate(meterId, tsMs, payloadFor);
      depth += 1;
      return row;
    },
    commitSkip(meterId) {
      open();
      return commitSkip.immediate(meterId);
    },
    pending(meterId, limit, maxBytes = Number.POSITIVE_INFINITY) {
      open();
      const rows: OutboxRow[] = [];
      let bytes = 0;
      for (const [id, seq, tsMs, payload] of selectPending.iterate(meterId, limit) as IterableIterator<[number, number, number, string]>) {
        // A JSON array adds one byte per element (a comma or a bracket).
        bytes += Buffer.byteLength(payload, 'utf8') + 1;
        if (rows.length > 0 && bytes > maxBytes) break;
        rows.push({ id, meterId, seq, tsMs, payload });
      }
      return rows;
    },
    remove(meterId, firstId, lastId) {
      if (closed) return 0;
      const removed = deleteRange.run(meterId, firstId, lastId).changes;
      depth = Math.max(0, depth - removed);
      return removed;
    },
    isFull() {
      return depth >= settings.maxReadings;
    },
    depth() {
      if (closed || depth === 0) return { readings: closed ? 0 : depth, oldestTsMs: null };
      return { readings: depth, oldestTsMs: (selectOldest.get() as number | undefined) ?? null };
    },
    meterDepth(meterId) {
      open();
      return selectMeterCount.get(meterId) as number;
    },
    meters() {
      open();
      return Object.fromEntries(selectMeters.all() as [string, number][]);
    },
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
