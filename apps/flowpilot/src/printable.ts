/**
 * Text from a client (a dead letter's payload, topic or reason) made safe to print on a terminal
 * (SPEC section 8: nothing a client sends may drive the operator's terminal). Control characters
 * are shown as escapes instead of being sent: C0 (ESC among them, so no escape sequence can
 * start), DEL and C1 (0x9b is a one-byte CSI on some terminals), plus the invisible Unicode
 * formatting characters that reorder or hide what is shown (bidi overrides and isolates, as in
 * "Trojan Source", line and paragraph separators) and lone surrogates. A newline is shown as \n,
 * so one letter stays on one line. A backslash stays as it is: JSON payloads are full of them,
 * and the goal is a safe terminal, not a reversible encoding.
 *
 * At most `maxChars` characters (code points) come out; a cut text ends with '…', and an escape
 * is never cut in half.
 */
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOf(codePoint: number, char: string): string | undefined {
  const named = NAMED[char];
  if (named !== undefined) return named;
  if (codePoint < 0x20 || (codePoint >= 0x7f && codePoint <= 0x9f)) return `\\x${codePoint.toString(16).padStart(2, '0')}`;
  if (
    codePoint === 0x061c || // Arabic letter mark
    codePoint === 0x200e || // left-to-right mark
    codePoint === 0x200f || // right-to-left mark
    (codePoint >= 0x202a && codePoint <= 0x202e) || // bidi embeddings and overrides
    (codePoint >= 0x2066 && codePoint <= 0x2069) || // bidi isolates
    codePoint === 0x2028 || // line separator
    codePoint === 0x2029 || // paragraph separator
    (codePoint >= 0xd800 && codePoint <= 0xdfff) // a surrogate alone: not a character
  ) {
    return `\\u${codePoint.toString(16).padStart(4, '0')}`;
  }
  return undefined;
}

export function printable(text: string, maxChars: number): string {
  const limit = Math.max(0, Math.floor(maxChars));
  const pieces: string[] = [];
  // Lengths in code points: an escape is ASCII, a kept character is one code point.
  const lengths: number[] = [];
  let length = 0;
  for (const char of text) {
    const codePoint = char.codePointAt(0) as number;
    const escaped = escapeOf(codePoint, char);
    const piece = escaped ?? char;
    const pieceLength = escaped === undefined ? 1 : escaped.length;
    pieces.push(piece);
    lengths.push(pieceLength);
    length += pieceLength;
    if (length > limit) {
      // Too long: drop whole pieces until the ellipsis fits too.
      while (pieces.length > 0 && length + 1 > limit) {
        pieces.pop();
        length -= lengths.pop() as number;
      }
      return limit === 0 ? '' : `${pieces.join('')}…`;
    }
  }
  return pieces.join('');
}
