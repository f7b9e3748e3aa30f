import { readingLine } from '@flowpilot/influx';
import type { PilotConfig, Reading } from '@flowpilot/schema';
import { parsePilotConfig } from '@flowpilot/schema';
import ExcelJS from 'exceljs';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { createApi } from '../services/api/src/app.ts';
import { createMemoryLiveFeed } from '../services/api/src/live-feed.ts';
import type { ApiMeterMetrics } from '../services/api/src/metrics-service.ts';
import { METRICS_CSV_HEADER, metricsCsvRow } from '../services/api/src/reports-csv.ts';
import { testPilot } from '../services/api/src/test-pilot.ts';
import { createTestInflux } from './helpers/influx.ts';

/*
 * Issue 14, Excel: metrics.xlsx, readings.xlsx and the CSV for Excel against the real API and a
 * real influxd. Two days of a reference (1 min), its meter under test (1 min, +2 %, water
 * temperature, alarms) and a monitor (5 min, pressure and battery, holes, reverse flow) across
 * the end of daylight saving time in Europe/Berlin (2026-10-25 01:00 UTC). The workbooks are
 * read back with exceljs: numbers are numbers equal to /api/v1/metrics and to what was written,
 * times are Excel dates equal to the wall time in the pilot's zone (by Intl, not by the code
 * under test), one sheet per meter; the CSV for Excel parses back to the values of plain CSV.
 */

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 24); // Saturday; Berlin leaves CEST the next night
const NOW = T0 + 5 * DAY;
/** What CSV for Excel starts with: the byte-order mark, then Excel's separator hint. */
const PREAMBLE = '\uFEFFsep=;\r\n';

const almaty = testPilot();
/** The same meters in a zone with daylight saving time. */
const berlin: PilotConfig = parsePilotConfig(
  JSON.stringify({ pilot: { ...almaty.pilot, timezone: 'Europe/Berlin' }, meters: almaty.meters }),
  'Berlin test pilot',
);

const flowAt = (t: number) => 0.5 + 60 * Math.sin(Math.PI * ((t % DAY) / DAY)) ** 2 + 0.01 * Math.sin(t / 9e5);

/** Readings every `intervalMin` for two days; the meter indicates `gain` × the true flow and volume. */
function series(meterId: string, intervalMin: number, gain: number, build: (k: number, t: number, flow: number) => Partial<Reading> | null): Reading[] {
  const out: Reading[] = [];
  let total = 4000.125;
  for (let k = 0; k * intervalMin * MIN < 2 * DAY; k++) {
    const t = T0 + k * intervalMin * MIN;
    const flow = flowAt(t) * gain;
    total += (flow * intervalMin) / 60;
    const extra = build(k, t, flow);
    if (extra !== null) out.push({ meterId, seq: k, tsMs: t, flowM3h: flow, totalM3: total, alarms: [], ...extra });
  }
  return out;
}

const written: Array<{ reading: Reading; receivedAtMs: number }> = [
  ...series('T-REF', 1, 1, () => ({})),
  ...series('T-DUT', 1, 1.02, (k) => ({ temperatureC: 11 + (k % 7) / 10, alarms: k % 300 === 5 ? ['leak', 'low_battery'] : [] })),
  ...series('T-MON', 5, 1, (k, _t, flow) => (k % 41 === 3 ? null : { flowM3h: k % 50 === 1 ? -1.25 : flow, pressureBar: 3.5 + (k % 5) / 100, batteryPct: 97, alarms: k % 50 === 1 ? ['reverse_flow'] : [] })),
].map((reading) => ({ reading, receivedAtMs: reading.tsMs + 400 + ((reading.seq * 37) % 3000) }));

/** Wall-clock time of `ms` in `timezone`, as "YYYY-MM-DD hh:mm:ss", from Intl alone. */
function wallClock(timezone: string, ms: number): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(ms);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}:${part('second')}`;
}

/** How Excel shows a date cell with format yyyy-mm-dd hh:mm:ss: its serial's fields, which exceljs hands back as the UTC fields of a Date. */
const shown = (value: unknown): string => {
  expect(value).toBeInstanceOf(Date);
  return (value as Date).toISOString().slice(0, 19).replace('T', ' ');
};

async function workbookOf(app: FastifyInstance, url: string): Promise<ExcelJS.Workbook> {
  const response = await app.inject(url);
  expect(response.statusCode, url).toBe(200);
  expect(response.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
  expect(response.headers['content-disposition']).toMatch(/^attachment; filename=".+\.xlsx"$/);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(response.rawPayload as unknown as ArrayBuffer);
  return workbook;
}

/** The cells of a sheet's rows as objects keyed by the header row. */
function records(sheet: ExcelJS.Worksheet): Array<Record<string, ExcelJS.Cell>> {
  const header = (sheet.getRow(1).values as unknown[]).slice(1).map(String);
  const out: Array<Record<string, ExcelJS.Cell>> = [];
  for (let n = 2; n <= sheet.rowCount; n++) {
    const row = sheet.getRow(n);
    out.push(Object.fromEntries(header.map((name, i) => [name, row.getCell(i + 1)])));
  }
  return out;
}

/** RFC 4180 without quoted fields (none in these tables), or the Excel dialect: rows of fields. */
function parseCsv(text: string, separator: ',' | ';'): string[][] {
  return text
    .split('\r\n')
    .slice(0, -1)
    .map((line) => line.split(separator));
}

describe('Excel exports against a real influxd (issue 14)', () => {
  it('metrics.xlsx, readings.xlsx and CSV for Excel carry the stored values', async () => {
    const influx = await createTestInflux({ timeoutMs: 60_000 });
    await influx.write(written.map(({ reading, receivedAtMs }) => readingLine(reading, almaty.meters.find((m) => m.id === reading.meterId)?.site ?? 'S', receivedAtMs)));
    const app = await createApi({ pilot: almaty, influx, liveFeed: createMemoryLiveFeed(), clock: () => NOW });
    const appBerlin = await createApi({ pilot: berlin, influx, liveFeed: createMemoryLiveFeed(), clock: () => NOW });
    try {
      const window = `from=${T0}&to=${T0 + 2 * DAY}`;

      // metrics.xlsx: every cell is the number of /api/v1/metrics, in the columns of metrics.csv.
      const api = (await app.inject(`/api/v1/metrics?${window}`)).json() as { meters: ApiMeterMetrics[] };
      const metricsBook = await workbookOf(app, `/api/v1/reports/metrics.xlsx?${window}`);
      expect(metricsBook.worksheets.map((s) => s.name)).toEqual(['Metrics', 'About']);
      const metricsSheet = metricsBook.getWorksheet('Metrics') as ExcelJS.Worksheet;
      expect(metricsSheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
      const rows = records(metricsSheet);
      expect(rows.map((r) => r.meter?.value)).toEqual(almaty.meters.map((m) => m.id));
      for (const [i, meter] of api.meters.entries()) {
        const row = rows[i] as Record<string, ExcelJS.Cell>;
        const csv = metricsCsvRow(meter);
        for (const [c, name] of METRICS_CSV_HEADER.entries()) {
          const value = csv[c];
          if (name === 'from' || name === 'to') {
            expect(shown(row[`${name} (Asia/Almaty)`]?.value), name).toBe(wallClock('Asia/Almaty', Date.parse(value as string)));
          } else if (name === 'min_night' || name === 'latest_night') {
            expect(value === null ? null : shown(row[name]?.value).slice(0, 10), name).toBe(value);
          } else if (typeof value === 'number') {
            expect(row[name]?.type, `${meter.meterId} ${name}`).toBe(ExcelJS.ValueType.Number);
            expect(row[name]?.value, `${meter.meterId} ${name}`).toBe(value);
          } else {
            expect(row[name]?.value ?? null, `${meter.meterId} ${name}`).toBe(value ?? null);
          }
        }
      }
      // Spot checks by name, straight from the JSON.
      const dut = api.meters.find((m) => m.meterId === 'T-DUT') as ApiMeterMetrics;
      const dutRow = rows[1] as Record<string, ExcelJS.Cell>;
      expect(dutRow.volume_m3?.value).toBe(dut.volumeM3);
      expect(dutRow.completeness?.value).toBe(dut.completeness);
      expect(dutRow.completeness?.numFmt).toBe('0.00%');
      expect(dutRow.upper_error_pct?.value).toBe(dut.accuracy?.upper.error);
      expect(dutRow.upper_error_pct?.value as number).toBeCloseTo(2, 1);
      expect(dutRow.upper_verdict?.value).toBe('pass');
      expect(shown(dutRow['from (Asia/Almaty)']?.value)).toBe('2026-10-24 05:00:00');
      const about = (metricsBook.getWorksheet('About') as ExcelJS.Worksheet).getSheetValues().flat().map(String).join('\n');
      expect(about).toContain('error = (indicated − reference) / reference × 100 %');
      expect(about).toContain('2026-10-24T00:00:00.000Z');

      // readings.xlsx: a sheet per meter, every stored reading of the window, times local.
      for (const [pilot, server] of [
        [almaty, app],
        [berlin, appBerlin],
      ] as const) {
        const zone = pilot.pilot.timezone;
        const from = T0 + 12 * HOUR;
        const to = T0 + 36 * HOUR; // in Berlin: 14:00 CEST on the 24th to 13:00 CET on the 25th
        const book = await workbookOf(server, `/api/v1/reports/readings.xlsx?from=${from}&to=${to}`);
        expect(book.worksheets.map((s) => s.name)).toEqual([...pilot.meters.map((m) => m.id), 'About']);
        for (const meter of pilot.meters) {
          const sheet = book.getWorksheet(meter.id) as ExcelJS.Worksheet;
          const stored = written.filter(({ reading }) => reading.meterId === meter.id && reading.tsMs >= from && reading.tsMs < to);
          const cells = records(sheet);
          expect(cells, `${zone} ${meter.id}`).toHaveLength(stored.length);
          for (const [n, { reading, receivedAtMs }] of stored.entries()) {
            const row = cells[n] as Record<string, ExcelJS.Cell>;
            expect(shown(row[`ts (${zone})`]?.value)).toBe(wallClock(zone, reading.tsMs));
            expect(row[`ts (${zone})`]?.numFmt).toBe('yyyy-mm-dd hh:mm:ss');
            expect(shown(row[`received_at (${zone})`]?.value)).toBe(wallClock(zone, receivedAtMs));
            expect(row.flow_m3h?.type).toBe(ExcelJS.ValueType.Number);
            expect(row.flow_m3h?.value).toBe(reading.flowM3h);
            expect(row.total_m3?.value).toBe(reading.totalM3);
            expect(row.seq?.value).toBe(reading.seq);
            expect(row.temperature_c?.value ?? undefined).toBe(reading.temperatureC);
            expect(row.pressure_bar?.value ?? undefined).toBe(reading.pressureBar);
            expect(row.alarms?.value ?? '').toBe(reading.alarms.join(' '));
          }
        }
        if (zone === 'Europe/Berlin') {
          // The hour 02:00-03:00 happens twice that night: both are there, in order.
          const times = records(book.getWorksheet('T-REF') as ExcelJS.Worksheet).map((r) => shown(r['ts (Europe/Berlin)']?.value));
          expect(times.filter((t) => t === '2026-10-25 02:30:00')).toHaveLength(2);
        }
      }

      // readings.xlsx with `every`: the buckets of readings.csv, as numbers.
      const hourly = await workbookOf(app, `/api/v1/reports/readings.xlsx?${window}&every=1h`);
      const hourlyCsv = parseCsv((await app.inject(`/api/v1/reports/readings.csv?${window}&every=1h`)).body, ',');
      expect(hourlyCsv[0]).toEqual(['meter', 'ts', 'flow_mean_m3h', 'flow_min_m3h', 'flow_max_m3h', 'total_last_m3', 'count']);
      for (const meter of almaty.meters) {
        const csvRows = hourlyCsv.filter((r) => r[0] === meter.id);
        const cells = records(hourly.getWorksheet(meter.id) as ExcelJS.Worksheet);
        expect(cells).toHaveLength(48);
        expect(cells.map((r) => [shown(r['ts (Asia/Almaty)']?.value), ...['flow_mean_m3h', 'flow_min_m3h', 'flow_max_m3h', 'total_last_m3', 'count'].map((k) => r[k]?.value)])).toEqual(
          csvRows.map((r) => [wallClock('Asia/Almaty', Date.parse(r[1] as string)), ...r.slice(2).map(Number)]),
        );
      }

      // CSV for Excel: a byte-order mark, sep=;, then the same values with ; and decimal commas.
      for (const path of [`/api/v1/reports/metrics.csv?${window}`, `/api/v1/reports/readings.csv?meter=T-MON&${window}`, `/api/v1/reports/readings.csv?${window}&every=15m`]) {
        const plain = await app.inject(path);
        const excel = await app.inject(`${path}&excel=true`);
        expect(excel.statusCode).toBe(200);
        expect(excel.rawPayload.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
        expect(excel.body.startsWith(PREAMBLE)).toBe(true);
        expect(plain.body.charCodeAt(0)).not.toBe(0xfeff);
        const a = parseCsv(plain.body, ',');
        const b = parseCsv(excel.body.slice(PREAMBLE.length), ';');
        expect(b).toHaveLength(a.length);
        expect(a.length).toBeGreaterThan(3);
        for (const [n, row] of a.entries()) {
          const other = b[n] as string[];
          expect(other).toHaveLength(row.length);
          for (const [c, field] of row.entries()) {
            const number = field !== '' && Number.isFinite(Number(field));
            if (number) expect(Number((other[c] as string).replace(',', '.')), `${path} ${n}:${c}`).toBe(Number(field));
            else expect(other[c], `${path} ${n}:${c}`).toBe(field);
          }
        }
      }
      const metricsExcel = parseCsv((await app.inject(`/api/v1/reports/metrics.csv?${window}&excel=true`)).body.slice(PREAMBLE.length), ';');
      const volume = METRICS_CSV_HEADER.indexOf('volume_m3');
      expect(metricsExcel[2]?.[volume]).toMatch(/^\d+,\d+$/);
      expect(Number(metricsExcel[2]?.[volume]?.replace(',', '.'))).toBe(dut.volumeM3);
    } finally {
      await app.close();
      await appBerlin.close();
    }
  });
});

