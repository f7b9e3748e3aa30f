/**
 * Counter-based randomness: every random number the simulator uses is a hash of
 * (seed, key, tag, index) rather than the next draw of a running stream. A stream would make
 * the value at a timestamp depend on how many draws came before it, i.e. on where the run
 * started; a hash of the interval index gives the same value whatever the start (the idea
 * of counter-based generators such as Philox, with murmur3's finaliser as the mixer).
 */

/** murmur3's 32-bit finaliser: a bijection with full avalanche. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, finalised: a stable 32-bit key for a meter id or site. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

function absorb(h: number, part: number): number {
  // Integers beyond 32 bits (interval indices of 1-s meters, negative indices) are split so
  // that no two indices collide.
  const lo = part >>> 0;
  const hi = Math.floor(part / 4294967296) >>> 0;
  h = fmix32(Math.imul(h ^ lo, 0x01000193) + 0x9e3779b9);
  return fmix32(Math.imul(h ^ hi, 0x01000193) + 0x7f4a7c15);
}

/** A uniform number in [0, 1), the same for the same four keys, whatever else was drawn. */
export function unitHash(seed: number, key: number, tag: number, index: number): number {
  let h = absorb(0x6a09e667, seed);
  h = absorb(h, key);
  h = absorb(h, tag);
  h = absorb(h, index);
  return h / 4294967296;
}

/**
 * `unitHash` with seed, key and tag fixed: the simulator draws millions of these when it sums
 * a totalizer from its anchor, so the constant prefix is hashed once.
 */
export function unitHashStream(seed: number, key: number, tag: number): (index: number) => number {
  const prefix = absorb(absorb(absorb(0x6a09e667, seed), key), tag);
  return (index) => absorb(prefix, index) / 4294967296;
}

/** A uniform number in [-1, 1). */
export function signedHash(seed: number, key: number, tag: number, index: number): number {
  return 2 * unitHash(seed, key, tag, index) - 1;
}
