import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDir, PRIVATE_FILE_MODE, restrictFileMode } from '@flowpilot/store';
import { ALERT_RULES } from './types.ts';
import type { Alert, AlertRule, AlertState } from './types.ts';

/**
 * Where alerts live (SPEC section 9: an alert "survives restarts"): a SQLite file in the API's
 * data dir, `alerts.sqlite`, written like packages/store's engine (WAL, synchronous=FULL, owner
 * only). Each change of an alert is one small transaction, durable when `save` returns; alerts
 * change a few times a day, so the fsync costs nothing worth saving.
 *
 * `createMemoryAlertStore` keeps them in memory: for tests only (it forgets on restart), and
 * named so. The same contract suite runs on both (alert-store.test.ts, STYLE habit 8).
 */

/** An alert as the engine keeps it: the API's Alert plus whether its `resolved` notification went out. */
export interface StoredAlert extends Alert {
  /**
   * The `resolved` notification is held back until the alert stayed resolved for `flapMinutes`
   * (alert-engine.ts): false while that wait lasts, so a restart in between still sends it.
   */
  resolveNotified: boolean;
}

export interface AlertFilter {
  /** Only alerts in this state; both when absent. */
  state?: AlertState;
  /** Only alerts that overlap [fromMs, toMs): firing at some time in it. */
  fromMs?: number;
  toMs?: number;
  /** At most this many, newest (by `since`) first. */
  limit: number;
}

export interface AlertStore {
  /** Whether alerts survive a restart of the process. */
  readonly durable: boolean;
  /**
   * The alerts the engine still tracks: every firing one, and the resolved ones whose `resolved`
   * notification is still held back (they may reopen).
   */
  active(): StoredAlert[];
  /** Creates or replaces the alert with this id. */
  save(alert: StoredAlert): void;
  /** Alerts matching the filter, newest first (by `since`, then id). */
  list(filter: AlertFilter): Alert[];
  close(): void;
}

export const ALERT_STORE_FILE = 'alerts.sqlite';

/** The file name of the alert store in a data dir. */
export function alertStorePath(dataDir: string): string {
  return join(dataDir, ALERT_STORE_FILE);
}

interface AlertRow {
  id: string;
  rule: string;
  meter_id: string | null;
  state: string;
  since_ms: number;
  until_ms: number | null;
  message: string;
  details: string;
  resolve_notified: number;
}

const SCHEMA_VERSION = 1;

function toAlert(row: AlertRow): StoredAlert {
  return {
    id: row.id,
    rule: (ALERT_RULES as readonly string[]).includes(row.rule) ? (row.rule as AlertRule) : 'alarm',
    meterId: row.meter_id,
    state: row.state === 'firing' ? 'firing' : 'resolved',
    since: new Date(row.since_ms).toISOString(),
    until: row.until_ms === null ? null : new Date(row.until_ms).toISOString(),
    message: row.message,
    details: parseDetails(row.details),
    resolveNotified: row.resolve_notified === 1,
  };
}

function parseDetails(text: string): Alert['details'] {
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
    const details: Alert['details'] = {};
    for (const [key, v] of Object.entries(value)) if (typeof v === 'string' || typeof v === 'number' || v === null) details[key] = v;
    return details;
  } catch {
    return {};
  }
}

const publicAlert = ({ resolveNotified: _resolveNotified, ...alert }: StoredAlert): Alert => alert;

/** The durable store: `alerts.sqlite` in `dataDir` (created 0700 if missing; the file 0600). */
export function openAlertStore(dataDir: string): AlertStore {
  // The operator's data dir may be shared (a home, /var/lib): created private, an existing one left as it is.
  ensurePrivateDir(dataDir);
  const path = alertStorePath(dataDir);
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
  restrictFileMode(path);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`${path} was written by a newer FlowPilot (alert schema ${version}); upgrade this one`);
    db.exec(`
      CREATE TABLE IF NOT EXISTS alert (
        id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        meter_id TEXT,
        state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
        since_ms INTEGER NOT NULL,
        until_ms INTEGER,
        message TEXT NOT NULL,
        details TEXT NOT NULL,
        resolve_notified INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS alert_since ON alert (since_ms);
      CREATE INDEX IF NOT EXISTS alert_active ON alert (state, resolve_notified);
    `);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  for (const file of [path, `${path}-wal`, `${path}-shm`]) restrictFileMode(file);

  const selectActive = db.prepare<[], AlertRow>("SELECT * FROM alert WHERE state = 'firing' OR resolve_notified = 0 ORDER BY since_ms, id");
  const upsert = db.prepare(
    'INSERT INTO alert (id, rule, meter_id, state, since_ms, until_ms, message, details, resolve_notified) ' +
      'VALUES (@id, @rule, @meterId, @state, @sinceMs, @untilMs, @message, @details, @resolveNotified) ' +
      'ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, meter_id = excluded.meter_id, state = excluded.state, since_ms = excluded.since_ms, ' +
      'until_ms = excluded.until_ms, message = excluded.message, details = excluded.details, resolve_notified = excluded.resolve_notified',
  );
  const selectList = db.prepare<{ state: string | null; fromMs: number | null; toMs: number | null; limit: number }, AlertRow>(
    'SELECT * FROM alert WHERE (@state IS NULL OR state = @state) AND (@toMs IS NULL OR since_ms < @toMs) ' +
      'AND (@fromMs IS NULL OR until_ms IS NULL OR until_ms >= @fromMs) ORDER BY since_ms DESC, id DESC LIMIT @limit',
  );
  let closed = false;

  return {
    durable: true,
    active: () => selectActive.all().map(toAlert),
    save(alert) {
      upsert.run({
        id: alert.id,
        rule: alert.rule,
        meterId: alert.meterId,
        state: alert.state,
        sinceMs: Date.parse(alert.since),
        untilMs: alert.until === null ? null : Date.parse(alert.until),
        message: alert.message,
        details: JSON.stringify(alert.details),
        resolveNotified: alert.resolveNotified ? 1 : 0,
      });
    },
    list: (filter) =>
      selectList.all({ state: filter.state ?? null, fromMs: filter.fromMs ?? null, toMs: filter.toMs ?? null, limit: filter.limit }).map((row) => publicAlert(toAlert(row))),
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}

/** Alerts in memory, lost on restart: FOR TESTS ONLY (the API uses openAlertStore). */
export function createMemoryAlertStore(): AlertStore {
  const alerts = new Map<string, StoredAlert>();
  const copy = (alert: StoredAlert): StoredAlert => ({ ...alert, details: { ...alert.details } });
  const newestFirst = (a: StoredAlert, b: StoredAlert) => Date.parse(b.since) - Date.parse(a.since) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  return {
    durable: false,
    active: () =>
      [...alerts.values()]
        .filter((a) => a.state === 'firing' || !a.resolveNotified)
        .sort((a, b) => -newestFirst(a, b))
        .map(copy),
    save: (alert) => {
      alerts.set(alert.id, copy(alert));
    },
    list: (filter) =>
      [...alerts.values()]
        .filter((a) => filter.state === undefined || a.state === filter.state)
        .filter((a) => filter.toMs === undefined || Date.parse(a.since) < filter.toMs)
        .filter((a) => filter.fromMs === undefined || a.until === null || Date.parse(a.until) >= filter.fromMs)
        .sort(newestFirst)
        .slice(0, filter.limit)
        .map((a) => publicAlert(copy(a))),
    close: () => {},
  };
}
