import { zoneOffsetMs } from '@flowpilot/metrics';
/**
 * Local wall-clock time in the pilot's IANA zone (SPEC section 3: "days and nights are
 * local"). Intl is slow (microseconds a call) and a totalizer sum visits every interval since
 * its anchor, so offsets are cached per 6-hour block of UTC: a block whose first and last
 * quarter-hour have the same offset is taken as constant (no zone changes its offset twice
 * within 6 hours); a block holding a transition is resolved per quarter-hour, the grid that
 * every zone's transitions fall on.
 */
const QUARTER_MS = 15 * 60_000;
const BLOCK_MS = 6 * 3_600_000;
const QUARTERS_PER_BLOCK = BLOCK_MS / QUARTER_MS;
const DAY_MS = 86_400_000;
const MAX_CACHED_BLOCKS = 50_000;

export interface LocalTime {
  /** Offset of local time from UTC at this instant, ms (Asia/Almaty: +5 h). */
  offsetMs(utcMs: number): number;
  /** Hours since local midnight, fractional, in [0, 24). */
  hourOfDay(utcMs: number): number;
  /** Local day of the week, 0 = Sunday … 6 = Saturday. */
  dayOfWeek(utcMs: number): number;
}

export function createLocalTime(timeZone: string): LocalTime {
  const blocks = new Map<number, number | number[]>();
  // One Intl-based offset for the whole project (packages/metrics); this module caches it per block.
  const computeOffset = (utcMs: number): number => zoneOffsetMs(timeZone, utcMs);

  function resolveBlock(block: number): number | number[] {
    const startMs = block * BLOCK_MS;
    const first = computeOffset(startMs);
    const last = computeOffset(startMs + BLOCK_MS - QUARTER_MS);
    if (first === last) return first;
    return Array.from({ length: QUARTERS_PER_BLOCK }, (_, q) => computeOffset(startMs + q * QUARTER_MS));
  }

  let lastBlock = Number.NaN;
  let lastEntry: number | number[] = 0;

  function offsetMs(utcMs: number): number {
    const block = Math.floor(utcMs / BLOCK_MS);
    if (block !== lastBlock) {
      let entry = blocks.get(block);
      if (entry === undefined) {
        // A long-running simulator must not grow the cache forever.
        if (blocks.size >= MAX_CACHED_BLOCKS) blocks.clear();
        entry = resolveBlock(block);
        blocks.set(block, entry);
      }
      lastBlock = block;
      lastEntry = entry;
    }
    if (typeof lastEntry === 'number') return lastEntry;
    return lastEntry[Math.floor((utcMs - block * BLOCK_MS) / QUARTER_MS)] ?? 0;
  }

  return {
    offsetMs,
    hourOfDay(utcMs) {
      const local = utcMs + offsetMs(utcMs);
      return (((local % DAY_MS) + DAY_MS) % DAY_MS) / 3_600_000;
    },
    dayOfWeek(utcMs) {
      const localDay = Math.floor((utcMs + offsetMs(utcMs)) / DAY_MS);
      // 1970-01-01 was a Thursday.
      return (((localDay + 4) % 7) + 7) % 7;
    },
  };
}

/** "HH:MM" → hours after midnight. */
export function parseClockTime(text: string): number {
  const match = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (!match) throw new RangeError(`"${text}" is not a time of day as HH:MM`);
  return Number(match[1]) + Number(match[2]) / 60;
}
