import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, FlowPilotError, REJECTION_CODES, type ErrorCode } from './errors.ts';

/*
 * The catalogue as data (STYLE habit 5, after fastify's lib/errors.js tests): operators, dead
 * letters and API clients key on these codes, and read these messages.
 */

const entries = Object.entries(ERROR_CATALOGUE) as [ErrorCode, { status: number; message: string }][];

/** The 4xx codes of the API and the command line: a caller's mistake, not a meter's message. */
const CALLER_CODES: readonly ErrorCode[] = ['ERR_USAGE', 'ERR_VALIDATION', 'ERR_METER_NOT_FOUND', 'ERR_NOT_FOUND', 'ERR_UNAUTHENTICATED', 'ERR_FORBIDDEN', 'ERR_RATE_LIMITED'];

/** Names an operator can look up: the settings of SPEC sections 7 and 8, the wire format's fields (SPEC section 1). */
const PUBLIC_NAMES = /^(FLOWPILOT_[A-Z_]+|meterId|totalReverse)$/;

/** What in a message would be the program's insides rather than the operator's world. */
function internalsIn(message: string): string[] {
  const found: string[] = [];
  // Identifiers: SCREAMING_SNAKE constants and camelCase names, unless an operator can look them up.
  for (const [name] of message.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b[a-z]+(?:[A-Z][a-z0-9]*)+\b/g)) {
    if (!PUBLIC_NAMES.test(name)) found.push(name);
  }
  // Source files, stack frames, JavaScript's own words for a failure.
  for (const [text] of message.matchAll(/\S+\.(?:ts|js|mjs|cjs)\b|\/(?:src|node_modules)\/|\bat \S+ \(|\b(?:undefined|TypeError|RangeError|SyntaxError|SQLITE_\w+|ECONNREFUSED)\b|\[object \w+\]/g)) {
    found.push(text);
  }
  return found;
}

describe('the error catalogue', () => {
  it('has codes ERR_ followed by capitals and underscores', () => {
    for (const [code] of entries) expect(code).toMatch(/^ERR_[A-Z_]+$/);
  });

  it.each(entries)('%s has a status in 400–599 and a message that ends a sentence and names no internals', (code, { status, message }) => {
    expect(Number.isInteger(status)).toBe(true);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThanOrEqual(599);
    expect(message.trim()).toBe(message);
    expect(message).toMatch(/^[A-Z`"]/);
    expect(message.endsWith('.')).toBe(true);
    expect(internalsIn(message)).toEqual([]);
  });

  it('has no two codes with the same message (a copied entry is a code that means nothing new)', () => {
    const messages = entries.map(([, entry]) => entry.message);
    expect(new Set(messages).size).toBe(messages.length);
  });

  it('lists as rejection codes exactly its 4xx codes for a meter\'s message, each once', () => {
    expect(new Set(REJECTION_CODES).size).toBe(REJECTION_CODES.length);
    for (const code of REJECTION_CODES) {
      expect(ERROR_CATALOGUE[code].status, code).toBeGreaterThanOrEqual(400);
      expect(ERROR_CATALOGUE[code].status, code).toBeLessThan(500);
    }
    const messageCodes = entries.filter(([code, { status }]) => status < 500 && !CALLER_CODES.includes(code)).map(([code]) => code);
    expect([...messageCodes].sort()).toEqual([...REJECTION_CODES].sort());
    // Caller codes name the API's and the command line's 4xx, nothing else.
    for (const code of CALLER_CODES) expect(ERROR_CATALOGUE[code].status, code).toBeLessThan(500);
  });

  it('builds an error that carries its code and status, the specific part first and what to do after', () => {
    const error = new FlowPilotError('ERR_METER_UNKNOWN', 'meter "GHOST" is not in the pilot file');
    expect(error).toMatchObject({ code: 'ERR_METER_UNKNOWN', status: 400, detail: 'meter "GHOST" is not in the pilot file' });
    expect(error.message).toBe(`meter "GHOST" is not in the pilot file. ${ERROR_CATALOGUE.ERR_METER_UNKNOWN.message}`);
    expect(new FlowPilotError('ERR_INTERNAL').message).toBe(ERROR_CATALOGUE.ERR_INTERNAL.message);
  });
});
