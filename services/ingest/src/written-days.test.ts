import { describe, expect, it } from 'vitest';
import { writtenDaysOf } from './ingest.ts';

const DAY = 86_400_000;

describe('writtenDaysOf', () => {
  it('lists each UTC meter-day of the reading lines once, and ignores status lines', () => {
    const lines = [
      `reading,meter=M1,site=S flow=1,total=2,seq=1i,alarms=0i,received_at=5i,latency_ms=1i ${3 * DAY + 10}`,
      `reading,meter=M1,site=S flow=1,total=2,seq=2i,alarms=0i,received_at=5i,latency_ms=1i ${4 * DAY - 1}`,
      `reading,meter=M1,site=S flow=1,total=2,seq=3i,alarms=0i,received_at=5i,latency_ms=1i ${4 * DAY}`,
      `reading,meter=ALM-PS3.DUT_1,site=Pump\\ station flow=1,total=2,seq=1i,alarms=0i,received_at=5i,latency_ms=1i ${DAY}`,
      `status,meter=M1 online=true ${9 * DAY}`,
    ];
    expect(writtenDaysOf(lines)).toEqual([
      { meterId: 'M1', dayMs: 3 * DAY },
      { meterId: 'M1', dayMs: 4 * DAY },
      { meterId: 'ALM-PS3.DUT_1', dayMs: DAY },
    ]);
  });
});
