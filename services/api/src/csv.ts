/**
 * CSV for the evaluator's exports (SPEC section 5 reports): RFC 4180 (CRLF line ends; a field
 * holding `"`, `,`, CR or LF is enclosed in double quotes, a `"` inside doubled) and safe to open
 * in a spreadsheet (OWASP "CSV Injection": a TEXT cell starting with `=`, `+`, `-`, `@`, tab or
 * CR is prefixed with a single quote so that it is never evaluated as a formula).
 *
 * Numbers stay numbers: a finite number is written with String(), so -3.5 stays -3.5 (a
 * spreadsheet reads a negative number, not a formula). Only strings are text.
 */

export type CsvValue = string | number | boolean | null | undefined;

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One field: empty for null/undefined/non-finite numbers, a number as is, text sanitised and quoted as needed. */
export function csvField(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One record, CRLF-terminated (RFC 4180 section 2, rule 1). */
export function csvRow(values: readonly CsvValue[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

/** A whole table: the header row, then one row per record. */
export function csvTable(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return csvRow(header) + rows.map(csvRow).join('');
}

/** A Content-Disposition header naming the download (RFC 6266); the name is kept to safe characters. */
export function attachment(fileName: string): string {
  const safe = fileName.replace(/[^A-Za-z0-9._-]/g, '_');
  return `attachment; filename="${safe}"`;
}
