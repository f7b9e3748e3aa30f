import type { MeterStatus, Reading } from '@flowpilot/schema';
import { describe, expect, it, onTestFinished } from 'vitest';
import { eventually } from '../../../test/helpers/wait.ts';
import type { LiveFeed } from './live-feed.ts';

/**
 * The contract of a LiveFeed (STYLE habit 8, after aedes-persistence's abstract.js): what the API
 * may rely on from whichever feed it is handed. The MQTT feed runs it against a real Aedes broker
 * (live.int.test.ts), the in-memory feed of the tests in live-feed.test.ts. It is not a test file
 * itself: each implementation calls `liveFeedContract` with a factory of its world, which hides
 * how a meter's message reaches the feed (a publish over MQTT, or a push into memory).
 *
 * Delivery may be asynchronous, so what must arrive is awaited (bounded), and what must NOT arrive
 * is checked once a valid reading published after it has arrived: each publish is acknowledged
 * before the next is sent, and the broker forwards what one client sent in the order it received
 * it [MQTT-4.6.0-6], so that reading is a barrier.
 */

/** Meters of services/api test-pilot.ts: every world's feed is built for that pilot. */
const REF = 'T-REF';
const DUT = 'T-DUT';
const MON = 'T-MON';
/** Not in the pilot. */
const STRANGER = 'T-NOPE';

export interface LiveFeedWorldOptions {
  /** Statuses the meters published (retained) before the feed started. */
  statusesBeforeStart?: readonly MeterStatus[];
}

export interface LiveFeedWorld {
  /** A started feed for test-pilot.ts's meters, connected by the time the factory resolves. */
  feed: LiveFeed;
  /** A meter publishes this reading, as it would in the field. */
  publishReading(reading: Reading): Promise<void>;
  /** A meter publishes this status (retained, SPEC section 1). */
  publishStatus(status: MeterStatus): Promise<void>;
  /**
   * A meter publishes these bytes as its reading payload. Only where the feed reads payloads (the
   * MQTT feed); a feed that takes typed readings has nothing to parse, and the test is skipped.
   */
  publishPayload?: (meterId: string, payload: string) => Promise<void>;
  /** Tears the whole world down; the feed may already be closed. */
  dispose(): Promise<void>;
}

/** A short pause for the negative check that has no barrier (nothing arrives once the feed is closed). */
const QUIET_MS = 300;
const WAIT_MS = 5000;

let seq = 0;
/** A plausible reading of `meterId`, measured `agoMs` before now (the feed refuses future and ancient ones). */
function reading(meterId: string, agoMs: number, extra: Partial<Reading> = {}): Reading {
  seq += 1;
  return { meterId, seq, tsMs: Date.now() - agoMs, flowM3h: 10 + (seq % 7) / 4, totalM3: 1000 + seq, pressureBar: 3.1, alarms: [], ...extra };
}

/** Records what each listener receives. */
function recorder(feed: LiveFeed): { seen: Array<{ reading: Reading; receivedAtMs: number }>; remove: () => void } {
  const seen: Array<{ reading: Reading; receivedAtMs: number }> = [];
  const remove = feed.onReading((r, receivedAtMs) => seen.push({ reading: r, receivedAtMs }));
  return { seen, remove };
}

export function liveFeedContract(name: string, makeWorld: (options?: LiveFeedWorldOptions) => Promise<LiveFeedWorld>): void {

  async function world(worldOptions?: LiveFeedWorldOptions): Promise<LiveFeedWorld> {
    const w = await makeWorld(worldOptions);
    onTestFinished(() => w.dispose());
    return w;
  }

  describe(`LiveFeed contract: ${name}`, () => {
    it('is connected once started, knows no meter before it publishes, and has no listener', async () => {
      const { feed } = await world();
      expect(feed.connected()).toBe(true);
      expect(feed.state(REF)).toBeUndefined();
      expect(feed.listenerCount()).toBe(0);
    });

    it('keeps a meter\'s reading as its state: last reading, when it arrived, last seen; other meters stay unknown', async () => {
      const w = await world();
      const { seen } = recorder(w.feed);
      const sent = reading(REF, 60_000, { alarms: ['leak'], temperatureC: 11.5 });
      await w.publishReading(sent);
      await eventually(() => seen.length, (n) => n >= 1, WAIT_MS, 'the reading to reach the listener');
      const receivedAtMs = seen[0]!.receivedAtMs;
      expect(seen[0]!.reading).toEqual(sent);
      expect(w.feed.state(REF)).toEqual({ lastReading: sent, lastReadingReceivedAtMs: receivedAtMs, lastSeenMs: receivedAtMs });
      expect(w.feed.state(DUT)).toBeUndefined();
    });

    it('keeps the newest reading by measurement time: a backfilled older one updates only "last seen" (SPEC section 1)', async () => {
      const w = await world();
      const { seen } = recorder(w.feed);
      const newer = reading(REF, 60_000);
      const older = reading(REF, 3_600_000);
      await w.publishReading(newer);
      await w.publishReading(older);
      await eventually(() => seen.length, (n) => n >= 2, WAIT_MS, 'both readings');
      expect(seen.map((s) => s.reading.seq)).toEqual([newer.seq, older.seq]);
      expect(w.feed.state(REF)).toEqual({ lastReading: newer, lastReadingReceivedAtMs: seen[0]!.receivedAtMs, lastSeenMs: seen[1]!.receivedAtMs });

      const newest = reading(REF, 1000);
      await w.publishReading(newest);
      await eventually(() => w.feed.state(REF)?.lastReading?.seq, (s) => s === newest.seq, WAIT_MS, 'the newest reading to become the last');
    });

    it('keeps the status a meter published before the feed started (retained), and a later one replaces it', async () => {
      const before: MeterStatus = { meterId: MON, online: false, tsMs: Date.now() - 120_000, firmware: '1.2.3' };
      const w = await world({ statusesBeforeStart: [before] });
      await eventually(() => w.feed.state(MON)?.status, (s) => s !== undefined, WAIT_MS, 'the retained status');
      expect(w.feed.state(MON)).toEqual({ status: before, statusReceivedAtMs: expect.any(Number) });

      const after: MeterStatus = { meterId: MON, online: true, tsMs: Date.now() - 1000, firmware: '1.2.4' };
      await w.publishStatus(after);
      await eventually(() => w.feed.state(MON)?.status?.online, (online) => online === true, WAIT_MS, 'the new status');
      expect(w.feed.state(MON)?.status).toEqual(after);

      // A reading leaves the status as it is.
      const sent = reading(MON, 30_000);
      await w.publishReading(sent);
      await eventually(() => w.feed.state(MON)?.lastReading, (r) => r !== undefined, WAIT_MS, 'the reading');
      expect(w.feed.state(MON)).toMatchObject({ status: after, lastReading: sent });
    });

    it('calls each onReading listener with every reading, in arrival order, until its remover is called', async () => {
      const w = await world();
      const a = recorder(w.feed);
      // The same function added twice is two subscriptions, each removed by its own remover.
      const calls: number[] = [];
      const twice = (r: Reading) => calls.push(r.seq);
      const removeFirst = w.feed.onReading(twice);
      const removeSecond = w.feed.onReading(twice);
      expect(w.feed.listenerCount()).toBe(3);

      const first = reading(REF, 50_000);
      const second = reading(DUT, 40_000);
      await w.publishReading(first);
      await w.publishReading(second);
      await eventually(() => a.seen.length, (n) => n >= 2, WAIT_MS, 'two readings');
      expect(a.seen.map((s) => s.reading)).toEqual([first, second]);
      expect(calls).toEqual([first.seq, first.seq, second.seq, second.seq]);

      removeFirst();
      removeFirst(); // harmless, and does not remove the other subscription
      expect(w.feed.listenerCount()).toBe(2);
      const third = reading(REF, 30_000);
      await w.publishReading(third);
      await eventually(() => a.seen.length, (n) => n >= 3, WAIT_MS, 'the third reading');
      expect(calls).toEqual([first.seq, first.seq, second.seq, second.seq, third.seq]);

      removeSecond();
      a.remove();
      expect(w.feed.listenerCount()).toBe(0);
      const fourth = reading(REF, 20_000);
      await w.publishReading(fourth);
      await eventually(() => w.feed.state(REF)?.lastReading?.seq, (s) => s === fourth.seq, WAIT_MS, 'the fourth reading in the state');
      expect(a.seen).toHaveLength(3);
      expect(calls).toHaveLength(5);
    });

    it('keeps calling the other listeners when one throws', async () => {
      const w = await world();
      w.feed.onReading(() => {
        throw new Error('a broken listener');
      });
      const { seen } = recorder(w.feed);
      const sent = reading(DUT, 10_000);
      await w.publishReading(sent);
      await eventually(() => seen.length, (n) => n >= 1, WAIT_MS, 'the reading past the broken listener');
      expect(w.feed.state(DUT)?.lastReading).toEqual(sent);
      expect(w.feed.connected()).toBe(true);
    });

    it('ignores a payload that is not a valid reading of its meter, without throwing (SPEC section 8)', async (context) => {
      const w = await world();
      if (!w.publishPayload) {
        context.skip('this feed takes typed readings: no payload to parse');
        return;
      }
      const { seen } = recorder(w.feed);
      await w.publishPayload(REF, 'not json at all');
      await w.publishPayload(REF, '{"v": 1, "meterId": "T-REF"');
      await w.publishPayload(REF, JSON.stringify({ v: 1, meterId: REF, seq: 1, ts: new Date().toISOString() }));
      // A reading of T-DUT on T-REF's topic: the topic names the meter (SPEC section 1).
      const foreign = reading(DUT, 20_000);
      await w.publishPayload(REF, JSON.stringify({ v: 1, meterId: DUT, seq: foreign.seq, ts: new Date(foreign.tsMs).toISOString(), flow: 1, total: 2 }));
      const barrier = reading(REF, 10_000);
      await w.publishReading(barrier);
      await eventually(() => seen.length, (n) => n >= 1, WAIT_MS, 'the valid reading after the invalid ones');
      expect(seen.map((s) => s.reading)).toEqual([barrier]);
      expect(w.feed.state(REF)?.lastReading).toEqual(barrier);
      expect(w.feed.state(DUT)).toBeUndefined();
      expect(w.feed.connected()).toBe(true);
    });

    it('ignores readings and statuses of a meter the pilot does not have', async () => {
      const w = await world();
      const { seen } = recorder(w.feed);
      await w.publishStatus({ meterId: STRANGER, online: true, tsMs: Date.now() - 1000 });
      await w.publishReading(reading(STRANGER, 20_000));
      const barrier = reading(REF, 10_000);
      await w.publishReading(barrier);
      await eventually(() => w.feed.state(REF)?.lastReading, (r) => r !== undefined, WAIT_MS, 'the valid reading');
      expect(w.feed.state(STRANGER)).toBeUndefined();
      expect(seen.map((s) => s.reading.meterId)).toEqual([REF]);
    });

    it('close() resolves and the feed then reports itself disconnected', async () => {
      const w = await world();
      await w.feed.close();
      expect(w.feed.connected()).toBe(false);
    });

    it('delivers no reading after close()', async () => {
      const w = await world();
      const { seen } = recorder(w.feed);
      await w.feed.close();
      await w.publishReading(reading(REF, 10_000));
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
      expect(seen).toEqual([]);
      expect(w.feed.state(REF)).toBeUndefined();
    });
  });
}
