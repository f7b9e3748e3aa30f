/**
 * CSV for the evaluator's exports (SPEC section 5 reports): RFC 4180 (CRLF line ends; a field
 * holding `"`, `,`, CR or LF is enclosed in double quotes, a `"` inside doubled) and safe to open
 * in a spreadsheet (OWASP "CSV Injection": a TEXT cell starting with `=`, `+`, `-`, `@`, tab or
 * CR is prefixed with a single quote so that it is never evaluated as a formula).
 *
 * Numbers stay numbers: a finite number is written with String(), so -3.5 stays -3.5 (a
 * spreadsheet reads a negative number, not a formula). Only strings are text.
 *
 * One variant on request (issue 14): EXCEL_SEMICOLON, for Excel in a locale that writes 1,5
 * (Russian, Kazakh, most of Europe), which splits a double-clicked .csv on `;` and reads `1.5`
 * as text. It is not RFC 4180; RFC4180 stays the default of every function here.
 */

export type CsvValue = string | number | boolean | null | undefined;

/** How a table is written: the separator, the decimal mark of numbers, and what precedes the first record. */
export interface CsvDialect {
  separator: ',' | ';';
  decimalComma: boolean;
  /** Written once before the header (csvTable and the streamed tables). */
  preamble: string;
}

/** RFC 4180, UTF-8 without a byte-order mark: the default. */
export const RFC4180: Readonly<CsvDialect> = Object.freeze({ separator: ',', decimalComma: false, preamble: '' });

/**
 * For Excel in a decimal-comma locale: a UTF-8 byte-order mark (else Excel reads the bytes as
 * the ANSI code page, Windows-1251 in Russian, and Cyrillic turns to mojibake), then `sep=;`
 * (Excel's own hint, so the split holds whatever the list separator of the machine), `;`
 * between fields and a decimal comma in numbers. Quoting, CRLF and the formula guard as RFC4180.
 * (Some Excel versions are reported to ignore the mark when `sep=` is present; the exports' text
 * is ASCII, meter ids, codes and ISO times, so they read the same either way.)
 */
export const EXCEL_SEMICOLON: Readonly<CsvDialect> = Object.freeze({ separator: ';', decimalComma: true, preamble: '\uFEFFsep=;\r\n' });

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES: Record<CsvDialect['separator'], RegExp> = { ',': /[",\r\n]/, ';': /[";\r\n]/ };

/** One field: empty for null/undefined/non-finite numbers, a number as is, text sanitised and quoted as needed. */
export function csvField(value: CsvValue, dialect: CsvDialect = RFC4180): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return '';
    // String() writes one `.` at most (1.5, 1.5e-7, 1e+21): the decimal mark is the only one to swap.
    return dialect.decimalComma ? String(value).replace('.', ',') : String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES[dialect.separator].test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One record, CRLF-terminated (RFC 4180 section 2, rule 1). */
export function csvRow(values: readonly CsvValue[], dialect: CsvDialect = RFC4180): string {
  return `${values.map((value) => csvField(value, dialect)).join(dialect.separator)}\r\n`;
}

/** A whole table: the dialect's preamble, the header row, then one row per record. */
export function csvTable(header: readonly string[], rows: readonly (readonly CsvValue[])[], dialect: CsvDialect = RFC4180): string {
  return dialect.preamble + csvRow(header, dialect) + rows.map((row) => csvRow(row, dialect)).join('');
}

/** A Content-Disposition header naming the download (RFC 6266); the name is kept to safe characters. */
export function attachment(fileName: string): string {
  const safe = fileName.replace(/[^A-Za-z0-9._-]/g, '_');
  return `attachment; filename="${safe}"`;
}
