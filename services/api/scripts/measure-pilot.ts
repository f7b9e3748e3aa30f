import { parsePilotConfig } from '@flowpilot/schema';
import type { PilotConfig } from '@flowpilot/schema';

/** A quarter of the meters are references, a quarter their test meters, the rest monitors. */
export function measurePilot(meters: number): PilotConfig {
  const pairs = Math.floor(meters / 4);
  const list: object[] = [];
  for (let p = 0; p < pairs; p++) {
    list.push({ id: `REF-${p}`, site: `P${p}`, role: 'reference', intervalSec: 60 });
    list.push({ id: `DUT-${p}`, site: `P${p}`, role: 'test', reference: `REF-${p}`, q3: 100, r: 160, accuracyClass: 2, intervalSec: 60 });
  }
  for (let m = list.length; m < meters; m++) list.push({ id: `MON-${m}`, site: `M${m % 5}`, role: 'monitor', intervalSec: 60 });
  return parsePilotConfig(
    JSON.stringify({ pilot: { id: 'measure', name: 'Measure', timezone: 'Asia/Almaty', nightWindow: { start: '02:00', end: '04:00' } }, meters: list }),
    'measure pilot',
  );
}

