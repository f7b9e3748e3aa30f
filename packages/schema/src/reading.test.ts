import { describe, expect, it } from 'vitest';
import { alarmMask, alarmsFromMask, describeRejection, validateReadingPayload, type ReadingValidationContext } from './reading.ts';

const NOW = Date.parse('2026-11-25T10:00:00.000Z');
const ctx: ReadingValidationContext = {
  nowMs: NOW,
  isRegistered: (id) => id === 'ALM-PS3-DUT1' || id === 'OTHER',
  retentionMs: 30 * 24 * 3600_000,
  maxPayloadBytes: 4096,
};
const good = {
  v: 1,
  meterId: 'ALM-PS3-DUT1',
  seq: 18231,
  ts: '2026-11-25T10:00:00.000Z',
  flow: 42.7,
  total: 125031.442,
  totalReverse: 0,
  velocity: 1.51,
  pressure: 3.2,
  temperature: 11.8,
  battery: 87,
  rssi: -81,
  alarms: ['low_battery'],
};
const validate = (payload: unknown, topicMeter = 'ALM-PS3-DUT1') =>
  validateReadingPayload(topicMeter, typeof payload === 'string' ? payload : JSON.stringify(payload), ctx);

describe('validateReadingPayload', () => {
  it('accepts the SPEC example and normalises units and time', () => {
    const { readings, rejections } = validate(good);
    expect(rejections).toEqual([]);
    expect(readings).toEqual([
      {
        meterId: 'ALM-PS3-DUT1',
        seq: 18231,
        tsMs: NOW,
        flowM3h: 42.7,
        totalM3: 125031.442,
        totalReverseM3: 0,
        velocityMps: 1.51,
        pressureBar: 3.2,
        temperatureC: 11.8,
        batteryPct: 87,
        rssiDbm: -81,
        alarms: ['low_battery'],
      },
    ]);
  });

  it('accepts epoch milliseconds and an offset time', () => {
    expect(validate({ ...good, ts: NOW - 60_000 }).readings[0]?.tsMs).toBe(NOW - 60_000);
    expect(validate({ ...good, ts: '2026-11-25T15:00:00+05:00' }).readings[0]?.tsMs).toBe(NOW);
  });

  it.each([
    ['invalid JSON', '{"v":1,', 'ERR_READING_JSON'],
    ['an unknown version', { ...good, v: 2 }, 'ERR_READING_VERSION'],
    ['a missing version', { ...good, v: undefined }, 'ERR_READING_SCHEMA'],
    ['a non-finite flow', JSON.stringify(good).replace('42.7', '1e999'), 'ERR_READING_NON_FINITE'],
    ['a string seq', { ...good, seq: '1' }, 'ERR_READING_SCHEMA'],
    ['a negative total', { ...good, total: -1 }, 'ERR_READING_SCHEMA'],
    ['an unknown alarm', { ...good, alarms: ['fire'] }, 'ERR_READING_SCHEMA'],
    ['a time without offset', { ...good, ts: '2026-11-25T10:00:00' }, 'ERR_READING_SCHEMA'],
    ['a meterId of another meter', { ...good, meterId: 'OTHER' }, 'ERR_METER_MISMATCH'],
    ['a time 6 minutes ahead', { ...good, ts: NOW + 6 * 60_000 }, 'ERR_TS_FUTURE'],
    ['a time older than retention', { ...good, ts: NOW - 31 * 24 * 3600_000 }, 'ERR_TS_TOO_OLD'],
    ['a scalar', 42, 'ERR_READING_SCHEMA'],
  ])('rejects %s', (_name, payload, code) => {
    const { readings, rejections } = validate(payload);
    expect(readings).toEqual([]);
    expect(rejections.map((r) => r.code)).toEqual([code]);
  });

  it('allows a time up to 5 minutes ahead (clock skew)', () => {
    expect(validate({ ...good, ts: NOW + 5 * 60_000 }).readings).toHaveLength(1);
  });

  it('rejects an unregistered meter before parsing', () => {
    expect(validate('not json', 'NOBODY').rejections).toEqual([{ code: 'ERR_METER_UNKNOWN', reason: 'meter "NOBODY" is not in the pilot file' }]);
  });

  it('rejects a payload over the size limit', () => {
    expect(validate('x'.repeat(4097)).rejections[0]?.code).toBe('ERR_PAYLOAD_TOO_LARGE');
  });

  it('keeps the good readings of a batch and rejects each bad one with its index and item', () => {
    const bad = { ...good, seq: 2, flow: 'fast' };
    const { readings, rejections } = validate([good, bad, { ...good, seq: 3 }]);
    expect(readings.map((r) => r.seq)).toEqual([18231, 3]);
    expect(rejections).toHaveLength(1);
    expect(rejections[0]).toMatchObject({ code: 'ERR_READING_SCHEMA', index: 1, item: bad });
    expect(describeRejection(rejections[0]!)).toMatch(/^reading \[1\]: flow: .*wire format v1/);
  });

  it('rejects a batch of more than 1000 readings as a whole', () => {
    const big = validateReadingPayload('ALM-PS3-DUT1', JSON.stringify(Array.from({ length: 1001 }, () => 0)), { ...ctx, maxPayloadBytes: 1e6 });
    expect(big.rejections.map((r) => r.code)).toEqual(['ERR_BATCH_TOO_LARGE']);
  });

  it('hints at epoch seconds', () => {
    expect(validate({ ...good, ts: Math.floor(NOW / 1000) }).rejections[0]?.reason).toMatch(/epoch seconds/);
  });
});

describe('alarm bit mask (SPEC section 2: bit order as listed in section 1)', () => {
  it.each([
    [[], 0],
    [['reverse_flow'], 1],
    [['empty_pipe'], 2],
    [['low_battery'], 16],
    [['reverse_flow', 'overload'], 65],
    [['leak', 'tamper', 'sensor_fault'], 4 + 8 + 32],
  ] as const)('%j is %i', (alarms, mask) => {
    expect(alarmMask(alarms)).toBe(mask);
    expect(alarmsFromMask(mask)).toEqual(alarms);
  });
});
