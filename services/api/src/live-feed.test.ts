import { createMeterRegistry, toWireReading } from '@flowpilot/schema';
import fc from 'fast-check';
import type { Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { liveFeedContract } from './live-feed-contract.ts';
import { LiveState, createLiveMessageHandler, createMemoryLiveFeed } from './live-feed.ts';
import { testPilot } from './test-pilot.ts';

// SPEC section 8: nothing a client sends may stop a service. The live feed's message handler
// meets whatever the broker forwards; fed arbitrary topics and payloads it must never throw,
// and must not even fail inside (a failure would be logged and the message silently lost).

const NOW_MS = Date.parse('2026-11-25T12:00:00.000Z');
const pilot = testPilot();
const ids = pilot.meters.map((m) => m.id);

function harness(clock: () => number = () => NOW_MS) {
  const errors: unknown[] = [];
  const log = { error: (...args: unknown[]) => errors.push(args), warn: () => {}, info: () => {}, debug: () => {} } as unknown as Logger;
  const live = new LiveState(log);
  const handle = createLiveMessageHandler({ registry: createMeterRegistry(pilot), live, clock, retentionMs: 400 * 86_400_000, maxPayloadBytes: 1024 * 1024, log });
  return { handle, live, errors };
}

const topic = fc.oneof(
  fc.string(),
  fc.constantFrom(...ids, 'NOPE', '', '+', '#', '..', 'a/b').chain((id) => fc.constantFrom(`meters/${id}/readings`, `meters/${id}/status`, `meters/${id}`, `meters/${id}/readings/x`)),
);
const json = fc.json().map((text) => Buffer.from(text));
const bytes = fc.uint8Array({ maxLength: 2048 }).map((array) => Buffer.from(array));
/** Readings-shaped objects with any value in any field: closer to what a confused meter sends. */
const readingish = fc
  .record(
    {
      v: fc.oneof(fc.constant(1), fc.anything()),
      meterId: fc.oneof(fc.constantFrom(...ids), fc.anything()),
      seq: fc.oneof(fc.nat(), fc.anything()),
      ts: fc.oneof(fc.constant(NOW_MS), fc.constant(new Date(NOW_MS).toISOString()), fc.anything()),
      flow: fc.oneof(fc.double(), fc.anything()),
      total: fc.oneof(fc.double(), fc.anything()),
      alarms: fc.oneof(fc.array(fc.string()), fc.anything()),
      online: fc.anything(),
    },
    { requiredKeys: [] },
  )
  .chain((record) => fc.constantFrom(JSON.stringify(record), JSON.stringify([record, record]), JSON.stringify(record).replace(/^\{/, '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},').replace(/,\}$/, '}')))
  .map((text) => Buffer.from(text));

describe('the live feed\'s message handler', () => {
  it('never throws nor fails inside, whatever the topic and payload', () => {
    const { handle, errors } = harness();
    fc.assert(
      fc.property(topic, fc.oneof(json, bytes, readingish), (t, payload) => {
        expect(() => handle(t, payload)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
    expect(errors).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('still records a valid reading after any amount of garbage', () => {
    const { handle, live } = harness();
    fc.assert(fc.property(topic, fc.oneof(json, bytes), (t, payload) => handle(t, payload)), { numRuns: 300 });
    const reading = { meterId: 'T-REF', seq: 41, tsMs: NOW_MS - 60_000, flowM3h: 12.5, totalM3: 1000, alarms: [] };
    handle('meters/T-REF/readings', Buffer.from(JSON.stringify(toWireReading(reading))));
    expect(live.state('T-REF')?.lastReading).toMatchObject({ seq: 41, flowM3h: 12.5 });
  });

  it('swallows and logs (once) a failure of its own parts, e.g. the clock', () => {
    const { handle, errors } = harness(() => {
      throw new Error('clock broke');
    });
    expect(() => handle('meters/T-REF/readings', Buffer.from('{}'))).not.toThrow();
    expect(() => handle('meters/T-REF/readings', Buffer.from('{}'))).not.toThrow();
    expect(errors).toHaveLength(1);
  });

  it('keeps fanning out when a listener throws', () => {
    const { handle, live, errors } = harness();
    const seen: number[] = [];
    live.onReading(() => {
      throw new Error('listener broke');
    });
    live.onReading((reading) => seen.push(reading.seq));
    const reading = { meterId: 'T-REF', seq: 7, tsMs: NOW_MS - 60_000, flowM3h: 1, totalM3: 2, alarms: [] };
    handle('meters/T-REF/readings', Buffer.from(JSON.stringify(toWireReading(reading))));
    expect(seen).toEqual([7]);
    expect(errors).toHaveLength(1);
  });
});

// The in-memory feed the API's tests hand to createApi: the same contract as the MQTT feed
// (live.int.test.ts). Pushing into memory is its delivery; it takes typed readings, so there is
// no payload to parse.
liveFeedContract(
  'in memory (createMemoryLiveFeed)',
  async (options = {}) => {
    const feed = createMemoryLiveFeed(undefined, { meterIds: testPilot().meters.map((m) => m.id) });
    for (const status of options.statusesBeforeStart ?? []) feed.publishStatus(status);
    return {
      feed,
      publishReading: async (reading) => feed.publishReading(reading),
      publishStatus: async (status) => feed.publishStatus(status),
      dispose: () => feed.close(),
    };
  },
);
