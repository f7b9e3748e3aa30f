import { describe, expect, it } from 'vitest';
import { quoteIdentifier, quoteString, timeLiteral } from './influxql.ts';

describe('quoteIdentifier', () => {
  it.each<[string, string]>([
    ['reading', '"reading"'],
    ['my db', '"my db"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['back\\slash', '"back\\\\slash"'],
    ["it's", '"it\'s"'],
    ['line\nbreak', '"line\\nbreak"'],
  ])('%j → %s', (raw, quoted) => {
    expect(quoteIdentifier(raw)).toBe(quoted);
  });
});

describe('quoteString', () => {
  it.each<[string, string]>([
    ['ALM-PS3-DUT1', "'ALM-PS3-DUT1'"],
    ["it's", "'it\\'s'"],
    ["' OR 1=1 --", "'\\' OR 1=1 --'"],
    ['back\\slash', "'back\\\\slash'"],
    ['say "hi"', '\'say "hi"\''],
    ['line\nbreak', "'line\\nbreak'"],
    ['', "''"],
  ])('%j → %s', (raw, quoted) => {
    expect(quoteString(raw)).toBe(quoted);
  });
});

describe('timeLiteral', () => {
  it.each<[number, string]>([
    [0, "'1970-01-01T00:00:00.000Z'"],
    [1_764_064_800_000, "'2025-11-25T10:00:00.000Z'"],
    [1_764_064_800_123, "'2025-11-25T10:00:00.123Z'"],
  ])('%d → %s', (ms, literal) => {
    expect(timeLiteral(ms)).toBe(literal);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, 9e15])('refuses %d', (ms) => {
    expect(() => timeLiteral(ms)).toThrow(RangeError);
  });
});
