/*
 * The checks every meter message passes before any schema looks at it, written so that no
 * input can make them throw or recurse: a message comes from a device on the network, and
 * nothing a client sends may stop a service (SPEC section 8). Internal to the package: index.ts
 * does not re-export this module.
 */

/** Readings and statuses are UTF-8 JSON (SPEC section 1). */
export function payloadText(payload: Uint8Array | string): string {
  return typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
}

export function payloadBytes(payload: Uint8Array | string): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
}

export type ParsedJson = { ok: true; value: unknown } | { ok: false; message: string };

/**
 * JSON.parse in a try: invalid bytes become U+FFFD and then a syntax error. V8's parser is
 * iterative (a 10⁷-deep array parses), but a RangeError from an engine that is not is caught
 * the same way.
 */
export function parseJson(payload: Uint8Array | string): ParsedJson {
  try {
    return { ok: true, value: JSON.parse(payloadText(payload)) as unknown };
  } catch (error) {
    return { ok: false, message: errorMessage(error) };
  }
}

export type JsonShape = { kind: 'ok' } | { kind: 'too-deep' } | { kind: 'non-finite'; path: string };

interface Frame {
  value: unknown;
  /** The depth of the container holding this value: 0 for the root, 1 inside the outermost container. */
  depth: number;
  parent: Frame | null;
  key: string | number;
}

const MAX_PATH_CHARS = 120;

function pathOf(frame: Frame): string {
  const keys: (string | number)[] = [];
  for (let f: Frame | null = frame; f?.parent; f = f.parent) keys.push(f.key);
  const path = keys.reverse().reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${key}` : key), '');
  return clip(path || '(value)', MAX_PATH_CHARS);
}

/**
 * Walks a parsed JSON value with an explicit stack and stops at the first container nested
 * deeper than `maxDepth` (the outermost container is depth 1) or the first non-finite number
 * (JSON.parse turns 1e999 into Infinity). The walk never goes below maxDepth, so its work is
 * bounded by the payload's size, however deep the input.
 */
export function inspectJson(root: unknown, maxDepth: number): JsonShape {
  const stack: Frame[] = [{ value: root, depth: 0, parent: null, key: '' }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const { value } = frame;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return { kind: 'non-finite', path: pathOf(frame) };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const depth = frame.depth + 1;
    if (depth > maxDepth) return { kind: 'too-deep' };
    // Pushed in reverse, so the first problem in document order is the one named.
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i] as unknown, depth, parent: frame, key: i });
    } else {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        stack.push({ value: child, depth, parent: frame, key });
      }
    }
  }
  return { kind: 'ok' };
}

export function clip(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}…`;
}

/** A short JSON rendering of any value for a reason; never throws, never very long. */
export function preview(value: unknown, maxChars = 60): string {
  if (typeof value === 'number') return String(value); // JSON.stringify(Infinity) is "null"
  try {
    const text = JSON.stringify(value) as string | undefined;
    return clip(text ?? String(value), maxChars);
  } catch {
    return Array.isArray(value) ? '(an array)' : typeof value === 'object' ? '(an object)' : '(a value)';
  }
}

/** The message of anything thrown, without trusting it (a thrown value may throw on String()). */
export function errorMessage(error: unknown): string {
  try {
    const message = error instanceof Error ? error.message : String(error);
    return clip(message || 'unknown error', 300);
  } catch {
    return 'unknown error';
  }
}

/**
 * An instant for a reason: ISO 8601 when JavaScript's Date can hold it (±8.64·10¹⁵ ms),
 * else the raw number, because `toISOString()` throws outside that range.
 */
export function describeInstant(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms since 1970`;
}
