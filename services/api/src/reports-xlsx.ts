import type { Writable } from 'node:stream';
import type { ReadingsRepository, StoredReading } from '@flowpilot/influx';
import { formatUtcOffset } from '@flowpilot/i18n';
import { ERROR_CONVENTION, zoneOffsetMs } from '@flowpilot/metrics';
import type { TimeWindow } from '@flowpilot/metrics';
import { READING_FIELDS, RECEIPT_FIELDS } from '@flowpilot/schema';
import type { MeterConfig } from '@flowpilot/schema';
import ExcelJS from 'exceljs';
import type { CellValue, Worksheet } from 'exceljs';
import type { Every } from './api-schemas.ts';
import type { CsvValue } from './csv.ts';
import type { ApiMeterMetrics } from './metrics-service.ts';
import { BUCKETS_CSV_HEADER, chunkBounds, exportChunkMs, METRICS_CSV_HEADER, metricsCsvRow } from './reports-csv.ts';

/**
 * The evaluator's Excel workbooks (SPEC section 5, issue 14): metrics.xlsx, the metrics table of
 * metrics.csv with an "About" sheet, and readings.xlsx, a sheet per meter, streamed. Numbers are
 * numbers (with number formats), times are Excel dates. Excel has no time zones: a time is
 * written as the pilot's local wall time (SPEC section 3 `timezone`, "days are local") and its
 * column header names the zone, e.g. `ts (Asia/Almaty)`. Other column names are those of the CSV.
 */

export const XLSX_CONTENT_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
export const EXCEL_DATE_TIME = 'yyyy-mm-dd hh:mm:ss';
export const EXCEL_DATE = 'yyyy-mm-dd';
/** Excel's limit on a sheet name (ECMA-376 leaves it open; Excel refuses longer ones). */
export const SHEET_NAME_MAX = 31;
export const ABOUT_SHEET = 'About';

/** What both workbooks say about themselves on their About sheet. */
export interface XlsxReportInfo {
  pilot: { id: string; name: string; timezone: string };
  window: TimeWindow & { clamped?: boolean };
  generatedAtMs: number;
  softwareVersion: string;
}

const QUARTER_HOUR_MS = 900_000;
const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * UTC epoch ms → the Date Excel should store: its UTC fields are the wall time in `timezone`
 * (exceljs writes a Date as days since 1899-12-30 UTC). Offsets change only on quarter hours
 * in every zone of the tz database since 1970, so one Intl lookup per quarter hour is enough.
 */
export function excelLocalTime(timezone: string): (utcMs: number) => Date {
  const offsets = new Map<number, number>();
  return (utcMs) => {
    const slot = Math.floor(utcMs / QUARTER_HOUR_MS);
    let offset = offsets.get(slot);
    if (offset === undefined) {
      if (offsets.size > 100_000) offsets.clear();
      offset = zoneOffsetMs(timezone, slot * QUARTER_HOUR_MS);
      offsets.set(slot, offset);
    }
    return new Date(utcMs + offset);
  };
}

/** A time column's header: the CSV's name and the zone its wall times are in. */
export const localHeader = (name: string, timezone: string): string => `${name} (${timezone})`;

const FORBIDDEN_IN_SHEET_NAME = /[[\]:*?/\\]/g;

/**
 * Sheet names Excel accepts for these wanted names, in order: at most 31 characters, none of
 * `[ ] : * ? / \`, not starting or ending with `'`, not `History` (Excel reserves it) and
 * unique ignoring case, against each other and the `reserved` names; a clash gets `~2`, `~3`.
 */
export function excelSheetNames(wanted: readonly string[], reserved: readonly string[] = []): string[] {
  const taken = new Set(['history', ...reserved.map((name) => name.toLowerCase())]);
  return wanted.map((name) => {
    const clean = name.replace(FORBIDDEN_IN_SHEET_NAME, '_').replace(/^'|'$/g, '_').slice(0, SHEET_NAME_MAX) || 'Sheet';
    let candidate = clean;
    for (let n = 2; taken.has(candidate.toLowerCase()); n++) candidate = `${clean.slice(0, SHEET_NAME_MAX - `~${n}`.length)}~${n}`;
    taken.add(candidate.toLowerCase());
    return candidate;
  });
}

/** How one column is shown: a kind (numbers and text as they are, times converted) and Excel's number format. */
export interface XlsxColumnFormat {
  kind: 'value' | 'time' | 'date';
  numFmt?: string;
  width: number;
}

/** Ratios in [0, 1] (SPEC section 4), shown as % while the cell keeps the API's number. */
const RATIO_COLUMNS = new Set(['completeness', 'delivery', 'backfilled_share']);
const TEXT_COLUMNS = new Set(['meter', 'role', 'reference', 'rejected']);

/** The format of a metrics.csv column, from its name: the units are in the names (STYLE "Naming"). */
export function metricsColumnFormat(name: string): XlsxColumnFormat {
  const width = Math.min(40, Math.max(10, name.length + 2));
  if (name === 'from' || name === 'to') return { kind: 'time', numFmt: EXCEL_DATE_TIME, width: 20 };
  // A night is labelled with the local date it ends on (SPEC section 4): a date, no zone to convert.
  if (name === 'min_night' || name === 'latest_night') return { kind: 'date', numFmt: EXCEL_DATE, width: Math.max(width, 12) };
  if (RATIO_COLUMNS.has(name)) return { kind: 'value', numFmt: '0.00%', width };
  // Percent values (2 means 2 %): a literal "%" in quotes, so Excel does not multiply by 100.
  if (name.endsWith('_pct')) return { kind: 'value', numFmt: '0.000" %"', width };
  if (name.endsWith('_m3h')) return { kind: 'value', numFmt: '0.000" m³/h"', width };
  if (name.endsWith('_m3')) return { kind: 'value', numFmt: '0.000" m³"', width };
  if (name.endsWith('_ms')) return { kind: 'value', numFmt: '#,##0" ms"', width };
  if (name.endsWith('_s')) return { kind: 'value', numFmt: '#,##0" s"', width };
  if (name.endsWith('_c')) return { kind: 'value', numFmt: '0.0" °C"', width };
  if (TEXT_COLUMNS.has(name) || name.endsWith('_verdict') || name.endsWith('_rule')) return { kind: 'value', width: Math.max(width, 14) };
  return { kind: 'value', numFmt: '0', width };
}

function cellOf(value: CsvValue, format: XlsxColumnFormat, local: (utcMs: number) => Date): CellValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  if (format.kind === 'time' && typeof value === 'string') return local(Date.parse(value));
  if (format.kind === 'date' && typeof value === 'string') return new Date(`${value}T00:00:00.000Z`);
  return value;
}

function setColumns(sheet: Worksheet, headers: readonly string[], formats: readonly XlsxColumnFormat[]): void {
  sheet.columns = headers.map((header, i) => {
    const format = formats[i] as XlsxColumnFormat;
    return { header, width: format.width, ...(format.numFmt ? { style: { numFmt: format.numFmt } } : {}) };
  });
  // The header row is text: no number format, bold.
  const head = sheet.getRow(1);
  head.eachCell((cell) => {
    cell.style = { font: { bold: true } };
  });
}

const FROZEN_HEADER = [{ state: 'frozen' as const, xSplit: 1, ySplit: 1 }];

/** A row of an About sheet: a label (bold), a value, and the value's number format. */
type AboutRow = readonly [label: string | null, value: CellValue, numFmt?: string];

/** The About sheet's first rows, common to both workbooks: the pilot, the window (local and UTC), the zone, when and by what. */
function aboutRows(info: XlsxReportInfo, title: string): AboutRow[] {
  const { pilot, window } = info;
  const local = excelLocalTime(pilot.timezone);
  const offsets = [...new Set([formatUtcOffset(pilot.timezone, window.fromMs), formatUtcOffset(pilot.timezone, window.toMs)])];
  const rows: AboutRow[] = [
    [title, null],
    ['Pilot', `${pilot.name} (${pilot.id})`],
    ['Time zone', `${pilot.timezone} (UTC${offsets.join(', UTC')})`],
    [`Window from, local (${pilot.timezone})`, local(window.fromMs), EXCEL_DATE_TIME],
    [`Window to, local (${pilot.timezone}), exclusive`, local(window.toMs), EXCEL_DATE_TIME],
    ['Window from, UTC', iso(window.fromMs)],
    ['Window to, UTC, exclusive', iso(window.toMs)],
  ];
  if (window.clamped) rows.push(['Clamped', 'The end asked for was later than now: the window ends now (SPEC section 4)']);
  rows.push(
    [`Generated at, local (${pilot.timezone})`, local(info.generatedAtMs), EXCEL_DATE_TIME],
    ['Generated at, UTC', iso(info.generatedAtMs)],
    ['Software', `FlowPilot ${info.softwareVersion}`],
    ['Times', `Dates and times are wall-clock times in ${pilot.timezone}, the zone named in their column headers: Excel stores no zone.`],
  );
  return rows;
}

function writeAbout(sheet: Worksheet, rows: readonly AboutRow[]): void {
  sheet.columns = [{ width: 44 }, { width: 90 }];
  for (const [label, value, numFmt] of rows) {
    const row = sheet.addRow([label, value]);
    row.getCell(1).font = { bold: true };
    if (numFmt) row.getCell(2).numFmt = numFmt;
    row.getCell(2).alignment = { horizontal: 'left', wrapText: typeof value === 'string' && value.length > 90 };
  }
}

/**
 * metrics.xlsx: the sheet "Metrics", the columns of metrics.csv (METRICS_CSV_HEADER, `from` and
 * `to` as local times), one row per meter with the numbers of GET /api/v1/metrics; and "About".
 */
export function metricsWorkbook(meters: readonly ApiMeterMetrics[], info: XlsxReportInfo): ExcelJS.Workbook {
  const workbook = new ExcelJS.Workbook();
  workbook.creator = 'FlowPilot';
  workbook.created = new Date(info.generatedAtMs);
  const { timezone } = info.pilot;
  const local = excelLocalTime(timezone);
  const formats = METRICS_CSV_HEADER.map(metricsColumnFormat);
  const headers = METRICS_CSV_HEADER.map((name, i) => ((formats[i] as XlsxColumnFormat).kind === 'time' ? localHeader(name, timezone) : name));

  const sheet = workbook.addWorksheet('Metrics', { views: FROZEN_HEADER });
  setColumns(sheet, headers, formats);
  for (const m of meters) sheet.addRow(metricsCsvRow(m).map((value, i) => cellOf(value, formats[i] as XlsxColumnFormat, local)));
  sheet.autoFilter = { from: { row: 1, column: 1 }, to: { row: meters.length + 1, column: headers.length } };

  writeAbout(workbook.addWorksheet(ABOUT_SHEET), [
    ...aboutRows(info, 'FlowPilot: metrics per meter (SPEC section 4)'),
    ['Source', 'GET /api/v1/metrics over this window: the same numbers, in the columns of reports/metrics.csv'],
    ['Error convention', ERROR_CONVENTION],
    ['Ratios and percentages', 'completeness, delivery and backfilled_share are ratios (0 to 1) shown as %; a column ending in _pct holds a percentage (2 means 2 %).'],
    ['Empty cells', 'An empty cell is a figure that is unknown or does not apply; a known zero is 0 (SPEC section 4).'],
  ]);
  return workbook;
}

/** readings.xlsx's columns of raw readings: the time, every field of the schema's field table, when it arrived. */
export function readingsXlsxHeader(timezone: string, every: Every | undefined): string[] {
  if (every) return BUCKETS_CSV_HEADER.filter((name) => name !== 'meter').map((name) => (name === 'ts' ? localHeader(name, timezone) : name));
  return [localHeader('ts', timezone), ...READING_FIELDS.map((f) => f.csv), localHeader(RECEIPT_FIELDS.receivedAt.csv, timezone)];
}

const TIME_COLUMN: XlsxColumnFormat = { kind: 'time', numFmt: EXCEL_DATE_TIME, width: 20 };
/**
 * Numbers in General, which shows them as stored: a fixed format would hide digits of raw data,
 * and a style on every cell is most of exceljs's time per row (it renders each cell's style to
 * find it again). Only the times need one, or Excel would show day numbers.
 */
const NUMBER_COLUMN = (name: string): XlsxColumnFormat => ({ kind: 'value', width: Math.max(12, name.length + 2) });
const READING_FORMATS: readonly XlsxColumnFormat[] = [
  TIME_COLUMN,
  ...READING_FIELDS.map((f): XlsxColumnFormat => (f.type === 'bitmask' ? { kind: 'value', width: 24 } : NUMBER_COLUMN(f.csv))),
  TIME_COLUMN,
];
const BUCKET_FORMATS: readonly XlsxColumnFormat[] = [TIME_COLUMN, ...BUCKETS_CSV_HEADER.slice(2).map(NUMBER_COLUMN)];

function readingCells(r: StoredReading, local: (utcMs: number) => Date): CellValue[] {
  const fields = READING_FIELDS.map((f): CellValue => (f.type === 'bitmask' ? r.alarms.join(' ') : (r[f.reading] ?? null)));
  return [local(r.tsMs), ...fields, r.receivedAtMs === undefined ? null : local(r.receivedAtMs)];
}

/** Uncompressed sheet bytes held before the zip; beyond them the writer waits. */
export const SHEET_BACKLOG_BYTES = 4 << 20;
const POLL_MS = 10;

/**
 * Bytes of this sheet's XML written but not yet taken by the zip. exceljs 4.4's WorksheetWriter
 * writes into a StreamBuf that archiver, at the sheet's first row, pipes into a PassThrough of its
 * own; the StreamBuf ignores that stream's backpressure, so while the zip is behind (compressing,
 * busy with the previous sheet, or held by a slow client) rows pile up there. Internal fields:
 * 0 if a later exceljs has none, and reports-xlsx.test.ts fails instead of memory growing quietly.
 */
function sheetBacklog(sheet: Worksheet): number {
  type Buffered = { _writableState?: { length?: number }; _readableState?: { length?: number } };
  const pipes = (sheet as unknown as { stream?: { pipes?: Buffered[] } }).stream?.pipes ?? [];
  return pipes.reduce((sum, pipe) => sum + (pipe._writableState?.length ?? 0) + (pipe._readableState?.length ?? 0), 0);
}

/**
 * Resolves once the zip has caught up with this sheet and `output` has room (or is gone): the
 * workbook is written no faster than it is compressed and the client reads it, so a month of
 * 100 meters never sits in memory. Polls: the StreamBuf above gives no event to wait for.
 */
async function caughtUp(output: Writable, sheet: Worksheet): Promise<void> {
  while (!output.destroyed && (output.writableNeedDrain || sheetBacklog(sheet) > SHEET_BACKLOG_BYTES)) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export interface ReadingsXlsxOptions {
  readings: ReadingsRepository;
  meters: readonly MeterConfig[];
  window: TimeWindow;
  every: Every | undefined;
  info: XlsxReportInfo;
}

/**
 * readings.xlsx, streamed into `output` with exceljs's WorkbookWriter: a sheet per meter (raw
 * readings, or with `every` its buckets), written one InfluxDB query of ~a day at a time (as
 * readings.csv) and committed before the next sheet opens, since a zip holds one entry after
 * another and an open second sheet would be buffered whole. Then "About". Stops without
 * finishing the file when `output` is destroyed (the client went away). Rejects on a read
 * error; the caller ends the response.
 */
export async function writeReadingsXlsx(output: Writable, options: ReadingsXlsxOptions): Promise<{ rows: number[] } | null> {
  const { readings, meters, window, every, info } = options;
  const { timezone } = info.pilot;
  const local = excelLocalTime(timezone);
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: output, useStyles: true, useSharedStrings: false });
  workbook.creator = 'FlowPilot';
  workbook.created = new Date(info.generatedAtMs);
  const names = excelSheetNames(meters.map((m) => m.id), [ABOUT_SHEET]);
  const header = readingsXlsxHeader(timezone, every);
  const formats = every ? BUCKET_FORMATS : READING_FORMATS;
  const rows: number[] = [];

  for (const [i, meter] of meters.entries()) {
    const sheet = workbook.addWorksheet(names[i], { views: FROZEN_HEADER });
    setColumns(sheet, header, formats);
    sheet.getRow(1).commit();
    let count = 0;
    for (const [start, end] of chunkBounds(window.fromMs, window.toMs, exportChunkMs(every))) {
      const range = { fromMs: start, toMs: end };
      if (every) {
        for (const b of await readings.buckets(meter.id, range, every.ms)) {
          sheet.addRow([local(b.tsMs), b.flowMeanM3h, b.flowMinM3h, b.flowMaxM3h, b.totalLastM3, b.count]).commit();
          count++;
        }
      } else {
        for (const r of await readings.readings(meter.id, range)) {
          sheet.addRow(readingCells(r, local)).commit();
          count++;
        }
      }
      await caughtUp(output, sheet);
      if (output.destroyed) return null;
    }
    sheet.commit();
    rows.push(count);
  }

  const about = workbook.addWorksheet(ABOUT_SHEET);
  writeAbout(about, [
    ...aboutRows(info, 'FlowPilot: readings, a sheet per meter'),
    ['Source', 'The stored readings of InfluxDB, as reports/readings.csv: the same columns but the meter, which is the sheet'],
    [
      'Rows',
      every
        ? `One row per bucket of ${every.literal} holding readings: mean, min and max flow, the last total, the count. Buckets are aligned to UTC, as in readings.csv.`
        : 'One row per stored reading, oldest first (InfluxDB keeps one per meter and time).',
    ],
    ['Empty cells', 'A field the meter did not send.'],
    [null, null],
    ['Sheet', 'Meter, label, role, site: rows'],
    ...meters.map((m, i): AboutRow => [names[i] as string, `${m.id}${m.label ? `, ${m.label}` : ''}, ${m.role}, ${m.site}: ${rows[i]} rows`]),
  ]);
  about.commit();
  // A client gone during the last bytes: the writer would wait for a 'finish' that never comes.
  const gone = new Promise<'gone'>((resolve) => output.once('close', () => output.writableFinished || resolve('gone')));
  return (await Promise.race([workbook.commit().then(() => 'done' as const), gone])) === 'done' ? { rows } : null;
}
