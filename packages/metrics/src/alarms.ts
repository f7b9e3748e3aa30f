import { ALARMS } from '@flowpilot/schema';
import type { AlarmName } from '@flowpilot/schema';
import { toSeries, windowRange } from './series.ts';
import type { SeriesInput, TimeWindow } from './series.ts';

/**
 * SPEC section 4 `alarms`: how many readings in W carry each alarm, keyed by name in ALARMS
 * (bit) order, every alarm present (0 when never seen). A reading with two alarms counts once
 * for each. Bits beyond ALARMS (a newer firmware) are not counted.
 */
export function countAlarms(input: SeriesInput, window: TimeWindow): Record<AlarmName, number> {
  const series = toSeries(input);
  const { lo, hi } = windowRange(series, window);
  const counts = new Array<number>(ALARMS.length).fill(0);
  for (let i = lo; i < hi; i++) {
    let mask = series.alarmsMask[i] as number;
    for (let bit = 0; mask !== 0 && bit < ALARMS.length; bit++, mask >>>= 1) {
      if (mask & 1) counts[bit] = (counts[bit] as number) + 1;
    }
  }
  return Object.fromEntries(ALARMS.map((name, bit) => [name, counts[bit] as number])) as Record<AlarmName, number>;
}
