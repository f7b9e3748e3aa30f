import Database from 'better-sqlite3';
import type { DeadLetter, DeadLetterInput } from '@flowpilot/schema';
import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensurePrivateDir, PRIVATE_FILE_MODE, restrictFileMode } from './private-files.ts';

/**
 * The broker's durable spool (SPEC section 6). A reading is committed here, fsynced, before
 * the broker sends its PUBACK; the ingest reads the spool from its head, writes to InfluxDB
 * and deletes what InfluxDB confirmed. The spool is therefore both the queue and the
 * checkpoint: whatever is still in it has not been confirmed, and survives SIGKILL.
 *
 * SQLite in WAL mode with synchronous=FULL: each transaction is durable when commit returns.
 * Appends arriving in the same event-loop turn share one transaction (group commit), so one
 * fsync covers every reading that a burst of clients sent.
 *
 * Limits against one hostile or faulty meter (SPEC section 8): each meter may hold only its
 * share of the spool, a dead letter keeps at most the first deadLetterMaxPayloadBytes of its
 * payload, and a meter's dead letters beyond its hourly quota are counted, not kept.
 *
 * The database, its -wal and -shm files are mode 0600, the directory is created 0700.
 */
export interface SpoolRecord {
  receivedAtMs: number;
  /** The point in InfluxDB line protocol, as the ingest writes it; never read back for bookkeeping. */
  line: string;
  /** The meter whose topic the line came from: its share of the spool is counted by it. */
  meterId: string;
  /** What the line holds: the log of written meter-days (writtenDaysSince) lists the days of readings only. */
  kind: 'reading' | 'status';
  /** The reading's or status's own time (its `ts`, epoch ms): the line's timestamp. */
  tsMs: number;
}

export type { DeadLetter, DeadLetterInput } from '@flowpilot/schema';

/** Why the store refuses a meter's publish (the broker then withholds the PUBACK, SPEC section 6). */
export type StoreRefusal = 'store_full' | 'meter_share';

export interface DeadLetterStats {
  /** Dead letters kept (listable, replayable). */
  stored: number;
  /** Dead letters beyond a meter's hourly quota: counted in rejectionCounts, payload not kept. */
  notStored: number;
}

export interface SpoolBatch {
  /** Id of the last record in the batch: acknowledge(lastId) removes the batch. */
  lastId: number;
  lines: string[];
  /** The meter of each line, index for index ('' for a line stored before the spool kept meters). */
  meterIds: string[];
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
  /**
   * Refuse appends once this many records wait for InfluxDB (the broker then withholds PUBACKs).
   * A record is one line: a backfill array of 1000 readings counts 1000, though it is one row.
   */
  maxRecords: number;
  /**
   * The fraction of maxRecords one meter's waiting records may take, 0 < meterShare <= 1: a meter
   * at max(ceil(maxRecords × meterShare), 1) records is refused while the others still are
   * accepted, so one meter cannot fill the store every meter shares (SPEC section 8).
   */
  meterShare: number;
  /** A dead letter keeps at most this many bytes of its payload (UTF-8, cut on a character boundary). */
  deadLetterMaxPayloadBytes: number;
  /**
   * Dead letters kept per meter (a letter without meter: one more bucket) per UTC hour of
   * receipt; the ones beyond are counted by meter, hour and code, not kept.
   */
  deadLettersPerMeterHour: number;
  /** Open read-mostly from another process (the standalone ingest); still may delete. */
  busyTimeoutMs: number;
  /** Epoch ms now, for the ingest's heartbeat (STYLE habit 7). Every process sharing the file reads the same host clock. */
  clock: () => number;
}

export const DEFAULT_DURABLE_STORE_OPTIONS: Omit<DurableStoreOptions, 'path'> = {
  maxRecords: 5_000_000,
  meterShare: 0.2,
  deadLetterMaxPayloadBytes: 65_536,
  deadLettersPerMeterHour: 1000,
  busyTimeoutMs: 5_000,
  clock: () => Date.now(),
};

/**
 * The ingest's heartbeat: `readAfter` (the ingest's poll of the spool) records the time at most
 * this often, and the store counts as consumed by a live ingest while the last one is at most
 * INGEST_SILENCE_MS old. The ingest polls every 200 ms when idle and, while InfluxDB fails, after
 * each backoff (services/ingest: at most 30 s plus 20 % jitter), so a minute of silence means no
 * ingest reads this store. The API's cache trusts the log of written days only then
 * (services/api reading-cache.ts): a store file left over without its ingest logs nothing.
 */
export const INGEST_HEARTBEAT_MS = 5_000;
export const INGEST_SILENCE_MS = 60_000;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Hours of per-meter dead-letter tallies kept for the quota (older hours can no longer be written). */
const QUOTA_HOURS_KEPT = 2;

export interface DurableStore {
  /** Commits records and dead letters durably; resolves after the fsync. */
  append(records: readonly SpoolRecord[], deadLetters?: readonly DeadLetterInput[]): Promise<void>;
  /** True when the spool holds maxRecords or more: stop accepting (SPEC section 6). */
  isFull(): boolean;
  /**
   * Whether a publish of `meterId` must be refused now: 'store_full' when the spool holds
   * maxRecords or more (as isFull()), 'meter_share' when this meter's own waiting records reach
   * its share (options.meterShare), else null. The broker asks before each publish; append()
   * itself never refuses, so what was asked for is always committed.
   */
  refusal(meterId: string): StoreRefusal | null;
  /** Records of `meterId` waiting for InfluxDB. */
  meterDepth(meterId: string): number;
  readHead(limit: number): SpoolBatch | null;
  /**
   * The records after `afterId` (the ingest reads ahead of what InfluxDB confirmed). Only the
   * ingest reads the spool, so this is also its heartbeat (INGEST_HEARTBEAT_MS), which close() clears.
   */
  readAfter(afterId: number, limit: number): SpoolBatch | null;
  /**
   * Removes records up to lastId (InfluxDB confirmed them) and, in the same transaction, keeps
   * the lines InfluxDB refused as dead letters and logs the meter-days of the readings removed
   * (from the meter and time each record was appended with: nothing is parsed back).
   */
  acknowledge(lastId: number, deadLetters?: readonly DeadLetterInput[]): void;
  /** The meter-days written to InfluxDB after `version` (the API's cache drops exactly those), and the version now. */
  writtenDaysSince(version: number): { version: number; days: WrittenDay[] };
  /**
   * When the ingest reading this store (in this process or another) began its current stretch of
   * heartbeats, or null when none is alive (its last heartbeat is older than INGEST_SILENCE_MS).
   * `writtenDaysSince` names every day FlowPilot writes only while an ingest is alive, and only
   * from the start of its stretch: a new value means a time without one came before.
   */
  ingestAliveSince(): number | null;
  depth(): SpoolDepth;
  addDeadLetters(deadLetters: readonly DeadLetterInput[]): Promise<void>;
  /** Oldest first, after `afterId`; `meterId` and `code` narrow the list in the query. */
  listDeadLetters(options?: { limit?: number; afterId?: number; code?: string; meterId?: string; includeReplayed?: boolean }): DeadLetter[];
  markReplayed(ids: readonly number[], atMs: number): void;
  /** Every rejection by code, the dead letters beyond a meter's quota included. */
  rejectionCounts(): Record<string, number>;
  /**
   * Rejections received in [fromMs, toMs), per meter ('' : no meter in the topic) and reason
   * (SPEC section 4, `rejected`), the ones beyond a meter's quota included: those are counted per
   * hour and fall in the window that holds the first of them in that hour.
   */
  rejectionCountsByMeter(fromMs: number, toMs: number): Record<string, Record<string, number>>;
  /** How many dead letters are kept, and how many were only counted (beyond the quota). */
  deadLetterStats(): DeadLetterStats;
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
  /** NULL in rows written before the column existed: they were kept whole. */
  payload_bytes: number | null;
}

/** Every problem with the options at once (STYLE habit 3). */
function validateOptions(settings: DurableStoreOptions): void {
  const problems: string[] = [];
  const wholeAtLeast = (name: keyof DurableStoreOptions, min: number): void => {
    const value = settings[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) problems.push(`${name}=${String(value)}: expected a whole number >= ${min}`);
  };
  if (!settings.path) problems.push('path is empty: name the SQLite file');
  wholeAtLeast('maxRecords', 1);
  wholeAtLeast('deadLetterMaxPayloadBytes', 0);
  wholeAtLeast('deadLettersPerMeterHour', 0);
  wholeAtLeast('busyTimeoutMs', 0);
  if (!(settings.meterShare > 0 && settings.meterShare <= 1)) problems.push(`meterShare=${String(settings.meterShare)}: expected a fraction with 0 < meterShare <= 1`);
  if (problems.length > 0) throw new Error(`invalid durable store options:\n  - ${problems.join('\n  - ')}`);
}

/**
 * The first `maxBytes` bytes of `text` in UTF-8, cut before a character that would not fit
 * whole, and the size of the whole text.
 */
export function truncateUtf8(text: string, maxBytes: number): { text: string; bytes: number } {
  // A UTF-16 code unit takes at most 3 bytes: short texts need no encoding to know they fit.
  if (text.length * 3 <= maxBytes) return { text, bytes: Buffer.byteLength(text, 'utf8') };
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, bytes };
  const encoded = Buffer.from(text, 'utf8');
  let end = maxBytes;
  // 10xxxxxx continues a character that starts before `end`: cut before that character.
  while (end > 0 && ((encoded[end] as number) & 0xc0) === 0x80) end -= 1;
  return { text: encoded.toString('utf8', 0, end), bytes };
}

/** The schema, created or brought up to date in one transaction (a store of an earlier version opens as it is). */
function migrate(db: Database.Database): void {
  const hasTable = (name: string): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  const columnsOf = (table: string): string[] => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
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
  // The heartbeat of the ingest consuming the spool (INGEST_HEARTBEAT_MS): the last one, the first
  // of its stretch without a silence, and the process that wrote it.
  db.exec('CREATE TABLE IF NOT EXISTS ingest_heartbeat (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), at_ms INTEGER NOT NULL, since_ms INTEGER NOT NULL, pid INTEGER NOT NULL)');
  const spoolColumns = columnsOf('spool');
  if (!spoolColumns.includes('n')) db.exec('ALTER TABLE spool ADD COLUMN n INTEGER NOT NULL DEFAULT 1');
  // Rows of a store written before meters had a share carry meter '': they count as one meter.
  if (!spoolColumns.includes('meter')) db.exec("ALTER TABLE spool ADD COLUMN meter TEXT NOT NULL DEFAULT ''");
  // The UTC days of a row's readings, so that logging the meter-days written needs no parsing of
  // line protocol: epoch days (dayMs / DAY_MS), distinct, comma-separated; '' for a row without
  // readings (a status). NULL in rows an earlier version wrote: legacyReadingDays reads those.
  if (!spoolColumns.includes('reading_days')) db.exec('ALTER TABLE spool ADD COLUMN reading_days TEXT');
  // The size of the payload as received; the payload column may hold only its start.
  if (!columnsOf('dead_letter').includes('payload_bytes')) db.exec('ALTER TABLE dead_letter ADD COLUMN payload_bytes INTEGER');

  // The number of records waiting, in all and per meter, kept in the same transactions that add
  // and remove them, so every process reads them exactly with one primary-key lookup.
  db.exec(`
    CREATE TABLE IF NOT EXISTS spool_depth (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), records INTEGER NOT NULL);
    INSERT OR IGNORE INTO spool_depth (singleton, records) VALUES (1, (SELECT coalesce(sum(n), 0) FROM spool));
  `);
  if (!hasTable('spool_meter_depth')) {
    db.exec(`
      CREATE TABLE spool_meter_depth (meter TEXT PRIMARY KEY, records INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO spool_meter_depth (meter, records) SELECT meter, sum(n) FROM spool GROUP BY meter;
    `);
  }
  // Dead letters kept per meter ('' : none in the topic) and UTC hour, for the quota; only the
  // last hours are kept. Seeded from the letters already there, so an upgrade grants no extra quota.
  if (!hasTable('dead_letter_quota')) {
    db.exec(`
      CREATE TABLE dead_letter_quota (meter TEXT NOT NULL, hour INTEGER NOT NULL, stored INTEGER NOT NULL, PRIMARY KEY (meter, hour)) WITHOUT ROWID;
      INSERT INTO dead_letter_quota (meter, hour, stored)
        SELECT coalesce(meter_id, ''), received_at / ${HOUR_MS}, count(*) FROM dead_letter GROUP BY 1, 2;
    `);
  }
  // Dead letters beyond the quota: counted, never forgotten, by meter, hour and code; first_at
  // is the receipt time of the first of them, which places the count in a time window.
  db.exec(`
    CREATE TABLE IF NOT EXISTS dead_letter_over_quota (
      meter TEXT NOT NULL,
      hour INTEGER NOT NULL,
      code TEXT NOT NULL,
      n INTEGER NOT NULL,
      first_at INTEGER NOT NULL,
      PRIMARY KEY (meter, hour, code)
    ) WITHOUT ROWID;
  `);
}

/**
 * Writes a dead letter through `conn` (either of the store's two connections), inside the
 * caller's transaction: kept with its payload cut to size while its meter is under the hourly
 * quota, else only counted.
 */
function deadLetterWriter(conn: Database.Database, settings: DurableStoreOptions): (d: DeadLetterInput) => void {
  const insert = conn.prepare(
    'INSERT INTO dead_letter (received_at, topic, meter_id, client_id, code, reason, payload, payload_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const selectStored = conn.prepare('SELECT stored FROM dead_letter_quota WHERE meter = ? AND hour = ?').pluck();
  const countStored = conn.prepare(
    'INSERT INTO dead_letter_quota (meter, hour, stored) VALUES (?, ?, 1) ON CONFLICT (meter, hour) DO UPDATE SET stored = stored + 1',
  );
  const countOverQuota = conn.prepare(
    'INSERT INTO dead_letter_over_quota (meter, hour, code, n, first_at) VALUES (?, ?, ?, 1, ?) ' +
      'ON CONFLICT (meter, hour, code) DO UPDATE SET n = n + 1, first_at = min(first_at, excluded.first_at)',
  );
  const pruneQuota = conn.prepare('DELETE FROM dead_letter_quota WHERE hour < ?');
  let prunedBelow = Number.NEGATIVE_INFINITY;
  return (d) => {
    const meter = d.meterId ?? '';
    const hour = Math.floor(d.receivedAtMs / HOUR_MS);
    if (hour - QUOTA_HOURS_KEPT > prunedBelow) {
      prunedBelow = hour - QUOTA_HOURS_KEPT;
      pruneQuota.run(prunedBelow);
    }
    const stored = (selectStored.get(meter, hour) as number | undefined) ?? 0;
    if (stored >= settings.deadLettersPerMeterHour) {
      countOverQuota.run(meter, hour, d.code, d.receivedAtMs);
      return;
    }
    const payload = truncateUtf8(d.payload, settings.deadLetterMaxPayloadBytes);
    insert.run(d.receivedAtMs, d.topic, d.meterId, d.clientId, d.code, d.reason, payload.text, payload.bytes);
    countStored.run(meter, hour);
  };
}

/** The reading_days column of a row holding `records`: the distinct UTC epoch days of its readings. */
function readingDaysOf(records: readonly SpoolRecord[]): string {
  const days: number[] = [];
  let last = Number.NaN;
  for (const r of records) {
    if (r.kind !== 'reading') continue;
    const day = Math.floor(r.tsMs / DAY_MS);
    // A backfill array is in time order as a rule: most readings repeat the day before them.
    if (day === last) continue;
    last = day;
    if (!days.includes(day)) days.push(day);
  }
  return days.join(',');
}

interface SpoolRow {
  meterId: string;
  receivedAtMs: number;
  text: string;
  n: number;
  readingDays: string;
}

/** The lines of one append, one row per meter (a message is one meter's: one row in practice). */
function rowsOf(records: readonly SpoolRecord[]): SpoolRow[] {
  const first = records[0];
  if (first === undefined) return [];
  if (records.length === 1) {
    // One live reading or status: the common case, kept free of arrays and joins.
    const readingDays = first.kind === 'reading' ? String(Math.floor(first.tsMs / DAY_MS)) : '';
    return [{ meterId: first.meterId, receivedAtMs: first.receivedAtMs, text: first.line, n: 1, readingDays }];
  }
  if (records.every((r) => r.meterId === first.meterId)) {
    return [{ meterId: first.meterId, receivedAtMs: first.receivedAtMs, text: records.map((r) => r.line).join('\n'), n: records.length, readingDays: readingDaysOf(records) }];
  }
  const byMeter = new Map<string, SpoolRecord[]>();
  for (const r of records) {
    const group = byMeter.get(r.meterId);
    if (group) group.push(r);
    else byMeter.set(r.meterId, [r]);
  }
  return [...byMeter].map(([meterId, group]) => ({
    meterId,
    receivedAtMs: group[0]!.receivedAtMs,
    text: group.map((r) => r.line).join('\n'),
    n: group.length,
    readingDays: readingDaysOf(group),
  }));
}

/**
 * LEGACY: the meter-days of a spool row written before rows kept their reading days
 * (reading_days NULL: a store of an earlier version, or a process of one still appending),
 * read back from its `reading` lines exactly as the ingest did then. Meter ids are plain
 * ([A-Za-z0-9_.-], SPEC section 1): the tag needs no unescaping. Nothing else parses lines.
 */
function legacyReadingDays(text: string): WrittenDay[] {
  const days: WrittenDay[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('reading,meter=')) continue;
    const meterEnd = line.indexOf(',', 14);
    const meterId = line.slice(14, meterEnd);
    const dayMs = Math.floor(Number(line.slice(line.lastIndexOf(' ') + 1)) / DAY_MS) * DAY_MS;
    days.push({ meterId, dayMs });
  }
  return days;
}

/** The database file and its WAL companions: owner only (they hold every meter's readings). */
function restrictDatabaseFiles(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) restrictFileMode(file, PRIVATE_FILE_MODE);
}

export function openDurableStore(options: Partial<DurableStoreOptions> & { path: string }): DurableStore {
  const settings: DurableStoreOptions = { ...DEFAULT_DURABLE_STORE_OPTIONS, ...options };
  validateOptions(settings);
  const meterMaxRecords = Math.max(Math.ceil(settings.maxRecords * settings.meterShare), 1);
  ensurePrivateDir(dirname(settings.path));
  // Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the database's mode.
  closeSync(openSync(settings.path, 'a', PRIVATE_FILE_MODE));
  restrictFileMode(settings.path, PRIVATE_FILE_MODE);
  const db = new Database(settings.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${settings.busyTimeoutMs}`);
  // IMMEDIATE: a second process opening the same file at once waits instead of migrating twice.
  db.transaction(() => migrate(db)).immediate();
  // A store of an earlier version may have left its -wal and -shm with 0644.
  restrictDatabaseFiles(settings.path);

  const insertRow = db.prepare('INSERT INTO spool (received_at, line, n, meter, reading_days) VALUES (?, ?, ?, ?, ?)');
  const addDepth = db.prepare('UPDATE spool_depth SET records = records + ? WHERE singleton = 1');
  const addMeterDepth = db.prepare(
    'INSERT INTO spool_meter_depth (meter, records) VALUES (?, ?) ON CONFLICT (meter) DO UPDATE SET records = records + excluded.records',
  );
  const writeDeadLetter = deadLetterWriter(db, settings);
  const selectAfter = db.prepare('SELECT id, received_at, line, meter FROM spool WHERE id > ? ORDER BY id').raw(true);
  const selectDepth = db.prepare('SELECT records FROM spool_depth WHERE singleton = 1').pluck();
  const selectMeterDepth = db.prepare('SELECT records FROM spool_meter_depth WHERE meter = ?').pluck();
  const selectOldest = db.prepare('SELECT received_at FROM spool ORDER BY id LIMIT 1').pluck();
  const selectCounts = db.prepare(`
    SELECT code, sum(n) AS n FROM (
      SELECT code, count(*) AS n FROM dead_letter GROUP BY code
      UNION ALL
      SELECT code, sum(n) AS n FROM dead_letter_over_quota GROUP BY code
    ) GROUP BY code`);
  const selectCountsByMeter = db.prepare(`
    SELECT meter, code, sum(n) AS n FROM (
      SELECT coalesce(meter_id, '') AS meter, code, count(*) AS n FROM dead_letter WHERE received_at >= @from AND received_at < @to GROUP BY meter_id, code
      UNION ALL
      SELECT meter, code, sum(n) AS n FROM dead_letter_over_quota WHERE first_at >= @from AND first_at < @to GROUP BY meter, code
    ) GROUP BY meter, code`);
  const selectStoredCount = db.prepare('SELECT count(*) FROM dead_letter').pluck();
  const selectOverQuotaCount = db.prepare('SELECT coalesce(sum(n), 0) FROM dead_letter_over_quota').pluck();
  const selectWrittenSince = db.prepare('SELECT meter, day_ms, version FROM written_day WHERE version > ? ORDER BY version').raw(true);
  const selectWrittenVersion = db.prepare('SELECT coalesce(max(version), 0) FROM written_day').pluck();
  const updateReplayed = db.prepare('UPDATE dead_letter SET replayed_at = ? WHERE id = ?');

  const commit = db.transaction((batch: readonly PendingAppend[]) => {
    let added = 0;
    // One depth update per meter per commit, however many of its messages the commit holds.
    const addedByMeter = new Map<string, number>();
    for (const item of batch) {
      for (const row of rowsOf(item.records)) {
        insertRow.run(row.receivedAtMs, row.text, row.n, row.meterId, row.readingDays);
        addedByMeter.set(row.meterId, (addedByMeter.get(row.meterId) ?? 0) + row.n);
        added += row.n;
      }
      for (const d of item.deadLetters) writeDeadLetter(d);
    }
    for (const [meterId, n] of addedByMeter) addMeterDepth.run(meterId, n);
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
  // The acknowledged range grouped by meter and days: one pass over the rows about to be deleted
  // gives both the depth to subtract and the meter-days to log.
  const ackGroupsUpTo = ackDb.prepare('SELECT meter, reading_days, sum(n) FROM spool WHERE id <= ? GROUP BY meter, reading_days').raw(true);
  const ackLegacyRowsUpTo = ackDb.prepare('SELECT line FROM spool WHERE id <= ? AND reading_days IS NULL').pluck();
  const ackSubtractDepth = ackDb.prepare('UPDATE spool_depth SET records = max(0, records - ?) WHERE singleton = 1');
  const ackSubtractMeterDepth = ackDb.prepare('UPDATE spool_meter_depth SET records = max(0, records - ?) WHERE meter = ?');
  const ackWriteDeadLetter = deadLetterWriter(ackDb, settings);
  const ackNextVersion = ackDb.prepare('SELECT coalesce(max(version), 0) + 1 FROM written_day').pluck();
  const ackUpsertDay = ackDb.prepare(
    'INSERT INTO written_day (meter, day_ms, version) VALUES (?, ?, ?) ON CONFLICT (meter, day_ms) DO UPDATE SET version = excluded.version',
  );
  // The heartbeat goes through the acknowledgements' connection: no fsync of its own (losing one
  // in a crash only makes the ingest look silent for a few seconds more).
  // A beat after a silence (or from before a clock step back) starts a new stretch.
  const ackBeat = ackDb.prepare(
    'INSERT INTO ingest_heartbeat (singleton, at_ms, since_ms, pid) VALUES (1, @now, @now, @pid) ON CONFLICT (singleton) DO UPDATE SET ' +
      'since_ms = CASE WHEN @now >= at_ms AND @now - at_ms <= @silence THEN since_ms ELSE @now END, at_ms = @now, pid = @pid',
  );
  const ackClearBeat = ackDb.prepare('DELETE FROM ingest_heartbeat WHERE pid = ? AND at_ms = ?');
  const selectBeat = db.prepare('SELECT at_ms, since_ms FROM ingest_heartbeat WHERE singleton = 1').raw(true);
  /** When this store last recorded the heartbeat (null: never), so it writes at most one every INGEST_HEARTBEAT_MS. */
  let beatAtMs: number | null = null;
  function beat(): void {
    const now = settings.clock();
    if (beatAtMs !== null && now - beatAtMs < INGEST_HEARTBEAT_MS && now >= beatAtMs) return;
    try {
      ackBeat.run({ now, pid: process.pid, silence: INGEST_SILENCE_MS });
      beatAtMs = now;
    } catch {
      // A busy database: the next poll tries again. A heartbeat must never stop the ingest.
    }
  }

  const acknowledgeTx = ackDb.transaction((lastId: number, deadLetters: readonly DeadLetterInput[]) => {
    for (const d of deadLetters) ackWriteDeadLetter(d);
    const removedByMeter = new Map<string, number>();
    const writtenDays = new Map<string, WrittenDay>();
    const wrote = (meterId: string, dayMs: number): void => {
      const key = `${meterId}\n${dayMs}`;
      if (!writtenDays.has(key)) writtenDays.set(key, { meterId, dayMs });
    };
    let legacyRows = false;
    for (const [meter, readingDays, n] of ackGroupsUpTo.all(lastId) as [string, string | null, number][]) {
      removedByMeter.set(meter, (removedByMeter.get(meter) ?? 0) + n);
      if (readingDays === null) legacyRows = true;
      else if (readingDays !== '') for (const day of readingDays.split(',')) wrote(meter, Number(day) * DAY_MS);
    }
    if (legacyRows) for (const text of ackLegacyRowsUpTo.all(lastId) as string[]) for (const day of legacyReadingDays(text)) wrote(day.meterId, day.dayMs);
    if (writtenDays.size > 0) {
      const version = ackNextVersion.get() as number;
      for (const day of writtenDays.values()) ackUpsertDay.run(day.meterId, day.dayMs, version);
    }
    let removed = 0;
    for (const [meter, n] of removedByMeter) {
      ackSubtractMeterDepth.run(n, meter);
      removed += n;
    }
    if (removed > 0) ackSubtractDepth.run(removed);
    ackDeleteUpTo.run(lastId);
  });

  let pending: PendingAppend[] = [];
  let flushScheduled = false;
  let closed = false;
  const listeners = new Set<() => void>();
  // The depth is asked before every PUBACK (refusal), and a SQLite read costs microseconds on
  // the broker's hot path. It is read once per event-loop turn: appends commit once per turn
  // (group commit), so within a turn the committed depth cannot change but by this process's
  // own commits and acknowledgements, which drop the cached value. Another process's
  // acknowledgements (a standalone ingest) only lower it, and are seen from the next turn.
  let turnDepth: number | null = null;
  const turnMeterDepth = new Map<string, number>();
  let forgetScheduled = false;
  function forgetDepthsNextTurn(): void {
    if (forgetScheduled) return;
    forgetScheduled = true;
    setImmediate(forgetDepths);
  }
  function forgetDepths(): void {
    forgetScheduled = false;
    turnDepth = null;
    turnMeterDepth.clear();
  }
  function countRecords(): number {
    if (turnDepth === null) {
      turnDepth = selectDepth.get() as number;
      forgetDepthsNextTurn();
    }
    return turnDepth;
  }
  function countMeterRecords(meterId: string): number {
    let depth = turnMeterDepth.get(meterId);
    if (depth === undefined) {
      depth = (selectMeterDepth.get(meterId) as number | undefined) ?? 0;
      turnMeterDepth.set(meterId, depth);
      forgetDepthsNextTurn();
    }
    return depth;
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
    } finally {
      forgetDepths();
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
    refusal(meterId) {
      const total = countRecords();
      if (total >= settings.maxRecords) return 'store_full';
      // No meter can hold its share while the whole store holds less: one lookup, not two, on
      // the broker's hot path whenever InfluxDB keeps up.
      if (total < meterMaxRecords) return null;
      if (countMeterRecords(meterId) >= meterMaxRecords) return 'meter_share';
      return null;
    },
    meterDepth: countMeterRecords,
    readHead(limit) {
      return this.readAfter(0, limit);
    },
    readAfter(afterId, limit) {
      beat();
      // Whole rows only (a message is never split across batches), until `limit` lines are in.
      const lines: string[] = [];
      const meterIds: string[] = [];
      let lastId = -1;
      let oldestReceivedAtMs = 0;
      for (const [id, receivedAt, text, meter] of selectAfter.iterate(afterId) as IterableIterator<[number, number, string, string]>) {
        if (lastId === -1) oldestReceivedAtMs = receivedAt;
        lastId = id;
        if (text.includes('\n')) {
          for (const line of text.split('\n')) {
            lines.push(line);
            meterIds.push(meter);
          }
        } else {
          lines.push(text);
          meterIds.push(meter);
        }
        if (lines.length >= limit) break;
      }
      return lastId === -1 ? null : { lastId, lines, meterIds, oldestReceivedAtMs };
    },
    acknowledge(lastId, deadLetters = []) {
      try {
        acknowledgeTx(lastId, deadLetters);
      } finally {
        forgetDepths();
      }
    },
    depth() {
      const records = countRecords();
      return { records, oldestReceivedAtMs: records === 0 ? null : (selectOldest.get() as number) };
    },
    listDeadLetters({ limit = 100, afterId = 0, code, meterId, includeReplayed = true } = {}) {
      const where = ['id > @afterId'];
      if (code) where.push('code = @code');
      if (meterId !== undefined) where.push('meter_id = @meterId');
      if (!includeReplayed) where.push('replayed_at IS NULL');
      const rows = db
        .prepare(`SELECT * FROM dead_letter WHERE ${where.join(' AND ')} ORDER BY id LIMIT @limit`)
        .all({ afterId, code, meterId, limit }) as DeadLetterRow[];
      return rows.map((row) => {
        const keptBytes = Buffer.byteLength(row.payload, 'utf8');
        const payloadBytes = row.payload_bytes ?? keptBytes;
        return {
          id: row.id,
          receivedAtMs: row.received_at,
          topic: row.topic,
          meterId: row.meter_id,
          clientId: row.client_id,
          code: row.code,
          reason: row.reason,
          payload: row.payload,
          replayedAtMs: row.replayed_at,
          payloadBytes,
          truncated: payloadBytes > keptBytes,
        };
      });
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
    ingestAliveSince() {
      const row = selectBeat.get() as [number, number] | undefined;
      if (row === undefined) return null;
      const [atMs, sinceMs] = row;
      const silenceMs = settings.clock() - atMs;
      // A heartbeat from the future (a clock stepped back) counts as silence: never trust the log on a guess.
      return silenceMs >= 0 && silenceMs <= INGEST_SILENCE_MS ? sinceMs : null;
    },
    writtenDaysSince(since) {
      const rows = selectWrittenSince.all(since) as [string, number, number][];
      const version = rows.length > 0 ? rows[rows.length - 1]![2] : Math.max(since, selectWrittenVersion.get() as number);
      return { version, days: rows.map(([meterId, dayMs]) => ({ meterId, dayMs })) };
    },
    rejectionCountsByMeter(fromMs, toMs) {
      const counts: Record<string, Record<string, number>> = {};
      for (const row of selectCountsByMeter.all({ from: fromMs, to: toMs }) as { meter: string; code: string; n: number }[]) {
        (counts[row.meter] ??= {})[row.code] = row.n;
      }
      return counts;
    },
    deadLetterStats() {
      return { stored: selectStoredCount.get() as number, notStored: selectOverQuotaCount.get() as number };
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
      // A stopped ingest is silent at once (the API's cache then validates against InfluxDB), not a minute later.
      if (beatAtMs !== null) {
        try {
          ackClearBeat.run(process.pid, beatAtMs);
        } catch {
          // Busy: the heartbeat goes stale within INGEST_SILENCE_MS instead.
        }
      }
      ackDb.close();
      db.close();
    },
  };
}
