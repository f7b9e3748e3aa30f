import { PassThrough } from 'node:stream';
import type { ReadingBucket, ReadingsRepository, StoredReading, TimeRange } from '@flowpilot/influx';
import { ERROR_CONVENTION } from '@flowpilot/metrics';
import ExcelJS from 'exceljs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApi } from './app.ts';
import { csvField, csvRow, csvTable, EXCEL_SEMICOLON, RFC4180 } from './csv.ts';
import { createMemoryLiveFeed } from './live-feed.ts';
import type { ApiMeterMetrics } from './metrics-service.ts';
import { METRICS_CSV_HEADER, metricsCsv, metricsCsvRow, readingsCsv } from './reports-csv.ts';
import { EXCEL_DATE_TIME, excelLocalTime, excelSheetNames, metricsColumnFormat, metricsWorkbook, readingsXlsxHeader, SHEET_NAME_MAX, writeReadingsXlsx } from './reports-xlsx.ts';
import type { XlsxReportInfo } from './reports-xlsx.ts';
import { idleInflux, testPilot } from './test-pilot.ts';

// The Excel exports of issue 14 as units: sheet names, local times, the metrics workbook, the
// streamed readings workbook over a fake repository, and the CSV dialect for Excel. The same
// files against a real influxd: test/reports-excel.test.ts.

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2026, 9, 1); // 2026-10-01, Asia/Almaty is UTC+05:00
const FIVE_HOURS = 5 * 3_600_000;
const pilot = testPilot();

function info(fromMs: number, toMs: number): XlsxReportInfo {
  return { pilot: pilot.pilot, window: { fromMs, toMs }, generatedAtMs: T0 + 10 * DAY_MS, softwareVersion: '9.9.9' };
}

async function load(buffer: Buffer | ArrayBuffer): Promise<ExcelJS.Workbook> {
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(buffer as ArrayBuffer);
  return workbook;
}

/** A row's values from column 1 (exceljs's row.values starts at index 1). */
const rowValues = (sheet: ExcelJS.Worksheet, n: number): unknown[] => {
  const values = sheet.getRow(n).values as unknown[];
  return Array.from({ length: sheet.columnCount }, (_, i) => values[i + 1] ?? null);
};

describe('excelSheetNames (what Excel accepts)', () => {
  it('keeps short valid names as they are', () => {
    expect(excelSheetNames(['T-REF', 'T-DUT', 'T-MON'], ['About'])).toEqual(['T-REF', 'T-DUT', 'T-MON']);
  });

  it('cuts to 31 characters, replaces [ ] : * ? / \\, and keeps names unique ignoring case', () => {
    const long = 'A'.repeat(40);
    const names = excelSheetNames([long, `${'A'.repeat(31)}b`, 'x:y/z', "'quoted'", 'about', 'History', 'T-1', 't-1', '']);
    expect(names).toEqual([`${'A'.repeat(31)}`, `${'A'.repeat(29)}~2`, 'x_y_z', '_quoted_', 'about', 'History~2', 'T-1', 't-1~2', 'Sheet']);
    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(SHEET_NAME_MAX);
      expect(name).not.toMatch(/[[\]:*?/\\]|^'|'$/);
    }
    expect(excelSheetNames(['about'], ['About'])).toEqual(['about~2']);
  });
});

describe('excelLocalTime (Excel stores wall-clock times, no zone)', () => {
  it('shifts UTC to the pilot zone', () => {
    const local = excelLocalTime('Asia/Almaty');
    expect(local(T0).toISOString()).toBe('2026-10-01T05:00:00.000Z');
    expect(local(T0 + 123).getTime()).toBe(T0 + FIVE_HOURS + 123);
  });

  it('follows daylight saving time both ways', () => {
    const local = excelLocalTime('Europe/Berlin');
    // 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST.
    expect(local(Date.UTC(2026, 2, 29, 0, 59, 59)).toISOString()).toBe('2026-03-29T01:59:59.000Z');
    expect(local(Date.UTC(2026, 2, 29, 1, 0, 0)).toISOString()).toBe('2026-03-29T03:00:00.000Z');
    // 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET.
    expect(local(Date.UTC(2026, 9, 25, 0, 59, 59)).toISOString()).toBe('2026-10-25T02:59:59.000Z');
    expect(local(Date.UTC(2026, 9, 25, 1, 0, 0)).toISOString()).toBe('2026-10-25T02:00:00.000Z');
  });
});

function meterMetrics(over: Partial<ApiMeterMetrics> = {}): ApiMeterMetrics {
  return {
    meterId: 'T-MON',
    role: 'monitor',
    reference: null,
    window: { fromMs: T0, toMs: T0 + DAY_MS },
    intervalSec: 300,
    expected: 288,
    received: 280,
    completeness: 280 / 288,
    delivery: 0.99,
    seq: { distinct: 280, produced: 283, restarts: 0 },
    gaps: { count: 1, longestMs: 2_400_500, totalMs: 2_400_500, thresholdMs: 900_000, longest: { fromMs: T0, toMs: T0 + 2_400_500 } },
    latencyMs: { count: 270, p50: 410, p95: 900, p99: 1500, max: 2100, backfilled: { count: 10, share: 10 / 280, maxMs: 3_600_000 }, replayed: 0 },
    volumeM3: 1234.5678,
    totalizerResets: 0,
    flow: { count: 280, meanM3h: 51.25, minM3h: -2, maxM3h: 90.125 },
    minNightFlow: { minM3h: 0.52, minNight: '2026-10-01', minReverseM3: 0, latestM3h: 0.61, latestNight: '2026-10-01', latestReverseM3: 0, nights: 1, byNight: [] },
    totalizerConsistency: { percent: -0.125, integralM3: 1233, volumeM3: 1234.5678, pairs: 279, skippedPairs: { gap: 1, reset: 0 } },
    alarms: { reverse_flow: 3, empty_pipe: 0, leak: 0, tamper: 0, low_battery: 0, sensor_fault: 0, overload: 0 },
    rejected: { ERR_READING_SCHEMA: 2 },
    accuracy: null,
    ...over,
  };
}

describe('metrics.xlsx', () => {
  it('gives every column of metrics.csv a format, from its name', () => {
    expect(metricsColumnFormat('from')).toMatchObject({ kind: 'time', numFmt: EXCEL_DATE_TIME });
    expect(metricsColumnFormat('min_night')).toMatchObject({ kind: 'date', numFmt: 'yyyy-mm-dd' });
    expect(metricsColumnFormat('completeness').numFmt).toBe('0.00%');
    expect(metricsColumnFormat('upper_error_pct').numFmt).toBe('0.000" %"');
    expect(metricsColumnFormat('volume_m3').numFmt).toBe('0.000" m³"');
    expect(metricsColumnFormat('flow_mean_m3h').numFmt).toBe('0.000" m³/h"');
    expect(metricsColumnFormat('latency_p50_ms').numFmt).toBe('#,##0" ms"');
    expect(metricsColumnFormat('meter').numFmt).toBeUndefined();
    expect(metricsColumnFormat('upper_verdict').numFmt).toBeUndefined();
    for (const name of METRICS_CSV_HEADER) expect(metricsColumnFormat(name).width).toBeGreaterThan(0);
  });

  it('holds the numbers of metricsCsvRow as numbers, times as local Excel dates, and an About sheet', async () => {
    const meters = [meterMetrics(), meterMetrics({ meterId: 'T-REF', role: 'reference', completeness: null, rejected: null })];
    const workbook = await load(await metricsWorkbook(meters, { ...info(T0, T0 + DAY_MS), window: { fromMs: T0, toMs: T0 + DAY_MS, clamped: true } }).xlsx.writeBuffer());
    expect(workbook.worksheets.map((s) => s.name)).toEqual(['Metrics', 'About']);
    const sheet = workbook.getWorksheet('Metrics') as ExcelJS.Worksheet;
    expect(sheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
    expect(sheet.rowCount).toBe(3);
    expect(rowValues(sheet, 1)).toEqual(METRICS_CSV_HEADER.map((name) => (name === 'from' || name === 'to' ? `${name} (Asia/Almaty)` : name)));

    for (const [i, m] of meters.entries()) {
      const csv = metricsCsvRow(m);
      const cells = rowValues(sheet, i + 2);
      for (const [c, name] of METRICS_CSV_HEADER.entries()) {
        const expected = csv[c];
        const actual = cells[c];
        if (name === 'from' || name === 'to') expect((actual as Date).getTime(), name).toBe(Date.parse(expected as string) + FIVE_HOURS);
        else if (name === 'min_night' || name === 'latest_night') expect((actual as Date).toISOString(), name).toBe('2026-10-01T00:00:00.000Z');
        else if (expected === null || expected === undefined) expect(actual, name).toBeNull();
        else expect(actual, name).toBe(expected);
      }
    }
    const column = (name: string) => sheet.getRow(2).getCell(METRICS_CSV_HEADER.indexOf(name) + 1);
    expect(column('completeness').numFmt).toBe('0.00%');
    expect(column('volume_m3').value).toBe(1234.5678);
    expect(column('from').numFmt).toBe(EXCEL_DATE_TIME);
    expect(column('rejected').value).toBe('ERR_READING_SCHEMA=2');

    const about = (workbook.getWorksheet('About') as ExcelJS.Worksheet).getSheetValues().flat().map(String).join('\n');
    expect(about).toContain('Test pilot (test-pilot)');
    expect(about).toContain('Asia/Almaty (UTC+05:00)');
    expect(about).toContain(new Date(T0).toISOString());
    expect(about).toContain(ERROR_CONVENTION);
    expect(about).toContain('Clamped');
    expect(about).toContain('9.9.9');
  });
});

/** A repository of one reading a minute per meter, values from (meter, time); counts its queries. */
function fakeReadings(): ReadingsRepository & { calls: Array<{ meterId: string; range: TimeRange }> } {
  const calls: Array<{ meterId: string; range: TimeRange }> = [];
  const reading = (meterId: string, tsMs: number): StoredReading => {
    const k = (tsMs - T0) / 60_000;
    return {
      meterId,
      tsMs,
      seq: k,
      flowM3h: Math.sin(k) * 50 + meterId.length,
      totalM3: 1000 + k * 0.75,
      ...(meterId === 'T-DUT' ? { temperatureC: 11.5 } : {}),
      alarms: k % 100 === 0 ? ['leak', 'tamper'] : [],
      ...(k % 2 === 0 ? { receivedAtMs: tsMs + 750 } : {}),
    };
  };
  const readingsIn = (meterId: string, range: TimeRange): StoredReading[] => {
    const out: StoredReading[] = [];
    for (let t = Math.ceil(range.fromMs / 60_000) * 60_000; t < range.toMs; t += 60_000) out.push(reading(meterId, t));
    return out;
  };
  const unused = async (): Promise<never> => {
    throw new Error('not used by the exports');
  };
  return {
    calls,
    readings: async (meterId, range) => {
      calls.push({ meterId, range });
      return readingsIn(meterId, range);
    },
    buckets: async (meterId, range, everyMs): Promise<ReadingBucket[]> => {
      calls.push({ meterId, range });
      const out: ReadingBucket[] = [];
      for (let t = range.fromMs; t < range.toMs; t += everyMs) {
        const inside = readingsIn(meterId, { fromMs: t, toMs: Math.min(t + everyMs, range.toMs) });
        const flows = inside.map((r) => r.flowM3h);
        out.push({ tsMs: t, flowMeanM3h: flows.reduce((a, b) => a + b, 0) / flows.length, flowMinM3h: Math.min(...flows), flowMaxM3h: Math.max(...flows), totalLastM3: inside.at(-1)?.totalM3 ?? null, count: inside.length });
      }
      return out;
    },
    latest: unused,
    latestOfEvery: unused,
    columns: unused,
    dayStamps: unused,
    count: unused,
    seqs: unused,
    maxSeqs: unused,
  };
}

async function collect(output: PassThrough, writing: Promise<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk));
  await writing;
  return Buffer.concat(chunks);
}

describe('readings.xlsx (streamed)', () => {
  it('writes a sheet per meter, one query per meter and day, readings as numbers and local Excel dates', async () => {
    const repo = fakeReadings();
    const window = { fromMs: T0 + 12 * 3_600_000, toMs: T0 + 2 * DAY_MS + 6 * 3_600_000 }; // touches 3 UTC days
    const output = new PassThrough();
    const writing = writeReadingsXlsx(output, { readings: repo, meters: pilot.meters, window, every: undefined, info: info(window.fromMs, window.toMs) });
    const buffer = await collect(output, writing);
    expect(await writing).toEqual({ rows: [2520, 2520, 2520] });
    expect(repo.calls.map((c) => c.meterId)).toEqual(['T-REF', 'T-REF', 'T-REF', 'T-DUT', 'T-DUT', 'T-DUT', 'T-MON', 'T-MON', 'T-MON']);
    for (const call of repo.calls) expect(call.range.toMs - call.range.fromMs).toBeLessThanOrEqual(DAY_MS);

    const workbook = await load(buffer);
    expect(workbook.worksheets.map((s) => s.name)).toEqual(['T-REF', 'T-DUT', 'T-MON', 'About']);
    const sheet = workbook.getWorksheet('T-DUT') as ExcelJS.Worksheet;
    expect(rowValues(sheet, 1)).toEqual(readingsXlsxHeader('Asia/Almaty', undefined));
    expect(rowValues(sheet, 1)[0]).toBe('ts (Asia/Almaty)');
    expect(sheet.rowCount).toBe(2521);
    expect(sheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
    const header = rowValues(sheet, 1);
    const at = (name: string) => header.indexOf(name);
    const expected = await fakeReadings().readings('T-DUT', window);
    for (const n of [0, 1, 100, 2519]) {
      const cells = rowValues(sheet, n + 2);
      const r = expected[n] as StoredReading;
      expect((cells[0] as Date).getTime()).toBe(r.tsMs + FIVE_HOURS);
      expect(sheet.getRow(n + 2).getCell(1).numFmt).toBe(EXCEL_DATE_TIME);
      expect(cells[at('flow_m3h')]).toBe(r.flowM3h);
      expect(cells[at('total_m3')]).toBe(r.totalM3);
      expect(cells[at('temperature_c')]).toBe(11.5);
      expect(cells[at('velocity_mps')]).toBeNull();
      expect(cells[at('seq')]).toBe(r.seq);
      expect(cells[at('alarms')]).toBe(r.alarms.length ? r.alarms.join(' ') : null);
      const received = cells[at('received_at (Asia/Almaty)')];
      if (r.receivedAtMs === undefined) expect(received).toBeNull();
      else expect((received as Date).getTime()).toBe(r.receivedAtMs + FIVE_HOURS);
    }
    const about = (workbook.getWorksheet('About') as ExcelJS.Worksheet).getSheetValues().flat().map(String).join('\n');
    expect(about).toContain('T-DUT, Meter under test, test, S1: 2520 rows');
  });

  it('writes buckets with `every`, their start as a local Excel date', async () => {
    const repo = fakeReadings();
    const window = { fromMs: T0, toMs: T0 + DAY_MS };
    const every = { literal: '1h', ms: 3_600_000 };
    const output = new PassThrough();
    const writing = writeReadingsXlsx(output, { readings: repo, meters: pilot.meters.slice(0, 1), window, every, info: info(window.fromMs, window.toMs) });
    const workbook = await load(await collect(output, writing));
    const sheet = workbook.getWorksheet('T-REF') as ExcelJS.Worksheet;
    expect(rowValues(sheet, 1)).toEqual(['ts (Asia/Almaty)', 'flow_mean_m3h', 'flow_min_m3h', 'flow_max_m3h', 'total_last_m3', 'count']);
    expect(sheet.rowCount).toBe(25);
    const buckets = await fakeReadings().buckets('T-REF', window, every.ms);
    const cells = rowValues(sheet, 4);
    expect((cells[0] as Date).getTime()).toBe(T0 + 2 * 3_600_000 + FIVE_HOURS);
    expect(cells.slice(1)).toEqual([buckets[2]?.flowMeanM3h, buckets[2]?.flowMinM3h, buckets[2]?.flowMaxM3h, buckets[2]?.totalLastM3, 60]);
  });

  it('waits while the client does not read, and stops reading InfluxDB when it goes away', async () => {
    const repo = fakeReadings();
    const window = { fromMs: T0, toMs: T0 + 20 * DAY_MS };
    const output = new PassThrough({ highWaterMark: 16 * 1024 });
    const writing = writeReadingsXlsx(output, { readings: repo, meters: pilot.meters, window, every: undefined, info: info(window.fromMs, window.toMs) });
    // Nobody reads: the writer fills the buffers, then waits for room.
    await vi.waitFor(() => expect(output.writableNeedDrain).toBe(true));
    const pause = () => new Promise((resolve) => setTimeout(resolve, 100));
    await pause();
    const queried = repo.calls.length;
    await pause();
    expect(repo.calls.length).toBe(queried);
    expect(queried).toBeLessThan(60); // 3 meters × 20 days: it stopped well before the end
    output.destroy();
    expect(await writing).toBeNull();
    expect(repo.calls.length).toBeLessThanOrEqual(queried + 1);
  });
});

describe('CSV for Excel in a decimal-comma locale (excel=true)', () => {
  it.each([
    [-3.5, '-3,5'],
    [1234.5678, '1234,5678'],
    [1.5e-7, '1,5e-7'],
    [42, '42'],
    ['a;b', '"a;b"'],
    ['a,b', 'a,b'],
    ['say "hi"', '"say ""hi"""'],
    ['=1+1', "'=1+1"],
    [null, ''],
  ] as const)('%j → %j', (value, expected) => {
    expect(csvField(value, EXCEL_SEMICOLON)).toBe(expected);
  });

  it('starts with a byte-order mark and sep=;, separates with ; and ends records with CRLF', () => {
    expect(csvTable(['h1', 'h2'], [[1.5, 'x']], EXCEL_SEMICOLON)).toBe('\uFEFFsep=;\r\nh1;h2\r\n1,5;x\r\n');
    expect(csvRow(['a', 0.25], RFC4180)).toBe('a,0.25\r\n');
  });

  it('leaves RFC 4180 as it was by default', () => {
    const meters = [meterMetrics()];
    expect(metricsCsv(meters)).toBe(csvRow(METRICS_CSV_HEADER) + csvRow(metricsCsvRow(meters[0] as ApiMeterMetrics)));
    expect(metricsCsv(meters).charCodeAt(0)).not.toBe(0xfeff);
  });

  it('parses back to the same values (metrics and streamed readings)', async () => {
    const m = meterMetrics();
    const lines = metricsCsv([m], EXCEL_SEMICOLON).split('\r\n');
    expect(lines[0]).toBe('\uFEFFsep=;');
    expect(lines[1]?.split(';')).toEqual([...METRICS_CSV_HEADER]);
    const fields = lines[2]?.split(';') ?? [];
    const csv = metricsCsvRow(m);
    for (const [i, value] of csv.entries()) {
      if (typeof value === 'number') expect(Number((fields[i] as string).replace(',', '.')), METRICS_CSV_HEADER[i]).toBe(value);
      else expect(fields[i], METRICS_CSV_HEADER[i]).toBe(value ?? '');
    }

    const chunks: string[] = [];
    for await (const chunk of readingsCsv(fakeReadings(), pilot.meters.slice(1, 2), T0, T0 + 3_600_000, undefined, EXCEL_SEMICOLON)) chunks.push(chunk);
    const rows = chunks.join('').split('\r\n');
    expect(rows[0]).toBe('\uFEFFsep=;');
    expect(rows[1]).toBe('meter;ts;flow_m3h;total_m3;total_reverse_m3;velocity_mps;pressure_bar;temperature_c;battery_pct;rssi_dbm;seq;alarms;received_at');
    const first = (await fakeReadings().readings('T-DUT', { fromMs: T0, toMs: T0 + 60_000 }))[0] as StoredReading;
    const cells = rows[2]?.split(';') ?? [];
    expect(cells[0]).toBe('T-DUT');
    expect(cells[1]).toBe(new Date(T0).toISOString());
    expect(Number(cells[2]?.replace(',', '.'))).toBe(first.flowM3h);
    expect(Number(cells[3]?.replace(',', '.'))).toBe(first.totalM3);
    expect(rows).toHaveLength(60 + 3);
  });
});

describe('the routes (an InfluxDB that holds nothing)', () => {
  let app: FastifyInstance;
  const NOW_MS = T0 + 10 * DAY_MS;
  beforeEach(async () => {
    app = await createApi({ pilot, influx: idleInflux, liveFeed: createMemoryLiveFeed(), clock: () => NOW_MS });
  });
  afterEach(async () => {
    await app.close();
  });

  it('answers metrics.xlsx and readings.xlsx as workbooks with a download name', async () => {
    const metrics = await app.inject(`/api/v1/reports/metrics.xlsx?from=${T0}&to=${T0 + DAY_MS}`);
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    expect(metrics.headers['content-disposition']).toBe('attachment; filename="test-pilot_metrics_2026-10-01_2026-10-02.xlsx"');
    const book = await load(metrics.rawPayload);
    expect((book.getWorksheet('Metrics') as ExcelJS.Worksheet).rowCount).toBe(pilot.meters.length + 1);

    const readings = await app.inject(`/api/v1/reports/readings.xlsx?from=${T0}&to=${T0 + DAY_MS}&every=1h`);
    expect(readings.statusCode).toBe(200);
    expect(readings.headers['content-disposition']).toBe('attachment; filename="test-pilot_readings_2026-10-01_2026-10-02_1h.xlsx"');
    expect((await load(readings.rawPayload)).worksheets.map((s) => s.name)).toEqual(['T-REF', 'T-DUT', 'T-MON', 'About']);

    const one = await app.inject(`/api/v1/reports/readings.xlsx?meter=T-MON&from=${T0}&to=${T0 + DAY_MS}`);
    expect((await load(one.rawPayload)).worksheets.map((s) => s.name)).toEqual(['T-MON', 'About']);
  });

  it('answers HEAD of readings.xlsx without reading InfluxDB', async () => {
    const queries: string[] = [];
    const counting = await createApi({ pilot, influx: { ...idleInflux, query: async (q) => (queries.push(q), []) }, liveFeed: createMemoryLiveFeed(), clock: () => NOW_MS });
    try {
      const head = await counting.inject({ method: 'HEAD', url: `/api/v1/reports/readings.xlsx?from=${T0}&to=${T0 + 30 * DAY_MS}` });
      expect(head.statusCode).toBe(200);
      expect(head.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
      expect(queries).toEqual([]);
    } finally {
      await counting.close();
    }
  });

  it('validates the Excel routes and the excel parameter like the rest', async () => {
    expect((await app.inject('/api/v1/reports/readings.xlsx?meter=NOPE')).statusCode).toBe(404);
    expect((await app.inject('/api/v1/reports/readings.xlsx?every=5x')).json()).toMatchObject({ error: { code: 'ERR_VALIDATION' } });
    expect((await app.inject('/api/v1/reports/metrics.xlsx?from=2&to=1')).statusCode).toBe(400);
    const bad = await app.inject('/api/v1/reports/metrics.csv?excel=yes');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'ERR_VALIDATION', message: expect.stringContaining('excel') } });
  });

  it('writes CSV for Excel only with excel=true', async () => {
    const plain = await app.inject(`/api/v1/reports/metrics.csv?from=${T0}&to=${T0 + DAY_MS}&excel=false`);
    expect(plain.body.startsWith('meter,role,reference,')).toBe(true);
    const excel = await app.inject(`/api/v1/reports/metrics.csv?from=${T0}&to=${T0 + DAY_MS}&excel=true`);
    expect(excel.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(excel.rawPayload.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(excel.body.split('\r\n').slice(0, 2)).toEqual(['\uFEFFsep=;', METRICS_CSV_HEADER.join(';')]);
    const readings = await app.inject(`/api/v1/reports/readings.csv?from=${T0}&to=${T0 + DAY_MS}&excel=true`);
    expect(readings.body).toBe('\uFEFFsep=;\r\nmeter;ts;flow_m3h;total_m3;total_reverse_m3;velocity_mps;pressure_bar;temperature_c;battery_pct;rssi_dbm;seq;alarms;received_at\r\n');
  });

  it('documents excel=true in OpenAPI', async () => {
    const doc = (await app.inject('/docs/json')).json() as { paths: Record<string, { get: { parameters?: Array<{ name: string; description?: string }> } }> };
    for (const path of ['/api/v1/reports/metrics.csv', '/api/v1/reports/readings.csv']) {
      const excel = doc.paths[path]?.get.parameters?.find((p) => p.name === 'excel');
      expect(excel?.description, path).toContain('sep=;');
    }
    expect(doc.paths['/api/v1/reports/readings.xlsx']?.get.parameters?.map((p) => p.name).sort()).toEqual(['every', 'from', 'meter', 'to']);
  });
});
