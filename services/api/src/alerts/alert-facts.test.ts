import type { InfluxClient, ReadingsRepository, StoredReading } from '@flowpilot/influx';
import type { TimeWindow } from '@flowpilot/metrics';
import { parsePilotConfig } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { createMemoryLiveFeed } from '../live-feed.ts';
import type { ApiMeterMetrics, MetricsService } from '../metrics-service.ts';
import { createApiAlertFacts } from './alert-facts.ts';
import type { ApiAlertFactsOptions } from './alert-facts.ts';

// Where each fact comes from and how often it is read (alert-facts.ts), with fakes for InfluxDB,
// the metrics service and the durable store's counts.

const T0 = Date.parse('2026-11-25T10:00:00Z'); // 15:00 in Asia/Almaty
const MIN = 60_000;

const pilot = parsePilotConfig(`
pilot: { id: p, name: P, timezone: Asia/Almaty }
meters:
  - { id: A, site: S, role: monitor, intervalSec: 60 }
  - { id: B, site: S, role: monitor, intervalSec: 60 }
`);

function world(extra: Partial<ApiAlertFactsOptions> = {}) {
  const feed = createMemoryLiveFeed(() => T0, { meterIds: ['A', 'B'] });
  const windows: TimeWindow[] = [];
  let metricsFail = false;
  const metrics = {
    cached: true,
    metrics: async (window: TimeWindow) => {
      windows.push(window);
      if (metricsFail) throw new Error('InfluxDB unavailable');
      const nightly = window.toMs - window.fromMs > 24 * 60 * MIN;
      return [
        { meterId: 'A', minNightFlow: { latestM3h: nightly ? 2.5 : 9, latestNight: '2026-11-25' }, totalizerConsistency: { percent: -3.2 } },
        { meterId: 'B', minNightFlow: { latestM3h: null, latestNight: null }, totalizerConsistency: { percent: null } },
      ] as unknown as ApiMeterMetrics[];
    },
  } as unknown as MetricsService;
  const stored = new Map<string, StoredReading>([['B', { meterId: 'B', seq: 1, tsMs: T0 - 50 * MIN, receivedAtMs: T0 - 49 * MIN, flowM3h: 1, totalM3: 1, batteryPct: 15, alarms: ['tamper'] }]]);
  const readings = { latestOfEvery: async () => stored } as unknown as ReadingsRepository;
  let pingFails = false;
  const influx = {
    config: { url: 'http://influx.invalid', database: 'x' },
    ping: async () => {
      if (pingFails) throw new Error('connect ECONNREFUSED');
      return { version: 'fake' };
    },
  } as unknown as InfluxClient;
  const facts = createApiAlertFacts({ pilot, liveFeed: feed, metrics, readings, influx, ...extra });
  /** Lets the background InfluxDB reads finish. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  return {
    feed,
    facts,
    windows,
    settle,
    failMetrics: (fail: boolean) => (metricsFail = fail),
    failPing: (fail: boolean) => (pingFails = fail),
  };
}

describe('createApiAlertFacts', () => {
  it('takes the last reading from the live feed, else from InfluxDB', async () => {
    const w = world();
    w.feed.publishReading({ meterId: 'A', seq: 7, tsMs: T0 - 2000, flowM3h: 1, totalM3: 1, alarms: ['leak'] }, T0 - 1000);
    w.feed.publishStatus({ meterId: 'A', online: false, tsMs: T0 - 500 });
    await w.facts.refresh(T0);
    await w.settle();
    const snapshot = w.facts.snapshot(T0);
    expect(snapshot.meters.get('A')).toMatchObject({ lastReadingAtMs: T0 - 1000, lastReading: { tsMs: T0 - 2000, batteryPct: null, alarms: ['leak'] }, status: { online: false, tsMs: T0 - 500 } });
    expect(snapshot.meters.get('B')).toMatchObject({ lastReadingAtMs: T0 - 49 * MIN, lastReading: { batteryPct: 15, alarms: ['tamper'] }, status: null });
    expect(w.facts.lastReadingAtMs('B')).toBe(T0 - 49 * MIN);
  });

  it('reads night flow over the last 50 hours and totalizer consistency of yesterday (local), every influxFactsEveryMs', async () => {
    const w = world({ influxFactsEveryMs: 10 * MIN });
    await w.facts.refresh(T0);
    await w.settle();
    expect(w.windows).toEqual([
      { fromMs: T0 - 50 * 60 * MIN, toMs: T0 },
      // 2026-11-24 in Asia/Almaty (UTC+5): [2026-11-23T19:00Z, 2026-11-24T19:00Z).
      { fromMs: Date.parse('2026-11-23T19:00:00Z'), toMs: Date.parse('2026-11-24T19:00:00Z') },
    ]);
    const meters = w.facts.snapshot(T0).meters;
    expect(meters.get('A')).toMatchObject({ night: { night: '2026-11-25', meanM3h: 2.5 }, totalizer: { date: '2026-11-24', percent: -3.2 } });
    expect(meters.get('B')).toMatchObject({ night: null, totalizer: null });
    await w.facts.refresh(T0 + 5 * MIN);
    await w.settle();
    expect(w.windows).toHaveLength(2);
    await w.facts.refresh(T0 + 10 * MIN);
    await w.settle();
    expect(w.windows).toHaveLength(4);
  });

  it('keeps the facts it has when InfluxDB fails, and tries again within a minute', async () => {
    const w = world();
    await w.facts.refresh(T0);
    await w.settle();
    w.failMetrics(true);
    await w.facts.refresh(T0 + 10 * MIN);
    await w.settle();
    expect(w.facts.snapshot(T0 + 10 * MIN).meters.get('A')?.totalizer).toEqual({ date: '2026-11-24', percent: -3.2 });
    w.failMetrics(false);
    const before = w.windows.length;
    await w.facts.refresh(T0 + 11 * MIN);
    await w.settle();
    expect(w.windows.length).toBeGreaterThan(before);
  });

  it('counts dead letters per meter over the last hour, every rejectionsEveryMs; unknown without the store', async () => {
    const asked: Array<[number, number]> = [];
    const w = world({
      rejections: (fromMs, toMs) => {
        asked.push([fromMs, toMs]);
        return { A: { ERR_READING_SCHEMA: 8, ERR_OUT_OF_RANGE: 4 } };
      },
    });
    await w.facts.refresh(T0);
    expect(asked).toEqual([[T0 - 60 * MIN, T0]]);
    expect(w.facts.snapshot(T0).meters.get('A')?.rejectedLastHour).toBe(12);
    expect(w.facts.snapshot(T0).meters.get('B')?.rejectedLastHour).toBe(0);
    await w.facts.refresh(T0 + 30_000);
    expect(asked).toHaveLength(1);
    await w.facts.refresh(T0 + MIN);
    expect(asked).toHaveLength(2);
    const none = world();
    await none.facts.refresh(T0);
    expect(none.facts.snapshot(T0).meters.get('A')?.rejectedLastHour).toBeNull();
  });

  it('InfluxDB is down when its ping fails or the ingest\'s writes do; the store lag from storeLagMs, else the store check', async () => {
    let ingestOk = true;
    const w = world({ readinessChecks: { ingest: () => (ingestOk ? { ok: true } : { ok: false, reason: 'InfluxDB writes fail: timeout' }), store: () => ({ ok: false, reason: 'full' }) } });
    expect(w.facts.snapshot(T0).pipeline.influx).toBeNull();
    await w.facts.refresh(T0);
    expect(w.facts.snapshot(T0).pipeline).toEqual({ storeLagSec: null, storeCheck: { ok: false, reason: 'full' }, influx: { ok: true } });
    w.failPing(true);
    await w.facts.refresh(T0 + 15_000);
    expect(w.facts.snapshot(T0).pipeline.influx).toEqual({ ok: false, reason: 'connect ECONNREFUSED' });
    w.failPing(false);
    ingestOk = false;
    await w.facts.refresh(T0 + 30_000);
    expect(w.facts.snapshot(T0).pipeline.influx).toEqual({ ok: false, reason: 'InfluxDB writes fail: timeout' });
    const lagging = world({ storeLagMs: () => 42_000 });
    expect(lagging.facts.snapshot(T0).pipeline).toMatchObject({ storeLagSec: 42, storeCheck: null });
  });

  it('watches from the first look while the feed is connected, and starts again after it was away', async () => {
    const w = world();
    expect(w.facts.snapshot(T0).watchingSinceMs).toBe(T0);
    expect(w.facts.snapshot(T0 + MIN).watchingSinceMs).toBe(T0);
    w.feed.setConnected(false);
    expect(w.facts.snapshot(T0 + 2 * MIN).watchingSinceMs).toBeNull();
    w.feed.setConnected(true);
    expect(w.facts.snapshot(T0 + 3 * MIN).watchingSinceMs).toBe(T0 + 3 * MIN);
  });

  it('tells the meter of each live reading', () => {
    const w = world();
    const heard: string[] = [];
    const stop = w.facts.onReading((meterId) => heard.push(meterId));
    w.feed.publishReading({ meterId: 'B', seq: 1, tsMs: T0, flowM3h: 1, totalM3: 1, alarms: [] });
    stop();
    w.feed.publishReading({ meterId: 'A', seq: 1, tsMs: T0, flowM3h: 1, totalM3: 1, alarms: [] });
    expect(heard).toEqual(['B']);
  });
});
