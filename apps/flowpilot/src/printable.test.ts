import { describe, expect, it } from 'vitest';
import { printable } from './printable.ts';

describe('printable', () => {
  it('leaves ordinary text, JSON and non-Latin scripts as they are', () => {
    expect(printable('{"seq":1,"flow":"x\\"y"}', 100)).toBe('{"seq":1,"flow":"x\\"y"}');
    expect(printable('débit 12 m³/h — 流量 😀', 100)).toBe('débit 12 m³/h — 流量 😀');
  });

  it('shows newline, return and tab as \\n, \\r, \\t', () => {
    expect(printable('a\nb\r\tc', 100)).toBe('a\\nb\\r\\tc');
  });

  it('escapes C0 controls, ESC sequences, DEL and C1 controls', () => {
    // ESC [ 2 J clears the screen; ESC ] 0 ; … BEL sets the window title; 0x9b is a one-byte CSI.
    expect(printable('\u001b[2Jx', 100)).toBe('\\x1b[2Jx');
    expect(printable('\u001b]0;pwned\u0007', 100)).toBe('\\x1b]0;pwned\\x07');
    expect(printable('\u0000\u0008\u007f\u0080\u009b31m\u009f', 100)).toBe('\\x00\\x08\\x7f\\x80\\x9b31m\\x9f');
  });

  it('escapes bidi overrides, line separators and lone surrogates', () => {
    expect(printable('a\u202eb\u2066c\u2028d\u200f', 100)).toBe('a\\u202eb\\u2066c\\u2028d\\u200f');
    expect(printable('x\ud800y\udfff', 100)).toBe('x\\ud800y\\udfff');
  });

  it('never prints more than maxChars characters, ending a cut text with …', () => {
    expect(printable('abcdef', 6)).toBe('abcdef');
    expect(printable('abcdefg', 6)).toBe('abcde…');
    expect(printable('abcdef', 0)).toBe('');
    expect(printable('', 0)).toBe('');
    // An escape is never cut: 'ab' + '\x1b' (4 characters) is 6, which leaves no room for '…'.
    expect(printable('ab\u001bcd', 6)).toBe('ab…');
    expect(printable('ab\u001bcd', 7)).toBe('ab\\x1b…');
    // A character outside the BMP counts as one and is never split.
    expect(printable('😀😀😀', 2)).toBe('😀…');
  });

  it('stops early on a huge payload', () => {
    const huge = '\u001b'.repeat(5 * 1024 * 1024);
    const started = performance.now();
    expect(printable(huge, 300)).toBe(`${'\\x1b'.repeat(74)}…`);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
