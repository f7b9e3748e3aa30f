import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensurePrivateDir, PRIVATE_FILE_MODE, restrictFileMode } from '@flowpilot/store/private-files';
import type { Alert, AlertTransition } from './types.ts';

/**
 * The notifier's outbox (SPEC section 9): one row per alert transition and destination,
 * committed (WAL, synchronous = FULL) before the first attempt to deliver it, deleted only once
 * the destination took it. What is in the table has not been delivered, and survives a crash or
 * a restart of the API: the next notifier on the same file picks the rows up where this one left
 * them.
 *
 * Rows are read per destination, oldest first (`seq`, AUTOINCREMENT so a deleted row's number is
 * never handed out again): a destination gets its notifications in the order the alerts changed,
 * and one that is down holds back only its own rows.
 *
 * Without a data directory the same table lives in memory: nothing survives a restart, but the
 * delivery code is the same.
 */

export type NotifyChannel = 'webhook' | 'email';

export const NOTIFY_CHANNELS: readonly NotifyChannel[] = ['webhook', 'email'];

/** Where a row goes: `key` is stable across restarts (the webhook's URL; `email` for the one e-mail destination). */
export interface Destination {
  key: string;
  channel: NotifyChannel;
}

export interface OutboxRow {
  /** Order of arrival, the same for every destination of one transition. */
  seq: number;
  /** Unique and stable across attempts and restarts: the receivers' idempotency key (X-FlowPilot-Delivery). */
  deliveryId: string;
  destination: string;
  channel: NotifyChannel;
  kind: AlertTransition['kind'];
  /** The alert as it was when it changed state (a later change is a later row). */
  alert: Alert;
  createdAtMs: number;
  /** Attempts so far, across restarts. */
  attempts: number;
  lastError: string | null;
}

export interface DeliveryQueue {
  /** Commits one row per destination in one durable transaction; returns them in the order given. */
  enqueue(transition: AlertTransition, destinations: readonly Destination[], nowMs: number): OutboxRow[];
  /** The oldest row waiting for `destination`, or null when it has none. */
  head(destination: string): OutboxRow | null;
  /** The destination took the row: forget it. */
  delivered(seq: number): void;
  /** An attempt failed: count it and keep why (for the next start's log and for an operator reading the file). */
  failed(seq: number, error: string, nextAttemptAtMs: number): void;
  /** Rows waiting, by destination key. */
  pendingByDestination(): Map<string, number>;
  close(): void;
}

export const OUTBOX_FILE_NAME = 'alerts-outbox.sqlite';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    alert TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error TEXT
  );
  CREATE INDEX IF NOT EXISTS outbox_destination ON outbox (destination, seq);
`;

type RawRow = [number, string, string, string, string, string, number, number, string | null];

function toRow(raw: RawRow): OutboxRow {
  const [seq, deliveryId, destination, channel, kind, alert, createdAtMs, attempts, lastError] = raw;
  return {
    seq,
    deliveryId,
    destination,
    channel: channel as NotifyChannel,
    kind: kind as AlertTransition['kind'],
    alert: JSON.parse(alert) as Alert,
    createdAtMs,
    attempts,
    lastError,
  };
}

/** Opens (creating it 0600 in a 0700 directory) the outbox at `path`, or an in-memory one for null. */
export function openDeliveryQueue(path: string | null): DeliveryQueue {
  let db: Database.Database;
  if (path === null) {
    db = new Database(':memory:');
  } else {
    ensurePrivateDir(dirname(path));
    // Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the database's
    // mode. The rows hold alerts of the pilot's meters (SPEC section 8: owner only).
    closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
    restrictFileMode(path, PRIVATE_FILE_MODE);
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
  }
  // FULL: a notification the engine handed over is on disk before notify() returns. The volume
  // is a few rows per alert, so every commit may pay its fsync.
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);
  if (path !== null) for (const file of [path, `${path}-wal`, `${path}-shm`]) restrictFileMode(file, PRIVATE_FILE_MODE);

  const insert = db.prepare('INSERT INTO outbox (delivery_id, destination, channel, kind, alert, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const selectHead = db
    .prepare('SELECT seq, delivery_id, destination, channel, kind, alert, created_at, attempts, last_error FROM outbox WHERE destination = ? ORDER BY seq LIMIT 1')
    .raw(true);
  const remove = db.prepare('DELETE FROM outbox WHERE seq = ?');
  const markFailed = db.prepare('UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE seq = ?');
  const countByDestination = db.prepare('SELECT destination, count(*) FROM outbox GROUP BY destination').raw(true);

  const enqueueAll = db.transaction((transition: AlertTransition, destinations: readonly Destination[], nowMs: number): OutboxRow[] => {
    const alert = JSON.stringify(transition.alert);
    return destinations.map((destination) => {
      const deliveryId = randomUUID();
      const seq = Number(insert.run(deliveryId, destination.key, destination.channel, transition.kind, alert, nowMs).lastInsertRowid);
      return {
        seq,
        deliveryId,
        destination: destination.key,
        channel: destination.channel,
        kind: transition.kind,
        alert: JSON.parse(alert) as Alert,
        createdAtMs: nowMs,
        attempts: 0,
        lastError: null,
      };
    });
  });

  return {
    enqueue(transition, destinations, nowMs) {
      return destinations.length === 0 ? [] : enqueueAll(transition, destinations, nowMs);
    },
    head(destination) {
      const raw = selectHead.get(destination) as RawRow | undefined;
      return raw ? toRow(raw) : null;
    },
    delivered(seq) {
      remove.run(seq);
    },
    failed(seq, error, nextAttemptAtMs) {
      // An error text is the receiver's or the SMTP server's words: keep a line of it, not a page.
      markFailed.run(error.slice(0, 500), nextAttemptAtMs, seq);
    },
    pendingByDestination() {
      return new Map((countByDestination.all() as [string, number][]).map(([destination, n]) => [destination, n]));
    },
    close() {
      if (db.open) db.close();
    },
  };
}
