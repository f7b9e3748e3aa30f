import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, REJECTION_CODES } from './errors.ts';
import { findImplausible, PLAUSIBILITY_BOUNDS } from './plausibility.ts';
import { ALARMS, FUTURE_TOLERANCE_MS, MAX_READING_DEPTH, describeRejection, toWireReading, validateReadingPayload } from './reading.ts';
import type { ReadingValidation, ReadingValidationContext, Rejection } from './reading.ts';
import { MAX_STATUS_PAYLOAD_BYTES, validateStatusPayload } from './status.ts';
import type { MeterStatus, StatusValidationContext } from './status.ts';
import { inspectJson } from './wire-guards.ts';

/*
 * Hostile and faulty input at the schema layer (SPEC sections 1 and 8): whatever the bytes, the
 * validators answer with readings inside the bounds or rejections with a catalogue code and a
 * reason, and never throw. Runs are kept modest so the suite stays fast.
 */

const NOW = Date.parse('2026-11-25T10:00:00.000Z');
const RETENTION_MS = 30 * 86_400_000;
const ctx: ReadingValidationContext = {
  nowMs: NOW,
  isRegistered: (id) => id === 'M1' || id === 'M2',
  retentionMs: RETENTION_MS,
  maxPayloadBytes: 64 * 1024,
};
const statusCtx: StatusValidationContext = { nowMs: NOW, retentionMs: RETENTION_MS, isRegistered: ctx.isRegistered };
const RUNS = { numRuns: 200 };

const good = { v: 1, meterId: 'M1', seq: 7, ts: NOW - 60_000, flow: 42.7, total: 1250.5 };

/** '[[[…]]]' of the given depth, built iteratively. */
function deepArrayText(depth: number, inner = ''): string {
  return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
}

/** The same as a value, built iteratively (JSON.stringify of it would overflow the stack). */
function deepArrayValue(depth: number): unknown {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

/** JSON with non-finite numbers kept: ±Infinity as ±1e999 (JSON.parse gives them back), NaN as NaN (not JSON). */
function encode(value: unknown): { text: string; hasNaN: boolean } {
  let hasNaN = false;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'number' || Number.isFinite(v)) return v;
    if (Number.isNaN(v)) hasNaN = true;
    return Number.isNaN(v) ? '__NaN__' : v > 0 ? '__+Inf__' : '__-Inf__';
  });
  return { text: text.replaceAll('"__+Inf__"', '1e999').replaceAll('"__-Inf__"', '-1e999').replaceAll('"__NaN__"', 'NaN'), hasNaN };
}

function expectRejectionSound(rejection: Rejection): void {
  expect(REJECTION_CODES).toContain(rejection.code);
  expect(ERROR_CATALOGUE[rejection.code].message.length).toBeGreaterThan(0);
  expect(typeof rejection.reason).toBe('string');
  expect(rejection.reason.length).toBeGreaterThan(0);
  expect(describeRejection(rejection)).toContain(rejection.reason);
}

/** Every output is a reading inside the bounds and the time window, or a sound rejection. */
function expectReadingsSound(result: ReadingValidation, topicMeterId = 'M1'): void {
  for (const reading of result.readings) {
    expect(reading.meterId).toBe(topicMeterId);
    const wire = toWireReading(reading);
    for (const value of Object.values(wire)) if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true);
    expect(findImplausible(wire)).toBeNull();
    expect(Number.isInteger(reading.seq) && reading.seq >= 0).toBe(true);
    expect(reading.tsMs).toBeGreaterThanOrEqual(NOW - RETENTION_MS);
    expect(reading.tsMs).toBeLessThanOrEqual(NOW + FUTURE_TOLERANCE_MS);
    for (const alarm of reading.alarms) expect(ALARMS).toContain(alarm);
  }
  for (const rejection of result.rejections) expectRejectionSound(rejection);
}

function expectStatusSound(result: MeterStatus | Rejection, meterId = 'M1'): void {
  if ('code' in result) return expectRejectionSound(result);
  expect(result.meterId).toBe(meterId);
  expect(typeof result.online).toBe('boolean');
  expect(result.tsMs).toBeGreaterThanOrEqual(NOW - RETENTION_MS);
  expect(result.tsMs).toBeLessThanOrEqual(NOW + FUTURE_TOLERANCE_MS);
  if (result.firmware !== undefined) expect(result.firmware.length).toBeLessThanOrEqual(128);
}

function checkAll(payload: Uint8Array | string): void {
  for (const meterId of ['M1', 'NOBODY']) {
    expectReadingsSound(validateReadingPayload(meterId, payload, ctx), meterId);
    expectStatusSound(validateStatusPayload(meterId, payload, statusCtx), meterId);
  }
}

const single = (payload: string) => {
  const { readings, rejections } = validateReadingPayload('M1', payload, ctx);
  expect(readings.length + rejections.length).toBe(1);
  return { reading: readings[0], rejection: rejections[0] };
};

describe('validateReadingPayload and validateStatusPayload never throw (properties)', () => {
  it('arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => checkAll(bytes)), RUNS);
  });

  it('arbitrary JSON text and values, alone, as a field of a reading and as a batch element', () => {
    fc.assert(fc.property(fc.json(), (text) => checkAll(text)), RUNS);
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        checkAll(JSON.stringify(value));
        checkAll(JSON.stringify({ ...good, extra: value }));
        checkAll(JSON.stringify([good, value]));
        checkAll(JSON.stringify({ online: true, extra: value }));
      }),
      RUNS,
    );
  });

  const wild = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.constantFrom(0, -0, 1e6, 1e12, 1.7e308, -1.7e308, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e20, Number.MIN_VALUE, Infinity, -Infinity, NaN),
  );
  /** Mostly inside the field's bounds, sometimes just beyond, now and then anything at all. */
  const near = (field: keyof typeof PLAUSIBILITY_BOUNDS) => {
    const { min, max } = PLAUSIBILITY_BOUNDS[field];
    const margin = (max - min) / 10;
    return fc.oneof(
      { arbitrary: fc.double({ min, max, noNaN: true }), weight: 8 },
      { arbitrary: fc.double({ min: min - margin, max: max + margin, noNaN: true }), weight: 1 },
      { arbitrary: wild, weight: 1 },
    );
  };
  const readingLike = fc.record(
    {
      v: fc.oneof({ arbitrary: fc.constant(1), weight: 9 }, { arbitrary: fc.jsonValue(), weight: 1 }),
      meterId: fc.oneof({ arbitrary: fc.constant('M1'), weight: 8 }, { arbitrary: fc.constantFrom('M2', '', 'M1 '), weight: 1 }),
      seq: fc.oneof({ arbitrary: fc.nat(), weight: 6 }, { arbitrary: fc.maxSafeNat(), weight: 2 }, { arbitrary: wild, weight: 1 }),
      ts: fc.oneof(
        { arbitrary: fc.integer({ min: NOW - 1.2 * RETENTION_MS, max: NOW + 10 * 60_000 }), weight: 6 },
        { arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), weight: 1 },
        { arbitrary: fc.integer({ min: NOW - RETENTION_MS, max: NOW }).map((ms) => new Date(ms).toISOString()), weight: 2 },
        { arbitrary: wild, weight: 1 },
        { arbitrary: fc.string(), weight: 1 },
      ),
      flow: near('flow'),
      total: near('total'),
      totalReverse: near('totalReverse'),
      velocity: near('velocity'),
      pressure: near('pressure'),
      temperature: near('temperature'),
      battery: near('battery'),
      rssi: near('rssi'),
      alarms: fc.array(fc.constantFrom(...ALARMS, 'fire'), { maxLength: 3 }),
    },
    { requiredKeys: ['v', 'meterId', 'seq', 'ts', 'flow', 'total'] },
  );

  /** The oracle, written apart from the implementation: SPEC section 1's rules as plain code. */
  function shouldAccept(r: Record<string, unknown>): boolean {
    const inBounds = (field: keyof typeof PLAUSIBILITY_BOUNDS): boolean => {
      const value = r[field];
      if (value === undefined) return field !== 'flow' && field !== 'total' && field !== 'seq';
      const { min, max } = PLAUSIBILITY_BOUNDS[field];
      return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max;
    };
    const ts = r.ts;
    const tsMs = typeof ts === 'number' ? (Number.isInteger(ts) && ts >= 0 ? ts : NaN) : /^\d{4}-.*Z$/.test(String(ts)) ? Date.parse(String(ts)) : NaN;
    return (
      r.v === 1 &&
      r.meterId === 'M1' &&
      Number.isInteger(r.seq) &&
      (Object.keys(PLAUSIBILITY_BOUNDS) as (keyof typeof PLAUSIBILITY_BOUNDS)[]).every(inBounds) &&
      (r.alarms as string[] | undefined)?.every((a) => a !== 'fire') !== false &&
      tsMs >= NOW - RETENTION_MS &&
      tsMs <= NOW + FUTURE_TOLERANCE_MS
    );
  }

  it('objects shaped like readings, with arbitrary numbers (huge, tiny, non-finite): accepted exactly when SPEC section 1 says so', () => {
    const outcomes = new Set<string>();
    fc.assert(
      fc.property(readingLike, (input) => {
        const { text, hasNaN } = encode(input);
        const result = validateReadingPayload('M1', text, ctx);
        expectReadingsSound(result);
        if (hasNaN) expect(result.rejections.map((r) => r.code)).toEqual(['ERR_READING_JSON']);
        else expect(result.readings.length === 1).toBe(shouldAccept(input));
        outcomes.add(result.readings.length === 1 ? 'accepted' : result.rejections[0]!.code);
      }),
      { numRuns: 500 },
    );
    // The generator reaches both sides of every rule, not just the schema's front door.
    expect([...outcomes]).toEqual(expect.arrayContaining(['accepted', 'ERR_OUT_OF_RANGE', 'ERR_READING_SCHEMA', 'ERR_READING_NON_FINITE', 'ERR_TS_TOO_OLD', 'ERR_TS_FUTURE']));
  });

  it('a reading with one field beyond its plausibility bound is ERR_OUT_OF_RANGE, naming the field', () => {
    const beyond = fc.oneof(
      ...(['flow', 'velocity', 'pressure', 'temperature', 'rssi'] as const).flatMap((field) => {
        const { min, max } = PLAUSIBILITY_BOUNDS[field];
        return [
          fc.double({ min: max, minExcluded: true, noNaN: true, noDefaultInfinity: true }).map((value) => [field, value] as const),
          fc.double({ max: min, maxExcluded: true, noNaN: true, noDefaultInfinity: true }).map((value) => [field, value] as const),
        ];
      }),
      ...(['total', 'totalReverse'] as const).map((field) =>
        fc.double({ min: 1e12, minExcluded: true, noNaN: true, noDefaultInfinity: true }).map((value) => [field, value] as const),
      ),
      // Every double above 2⁵³ is an integer.
      fc.double({ min: Number.MAX_SAFE_INTEGER, minExcluded: true, noNaN: true, noDefaultInfinity: true }).map((value) => ['seq', value] as const),
    );
    fc.assert(
      fc.property(beyond, ([field, value]) => {
        const { rejection } = single(JSON.stringify({ ...good, [field]: value }));
        expect(rejection?.code).toBe('ERR_OUT_OF_RANGE');
        expect(rejection?.reason.startsWith(`${field} ${value}`)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('nesting deeper than the wire format (SPEC section 1)', () => {
  const big: ReadingValidationContext = { ...ctx, maxPayloadBytes: 1 << 20 };
  const deepReason = /nesting deeper than the wire format allows/;

  it('V8 parses a 100,000-deep array without a RangeError (JSON.parse is iterative; the validators still catch one)', () => {
    expect(() => JSON.parse(deepArrayText(100_000))).not.toThrow();
  });

  it.each([10_000, 100_000])('rejects a %i-deep array as a payload, as a field, as a batch element and as alarms, without throwing', (depth) => {
    const payloads = [
      deepArrayText(depth),
      JSON.stringify({ ...good, x: '__DEEP__' }).replace('"__DEEP__"', deepArrayText(depth)),
      JSON.stringify({ ...good, alarms: '__DEEP__' }).replace('"__DEEP__"', deepArrayText(depth, '"leak"')),
      `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    ];
    for (const payload of payloads) {
      const result = validateReadingPayload('M1', payload, big);
      expect(result.readings).toEqual([]);
      expect(result.rejections).toHaveLength(1);
      expect(result.rejections[0]).toMatchObject({ code: 'ERR_READING_SCHEMA', reason: expect.stringMatching(deepReason) });
      expectReadingsSound(result);
    }
    // In a batch the deep element is rejected alone; it carries no `item` (re-serialising it would overflow).
    const batch = validateReadingPayload('M1', `[${JSON.stringify(good)},${deepArrayText(depth)},${JSON.stringify({ ...good, seq: 8 })}]`, big);
    expect(batch.readings.map((r) => r.seq)).toEqual([7, 8]);
    expect(batch.rejections).toEqual([{ code: 'ERR_READING_SCHEMA', reason: expect.stringMatching(deepReason) as unknown, index: 1 }]);
  });

  it('the issue\'s 10 KB reading with a 5,000-deep field is a rejection, not a stack overflow', () => {
    const payload = `{"v":1,"meterId":"M1","x":${deepArrayText(5000)}}`;
    expect(Buffer.byteLength(payload)).toBeLessThan(16 * 1024);
    expect(single(payload).rejection).toMatchObject({ code: 'ERR_READING_SCHEMA', reason: expect.stringMatching(deepReason) });
  });

  it('allows exactly the format\'s depth: an unknown flat array beside alarms, one level', () => {
    expect(single(JSON.stringify({ ...good, alarms: ['leak'], note: [1, 2] })).reading?.alarms).toEqual(['leak']);
    expect(single(JSON.stringify({ ...good, note: [[1]] })).rejection?.reason).toMatch(deepReason);
    expect(single(JSON.stringify({ ...good, note: { a: 1 } })).reading).toBeDefined();
    expect(single(JSON.stringify({ ...good, note: { a: {} } })).rejection?.reason).toMatch(deepReason);
  });

  it('inspectJson stops at the bound: a value built 100,000 deep is walked in constant depth', () => {
    expect(inspectJson(deepArrayValue(100_000), MAX_READING_DEPTH)).toEqual({ kind: 'too-deep' });
    expect(inspectJson(deepArrayValue(2), MAX_READING_DEPTH)).toEqual({ kind: 'ok' });
    expect(inspectJson({ a: [1, { b: -Infinity }] }, 5)).toEqual({ kind: 'non-finite', path: 'a[1].b' });
    expect(inspectJson(Infinity, 1)).toEqual({ kind: 'non-finite', path: '(value)' });
  });

  it('rejects deep status messages within the size limit, and deeper ones by size first', () => {
    const flat = (extra: string) => `{"online":true,"x":${extra}}`;
    expect(validateStatusPayload('M1', flat(deepArrayText(2000)), statusCtx)).toMatchObject({ code: 'ERR_STATUS_SCHEMA', reason: expect.stringMatching(deepReason) });
    expect(validateStatusPayload('M1', flat('[1]'), statusCtx)).toMatchObject({ code: 'ERR_STATUS_SCHEMA', reason: expect.stringMatching(deepReason) });
    expect(validateStatusPayload('M1', deepArrayText(100_000), statusCtx)).toMatchObject({ code: 'ERR_PAYLOAD_TOO_LARGE' });
  });
});

describe('plausibility bounds, at the edges (SPEC section 1)', () => {
  // [field, just inside (passes), just outside, the code and reason of the outside value]
  it.each([
    ['flow', 1e6, 1000000.1, 'ERR_OUT_OF_RANGE', 'flow 1000000.1 m³/h is above the plausible maximum 1000000 m³/h'],
    ['flow', -1e6, -1000000.1, 'ERR_OUT_OF_RANGE', 'flow -1000000.1 m³/h is below the plausible minimum -1000000 m³/h'],
    ['flow', 0, 1.7e308, 'ERR_OUT_OF_RANGE', 'flow 1.7e+308 m³/h is above the plausible maximum 1000000 m³/h'],
    ['total', 1e12, 1000000000000.5, 'ERR_OUT_OF_RANGE', 'total 1000000000000.5 m³ is above the plausible maximum 1000000000000 m³'],
    ['totalReverse', 1e12, 1000000000001, 'ERR_OUT_OF_RANGE', 'totalReverse 1000000000001 m³ is above the plausible maximum 1000000000000 m³'],
    ['velocity', 100, 100.01, 'ERR_OUT_OF_RANGE', 'velocity 100.01 m/s is above the plausible maximum 100 m/s'],
    ['velocity', -100, -100.01, 'ERR_OUT_OF_RANGE', 'velocity -100.01 m/s is below the plausible minimum -100 m/s'],
    ['pressure', 1000, 1000.5, 'ERR_OUT_OF_RANGE', 'pressure 1000.5 bar is above the plausible maximum 1000 bar'],
    ['pressure', -1, -1.01, 'ERR_OUT_OF_RANGE', 'pressure -1.01 bar is below the plausible minimum -1 bar'],
    ['temperature', 150, 150.1, 'ERR_OUT_OF_RANGE', 'temperature 150.1 °C is above the plausible maximum 150 °C'],
    ['temperature', -50, -50.1, 'ERR_OUT_OF_RANGE', 'temperature -50.1 °C is below the plausible minimum -50 °C'],
    ['rssi', 0, 0.5, 'ERR_OUT_OF_RANGE', 'rssi 0.5 dBm is above the plausible maximum 0 dBm'],
    ['rssi', -200, -200.5, 'ERR_OUT_OF_RANGE', 'rssi -200.5 dBm is below the plausible minimum -200 dBm'],
    ['seq', Number.MAX_SAFE_INTEGER, 2 ** 53, 'ERR_OUT_OF_RANGE', 'seq 9007199254740992 is above the plausible maximum 9007199254740991'],
    ['seq', 0, 1e20, 'ERR_OUT_OF_RANGE', 'seq 100000000000000000000 is above the plausible maximum 9007199254740991'],
    // The field table's own rules stay schema errors, checked first (see plausibility.ts).
    ['total', 0, -0.001, 'ERR_READING_SCHEMA', 'total: Too small: expected number to be >=0'],
    ['totalReverse', 0, -1, 'ERR_READING_SCHEMA', 'totalReverse: Too small: expected number to be >=0'],
    ['battery', 100, 100.5, 'ERR_READING_SCHEMA', 'battery: Too big: expected number to be <=100'],
    ['battery', 0, -0.5, 'ERR_READING_SCHEMA', 'battery: Too small: expected number to be >=0'],
    ['seq', 0, -1, 'ERR_READING_SCHEMA', 'seq: must be ≥ 0'],
  ] as const)('%s: %d passes, %d is %s', (field, inside, outside, code, reason) => {
    expect(single(JSON.stringify({ ...good, [field]: inside })).reading).toBeDefined();
    expect(single(JSON.stringify({ ...good, [field]: outside })).rejection).toEqual({ code, reason });
  });

  it('every bound is one exported constant with min ≤ max', () => {
    for (const bound of Object.values(PLAUSIBILITY_BOUNDS)) expect(bound.min).toBeLessThanOrEqual(bound.max);
    expect(Object.isFrozen(PLAUSIBILITY_BOUNDS) && Object.isFrozen(PLAUSIBILITY_BOUNDS.flow)).toBe(true);
  });

  it('a reading ts beyond what Date can hold is ERR_TS_FUTURE, not a RangeError', () => {
    expect(single(JSON.stringify({ ...good, ts: 1e16 })).rejection).toMatchObject({ code: 'ERR_TS_FUTURE', reason: expect.stringContaining('10000000000000000 ms since 1970') });
    expect(single(JSON.stringify({ ...good, ts: 2 ** 60 })).rejection?.code).toBe('ERR_TS_FUTURE');
  });

  it('names a non-finite or huge v without trusting it', () => {
    expect(single('{"v":1e999}').rejection).toEqual({ code: 'ERR_READING_VERSION', reason: 'v is Infinity, expected 1' });
    expect(single(JSON.stringify({ ...good, v: 'x'.repeat(5000) })).rejection?.reason.length).toBeLessThan(100);
  });
});

describe('validateStatusPayload (SPEC section 1: a status follows a reading\'s rules)', () => {
  const status = (payload: unknown, meterId = 'M1', context = statusCtx) =>
    validateStatusPayload(meterId, typeof payload === 'string' ? payload : JSON.stringify(payload), context);

  it('accepts a status and takes the meter\'s time, or the server\'s when it sent none (a last will)', () => {
    expect(status({ online: true, ts: '2026-11-25T09:59:00.000Z', firmware: 'sim-1.0', extra: 'ignored' })).toEqual({
      meterId: 'M1',
      online: true,
      tsMs: NOW - 60_000,
      firmware: 'sim-1.0',
    });
    expect(status({ online: false })).toEqual({ meterId: 'M1', online: false, tsMs: NOW });
    expect(status({ online: true, ts: NOW - 1000 })).toMatchObject({ tsMs: NOW - 1000 });
  });

  it.each([
    ['a ts after 2262 (InfluxDB\'s last nanosecond)', { online: true, ts: '2262-04-12T00:00:00.000Z' }, 'ERR_TS_FUTURE'],
    ['a ts 6 minutes ahead', { online: true, ts: NOW + 6 * 60_000 }, 'ERR_TS_FUTURE'],
    ['a ts beyond what Date holds', { online: true, ts: 8.64e15 + 1 }, 'ERR_TS_FUTURE'],
    ['a ts older than retention', { online: true, ts: NOW - RETENTION_MS - 1 }, 'ERR_TS_TOO_OLD'],
    ['a ts in epoch seconds', { online: true, ts: Math.floor(NOW / 1000) }, 'ERR_TS_TOO_OLD'],
    ['a ts that is not a time', { online: true, ts: 'yesterday' }, 'ERR_STATUS_SCHEMA'],
    ['a ts on 30 February', { online: true, ts: '2026-02-30T00:00:00Z' }, 'ERR_STATUS_SCHEMA'],
    ['a negative ts', { online: true, ts: -1 }, 'ERR_STATUS_SCHEMA'],
    ['a fractional ts', { online: true, ts: NOW + 0.5 }, 'ERR_STATUS_SCHEMA'],
    ['a non-finite ts', '{"online":true,"ts":1e999}', 'ERR_READING_NON_FINITE'],
    ['a firmware of 129 characters', { online: true, firmware: 'f'.repeat(129) }, 'ERR_STATUS_SCHEMA'],
    ['online as a string', { online: 'yes' }, 'ERR_STATUS_SCHEMA'],
    ['an array', [{ online: true }], 'ERR_STATUS_SCHEMA'],
    ['invalid JSON', '{"online":', 'ERR_READING_JSON'],
  ])('rejects %s', (_name, payload, code) => {
    const result = status(payload);
    expect(result).toMatchObject({ code });
    expectStatusSound(result);
  });

  it('keeps the 5-minute skew and the retention edge inclusive, like a reading', () => {
    expect(status({ online: true, ts: NOW + FUTURE_TOLERANCE_MS })).toMatchObject({ online: true });
    expect(status({ online: true, ts: NOW - RETENTION_MS })).toMatchObject({ online: true });
    expect(status({ online: true, firmware: 'f'.repeat(128) })).toMatchObject({ firmware: 'f'.repeat(128) });
  });

  it('takes a status of exactly 4 KiB and refuses one byte more before parsing it', () => {
    const padded = (bytes: number) => {
      const head = '{"online":true,"pad":"';
      return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
    };
    expect(Buffer.byteLength(padded(MAX_STATUS_PAYLOAD_BYTES))).toBe(4096);
    expect(status(padded(MAX_STATUS_PAYLOAD_BYTES))).toMatchObject({ online: true });
    expect(status(padded(MAX_STATUS_PAYLOAD_BYTES + 1))).toEqual({ code: 'ERR_PAYLOAD_TOO_LARGE', reason: 'status of 4097 bytes, limit 4096' });
    expect(status(`${'x'.repeat(5000)}`)).toMatchObject({ code: 'ERR_PAYLOAD_TOO_LARGE' });
  });

  it('rejects the status of a meter not in the pilot', () => {
    expect(status({ online: true }, 'NOBODY')).toEqual({ code: 'ERR_METER_UNKNOWN', reason: 'meter "NOBODY" is not in the pilot file' });
  });

  it('turns a failure of its context into a rejection, not a throw', () => {
    const throwing: StatusValidationContext = {
      ...statusCtx,
      isRegistered: () => {
        throw new Error('registry unavailable');
      },
    };
    expect(status({ online: true }, 'M1', throwing)).toEqual({ code: 'ERR_STATUS_SCHEMA', reason: 'could not be validated: registry unavailable' });
    const readings = validateReadingPayload('M1', JSON.stringify(good), { ...ctx, isRegistered: throwing.isRegistered });
    expect(readings.rejections).toEqual([{ code: 'ERR_READING_SCHEMA', reason: 'could not be validated: registry unavailable' }]);
  });
});
