import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowPilotError } from '@flowpilot/schema';
import {
  decodeReading,
  encodeAlarms,
  encodeRaw,
  encodeValue,
  mergeReads,
  planReads,
  rawValue,
  REGISTER_TYPES,
  registerWords,
  type RegisterBlock,
  type RegisterMap,
  type RegisterSpec,
  type RegisterType,
  type WordOrder,
} from './registers.ts';

/*
 * Every expected word below is computed by hand from IEEE 754 and two's complement, not by the
 * code under test: 1.5 = 1.1₂ × 2⁰ → float32 sign 0, exponent 127 = 0x7F, mantissa 0x400000 →
 * 0x3FC00000; as float64 exponent 1023 = 0x3FF, mantissa 0x8000000000000 → 0x3FF8000000000000.
 */

function spec(partial: Partial<RegisterSpec> & Pick<RegisterSpec, 'type'>): RegisterSpec {
  return { table: 'holding', address: 0, wordOrder: 'big', scale: 1, offset: 0, ...partial };
}

/** A map whose flow is `flow` and whose total is a harmless uint16 at holding 100. */
function mapWith(flow: RegisterSpec, extra: Partial<RegisterMap> = {}): RegisterMap {
  return { flow, total: spec({ type: 'uint16', address: 100 }), ...extra };
}

function block(table: 'holding' | 'input', address: number, words: number[]): RegisterBlock {
  return { table, address, count: words.length, words };
}

const TOTAL_ZERO = block('holding', 100, [0]);

function decodeFlow(flow: RegisterSpec, words: number[]): number {
  return decodeReading(mapWith(flow), [block(flow.table, flow.address, words), TOTAL_ZERO]).flowM3h;
}

describe('rawValue: each type in each word order, by hand', () => {
  const cases: [RegisterType, WordOrder, number[], number][] = [
    ['uint16', 'big', [0x1234], 0x1234],
    ['uint16', 'little', [0xffff], 65535], // one register: word order does not apply
    ['int16', 'big', [0xfffe], -2],
    ['int16', 'little', [0x8000], -32768],
    ['int16', 'big', [0x7fff], 32767],
    ['int32', 'big', [0xffff, 0xfffe], -2],
    ['int32', 'little', [0xfffe, 0xffff], -2],
    ['int32', 'big', [0x0001, 0x0000], 65536],
    ['int32', 'little', [0x0000, 0x0001], 65536],
    ['uint32', 'big', [0x0001, 0x0002], 65538],
    ['uint32', 'little', [0x0002, 0x0001], 65538],
    ['uint32', 'big', [0xffff, 0xffff], 4294967295],
    ['float32', 'big', [0x3fc0, 0x0000], 1.5],
    ['float32', 'little', [0x0000, 0x3fc0], 1.5],
    ['float32', 'big', [0xbf80, 0x0000], -1],
    // Siemens' worked examples (SITRANS F Modbus RTU RS-485, appendix H): 100.0 and 55.32.
    ['float32', 'big', [0x42c8, 0x0000], 100],
    ['float32', 'big', [0x425d, 0x47ae], 55.32],
    // 42.7 → 0x422ACCCD; decoded as the meter shows it, not as 42.70000076293945.
    ['float32', 'big', [0x422a, 0xcccd], 42.7],
    ['float32', 'little', [0xcccd, 0x422a], 42.7],
    ['float64', 'big', [0x3ff8, 0x0000, 0x0000, 0x0000], 1.5],
    ['float64', 'little', [0x0000, 0x0000, 0x0000, 0x3ff8], 1.5],
    ['float64', 'big', [0xbfe0, 0x0000, 0x0000, 0x0000], -0.5],
    // 2⁵² + 1 = 0x4330000000000001: the least significant word matters in a float64.
    ['float64', 'big', [0x4330, 0x0000, 0x0000, 0x0001], 2 ** 52 + 1],
    ['float64', 'little', [0x0001, 0x0000, 0x0000, 0x4330], 2 ** 52 + 1],
  ];
  it.each(cases)('%s %s %j → %d', (type, wordOrder, words, expected) => {
    expect(rawValue(type, words, wordOrder)).toBe(expected);
  });

  it.each(cases)('encodeRaw %s %s gives back %j', (type, wordOrder, words, value) => {
    expect(encodeRaw(type, value, wordOrder)).toEqual(words);
  });

  it('counts 1 register for 16 bits, 2 for 32 and 4 for float64', () => {
    expect(REGISTER_TYPES.map(registerWords)).toEqual([1, 1, 2, 2, 2, 4]);
  });
});

describe('decodeReading: scale, offset and units', () => {
  it('applies value = raw · scale + offset before the unit', () => {
    expect(decodeFlow(spec({ type: 'int16', scale: 0.1 }), [427])).toBe(42.7);
    expect(decodeFlow(spec({ type: 'uint16', scale: 0.01, offset: -2 }), [500])).toBe(3);
    // scale then unit: 150 × 0.01 L/s = 1.5 L/s = 5.4 m³/h
    expect(decodeFlow(spec({ type: 'uint16', scale: 0.01, unit: 'L/s' }), [150])).toBe(5.4);
  });

  it.each([
    ['m3/h', [0x3fc0, 0x0000], 1.5], // 1.5 m³/h
    ['L/s', [0x3fc0, 0x0000], 5.4], // 1.5 L/s × 3.6
    ['m3/s', [0x3f00, 0x0000], 1800], // 0.5 m³/s × 3600
    ['L/h', [0x44bb, 0x8000], 1.5], // 1500 L/h ÷ 1000; 1500 = 0x44BB8000
  ] as const)('flow in %s', (unit, words, expected) => {
    expect(decodeFlow(spec({ type: 'float32', unit }), [...words])).toBe(expected);
  });

  it('leaves flow in m³/h when the register names no unit, and keeps its sign', () => {
    expect(decodeFlow(spec({ type: 'int32' }), [0xffff, 0xfffe])).toBe(-2);
  });

  it.each([
    ['total', 'L', 1500, 'totalM3', 1.5],
    ['total', 'm3', 1500, 'totalM3', 1500],
    ['totalReverse', 'L', 250, 'totalReverseM3', 0.25],
    ['totalReverse', 'm3', 2, 'totalReverseM3', 2],
    ['pressure', 'kPa', 320, 'pressureBar', 3.2],
    ['pressure', 'bar', 3, 'pressureBar', 3],
    ['temperature', 'C', 12, 'temperatureC', 12],
    ['velocity', 'm/s', 2, 'velocityMps', 2],
    ['battery', '%', 87, 'batteryPct', 87],
  ] as const)('%s in %s', (quantity, unit, raw, field, expected) => {
    const map: RegisterMap = { flow: spec({ type: 'uint16', address: 0 }), total: spec({ type: 'uint16', address: 1 }) };
    map[quantity] = spec({ type: 'uint16', address: 2, unit });
    const reading = decodeReading(map, [block('holding', 0, [0, 0, raw])]);
    expect(reading[field]).toBe(expected);
  });

  it('gives no optional field the map does not name, and the raw words of each quantity', () => {
    const map = mapWith(spec({ type: 'float32', table: 'input', address: 0 }), { temperature: spec({ type: 'int16', table: 'input', address: 4, scale: 0.1, unit: 'C' }) });
    const reading = decodeReading(map, [block('input', 0, [0x3fc0, 0x0000, 0, 0, 118]), TOTAL_ZERO]);
    expect(reading).toEqual({ flowM3h: 1.5, totalM3: 0, temperatureC: 11.8, alarms: [], raw: { flow: [0x3fc0, 0x0000], total: [0], temperature: [118] } });
  });

  it('finds each register in whichever block holds it', () => {
    const map = mapWith(spec({ type: 'uint16', table: 'input', address: 7 }));
    const reading = decodeReading(map, [block('holding', 0, Array(10).fill(9)), block('input', 5, [1, 2, 3, 4]), TOTAL_ZERO]);
    expect(reading.flowM3h).toBe(3);
  });
});

describe('decodeReading: alarms', () => {
  const alarmsAt = (bits: RegisterSpec['bits'], type: RegisterType = 'uint16') => spec({ type, table: 'input', address: 20, bits });

  it('raises the alarm of each set bit, in the order of SPEC section 1, each once', () => {
    const map = mapWith(spec({ type: 'uint16' }), { alarms: alarmsAt({ 0: 'leak', 1: 'reverse_flow', 2: 'tamper', 4: 'leak' }) });
    // 0b10011: bits 0, 1 and 4 set; bit 2 clear
    const reading = decodeReading(map, [block('holding', 0, [0]), TOTAL_ZERO, block('input', 20, [0b10011])]);
    expect(reading.alarms).toEqual(['reverse_flow', 'leak']);
    expect(reading.raw.alarms).toEqual([0b10011]);
  });

  it('ignores bits the map does not name, and reads a 32-bit register by word order', () => {
    const map = mapWith(spec({ type: 'uint16' }), { alarms: alarmsAt({ 31: 'sensor_fault', 16: 'empty_pipe', 0: 'overload' }, 'int32') });
    // int32 0x80010000, little word order in the device: [0x0000, 0x8001]
    map.alarms = { ...(map.alarms as RegisterSpec), wordOrder: 'little' };
    const reading = decodeReading(map, [block('holding', 0, [0]), TOTAL_ZERO, block('input', 20, [0x0000, 0x8001])]);
    expect(reading.alarms).toEqual(['empty_pipe', 'sensor_fault']);
  });

  it('encodes alarms back to the bits the map names', () => {
    const alarms = alarmsAt({ 0: 'empty_pipe', 1: 'reverse_flow', 15: 'tamper' }, 'int16');
    expect(encodeAlarms(alarms, ['reverse_flow', 'tamper', 'leak'])).toEqual([0x8002]);
    const map = mapWith(spec({ type: 'uint16' }), { alarms });
    expect(decodeReading(map, [block('holding', 0, [0]), TOTAL_ZERO, block('input', 20, [0x8002])]).alarms).toEqual(['reverse_flow', 'tamper']);
  });
});

describe('decodeReading: what is not a reading', () => {
  function decodeError(fn: () => unknown): FlowPilotError {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(FlowPilotError);
      return error as FlowPilotError;
    }
    throw new Error('expected ERR_GATEWAY_DECODE');
  }

  it.each([
    ['NaN', [0x7fc0, 0x0000]],
    ['+Infinity', [0x7f80, 0x0000]],
    ['-Infinity', [0xff80, 0x0000]],
  ])('refuses a float32 %s with ERR_GATEWAY_DECODE, naming the register', (_name, words) => {
    const error = decodeError(() => decodeFlow(spec({ type: 'float32', address: 3002 }), words));
    expect(error.code).toBe('ERR_GATEWAY_DECODE');
    expect(error.detail).toContain('flow (holding 3002–3003, float32');
  });

  it('refuses a float64 NaN, and a value that overflows once scaled', () => {
    expect(decodeError(() => decodeFlow(spec({ type: 'float64' }), [0x7ff8, 0, 0, 0])).code).toBe('ERR_GATEWAY_DECODE');
    // float32 max ≈ 3.4e38, × 3600 m³/s → still finite; × 1e300 → Infinity
    expect(decodeError(() => decodeFlow(spec({ type: 'float32', scale: 1e300 }), [0x7f7f, 0xffff])).code).toBe('ERR_GATEWAY_DECODE');
  });

  it('refuses a register that no block holds, or holds only in part', () => {
    const flow = spec({ type: 'float64', table: 'input', address: 10 });
    expect(decodeError(() => decodeReading(mapWith(flow), [TOTAL_ZERO])).detail).toContain('was not among the registers read');
    expect(decodeError(() => decodeReading(mapWith(flow), [block('input', 10, [0, 0, 0]), TOTAL_ZERO])).code).toBe('ERR_GATEWAY_DECODE');
    // the right address in the other table is not the register
    expect(decodeError(() => decodeReading(mapWith(flow), [block('holding', 10, [0, 0, 0, 0]), TOTAL_ZERO])).code).toBe('ERR_GATEWAY_DECODE');
  });

  it('refuses words that are not 16-bit register values', () => {
    expect(decodeError(() => decodeFlow(spec({ type: 'uint16' }), [70000])).code).toBe('ERR_GATEWAY_DECODE');
  });
});

describe('planReads', () => {
  it('reads contiguous and close registers of one table in one request, holding before input', () => {
    const map: RegisterMap = {
      flow: spec({ table: 'input', address: 0, type: 'float32' }), // 0–1
      total: spec({ table: 'holding', address: 10, type: 'float64' }), // 10–13
      temperature: spec({ table: 'input', address: 4, type: 'int16' }), // gap of 2 after flow
      alarms: spec({ table: 'input', address: 20, type: 'uint16', bits: { 0: 'leak' } }), // gap of 15: its own request
    };
    expect(planReads(map)).toEqual([
      { table: 'holding', address: 10, count: 4 },
      { table: 'input', address: 0, count: 5 },
      { table: 'input', address: 20, count: 1 },
    ]);
  });

  it('merges across a gap of 8 words and no more', () => {
    const flow = spec({ address: 0, type: 'float32' }); // 0–1, the gap starts at 2
    expect(planReads({ flow, total: spec({ address: 10, type: 'uint16' }) })).toEqual([{ table: 'holding', address: 0, count: 11 }]);
    expect(planReads({ flow, total: spec({ address: 11, type: 'uint16' }) })).toEqual([
      { table: 'holding', address: 0, count: 2 },
      { table: 'holding', address: 11, count: 1 },
    ]);
  });

  it('reads overlapping registers once', () => {
    const map: RegisterMap = { flow: spec({ address: 5, type: 'float64' }), total: spec({ address: 6, type: 'uint16' }) };
    expect(planReads(map)).toEqual([{ table: 'holding', address: 5, count: 4 }]);
  });

  it('splits a stretch at 125 words, the most one request may read', () => {
    // 63 two-word registers, each 1 word after the last: 0–1, 2–3, … 124–125 would be 126 words.
    const ranges = Array.from({ length: 63 }, (_, i) => ({ table: 'input' as const, address: i * 2, count: 2 }));
    expect(mergeReads(ranges)).toEqual([
      { table: 'input', address: 0, count: 124 },
      { table: 'input', address: 124, count: 2 },
    ]);
    // exactly 125 words stay one request
    expect(mergeReads([...ranges.slice(0, 62), { table: 'input', address: 124, count: 1 }])).toEqual([{ table: 'input', address: 0, count: 125 }]);
  });

  it('covers every register, never reads more than 125 words nor across a gap over 8 (property)', () => {
    const range = fc.record({ table: fc.constantFrom('holding' as const, 'input' as const), address: fc.integer({ min: 0, max: 400 }), count: fc.integer({ min: 1, max: 4 }) });
    fc.assert(
      fc.property(fc.array(range, { minLength: 1, maxLength: 60 }), (ranges) => {
        const requests = mergeReads(ranges);
        for (const request of requests) expect(request.count).toBeLessThanOrEqual(125);
        for (const r of ranges) {
          const holders = requests.filter((q) => q.table === r.table && q.address <= r.address && r.address + r.count <= q.address + q.count);
          expect(holders.length).toBeGreaterThanOrEqual(1);
        }
        // requests of one table are ordered and do not overlap
        for (let i = 1; i < requests.length; i++) {
          const [a, b] = [requests[i - 1]!, requests[i]!];
          if (a.table === b.table) expect(b.address).toBeGreaterThanOrEqual(a.address + a.count);
        }
      }),
    );
  });
});

describe('encodeValue ∘ decodeReading', () => {
  const units = { flow: ['m3/h', 'L/s', 'm3/s', 'L/h'] } as const;

  it('gives back the value for every type, word order and flow unit (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...REGISTER_TYPES),
        fc.constantFrom<WordOrder>('big', 'little'),
        fc.constantFrom(...units.flow),
        fc.double({ min: -1000, max: 1000, noNaN: true }),
        (type, wordOrder, unit, flowM3h) => {
          const signed = !type.startsWith('uint');
          const value = signed ? flowM3h : Math.abs(flowM3h);
          // Integers need a scale fine enough to hold the value in range: 0.001 of the unit.
          const scale = type.includes('int') ? (type.endsWith('16') ? 0.1 : 0.001) : 1;
          const flow = spec({ type, wordOrder, unit, scale, table: 'input', address: 3 });
          let words: number[];
          try {
            words = encodeValue(flow, value);
          } catch {
            return; // out of the type's range for this scale and unit
          }
          const decoded = decodeFlow(flow, words);
          const resolution = type.includes('int') ? scale * (unit === 'm3/s' ? 3600 : unit === 'L/s' ? 3.6 : 1) : 0;
          const relative = type === 'float32' ? 1e-6 : 1e-12;
          expect(Math.abs(decoded - value)).toBeLessThanOrEqual(resolution / 2 + Math.abs(value) * relative + 1e-12);
        },
      ),
    );
  });

  it('encodes the words a device holds for a reading in SPEC units', () => {
    expect(encodeValue(spec({ type: 'float32', unit: 'L/s' }), 5.4)).toEqual([0x3fc0, 0x0000]); // 1.5 L/s
    expect(encodeValue(spec({ type: 'int16', scale: 0.1, unit: 'C' }), 11.8)).toEqual([118]);
    expect(encodeValue(spec({ type: 'uint32', unit: 'L', wordOrder: 'little' }), 65.538)).toEqual([0x0002, 0x0001]); // 65538 L
    expect(() => encodeValue(spec({ type: 'uint16' }), -1)).toThrow(RangeError);
    expect(() => encodeValue(spec({ type: 'int16' }), 40000)).toThrow(RangeError);
  });
});
