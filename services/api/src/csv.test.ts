import { describe, expect, it } from 'vitest';
import { attachment, csvField, csvRow, csvTable } from './csv.ts';

describe('csvField (RFC 4180 quoting, OWASP formula injection)', () => {
  it.each([
    // value, expected field: why
    ['plain', 'plain'], // nothing special
    ['a,b', '"a,b"'], // a comma: quoted
    ['say "hi"', '"say ""hi"""'], // quotes doubled inside quotes
    ['two\nlines', '"two\nlines"'], // LF: quoted
    ['cr\rhere', '"cr\rhere"'], // CR inside: quoted
    ['=SUM(A1:A9)', "'=SUM(A1:A9)"], // formula: prefixed with '
    ['+1', "'+1"], // text starting with +
    ['-2+3', "'-2+3"], // text starting with -
    ['@cmd', "'@cmd"], // text starting with @
    ['\tx', "'\tx"], // tab
    ['\rx', '"\'\rx"'], // CR first: prefixed, then quoted because it holds CR
    ['=a,b', '"\'=a,b"'], // prefixed, then quoted for the comma
    ['', ''], // empty text
  ] as const)('%j → %j', (value, expected) => {
    expect(csvField(value)).toBe(expected);
  });

  it.each([
    [-3.5, '-3.5'], // a negative NUMBER stays a number, no prefix
    [0, '0'],
    [1e21, '1e+21'], // String(): a spreadsheet reads it as a number
    [0.1, '0.1'],
    [Number.NaN, ''], // not a number: empty cell
    [Number.POSITIVE_INFINITY, ''],
    [null, ''],
    [undefined, ''],
    [true, 'true'],
  ] as const)('%j → %j', (value, expected) => {
    expect(csvField(value)).toBe(expected);
  });
});

describe('csvRow and csvTable', () => {
  it('joins fields with commas and ends every record with CRLF', () => {
    expect(csvRow(['a', 1, null, '-x'])).toBe("a,1,,'-x\r\n");
    expect(csvTable(['h1', 'h2'], [[1, 'b'], [-2, 'c,d']])).toBe('h1,h2\r\n1,b\r\n-2,"c,d"\r\n');
  });
});

describe('attachment', () => {
  it('names the file with safe characters only', () => {
    expect(attachment('metrics_2026-11-01_2026-11-08.csv')).toBe('attachment; filename="metrics_2026-11-01_2026-11-08.csv"');
    expect(attachment('a"b/c d.csv')).toBe('attachment; filename="a_b_c_d.csv"');
  });
});
