import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alertStorePath, createMemoryAlertStore, openAlertStore } from './alert-store.ts';
import type { AlertStore, StoredAlert } from './alert-store.ts';

const T0 = Date.parse('2026-11-25T10:00:00Z');
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

function alert(id: string, sinceMs: number, untilMs: number | null, extra: Partial<StoredAlert> = {}): StoredAlert {
  return {
    id,
    rule: 'stale',
    meterId: 'A',
    state: untilMs === null ? 'firing' : 'resolved',
    since: iso(sinceMs),
    until: untilMs === null ? null : iso(untilMs),
    message: `alert ${id}`,
    details: { threshold: 3, value: 4.5, lastReadingAt: null, note: 'ünïcode ✓' },
    resolveNotified: untilMs !== null,
    ...extra,
  };
}

const dirs: string[] = [];
const stores: AlertStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-alert-store-'));
  dirs.push(dir);
  return dir;
}

// One contract, both stores (STYLE habit 8).
const backends: Array<[string, () => AlertStore]> = [
  ['SQLite (openAlertStore)', () => openAlertStore(tempDir())],
  ['memory (createMemoryAlertStore, tests only)', () => createMemoryAlertStore()],
];

describe.each(backends)('AlertStore contract: %s', (_name, open) => {
  const fresh = (): AlertStore => {
    const store = open();
    stores.push(store);
    return store;
  };

  it('keeps an alert as saved and replaces it by id', () => {
    const store = fresh();
    const a = alert('a', T0, null, { rule: 'influx_down', meterId: null });
    store.save(a);
    const { resolveNotified: _resolveNotified, ...listed } = a;
    expect(store.list({ limit: 10 })).toEqual([listed]);
    store.save({ ...a, state: 'resolved', until: iso(T0 + MIN), message: 'changed', details: { value: 1 } });
    expect(store.list({ limit: 10 })).toMatchObject([{ id: 'a', state: 'resolved', until: iso(T0 + MIN), message: 'changed', details: { value: 1 } }]);
    expect(store.list({ limit: 10 })[0]).not.toHaveProperty('resolveNotified');
  });

  it('lists newest first, by state, by overlap with [from, to), at most `limit`', () => {
    const store = fresh();
    store.save(alert('old', T0, T0 + 10 * MIN));
    store.save(alert('mid', T0 + 20 * MIN, T0 + 30 * MIN));
    store.save(alert('new', T0 + 40 * MIN, null));
    const ids = (filter: Parameters<AlertStore['list']>[0]) => store.list(filter).map((a) => a.id);
    expect(ids({ limit: 10 })).toEqual(['new', 'mid', 'old']);
    expect(ids({ limit: 2 })).toEqual(['new', 'mid']);
    expect(ids({ limit: 10, state: 'firing' })).toEqual(['new']);
    expect(ids({ limit: 10, state: 'resolved' })).toEqual(['mid', 'old']);
    // Firing at some time in the window: begun before `to`, not resolved before `from`.
    expect(ids({ limit: 10, fromMs: T0 + 25 * MIN })).toEqual(['new', 'mid']);
    expect(ids({ limit: 10, toMs: T0 + 20 * MIN })).toEqual(['old']);
    expect(ids({ limit: 10, fromMs: T0 + 11 * MIN, toMs: T0 + 19 * MIN })).toEqual([]);
    expect(ids({ limit: 10, fromMs: T0 + 5 * MIN, toMs: T0 + 45 * MIN, state: 'resolved' })).toEqual(['mid', 'old']);
  });

  it('active(): the firing alerts and the resolved ones whose "resolved" is still held back', () => {
    const store = fresh();
    store.save(alert('done', T0, T0 + MIN));
    store.save(alert('held', T0 + MIN, T0 + 2 * MIN, { resolveNotified: false }));
    store.save(alert('firing', T0 + 3 * MIN, null));
    expect(store.active().map((a) => [a.id, a.resolveNotified])).toEqual([
      ['held', false],
      ['firing', false],
    ]);
  });
});

describe('openAlertStore', () => {
  it('keeps alerts across a reopen (a restart), in a file only its owner can read', () => {
    const dir = tempDir();
    const first = openAlertStore(dir);
    first.save(alert('x', T0, null, { rule: 'leak', details: { threshold: 1.5, value: 2.25, night: '2026-11-25' } }));
    first.close();
    const second = openAlertStore(dir);
    stores.push(second);
    expect(second.durable).toBe(true);
    expect(second.active()).toMatchObject([{ id: 'x', rule: 'leak', state: 'firing', details: { threshold: 1.5, value: 2.25, night: '2026-11-25' } }]);
    expect(statSync(alertStorePath(dir)).mode & 0o777).toBe(0o600);
  });

  it('creates a missing data dir, private', () => {
    const dir = join(tempDir(), 'nested', 'data');
    stores.push(openAlertStore(dir));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('the memory store says it is not durable', () => {
    expect(createMemoryAlertStore().durable).toBe(false);
  });
});
