import { createMeterRegistry, parsePilotConfig, REJECTION_CODES, type MeterRegistry } from '@flowpilot/schema';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admitPublish, type Admission, type AdmissionContext, type PublishToAdmit } from './admission.ts';

/*
 * admitPublish runs inside Aedes's authorizePublish hook, before the PUBACK (SPEC section 6).
 * Nothing a client sends may stop the broker (SPEC section 8): whatever the topic and bytes, it
 * returns spool records and dead letters, and never throws.
 */

const NOW = Date.parse('2026-11-25T10:00:00.000Z');
const registry = createMeterRegistry(
  parsePilotConfig(`
pilot: { id: t, name: Admission test, timezone: UTC }
meters:
  - { id: M1, site: S1, role: monitor, intervalSec: 60 }
`),
);
const ctx: AdmissionContext = { registry, nowMs: NOW, retentionMs: 30 * 86_400_000, maxPayloadBytes: 256 * 1024 };
const good = { v: 1, meterId: 'M1', seq: 7, ts: NOW - 60_000, flow: 42.7, total: 1250.5 };

const admit = (topic: string, payload: Uint8Array | string, context = ctx): Admission => admitPublish({ topic, payload, clientId: 'c1' }, context);

function deepArrayText(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

function isEmptyArray(payload: Uint8Array | string): boolean {
  try {
    const value: unknown = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
    return Array.isArray(value) && value.length === 0;
  } catch {
    return false;
  }
}

/**
 * Sound output: records of the topic's meter, each with the kind and time its line carries (the
 * ingest's bookkeeping reads those, never the line); dead letters with a catalogue code and a
 * reason; nothing silently dropped.
 */
function expectSound(publish: PublishToAdmit, admission: Admission): void {
  const topicMatch = /^meters\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/(readings|status)$/.exec(publish.topic);
  const meterId = topicMatch?.[1];
  for (const record of admission.records) {
    expect(record.meterId).toBe(meterId);
    expect(record.receivedAtMs).toBe(NOW);
    expect(record.kind).toBe(topicMatch?.[2] === 'readings' ? 'reading' : 'status');
    expect(record.line).toMatch(new RegExp(`^${record.kind},meter=${meterId}[ ,]`));
    expect(record.line.endsWith(` ${record.tsMs}`)).toBe(true);
    expect(record.line).not.toMatch(/[\r\n]|NaN|Infinity/);
  }
  for (const letter of admission.deadLetters) {
    expect(REJECTION_CODES).toContain(letter.code);
    expect(letter.reason.length).toBeGreaterThan(0);
    expect(typeof letter.payload).toBe('string');
    expect(letter).toMatchObject({ topic: publish.topic, meterId, clientId: publish.clientId, receivedAtMs: NOW });
  }
  if (meterId === undefined) expect(admission).toEqual({ records: [], deadLetters: [] });
  else if (!isEmptyArray(publish.payload)) expect(admission.records.length + admission.deadLetters.length).toBeGreaterThan(0);
}

const TOPICS = ['meters/M1/readings', 'meters/M1/status', 'meters/GHOST/readings', 'meters/GHOST/status', 'meters/M1/other', 'meters/+/readings', ''];
const topic = fc.oneof({ arbitrary: fc.constantFrom(...TOPICS), weight: 4 }, { arbitrary: fc.string(), weight: 1 });

describe('admitPublish never throws (properties)', () => {
  it('arbitrary bytes on any topic', () => {
    fc.assert(
      fc.property(topic, fc.uint8Array({ maxLength: 2048 }), (t, payload) => {
        const publish = { topic: t, payload, clientId: 'c1' };
        expectSound(publish, admitPublish(publish, ctx));
      }),
      { numRuns: 200 },
    );
  });

  it('arbitrary JSON, alone, as a field of a reading and in a batch', () => {
    fc.assert(
      fc.property(topic, fc.jsonValue(), (t, value) => {
        for (const payload of [JSON.stringify(value), JSON.stringify({ ...good, extra: value }), JSON.stringify([good, value]), JSON.stringify({ online: true, extra: value })]) {
          const publish = { topic: t, payload, clientId: 'c1' };
          expectSound(publish, admitPublish(publish, ctx));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('readings with arbitrary numbers (huge, tiny, non-finite) become lines only inside the bounds', () => {
    const number = fc.oneof(fc.double(), fc.constantFrom(1e6, 1e12, 1.7e308, 2 ** 53, 1e20));
    fc.assert(
      fc.property(fc.record({ flow: number, total: number, velocity: number, rssi: number, seq: fc.oneof(fc.nat(), number) }), (fields) => {
        const payload = JSON.stringify({ ...good, ...fields }, (_k, v: unknown) => (v === Infinity ? '__INF__' : v)).replaceAll('"__INF__"', '1e999');
        const publish = { topic: 'meters/M1/readings', payload, clientId: 'c1' };
        const admission = admitPublish(publish, ctx);
        expectSound(publish, admission);
        expect(admission.records.length + admission.deadLetters.length).toBe(1);
      }),
      { numRuns: 300 },
    );
  });
});

/** What a case expects: the records' kind and time, and each dead letter's code and what it kept. */
interface Outcome {
  records: { kind: 'reading' | 'status'; tsMs: number }[];
  /** `kept`: 'whole payload', or the rejected batch element (parsed back from the letter). */
  deadLetters: { code: string; kept: unknown }[];
}

function outcomeOf(admission: Admission, payload: string): Outcome {
  return {
    records: admission.records.map((r) => ({ kind: r.kind, tsMs: r.tsMs })),
    deadLetters: admission.deadLetters.map((l) => ({ code: l.code, kept: l.payload === payload ? 'whole payload' : (JSON.parse(l.payload) as unknown) })),
  };
}

const reading = (extra: Record<string, unknown> = {}) => ({ ...good, ...extra });
const one = (tsMs: number): Outcome => ({ records: [{ kind: 'reading', tsMs }], deadLetters: [] });
const rejected = (code: string, kept: unknown = 'whole payload'): Outcome => ({ records: [], deadLetters: [{ code, kept }] });
/** A pilot whose site name line protocol cannot carry (a backslash): the schema passes the reading, the line cannot be built. */
const unwritableSite: AdmissionContext = { ...ctx, registry: { ...registry, get: (id) => ({ ...registry.get(id)!, site: 'Pump\\station' }) } };
const MIDNIGHT = Date.parse('2026-11-25T00:00:00.000Z');

const CASES: { name: string; topic?: string; payload: string; ctx?: AdmissionContext; expected: Outcome }[] = [
  // Readings that are spooled, each with its own time beside its line.
  { name: 'a reading', payload: JSON.stringify(good), expected: one(NOW - 60_000) },
  { name: 'a reading timed in ISO 8601 with an offset', payload: JSON.stringify(reading({ ts: '2026-11-25T14:59:00.000+05:00' })), expected: one(NOW - 60_000) },
  {
    name: 'a backfill array across midnight (UTC)',
    payload: JSON.stringify([reading({ seq: 1, ts: MIDNIGHT - 60_000 }), reading({ seq: 2, ts: MIDNIGHT }), reading({ seq: 3, ts: MIDNIGHT + 60_000 })]),
    expected: { records: [MIDNIGHT - 60_000, MIDNIGHT, MIDNIGHT + 60_000].map((tsMs) => ({ kind: 'reading' as const, tsMs })), deadLetters: [] },
  },
  {
    name: 'a batch with good and bad elements: the good kept, each bad one as itself, a too-deep one as the whole payload',
    payload: `[${JSON.stringify(good)},${JSON.stringify(reading({ seq: 8, flow: 2e6 }))},${deepArrayText(10_000)},${JSON.stringify(reading({ seq: 9, ts: NOW - 30_000 }))}]`,
    expected: {
      records: [{ kind: 'reading', tsMs: NOW - 60_000 }, { kind: 'reading', tsMs: NOW - 30_000 }],
      deadLetters: [{ code: 'ERR_OUT_OF_RANGE', kept: reading({ seq: 8, flow: 2e6 }) }, { code: 'ERR_READING_SCHEMA', kept: 'whole payload' }],
    },
  },
  { name: 'an empty array', payload: '[]', expected: { records: [], deadLetters: [] } },
  // Each rejection code of a reading (SPEC section 1).
  { name: 'invalid JSON', payload: '{"v":1,"meterId":"M1",', expected: rejected('ERR_READING_JSON') },
  { name: 'a reading without flow and total', payload: JSON.stringify({ v: 1, meterId: 'M1', seq: 1, ts: NOW }), expected: rejected('ERR_READING_SCHEMA') },
  { name: 'a 10,000-deep array', payload: deepArrayText(10_000), expected: rejected('ERR_READING_SCHEMA') },
  { name: 'a non-finite number', payload: JSON.stringify(good).replace('"flow":42.7', '"flow":1e999'), expected: rejected('ERR_READING_NON_FINITE') },
  { name: 'an unknown wire format version', payload: JSON.stringify(reading({ v: 2 })), expected: rejected('ERR_READING_VERSION') },
  { name: 'another meter\'s id', payload: JSON.stringify(reading({ meterId: 'M2' })), expected: rejected('ERR_METER_MISMATCH') },
  { name: 'a meter not in the pilot', topic: 'meters/GHOST/readings', payload: JSON.stringify(reading({ meterId: 'GHOST' })), expected: rejected('ERR_METER_UNKNOWN') },
  { name: 'an implausible flow', payload: JSON.stringify(reading({ flow: 2e6 })), expected: rejected('ERR_OUT_OF_RANGE') },
  { name: 'a reading an hour ahead', payload: JSON.stringify(reading({ ts: NOW + 3_600_000 })), expected: rejected('ERR_TS_FUTURE') },
  { name: 'a reading older than retention', payload: JSON.stringify(reading({ ts: NOW - 31 * 86_400_000 })), expected: rejected('ERR_TS_TOO_OLD') },
  { name: 'a payload over the size limit', payload: JSON.stringify(reading({ pad: 'x'.repeat(300) })), ctx: { ...ctx, maxPayloadBytes: 256 }, expected: rejected('ERR_PAYLOAD_TOO_LARGE') },
  { name: 'an array of 1001 readings', payload: JSON.stringify(Array.from({ length: 1001 }, (_, seq) => reading({ seq }))), expected: rejected('ERR_BATCH_TOO_LARGE') },
  {
    name: 'a reading line protocol cannot carry',
    payload: JSON.stringify(good),
    ctx: unwritableSite,
    expected: { records: [], deadLetters: [{ code: 'ERR_INFLUX_REJECTED_LINE', kept: expect.objectContaining({ meterId: 'M1', seq: 7, tsMs: NOW - 60_000 }) }] },
  },
  // Statuses: spooled with their own time, or the time of receipt when they carry none.
  { name: 'a status', topic: 'meters/M1/status', payload: JSON.stringify({ online: true, ts: NOW - 1000, firmware: 'fw-2' }), expected: { records: [{ kind: 'status', tsMs: NOW - 1000 }], deadLetters: [] } },
  { name: 'a status without ts (a last will)', topic: 'meters/M1/status', payload: '{"online":false}', expected: { records: [{ kind: 'status', tsMs: NOW }], deadLetters: [] } },
  { name: 'a status that is not {online}', topic: 'meters/M1/status', payload: '{"online":"yes"}', expected: rejected('ERR_STATUS_SCHEMA') },
  { name: 'a status after 2262', topic: 'meters/M1/status', payload: JSON.stringify({ online: true, ts: '2262-04-12T00:00:00.000Z' }), expected: rejected('ERR_TS_FUTURE') },
  { name: 'a status older than retention', topic: 'meters/M1/status', payload: JSON.stringify({ online: false, ts: NOW - 31 * 86_400_000 }), expected: rejected('ERR_TS_TOO_OLD') },
  { name: 'a status over 4 KiB', topic: 'meters/M1/status', payload: JSON.stringify({ online: true, pad: 'x'.repeat(4096) }), expected: rejected('ERR_PAYLOAD_TOO_LARGE') },
  { name: 'a 10,000-deep status', topic: 'meters/M1/status', payload: deepArrayText(10_000), expected: rejected('ERR_PAYLOAD_TOO_LARGE') },
  { name: 'the status of a meter not in the pilot', topic: 'meters/GHOST/status', payload: '{"online":true}', expected: rejected('ERR_METER_UNKNOWN') },
  // Outside meters/{id}/readings|status (the ACL refuses those before): nothing at all.
  { name: 'another topic', topic: 'other/topic', payload: 'x', expected: { records: [], deadLetters: [] } },
];

describe('admitPublish, case by case', () => {
  it.each(CASES)('$name', ({ topic = 'meters/M1/readings', payload, ctx: context = ctx, expected }) => {
    const publish = { topic, payload, clientId: 'c1' };
    const admission = admitPublish(publish, context);
    expectSound(publish, admission);
    expect(outcomeOf(admission, payload)).toEqual(expected);
  });

  it('covers every rejection code', () => {
    const covered = new Set(CASES.flatMap((c) => c.expected.deadLetters.map((l) => l.code)));
    expect([...covered].sort()).toEqual([...REJECTION_CODES].sort());
  });
});

describe('admitPublish', () => {
  it('spools a valid reading and a valid status with their meter id, kind and time', () => {
    const reading = admit('meters/M1/readings', JSON.stringify(good));
    expect(reading.deadLetters).toEqual([]);
    expect(reading.records).toEqual([
      { receivedAtMs: NOW, meterId: 'M1', kind: 'reading', tsMs: NOW - 60_000, line: expect.stringMatching(/^reading,meter=M1,site=S1 flow=42.7,total=1250.5,/) as unknown },
    ]);
    const status = admit('meters/M1/status', JSON.stringify({ online: true, ts: NOW - 1000, firmware: 'fw-2' }));
    expect(status).toEqual({ records: [{ receivedAtMs: NOW, meterId: 'M1', kind: 'status', tsMs: NOW - 1000, line: `status,meter=M1 online=true ${NOW - 1000}` }], deadLetters: [] });
  });

  it.each([10_000, 100_000])('keeps a %i-deep array as one dead letter', (depth) => {
    const payload = deepArrayText(depth);
    expect(admit('meters/M1/readings', payload)).toEqual({
      records: [],
      deadLetters: [expect.objectContaining({ code: 'ERR_READING_SCHEMA', reason: expect.stringContaining('nesting deeper than the wire format allows') as unknown, payload })],
    });
    expect(admit('meters/M1/status', payload).deadLetters.map((l) => l.code)).toEqual(['ERR_PAYLOAD_TOO_LARGE']);
  });

  it('stores how each reading arrived: alone 0, in a backfill array 1 (even an array of one), replayed from the dead letters 2', () => {
    const arrivals = (payload: string, context = ctx) => admit('meters/M1/readings', payload, context).records.map((r) => /,arrival=(\d+)i /.exec(r.line)?.[1]);
    expect(arrivals(JSON.stringify(good))).toEqual(['0']);
    expect(arrivals(JSON.stringify([good, { ...good, seq: 8, ts: NOW - 30_000 }]))).toEqual(['1', '1']);
    expect(arrivals(JSON.stringify([good]))).toEqual(['1']);
    // SPEC section 4: a replay is left out of latency whatever shape its letter had.
    expect(arrivals(JSON.stringify(good), { ...ctx, replay: true })).toEqual(['2']);
    expect(arrivals(JSON.stringify([good]), { ...ctx, replay: true })).toEqual(['2']);
  });

  it('names a bad batch element by its index and says what to do', () => {
    const payload = `[${JSON.stringify(good)},${JSON.stringify({ ...good, seq: 8, flow: 2e6 })}]`;
    expect(admit('meters/M1/readings', payload).deadLetters[0]?.reason).toMatch(/^reading \[1\]: flow 2000000 m³\/h is above the plausible maximum 1000000 m³\/h\. A value is outside/);
  });

  it('gives a dead letter of a status its topic, meter, client and time of receipt', () => {
    const payload = JSON.stringify({ online: false, ts: NOW - 31 * 86_400_000 });
    expect(admit('meters/M1/status', payload)).toEqual({
      records: [],
      deadLetters: [{ receivedAtMs: NOW, topic: 'meters/M1/status', meterId: 'M1', clientId: 'c1', code: 'ERR_TS_TOO_OLD', reason: expect.any(String) as unknown, payload }],
    });
  });

  it('turns an unexpected throw into a dead letter of the whole payload, whatever was thrown', () => {
    const failing = (thrown: unknown): AdmissionContext => {
      const broken: MeterRegistry = {
        ...registry,
        get: () => {
          throw thrown;
        },
      };
      return { ...ctx, registry: broken };
    };
    const payload = JSON.stringify(good);
    expect(admit('meters/M1/readings', payload, failing(new Error('registry gone')))).toEqual({
      records: [],
      deadLetters: [
        {
          receivedAtMs: NOW,
          topic: 'meters/M1/readings',
          meterId: 'M1',
          clientId: 'c1',
          code: 'ERR_READING_SCHEMA',
          reason: expect.stringMatching(/^could not be validated: registry gone\. The reading does not match/) as unknown,
          payload,
        },
      ],
    });
    const hostile = {
      toString() {
        throw new Error('no');
      },
    };
    expect(admit('meters/M1/readings', payload, failing(hostile)).deadLetters[0]?.reason).toMatch(/^could not be validated: unknown error\./);
    // A registry whose `has` throws fails inside the validator, which answers with a rejection itself.
    const hasThrows: AdmissionContext = {
      ...ctx,
      registry: {
        ...registry,
        has: () => {
          throw new Error('lookup failed');
        },
      },
    };
    expect(admit('meters/M1/status', '{"online":true}', hasThrows).deadLetters).toMatchObject([{ code: 'ERR_STATUS_SCHEMA', reason: expect.stringContaining('could not be validated: lookup failed') as unknown }]);
  });
});
