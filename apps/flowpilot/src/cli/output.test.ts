import { describe, expect, it } from 'vitest';
import { terminalSafeJson } from './output.ts';

describe('terminalSafeJson', () => {
  it('escapes every character that could drive a terminal, and still parses to the same value', () => {
    const value = { payload: 'a\u001b[2J\u009b31m\u202eevil\u2028\u007f', n: 1, list: ['ok'] };
    const json = terminalSafeJson(value);
    const unsafe = [...json].filter((char) => char !== '\n' && (char < ' ' || (char >= '\u007f' && char <= '\u009f') || char === '\u202e' || char === '\u2028'));
    expect(unsafe).toEqual([]);
    expect(json).toContain('\\u001b');
    expect(json).toContain('\\u009b');
    expect(json).toContain('\\u202e');
    expect(JSON.parse(json)).toEqual(value);
  });
});
