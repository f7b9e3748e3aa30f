/*
 * InfluxQL literals. Every value that reaches a query goes through one of these: InfluxQL has
 * no bind parameters that 1.x, 2.x and 3.x all accept (SPEC section 2), so quoting is the defence
 * against injection through a meter id or a site name.
 */

// The InfluxQL scanner (ScanString) knows the escapes \\ \' \" \n and refuses a raw line break.
function escapeQuoted(text: string, quote: '"' | "'"): string {
  let out = '';
  for (const ch of text) {
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else out += ch;
  }
  return out;
}

/** An identifier (database, measurement, tag or field key): "double-quoted". */
export function quoteIdentifier(name: string): string {
  return `"${escapeQuoted(name, '"')}"`;
}

/** A string literal (a tag value in WHERE): 'single-quoted'. */
export function quoteString(value: string): string {
  return `'${escapeQuoted(value, "'")}'`;
}

/**
 * A point in time for `WHERE time >= …`, as an RFC 3339 string literal with milliseconds,
 * e.g. '2026-11-25T10:00:00.000Z'. InfluxDB 1.6.7 also accepts `1764064800000ms`, but the RFC 3339
 * form is the one the InfluxQL of 1.x, 2.x and 3.x all document for absolute times.
 */
export function timeLiteral(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`timeLiteral: ${ms} is not a time in epoch milliseconds`);
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) throw new RangeError(`timeLiteral: ${ms} is outside the range of dates`);
  return `'${date.toISOString()}'`;
}
