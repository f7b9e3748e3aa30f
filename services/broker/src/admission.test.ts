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

/** Sound output: records of the topic's meter, dead letters with a catalogue code and a reason; nothing silently dropped. */
function expectSound(publish: PublishToAdmit, admission: Admission): void {
  const meterId = /^meters\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/(readings|status)$/.exec(publish.topic)?.[1];
  for (const record of admission.records) {
    expect(record.meterId).toBe(meterId);
    expect(record.receivedAtMs).toBe(NOW);
    expect(record.line).toMatch(new RegExp(`^(reading|status),meter=${meterId}[ ,]`));
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

describe('admitPublish', () => {
  it('spools a valid reading and a valid status with their meter id', () => {
    const reading = admit('meters/M1/readings', JSON.stringify(good));
    expect(reading.deadLetters).toEqual([]);
    expect(reading.records).toEqual([{ receivedAtMs: NOW, meterId: 'M1', line: expect.stringMatching(/^reading,meter=M1,site=S1 flow=42.7,total=1250.5,/) as unknown }]);
    const status = admit('meters/M1/status', JSON.stringify({ online: true, ts: NOW - 1000, firmware: 'fw-2' }));
    expect(status).toEqual({ records: [{ receivedAtMs: NOW, meterId: 'M1', line: `status,meter=M1 online=true ${NOW - 1000}` }], deadLetters: [] });
  });

  it('ignores a topic outside meters/{id}/readings|status (the ACL refuses those before)', () => {
    expect(admit('other/topic', 'x')).toEqual({ records: [], deadLetters: [] });
  });

  it.each([10_000, 100_000])('keeps a %i-deep array as one dead letter', (depth) => {
    const payload = deepArrayText(depth);
    expect(admit('meters/M1/readings', payload)).toEqual({
      records: [],
      deadLetters: [expect.objectContaining({ code: 'ERR_READING_SCHEMA', reason: expect.stringContaining('nesting deeper than the wire format allows') as unknown, payload })],
    });
    expect(admit('meters/M1/status', payload).deadLetters.map((l) => l.code)).toEqual(['ERR_PAYLOAD_TOO_LARGE']);
  });

  it('in a batch, keeps the good readings, a bad element as itself, and a too-deep element as the whole payload', () => {
    const bad = { ...good, seq: 8, flow: 2e6 };
    const payload = `[${JSON.stringify(good)},${JSON.stringify(bad)},${deepArrayText(10_000)},${JSON.stringify({ ...good, seq: 9 })}]`;
    const { records, deadLetters } = admit('meters/M1/readings', payload);
    expect(records.map((r) => /seq=(\d+)i/.exec(r.line)?.[1])).toEqual(['7', '9']);
    expect(deadLetters.map((l) => [l.code, l.payload === payload ? 'whole payload' : JSON.parse(l.payload)])).toEqual([
      ['ERR_OUT_OF_RANGE', bad],
      ['ERR_READING_SCHEMA', 'whole payload'],
    ]);
    expect(deadLetters[0]?.reason).toMatch(/^reading \[1\]: flow 2000000 m³\/h is above the plausible maximum 1000000 m³\/h\. A value is outside/);
  });

  it.each([
    ['a status after 2262', { online: true, ts: '2262-04-12T00:00:00.000Z' }, 'ERR_TS_FUTURE'],
    ['a status older than retention', { online: false, ts: NOW - 31 * 86_400_000 }, 'ERR_TS_TOO_OLD'],
    ['a status over 4 KiB', { online: true, pad: 'x'.repeat(4096) }, 'ERR_PAYLOAD_TOO_LARGE'],
  ])('dead-letters %s instead of spooling it', (_name, body, code) => {
    const payload = JSON.stringify(body);
    expect(admit('meters/M1/status', payload)).toEqual({
      records: [],
      deadLetters: [{ receivedAtMs: NOW, topic: 'meters/M1/status', meterId: 'M1', clientId: 'c1', code, reason: expect.any(String) as unknown, payload }],
    });
  });

  it('dead-letters the status of a meter not in the pilot', () => {
    expect(admit('meters/GHOST/status', '{"online":true}').deadLetters).toMatchObject([{ code: 'ERR_METER_UNKNOWN', meterId: 'GHOST' }]);
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
