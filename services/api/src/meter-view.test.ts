import { parseTime as parseTimeParam } from '@flowpilot/schema';
import type { Reading } from '@flowpilot/schema';
import { describe, expect, it } from 'vitest';
import { createMemoryLiveFeed } from './live-feed.ts';
import { meterView } from './meter-view.ts';
import { testPilot } from './test-pilot.ts';

const NOW_MS = Date.parse('2026-11-25T12:00:00.000Z');
const meter = testPilot().meters[0]!; // intervalSec 60

function reading(tsMs: number, flowM3h = 10): Reading {
  return { meterId: meter.id, seq: 1, tsMs, flowM3h, totalM3: 100, alarms: [] };
}

describe('meterView: online and last seen (SPEC section 5)', () => {
  it('takes online from the last status message when there is one', () => {
    const feed = createMemoryLiveFeed();
    feed.publishReading(reading(NOW_MS - 1000), NOW_MS - 1000);
    feed.publishStatus({ meterId: meter.id, online: false, tsMs: NOW_MS });
    expect(meterView(meter, feed.state(meter.id), null, NOW_MS).online).toBe(false);
  });

  it('without a status message, is online while a reading arrived within 3 intervals', () => {
    const feed = createMemoryLiveFeed();
    feed.publishReading(reading(NOW_MS - 180_000), NOW_MS - 180_000);
    expect(meterView(meter, feed.state(meter.id), null, NOW_MS)).toMatchObject({ online: true, lastSeen: '2026-11-25T11:57:00.000Z' });
    expect(meterView(meter, feed.state(meter.id), null, NOW_MS + 1).online).toBe(false);
  });

  it('keeps the newest reading by measurement time when a backfill arrives later', () => {
    const feed = createMemoryLiveFeed();
    feed.publishReading(reading(NOW_MS - 60_000, 5), NOW_MS - 59_000);
    feed.publishReading(reading(NOW_MS - 3_600_000, 7), NOW_MS);
    const view = meterView(meter, feed.state(meter.id), null, NOW_MS);
    expect(view.lastReading).toMatchObject({ ts: '2026-11-25T11:59:00.000Z', flow: 5, receivedAt: '2026-11-25T11:59:01.000Z' });
    expect(view.lastSeen).toBe('2026-11-25T12:00:00.000Z');
  });

  it('falls back to the stored reading, its received_at as last seen', () => {
    const stored = { ts: '2026-11-25T10:00:00.000Z', flow: 1, total: 2, alarms: [], seq: 3, receivedAt: '2026-11-25T10:00:02.000Z' };
    expect(meterView(meter, undefined, stored, NOW_MS)).toMatchObject({ online: false, lastSeen: '2026-11-25T10:00:02.000Z', lastReading: stored });
    expect(meterView(meter, undefined, null, NOW_MS)).toMatchObject({ online: false, lastSeen: null, lastReading: null });
  });
});

describe('live state listeners', () => {
  it('removes exactly the listener whose remover is called', () => {
    const feed = createMemoryLiveFeed();
    const seen: number[] = [];
    const listener = (r: Reading) => seen.push(r.tsMs);
    const removeA = feed.onReading(listener);
    const removeB = feed.onReading(listener);
    expect(feed.listenerCount()).toBe(2);
    removeA();
    removeA();
    expect(feed.listenerCount()).toBe(1);
    feed.publishReading(reading(1));
    removeB();
    feed.publishReading(reading(2));
    expect(seen).toEqual([1]);
    expect(feed.listenerCount()).toBe(0);
  });
});

describe('parseTimeParam (SPEC section 5: ISO 8601 or epoch ms)', () => {
  it.each([
    ['1764064800000', 1764064800000],
    ['2026-11-25T10:00:00Z', Date.parse('2026-11-25T10:00:00Z')],
    ['2026-11-25T16:00:00.123+06:00', Date.parse('2026-11-25T10:00:00.123Z')],
    ['2026-11-25', Date.parse('2026-11-25T00:00:00Z')],
  ])('reads %s', (text, ms) => {
    expect(parseTimeParam(text)).toBe(ms);
  });

  it.each(['', 'now', '2026-11-25T10:00:00', '2026-13-45T10:00:00Z', '-5', '1.5', '25/11/2026'])('refuses %j', (text) => {
    expect(parseTimeParam(text)).toBeNull();
  });
});
