/**
 * Raw MQTT bytes for the hostile-client tests and bench/attack-rss.ts: what a client may send
 * that no MQTT library would.
 */

/** The fixed header of a packet of type `typeByte` announcing `remaining` bytes [MQTT-2.2.3]. */
export function fixedHeader(typeByte: number, remaining: number): Buffer {
  const bytes = [typeByte];
  let value = remaining;
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return Buffer.from(bytes);
}

/** A JSON value nested `depth` arrays deep: `[[[…]]]`. */
export function nestedArrays(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}
