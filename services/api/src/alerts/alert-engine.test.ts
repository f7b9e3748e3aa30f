import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePilotConfig } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';
import { afterEach, describe, expect, it } from 'vitest';
import { createAlertEngine } from './alert-engine.ts';
import type { AlertEngine, AlertFactsSource, AlertTimers } from './alert-engine.ts';
import { createMemoryAlertStore, openAlertStore } from './alert-store.ts';
import type { AlertStore } from './alert-store.ts';
import type { AlertFacts, MeterFacts, PipelineFacts } from './rules.ts';
import type { AlertRule, AlertTransition } from './types.ts';

const T0 = Date.parse('2026-11-25T10:00:00Z');
const SEC = 1000;
const MIN = 60_000;

const PILOT = parsePilotConfig(`
pilot: { id: p, name: P, timezone: Asia/Almaty }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60, leakM3h: 1.5 }
  - { id: B, site: S, role: monitor, intervalSec: 60 }
alerts:
  meters:
    B: { staleIntervals: 1 }
`);

/** Facts set by hand; each meter healthy (and reporting all the time) until a test says otherwise. */
class FakeFacts implements AlertFactsSource {
  meters = new Map<string, MeterFacts>();
  /** Meters whose last reading is always "just now", until silenced. */
  reporting = new Set<string>();
  pipeline: PipelineFacts = { storeLagSec: 0, storeCheck: null, influx: { ok: true } };
  watchingSinceMs: number | null;
  refreshes = 0;
  readonly #listeners = new Set<(meterId: string) => void>();

  constructor(pilot: PilotConfig, nowMs: number) {
    this.watchingSinceMs = nowMs;
    for (const meter of pilot.meters) {
      this.meters.set(meter.id, this.healthy(meter.id, nowMs));
      this.reporting.add(meter.id);
    }
  }

  /** The meter stops publishing; its last reading arrived at `lastMs`. */
  silence(meterId: string, lastMs: number): void {
    this.reporting.delete(meterId);
    this.set(meterId, { lastReadingAtMs: lastMs });
  }

  healthy(meterId: string, nowMs: number): MeterFacts {
    return {
      meterId,
      lastReadingAtMs: nowMs,
      lastReading: { tsMs: nowMs, batteryPct: 90, alarms: [] },
      status: { online: true, tsMs: nowMs - MIN },
      night: { night: '2026-11-25', meanM3h: 0.2 },
      totalizer: { date: '2026-11-24', percent: 0.1 },
      rejectedLastHour: 0,
    };
  }

  set(meterId: string, extra: Partial<MeterFacts>): void {
    this.meters.set(meterId, { ...(this.meters.get(meterId) as MeterFacts), ...extra });
  }

  /** A reading arrives now: the live facts change and the listeners hear of it. */
  reading(meterId: string, nowMs: number, extra: Partial<NonNullable<MeterFacts['lastReading']>> = {}): void {
    this.reporting.add(meterId);
    this.set(meterId, { lastReadingAtMs: nowMs, lastReading: { tsMs: nowMs, batteryPct: 90, alarms: [], ...extra } });
    for (const listener of this.#listeners) listener(meterId);
  }

  async refresh(): Promise<void> {
    this.refreshes += 1;
  }

  snapshot(nowMs: number): AlertFacts {
    const meters = new Map([...this.meters].map(([id, m]) => [id, this.reporting.has(id) ? { ...m, lastReadingAtMs: nowMs } : m]));
    return { nowMs, watchingSinceMs: this.watchingSinceMs, meters, pipeline: { ...this.pipeline } };
  }

  onReading(listener: (meterId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Timers that run only when the test says so. */
class ManualTimers implements AlertTimers {
  callbacks = new Map<number, () => void>();
  everyMs: number | null = null;
  #next = 1;
  setInterval(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.callbacks.set(id, callback);
    this.everyMs = ms;
    return id;
  }
  clearInterval(handle: unknown): void {
    this.callbacks.delete(handle as number);
  }
}

interface World {
  now: { ms: number };
  facts: FakeFacts;
  store: AlertStore;
  timers: ManualTimers;
  sent: AlertTransition[];
  engine: AlertEngine;
  /** Moves the clock and runs one scheduled round. */
  advance(ms: number): Promise<void>;
  /** What the sinks were told, as "fired rule meter" / "resolved rule meter". */
  told(): string[];
}

const engines: AlertEngine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function world(options: { pilot?: PilotConfig; store?: AlertStore; facts?: FakeFacts; now?: { ms: number }; sent?: AlertTransition[] } = {}): Promise<World> {
  const pilot = options.pilot ?? PILOT;
  const now = options.now ?? { ms: T0 };
  const facts = options.facts ?? new FakeFacts(pilot, now.ms);
  const store = options.store ?? createMemoryAlertStore();
  const timers = new ManualTimers();
  const sent = options.sent ?? [];
  let n = 0;
  const engine = createAlertEngine({
    pilot,
    store,
    facts,
    timers,
    clock: () => now.ms,
    sinks: [{ notify: (transition) => sent.push(transition) }],
    evaluateEveryMs: 15 * SEC,
    newId: () => `alert-${++n}-${now.ms}`,
  });
  engines.push(engine);
  await engine.start();
  return {
    now,
    facts,
    store,
    timers,
    sent,
    engine,
    async advance(ms) {
      now.ms += ms;
      await engine.tick();
    },
    told: () => sent.map((t) => `${t.kind} ${t.alert.rule} ${t.alert.meterId ?? '-'}`),
  };
}

const all = (w: World) => w.engine.list({ limit: 100 });

describe('createAlertEngine', () => {
  it('evaluates on start and then every evaluateEveryMs on its timers', async () => {
    const w = await world();
    expect(w.facts.refreshes).toBe(1);
    expect(w.timers.everyMs).toBe(15 * SEC);
    for (const callback of w.timers.callbacks.values()) callback();
    await w.engine.tick();
    expect(w.facts.refreshes).toBe(2);
    expect(all(w)).toEqual([]);
  });

  // Each rule: the facts that make it hold, then the facts that end it.
  const cases: Array<[AlertRule, string | null, (w: World) => void, (w: World) => void]> = [
    ['stale', 'A', (w) => w.facts.silence('A', w.now.ms - 4 * MIN), (w) => w.facts.reading('A', w.now.ms)],
    ['offline', 'A', (w) => w.facts.set('A', { status: { online: false, tsMs: w.now.ms } }), (w) => w.facts.set('A', { status: { online: true, tsMs: w.now.ms } })],
    ['leak', 'A', (w) => w.facts.set('A', { night: { night: '2026-11-25', meanM3h: 3 } }), (w) => w.facts.set('A', { night: { night: '2026-11-26', meanM3h: 0.5 } })],
    ['alarm', 'A', (w) => w.facts.reading('A', w.now.ms, { alarms: ['empty_pipe'] }), (w) => w.facts.reading('A', w.now.ms)],
    ['low_battery', 'A', (w) => w.facts.reading('A', w.now.ms, { batteryPct: 12 }), (w) => w.facts.reading('A', w.now.ms, { batteryPct: 95 })],
    ['totalizer', 'A', (w) => w.facts.set('A', { totalizer: { date: '2026-11-24', percent: 4 } }), (w) => w.facts.set('A', { totalizer: { date: '2026-11-25', percent: 0.3 } })],
    ['rejected', 'A', (w) => w.facts.set('A', { rejectedLastHour: 25 }), (w) => w.facts.set('A', { rejectedLastHour: 0 })],
    ['store_lag', null, (w) => (w.facts.pipeline.storeLagSec = 900), (w) => (w.facts.pipeline.storeLagSec = 0)],
    ['influx_down', null, (w) => (w.facts.pipeline.influx = { ok: false, reason: 'connect ECONNREFUSED' }), (w) => (w.facts.pipeline.influx = { ok: true })],
  ];

  it.each(cases)('%s fires once when its condition holds, resolves when it stops, and says so after flapMinutes', async (rule, meterId, hold, end) => {
    const w = await world();
    w.now.ms += 5 * MIN;
    hold(w);
    await w.advance(15 * SEC);
    const label = `${rule} ${meterId ?? '-'}`;
    expect(w.told()).toEqual([`fired ${label}`]);
    const [fired] = all(w);
    expect(fired).toMatchObject({ rule, meterId, state: 'firing', until: null, message: expect.any(String) });
    expect(w.engine.firing()).toHaveLength(1);

    await w.advance(15 * SEC);
    expect(w.told()).toHaveLength(1);

    const endedAt = w.now.ms;
    end(w);
    await w.advance(15 * SEC);
    // At the reading that ended it (the live rules), else at the next evaluation.
    const until = all(w)[0]?.until;
    expect(all(w)[0]).toMatchObject({ id: fired?.id, state: 'resolved' });
    expect([endedAt, endedAt + 15 * SEC].map((ms) => new Date(ms).toISOString())).toContain(until);
    expect(w.engine.firing()).toEqual([]);
    // The "resolved" waits until the alert stayed resolved for flapMinutes (10).
    await w.advance(9 * MIN);
    expect(w.told()).toEqual([`fired ${label}`]);
    await w.advance(MIN);
    expect(w.told()).toEqual([`fired ${label}`, `resolved ${label}`]);
    expect(w.sent[1]?.alert).toMatchObject({ id: fired?.id, state: 'resolved' });
    await w.advance(20 * MIN);
    expect(w.told()).toHaveLength(2);
    expect(all(w)).toHaveLength(1);
  });

  it('stale: the alert begins when the condition did (3 intervals after the last reading), not when it was noticed', async () => {
    const w = await world();
    const lastMs = w.now.ms;
    w.facts.silence('A', lastMs);
    await w.advance(3 * MIN + 7 * SEC);
    const [stale] = all(w).filter((a) => a.rule === 'stale' && a.meterId === 'A');
    expect(stale?.since).toBe(new Date(lastMs + 3 * MIN).toISOString());
  });

  it('per-meter override: B (staleIntervals 1) goes stale after one interval, A (default 3) after three', async () => {
    const w = await world();
    w.facts.silence('A', w.now.ms);
    w.facts.silence('B', w.now.ms);
    await w.advance(61 * SEC);
    expect(w.told()).toEqual(['fired stale B']);
    await w.advance(2 * MIN);
    expect(w.told()).toEqual(['fired stale B', 'fired stale A']);
  });

  it('a condition that flaps within 10 minutes is one alert: one "fired", one "resolved", the same id', async () => {
    const w = await world();
    const flap = async (lowPct: number) => {
      w.facts.reading('A', w.now.ms, { batteryPct: lowPct });
      await w.advance(15 * SEC);
    };
    await flap(10);
    const id = all(w)[0]?.id;
    for (let i = 0; i < 5; i++) {
      await w.advance(2 * MIN);
      await flap(50); // resolved
      expect(all(w)[0]).toMatchObject({ id, state: 'resolved' });
      await w.advance(3 * MIN);
      await flap(10); // back within 10 minutes: the same alert again
      expect(all(w)[0]).toMatchObject({ id, state: 'firing', until: null });
    }
    await flap(50);
    await w.advance(9 * MIN);
    expect(w.told()).toEqual(['fired low_battery A']);
    await w.advance(2 * MIN);
    expect(w.told()).toEqual(['fired low_battery A', 'resolved low_battery A']);
    expect(all(w)).toHaveLength(1);
    expect(all(w)[0]).toMatchObject({ id, state: 'resolved', since: new Date(T0).toISOString() });
  });

  it('a condition that returns after flapMinutes is a new alert', async () => {
    const w = await world();
    w.facts.reading('A', w.now.ms, { alarms: ['tamper'] });
    await w.advance(15 * SEC);
    w.facts.reading('A', w.now.ms);
    await w.advance(10 * MIN);
    w.facts.reading('A', w.now.ms, { alarms: ['tamper'] });
    const alerts = all(w);
    expect(alerts).toHaveLength(2);
    expect(alerts[0]?.id).not.toBe(alerts[1]?.id);
    expect(alerts.map((a) => a.state)).toEqual(['firing', 'resolved']);
    expect(w.told()).toEqual(['fired alarm A', 'resolved alarm A', 'fired alarm A']);
  });

  it('re-evaluates a meter\'s live rules on each of its readings, without waiting for the timer', async () => {
    const w = await world();
    w.facts.reading('B', w.now.ms, { alarms: ['overload'] });
    expect(w.told()).toEqual(['fired alarm B']);
    expect(all(w)[0]?.details).toEqual({ alarm: 'overload' });
    w.facts.reading('B', w.now.ms, { alarms: ['overload', 'reverse_flow'] });
    // Still the same alert; its details follow the meter, without a second notification.
    expect(all(w)[0]?.details).toEqual({ alarm: 'reverse_flow,overload' });
    expect(w.told()).toEqual(['fired alarm B']);
  });

  it('an unknown fact neither opens nor resolves an alert', async () => {
    const w = await world();
    w.facts.set('A', { totalizer: { date: '2026-11-24', percent: -8 } });
    await w.advance(15 * SEC);
    w.facts.set('A', { totalizer: null });
    await w.advance(30 * MIN);
    expect(all(w)[0]).toMatchObject({ rule: 'totalizer', state: 'firing' });
    w.facts.pipeline.influx = null;
    await w.advance(15 * SEC);
    expect(w.told()).toEqual(['fired totalizer A']);
  });

  it('with flapMinutes 0 the "resolved" goes out at once', async () => {
    const pilot = parsePilotConfig('pilot: { id: p, name: P, timezone: UTC }\nmeters:\n  - { id: A, site: S, role: monitor, intervalSec: 60 }\nalerts: { flapMinutes: 0 }\n');
    const w = await world({ pilot });
    w.facts.reading('A', w.now.ms, { batteryPct: 5 });
    w.facts.reading('A', w.now.ms + SEC, { batteryPct: 90 });
    expect(w.told()).toEqual(['fired low_battery A', 'resolved low_battery A']);
  });

  it('a sink that throws neither stops the others nor the engine', async () => {
    const sent: AlertTransition[] = [];
    const store = createMemoryAlertStore();
    const now = { ms: T0 };
    const facts = new FakeFacts(PILOT, T0);
    const engine = createAlertEngine({
      pilot: PILOT,
      store,
      facts,
      clock: () => now.ms,
      timers: new ManualTimers(),
      sinks: [{ notify: () => { throw new Error('boom'); } }, { notify: (t) => sent.push(t) }],
    });
    engines.push(engine);
    await engine.start();
    facts.reading('A', now.ms, { alarms: ['leak'] });
    expect(sent.map((t) => t.kind)).toEqual(['fired']);
    expect(engine.firing()).toHaveLength(1);
  });
});

describe('restarts (the store keeps what the engine needs)', () => {
  const dirs: string[] = [];
  const opened: AlertStore[] = [];
  afterEach(() => {
    for (const store of opened.splice(0)) store.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A real SQLite store, closed and reopened as a restarted process would. */
  function sqliteStores(): { open(): AlertStore } {
    const dir = mkdtempSync(join(tmpdir(), 'flowpilot-alerts-'));
    dirs.push(dir);
    let current: AlertStore | null = null;
    return {
      open() {
        current?.close();
        current = openAlertStore(dir);
        opened.push(current);
        return current;
      },
    };
  }

  it('an alert firing before a restart continues after it: no second "fired", the same id, resolved once', async () => {
    const stores = sqliteStores();
    const now = { ms: T0 };
    const sent: AlertTransition[] = [];
    const facts = new FakeFacts(PILOT, T0);
    const first = await world({ store: stores.open(), now, facts, sent });
    facts.set('A', { rejectedLastHour: 40 });
    await first.advance(15 * SEC);
    const id = first.engine.firing()[0]?.id;
    await first.engine.stop();

    now.ms += 2 * MIN;
    const second = await world({ store: stores.open(), now, facts, sent });
    expect(second.engine.firing()).toMatchObject([{ id, rule: 'rejected', meterId: 'A' }]);
    await second.advance(15 * SEC);
    expect(second.told()).toEqual(['fired rejected A']);
    facts.set('A', { rejectedLastHour: 0 });
    await second.advance(15 * SEC);
    await second.advance(10 * MIN);
    expect(second.told()).toEqual(['fired rejected A', 'resolved rejected A']);
    expect(second.engine.list({ limit: 10 })).toMatchObject([{ id, state: 'resolved' }]);
  });

  it('a "resolved" held back at a restart is still sent, and a flap across the restart reopens the same alert', async () => {
    const stores = sqliteStores();
    const now = { ms: T0 };
    const sent: AlertTransition[] = [];
    const facts = new FakeFacts(PILOT, T0);
    const first = await world({ store: stores.open(), now, facts, sent });
    facts.pipeline.influx = { ok: false, reason: 'down' };
    await first.advance(15 * SEC);
    facts.pipeline.influx = { ok: true };
    await first.advance(15 * SEC);
    await first.engine.stop();

    // Back within flapMinutes, after a restart: the same alert, still one "fired".
    now.ms += 3 * MIN;
    facts.pipeline.influx = { ok: false, reason: 'down again' };
    const second = await world({ store: stores.open(), now, facts, sent });
    expect(second.engine.firing()).toMatchObject([{ rule: 'influx_down', message: expect.stringContaining('down again') }]);
    facts.pipeline.influx = { ok: true };
    await second.advance(15 * SEC);
    await second.engine.stop();

    // Restarted again while the "resolved" is held back: the third process sends it.
    now.ms += 5 * MIN;
    const third = await world({ store: stores.open(), now, facts, sent });
    expect(third.told()).toEqual(['fired influx_down -']);
    await third.advance(5 * MIN);
    expect(third.told()).toEqual(['fired influx_down -', 'resolved influx_down -']);
    expect(third.engine.list({ limit: 10 })).toHaveLength(1);
  });

  it('an alert of a meter no longer in the pilot file is resolved at start', async () => {
    const store = createMemoryAlertStore();
    const now = { ms: T0 };
    const sent: AlertTransition[] = [];
    const w = await world({ store, now, sent });
    w.facts.reading('B', now.ms, { alarms: ['tamper'] });
    await w.engine.stop();
    const onlyA = parsePilotConfig('pilot: { id: p, name: P, timezone: Asia/Almaty }\nmeters:\n  - { id: A, site: S, role: monitor, intervalSec: 60 }\n');
    const after = await world({ pilot: onlyA, store, now, sent });
    expect(after.engine.firing()).toEqual([]);
    expect(after.engine.list({ limit: 10 })[0]).toMatchObject({ meterId: 'B', state: 'resolved' });
    await after.advance(10 * MIN);
    expect(after.told()).toEqual(['fired alarm B', 'resolved alarm B']);
  });
});
