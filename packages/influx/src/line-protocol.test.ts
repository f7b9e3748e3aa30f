import { describe, expect, it } from 'vitest';
import { ARRIVAL } from '@flowpilot/schema';
import type { Arrival, MeterStatus, Reading } from '@flowpilot/schema';
import { InfluxError } from './errors.ts';
import { escapeMeasurement, escapeTag, readingLine, statusLine } from './line-protocol.ts';

const TS = 1_764_064_800_000; // 2025-11-25T10:00:00.000Z
const RECEIVED = 1_764_064_800_250;

const minimal: Reading = { meterId: 'ALM-PS3-DUT1', seq: 18231, tsMs: TS, flowM3h: 42.7, totalM3: 125031.442, alarms: [] };

describe('readingLine', () => {
  it.each<[string, Reading, string, string]>([
    [
      'all optional fields absent: alarms still written as 0i',
      minimal,
      'PS3',
      'reading,meter=ALM-PS3-DUT1,site=PS3 flow=42.7,total=125031.442,seq=18231i,alarms=0i,received_at=1764064800250i,latency_ms=250i,arrival=0i 1764064800000',
    ],
    [
      'every field, in SPEC order; whole numbers stay bare floats',
      {
        ...minimal,
        flowM3h: 42,
        totalM3: 0,
        totalReverseM3: 0.5,
        velocityMps: 1.51,
        pressureBar: 3.2,
        temperatureC: -0.25,
        batteryPct: 87,
        rssiDbm: -81,
        alarms: ['low_battery'],
      },
      'PS3',
      'reading,meter=ALM-PS3-DUT1,site=PS3 flow=42,total=0,total_rev=0.5,velocity=1.51,pressure=3.2,temperature=-0.25,battery=87,rssi=-81,seq=18231i,alarms=16i,received_at=1764064800250i,latency_ms=250i,arrival=0i 1764064800000',
    ],
    [
      'alarm mask: reverse_flow (bit 0) | leak (bit 2) | overload (bit 6) = 1 + 4 + 64',
      { ...minimal, alarms: ['overload', 'reverse_flow', 'leak'] },
      'PS3',
      'reading,meter=ALM-PS3-DUT1,site=PS3 flow=42.7,total=125031.442,seq=18231i,alarms=69i,received_at=1764064800250i,latency_ms=250i,arrival=0i 1764064800000',
    ],
    [
      'meter id with . _ - needs no escaping; site with a space and a comma does',
      { ...minimal, meterId: 'a.b_c-1', flowM3h: -3.5 },
      'Pump station 3, outlet',
      'reading,meter=a.b_c-1,site=Pump\\ station\\ 3\\,\\ outlet flow=-3.5,total=125031.442,seq=18231i,alarms=0i,received_at=1764064800250i,latency_ms=250i,arrival=0i 1764064800000',
    ],
    [
      'site with an equals sign',
      minimal,
      'zone=north',
      'reading,meter=ALM-PS3-DUT1,site=zone\\=north flow=42.7,total=125031.442,seq=18231i,alarms=0i,received_at=1764064800250i,latency_ms=250i,arrival=0i 1764064800000',
    ],
    [
      'tiny and huge floats use exponent notation, which line protocol reads as floats',
      { ...minimal, flowM3h: 1.5e-7, totalM3: 1e21 },
      'PS3',
      'reading,meter=ALM-PS3-DUT1,site=PS3 flow=1.5e-7,total=1e+21,seq=18231i,alarms=0i,received_at=1764064800250i,latency_ms=250i,arrival=0i 1764064800000',
    ],
  ])('%s', (_name, reading, site, expected) => {
    expect(readingLine(reading, site, RECEIVED)).toBe(expected);
  });

  it('writes how the reading arrived: 0 alone (the default), 1 in a backfill array, 2 replayed from the dead letters', () => {
    const tail = (arrival?: Arrival) => readingLine(minimal, 'PS3', RECEIVED, arrival).split(' ')[1]?.split(',').slice(-3).join(',');
    expect(tail()).toBe('received_at=1764064800250i,latency_ms=250i,arrival=0i');
    expect(tail(ARRIVAL.backfill)).toBe('received_at=1764064800250i,latency_ms=250i,arrival=1i');
    expect(tail(ARRIVAL.replay)).toBe('received_at=1764064800250i,latency_ms=250i,arrival=2i');
  });

  it.each<[string, string]>([
    ['a newline', 'PS3\nreading,meter=x flow=1'],
    ['a carriage return', 'PS3\r'],
    ['a backslash', 'PS3\\'],
    ['nothing (empty)', ''],
  ])('refuses a site with %s as a bad line, never retried', (_name, site) => {
    let thrown: unknown;
    try {
      readingLine(minimal, site, RECEIVED);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InfluxError);
    expect((thrown as InfluxError).kind).toBe('bad-lines');
    expect((thrown as InfluxError).canRetry()).toBe(false);
  });

  it.each<[string, Partial<Reading>]>([
    ['a NaN float', { flowM3h: Number.NaN }],
    ['an infinite float', { pressureBar: Number.POSITIVE_INFINITY }],
    ['a fractional seq', { seq: 1.5 }],
    ['a fractional timestamp', { tsMs: TS + 0.5 }],
  ])('refuses %s', (_name, change) => {
    expect(() => readingLine({ ...minimal, ...change }, 'PS3', RECEIVED)).toThrow(InfluxError);
  });
});

describe('statusLine', () => {
  it.each<[MeterStatus, string]>([
    [{ meterId: 'ALM-PS3-REF', online: true, tsMs: TS }, 'status,meter=ALM-PS3-REF online=true 1764064800000'],
    [{ meterId: 'm.1-x', online: false, tsMs: 0, firmware: '1.2.3' }, 'status,meter=m.1-x online=false 0'],
  ])('%j', (status, expected) => {
    expect(statusLine(status)).toBe(expected);
  });
});

describe('escaping', () => {
  it.each<[string, string]>([
    ['plain', 'plain'],
    ['a b', 'a\\ b'],
    ['a,b', 'a\\,b'],
    ['a=b', 'a\\=b'],
    [' ,=', '\\ \\,\\='],
    ['ünïcode', 'ünïcode'],
  ])('tag %j → %j', (raw, escaped) => {
    expect(escapeTag(raw)).toBe(escaped);
  });

  it.each<[string, string]>([
    ['reading', 'reading'],
    ['a b', 'a\\ b'],
    ['a,b', 'a\\,b'],
    ['a=b', 'a=b'], // an equals sign needs no escape in a measurement
  ])('measurement %j → %j', (raw, escaped) => {
    expect(escapeMeasurement(raw)).toBe(escaped);
  });
});
