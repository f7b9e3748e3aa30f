/**
 * One JSON document for `--json` (Issue 14). JSON.stringify already escapes C0 controls and lone
 * surrogates; this escapes the rest of what `printable` keeps off a terminal (DEL, C1, the
 * invisible bidi and separator characters) as \uXXXX too, so a dead letter's payload stays
 * inert on the operator's screen (SPEC section 8) and the document still parses to the same value.
 */
const UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(UNSAFE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
