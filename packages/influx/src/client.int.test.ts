import { describe, expect, inject, it } from 'vitest';
import type { Reading } from '@flowpilot/schema';
import { createTestInflux } from '../../../test/helpers/influx.ts';
import { createInfluxClient } from './client.ts';
import { InfluxError } from './errors.ts';
import { quoteIdentifier, quoteString, timeLiteral } from './influxql.ts';
import { readingLine, statusLine } from './line-protocol.ts';
import { freePorts } from './local-influx.ts';
import { writeIsolating } from './write-isolating.ts';

const T0 = 1_764_064_800_000; // 2025-11-25T10:00:00.000Z

const reading = (seq: number, change: Partial<Reading> = {}): Reading => ({
  meterId: 'ALM-PS3-DUT1',
  seq,
  tsMs: T0 + seq * 60_000,
  flowM3h: 42,
  totalM3: 1000 + seq,
  alarms: [],
  ...change,
});

describe('InfluxClient against a real influxd', () => {
  it('pings and reports the version', async () => {
    const influx = await createTestInflux();
    expect((await influx.ping()).version).toMatch(/\d+\.\d+/);
  });

  it('writes readings and reads them back with the SPEC section 2 field types', async () => {
    const influx = await createTestInflux();
    await influx.write([
      readingLine(reading(1, { totalReverseM3: 0, velocityMps: 1.5, pressureBar: 3, temperatureC: 11.8, batteryPct: 87, rssiDbm: -81, alarms: ['leak', 'low_battery'] }), 'PS3', T0 + 61_000),
      readingLine(reading(2), 'PS3', T0 + 121_500),
      statusLine({ meterId: 'ALM-PS3-DUT1', online: true, tsMs: T0 }),
    ]);

    const [series, ...more] = await influx.query('SELECT * FROM "reading" ORDER BY time ASC');
    expect(more).toEqual([]);
    const rows = series?.values.map((values) => Object.fromEntries(series.columns.map((column, i) => [column, values[i]])));
    expect(rows).toEqual([
      {
        time: T0 + 60_000,
        meter: 'ALM-PS3-DUT1',
        site: 'PS3',
        flow: 42,
        total: 1001,
        total_rev: 0,
        velocity: 1.5,
        pressure: 3,
        temperature: 11.8,
        battery: 87,
        rssi: -81,
        seq: 1,
        alarms: 4 + 16,
        received_at: T0 + 61_000,
        latency_ms: 1000,
        arrival: 0,
      },
      {
        time: T0 + 120_000,
        meter: 'ALM-PS3-DUT1',
        site: 'PS3',
        flow: 42,
        total: 1002,
        total_rev: null,
        velocity: null,
        pressure: null,
        temperature: null,
        battery: null,
        rssi: null,
        seq: 2,
        alarms: 0,
        received_at: T0 + 121_500,
        latency_ms: 1500,
        arrival: 0,
      },
    ]);

    const fieldKeys = await influx.query('SHOW FIELD KEYS');
    const types = Object.fromEntries(fieldKeys.map((s) => [s.name, Object.fromEntries(s.values.map(([key, type]) => [key, type]))]));
    expect(types).toEqual({
      reading: {
        flow: 'float',
        total: 'float',
        total_rev: 'float',
        velocity: 'float',
        pressure: 'float',
        temperature: 'float',
        battery: 'float',
        rssi: 'float',
        seq: 'integer',
        alarms: 'integer',
        received_at: 'integer',
        latency_ms: 'integer',
        arrival: 'integer',
      },
      status: { online: 'boolean' },
    });
  });

  it('stores escaped tag values as they were and finds them with quoteString', async () => {
    const influx = await createTestInflux();
    const sites = ['Pump station 3, outlet', 'zone=north', "O'Brien's well", 'say "hi"'];
    await influx.write(sites.map((site, i) => readingLine(reading(i, { meterId: `m.${i}-x` }), site, T0)));
    const stored = await influx.query('SHOW TAG VALUES FROM "reading" WITH KEY = "site"');
    expect(stored[0]?.values.map(([, value]) => value).sort()).toEqual([...sites].sort());
    for (const [i, site] of sites.entries()) {
      const [found] = await influx.query(`SELECT "seq" FROM "reading" WHERE "site" = ${quoteString(site)} AND "meter" = ${quoteString(`m.${i}-x`)}`);
      expect(found?.values).toEqual([[T0 + i * 60_000, i]]);
    }
    // A measurement name that needs quoting, through quoteIdentifier.
    await influx.write(['odd\\ "name" f=1 1000']);
    const [odd] = await influx.query(`SELECT "f" FROM ${quoteIdentifier('odd "name"')}`);
    expect(odd?.values).toEqual([[1000, 1]]);
  });

  it('timeLiteral bounds are exact: >= includes, < excludes, to the millisecond', async () => {
    const influx = await createTestInflux();
    await influx.write([T0 - 1, T0, T0 + 1, T0 + 999, T0 + 1000].map((ms, i) => `reading,meter=a,site=s flow=${i} ${ms}`));
    const [series] = await influx.query(`SELECT "flow" FROM "reading" WHERE time >= ${timeLiteral(T0)} AND time < ${timeLiteral(T0 + 1000)}`);
    expect(series?.values).toEqual([
      [T0, 1],
      [T0 + 1, 2],
      [T0 + 999, 3],
    ]);
  });

  it('reads a series of 25,000 rows whole: influxd 1.6 answers it in chunks, merged here', async () => {
    // Without chunked=true influxd 1.6 marks such a merged series "partial" although every row is
    // there; with it, the series comes in three chunks, the first two marked partial.
    const influx = await createTestInflux();
    const t0 = Date.UTC(2026, 10, 1);
    const lines = Array.from({ length: 25_000 }, (_, i) => `reading,meter=BIG,site=S flow=${i},total=${i}i ${t0 + i * 1000}`.replace(/total=(\d+)i/, 'total=$1'));
    for (let i = 0; i < lines.length; i += 5000) await influx.write(lines.slice(i, i + 5000));
    const [series, ...more] = await influx.query(`SELECT flow FROM reading WHERE meter = 'BIG'`);
    expect(more).toHaveLength(0);
    expect(series?.values).toHaveLength(25_000);
    expect(series?.values[24_999]).toEqual([t0 + 24_999_000, 24_999]);
    expect(series).not.toHaveProperty('partial');
  });

  it('the same meter and ts written twice is one point (SPEC section 2)', async () => {
    const influx = await createTestInflux();
    const line = readingLine(reading(7), 'PS3', T0 + 500);
    await influx.write([line]);
    await influx.write([line, line]);
    const [series] = await influx.query('SELECT count("seq") FROM "reading"');
    expect(series?.values).toEqual([[0, 1]]);
  });

  it('writeIsolating stores every good line and returns the one with a field type conflict', async () => {
    const influx = await createTestInflux();
    await influx.write(['reading,meter=a,site=s flow=1.5 1000']);
    const bad = 'reading,meter=b,site=s flow=1i 1000';
    const batch = [2000, 3000, 4000].map((ms) => `reading,meter=a,site=s flow=2.5 ${ms}`);
    batch.splice(1, 0, bad);
    batch.push('reading,meter=c,site=s flow=3 5000');

    const result = await writeIsolating(influx, batch);
    expect(result.written).toBe(4);
    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0]?.line).toBe(bad);
    expect(result.rejected[0]?.reason).toMatch(/field type conflict/);

    const [series] = await influx.query('SELECT "flow", "meter" FROM "reading"');
    expect(series?.values).toEqual([
      [1000, 1.5, 'a'],
      [2000, 2.5, 'a'],
      [3000, 2.5, 'a'],
      [4000, 2.5, 'a'],
      [5000, 3, 'c'],
    ]);
  });

  it('writeIsolating finds a malformed line in a large batch', async () => {
    const influx = await createTestInflux();
    const batch = Array.from({ length: 1000 }, (_, i) => `reading,meter=a,site=s flow=${i}.5 ${T0 + i}`);
    batch[613] = 'reading,meter=a,site=s flow= 1';
    const result = await writeIsolating(influx, batch);
    expect(result.written).toBe(999);
    expect(result.rejected).toEqual([{ line: 'reading,meter=a,site=s flow= 1', reason: expect.stringMatching(/unable to parse/) }]);
    const [series] = await influx.query('SELECT count("flow") FROM "reading"');
    expect(series?.values).toEqual([[0, 999]]);
  });

  it('a write to a database that does not exist is kind database', async () => {
    const influx = await createTestInflux();
    const missing = createInfluxClient({ ...influx.config, database: 'flowpilot_missing_db' });
    await expect(missing.write(['m f=1 1'])).rejects.toMatchObject({ kind: 'database', status: 404, code: 'ERR_INFLUX_DATABASE' });
    await expect(missing.query('SELECT * FROM m')).rejects.toMatchObject({ kind: 'database' });
  });

  it('an InfluxQL syntax error is kind query', async () => {
    const influx = await createTestInflux();
    await expect(influx.query('SELEC nothing')).rejects.toMatchObject({ kind: 'query', status: 400 });
  });

  it('sends credentials as Authorization: Basic, which influxd accepts (auth off in the tests)', async () => {
    const influx = await createTestInflux();
    const seen: URL[] = [];
    const withAuth = createInfluxClient(
      { url: inject('influxUrl'), database: influx.config.database, username: 'ingest', password: 's3cret' },
      { fetch: async (input, init) => (seen.push(new URL(String(input))), fetch(input, init)) },
    );
    await withAuth.write(['reading,meter=b,site=s flow=1.5,seq=1i 1000']);
    const [series] = await withAuth.query('SELECT "flow" FROM "reading"');
    expect(series?.values).toEqual([[1000, 1.5]]);
    expect(seen.map((url) => url.href).join(' ')).not.toMatch(/s3cret|[?&][up]=/);
  });

  it('ensureDatabase twice is harmless', async () => {
    const influx = await createTestInflux();
    await influx.ensureDatabase();
    await influx.ensureDatabase();
  });

  it('ping of a dead port throws unavailable, retriable', async () => {
    const [port] = await freePorts(1);
    const dead = createInfluxClient({ url: `http://127.0.0.1:${port}`, database: 'x', timeoutMs: 2_000 });
    const error = await dead.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InfluxError);
    expect((error as InfluxError).kind).toBe('unavailable');
    expect((error as InfluxError).canRetry()).toBe(true);
    expect((error as InfluxError).message).toContain('ECONNREFUSED');
  });
});
