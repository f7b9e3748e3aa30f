import { ALARMS, FlowPilotError, type AlarmName, type Reading } from '@flowpilot/schema';

/**
 * Modbus registers → a reading (SPEC section 10), as pure functions: which registers to read
 * (`planReads`), what they mean (`decodeReading`) and, for tests and the device harness, what a
 * device holds for a value (`encodeValue`). No I/O, no clock.
 *
 * Addresses are 0-based PDU addresses, as they travel in a request (Modbus Application Protocol
 * V1.1b3, section 4.4): manuals that count "register 40001" or "4:03003" from 1 mean address 0
 * and 3002.
 */

/** Holding registers are read with function 3, input registers with function 4 (Modbus V1.1b3, 6.3 and 6.4). */
export const REGISTER_TABLES = ['holding', 'input'] as const;
export const REGISTER_TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64'] as const;
export const REGISTER_UNITS = ['L', 'm3', 'm3/h', 'L/s', 'm3/s', 'L/h', 'C', 'bar', 'kPa', 'm/s', '%'] as const;
export type RegisterTable = (typeof REGISTER_TABLES)[number];
export type RegisterType = (typeof REGISTER_TYPES)[number];
export type RegisterUnit = (typeof REGISTER_UNITS)[number];

/** What a gateway reads from a meter: the fields of a SPEC section 1 reading that a register can hold. */
export const READING_QUANTITIES = ['flow', 'total', 'totalReverse', 'velocity', 'pressure', 'temperature', 'battery', 'alarms'] as const;
export type ReadingQuantity = (typeof READING_QUANTITIES)[number];

export type WordOrder = 'big' | 'little';

export interface RegisterSpec {
  table: RegisterTable;
  /** 0-based PDU address of the first register. */
  address: number;
  type: RegisterType;
  /** `big`: the first register holds the most significant word (Modbus's usual); `little`: the words are swapped. Bytes within a register are always big-endian (Modbus V1.1b3, 4.2). */
  wordOrder: WordOrder;
  /** value = raw · scale + offset, before the unit conversion. Default 1. */
  scale: number;
  /** Default 0. */
  offset: number;
  /** The unit the register holds once scaled; absent, the SPEC unit of the quantity. */
  unit?: RegisterUnit;
  /** For `alarms` only: bit → alarm of SPEC section 1 (bit 0 is the least significant). */
  bits?: Readonly<Record<number, AlarmName>>;
}

export type RegisterMap = { flow: RegisterSpec; total: RegisterSpec } & Partial<Record<Exclude<ReadingQuantity, 'flow' | 'total'>, RegisterSpec>>;

export interface ReadRequest {
  table: RegisterTable;
  address: number;
  count: number;
}

export interface RegisterBlock extends ReadRequest {
  /** 16-bit unsigned, as read. */
  words: readonly number[];
}

/** The measured quantities of a SPEC section 1 reading (packages/schema's Reading, without what the gateway adds), decoded from registers. */
export type DecodedReading = Pick<Reading, 'flowM3h' | 'totalM3' | 'totalReverseM3' | 'velocityMps' | 'pressureBar' | 'temperatureC' | 'batteryPct' | 'alarms'> & {
  /** raw words of each quantity, for probe */
  raw: Partial<Record<ReadingQuantity, number[]>>;
};

/** The spec's defaults, merged once under what a profile or a device gives (STYLE habit 4). */
export const DEFAULT_REGISTER_SPEC = { wordOrder: 'big', scale: 1, offset: 0 } as const satisfies Partial<RegisterSpec>;

/** "A maximum of 125 registers" per read (Modbus V1.1b3, 6.3 and 6.4: quantity 1 to 125). */
export const MAX_READ_WORDS = 125;
/** Registers of one table at most this many unread words apart are read in one request. */
export const MAX_READ_GAP_WORDS = 8;

const TYPE_WORDS: Readonly<Record<RegisterType, number>> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, float64: 4 };

/** How many 16-bit registers a value of this type spans. */
export function registerWords(type: RegisterType): number {
  return TYPE_WORDS[type];
}

/** Types whose bits can carry alarms. */
export const INTEGER_REGISTER_TYPES: readonly RegisterType[] = ['int16', 'uint16', 'int32', 'uint32'];

/** The unit of each quantity in a reading (SPEC section 1); `alarms` has none. */
export const SPEC_UNITS: Readonly<Record<Exclude<ReadingQuantity, 'alarms'>, RegisterUnit>> = {
  flow: 'm3/h',
  total: 'm3',
  totalReverse: 'm3',
  velocity: 'm/s',
  pressure: 'bar',
  temperature: 'C',
  battery: '%',
};

/** The units a register may hold for each quantity: each converts exactly to the SPEC unit. */
export const QUANTITY_UNITS: Readonly<Record<ReadingQuantity, readonly RegisterUnit[]>> = {
  flow: ['m3/h', 'L/s', 'm3/s', 'L/h'],
  total: ['m3', 'L'],
  totalReverse: ['m3', 'L'],
  velocity: ['m/s'],
  pressure: ['bar', 'kPa'],
  temperature: ['C'],
  battery: ['%'],
  alarms: [],
};

/**
 * value in the SPEC unit = value in the register's unit · multiply / divide. Kept as two exact
 * factors, so that 1500 L is 1.5 m³ and not 1.5000000000000002.
 */
const TO_SPEC_UNIT: Readonly<Record<RegisterUnit, { multiply: number; divide: number }>> = {
  'm3/h': { multiply: 1, divide: 1 },
  'L/s': { multiply: 3.6, divide: 1 }, // 1 L/s = 3600 L/h = 3.6 m³/h
  'm3/s': { multiply: 3600, divide: 1 },
  'L/h': { multiply: 1, divide: 1000 },
  m3: { multiply: 1, divide: 1 },
  L: { multiply: 1, divide: 1000 },
  C: { multiply: 1, divide: 1 },
  bar: { multiply: 1, divide: 1 },
  kPa: { multiply: 1, divide: 100 }, // 100 kPa = 1 bar
  'm/s': { multiply: 1, divide: 1 },
  '%': { multiply: 1, divide: 1 },
};

/** The decoded reading's field for each quantity. */
const READING_FIELD = {
  flow: 'flowM3h',
  total: 'totalM3',
  totalReverse: 'totalReverseM3',
  velocity: 'velocityMps',
  pressure: 'pressureBar',
  temperature: 'temperatureC',
  battery: 'batteryPct',
} as const satisfies Record<Exclude<ReadingQuantity, 'alarms'>, keyof DecodedReading>;

/** The quantities a map names, in READING_QUANTITIES order. */
export function mappedQuantities(map: RegisterMap): ReadingQuantity[] {
  return READING_QUANTITIES.filter((quantity) => map[quantity] !== undefined);
}

/**
 * Merges registers of one table that are contiguous or close (gap ≤ 8 words) into requests of at
 * most 125 words (Modbus limit). One request per stretch costs one round trip on a 9600-baud bus
 * instead of one per quantity; the small gaps read along are a few bytes more.
 */
export function planReads(map: RegisterMap): ReadRequest[] {
  return mergeReads(
    mappedQuantities(map).map((quantity) => {
      const spec = map[quantity] as RegisterSpec;
      return { table: spec.table, address: spec.address, count: registerWords(spec.type) };
    }),
  );
}

/**
 * The rule of `planReads` over any register ranges (the runtime may read more than a map, a
 * status word say): sorted by table (holding, then input) and address, merged while the gap is at
 * most MAX_READ_GAP_WORDS and the request stays within MAX_READ_WORDS.
 */
export function mergeReads(ranges: readonly ReadRequest[]): ReadRequest[] {
  const requests: ReadRequest[] = [];
  for (const table of REGISTER_TABLES) {
    const spans = ranges
      .filter((range) => range.table === table)
      .map((range) => ({ start: range.address, end: range.address + range.count }))
      .sort((a, b) => a.start - b.start || a.end - b.end);
    let current: { start: number; end: number } | undefined;
    for (const span of spans) {
      if (current && span.start - current.end <= MAX_READ_GAP_WORDS && Math.max(current.end, span.end) - current.start <= MAX_READ_WORDS) {
        current.end = Math.max(current.end, span.end);
        continue;
      }
      if (current) requests.push({ table, address: current.start, count: current.end - current.start });
      current = { ...span };
    }
    if (current) requests.push({ table, address: current.start, count: current.end - current.start });
  }
  return requests;
}

function describeRegister(quantity: ReadingQuantity, spec: RegisterSpec): string {
  const words = registerWords(spec.type);
  const range = words === 1 ? `${spec.address}` : `${spec.address}–${spec.address + words - 1}`;
  return `${quantity} (${spec.table} ${range}, ${spec.type}${words > 1 ? `, word order ${spec.wordOrder}` : ''})`;
}

/** The words of one register spec, as read (device order), or undefined when no block holds them all. */
function wordsOf(spec: RegisterSpec, blocks: readonly RegisterBlock[]): number[] | undefined {
  const count = registerWords(spec.type);
  for (const block of blocks) {
    if (block.table !== spec.table) continue;
    const from = spec.address - block.address;
    if (from < 0 || from + count > block.words.length) continue;
    return block.words.slice(from, from + count);
  }
  return undefined;
}

/** Words most significant first, whatever the device's word order. */
function inSignificanceOrder(words: readonly number[], wordOrder: WordOrder): number[] {
  return wordOrder === 'big' ? [...words] : [...words].reverse();
}

function bytesOf(wordsMsbFirst: readonly number[]): DataView {
  const view = new DataView(new ArrayBuffer(wordsMsbFirst.length * 2));
  wordsMsbFirst.forEach((word, i) => view.setUint16(i * 2, word, false));
  return view;
}

/**
 * The shortest decimal that reads back as the same float32: what the meter itself shows for the
 * value (42.7, not 42.70000076293945). A float32 carries at most 9 significant digits.
 */
function shortestFloat32(value: number): number {
  if (!Number.isFinite(value)) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

/** The number the registers hold, before scale, offset and unit. */
export function rawValue(type: RegisterType, words: readonly number[], wordOrder: WordOrder): number {
  const view = bytesOf(inSignificanceOrder(words, wordOrder));
  switch (type) {
    case 'int16':
      return view.getInt16(0, false);
    case 'uint16':
      return view.getUint16(0, false);
    case 'int32':
      return view.getInt32(0, false);
    case 'uint32':
      return view.getUint32(0, false);
    case 'float32':
      return shortestFloat32(view.getFloat32(0, false));
    case 'float64':
      return view.getFloat64(0, false);
  }
}

/** Drops the binary noise of the scale and unit arithmetic (153.72000000000003 → 153.72); 15 digits are all a double holds. */
function clean(value: number): number {
  return Number(value.toPrecision(15));
}

function scaledValue(spec: RegisterSpec, raw: number, quantity: Exclude<ReadingQuantity, 'alarms'>): number {
  const factor = TO_SPEC_UNIT[spec.unit ?? SPEC_UNITS[quantity]];
  return clean(((raw * spec.scale + spec.offset) * factor.multiply) / factor.divide);
}

/** The alarms of SPEC section 1 whose bits are set, in the order of ALARMS, each once. */
function alarmsOf(spec: RegisterSpec, words: readonly number[]): AlarmName[] {
  // Bits are read from the unsigned pattern of the register(s), whatever the declared signedness.
  const pattern = inSignificanceOrder(words, spec.wordOrder).reduce((acc, word) => acc * 0x10000 + word, 0);
  const set = new Set<AlarmName>();
  for (const [bit, alarm] of Object.entries(spec.bits ?? {})) {
    if (Math.floor(pattern / 2 ** Number(bit)) % 2 === 1) set.add(alarm);
  }
  return ALARMS.filter((alarm) => set.has(alarm));
}

/**
 * value = raw·scale + offset, then converted to the SPEC unit (flow m³/h, total m³, temperature
 * °C, pressure bar, velocity m/s, battery %). Throws FlowPilotError('ERR_GATEWAY_DECODE', …) when
 * a value is not finite (a float NaN/Inf register) or a register is missing from the blocks: the
 * gateway then skips the poll rather than invent a reading (SPEC section 10).
 */
export function decodeReading(map: RegisterMap, blocks: readonly RegisterBlock[]): DecodedReading {
  const raw: Partial<Record<ReadingQuantity, number[]>> = {};
  const values: Partial<Record<Exclude<ReadingQuantity, 'alarms'>, number>> = {};
  let alarms: AlarmName[] = [];
  for (const quantity of mappedQuantities(map)) {
    const spec = map[quantity] as RegisterSpec;
    const words = wordsOf(spec, blocks);
    if (!words) throw new FlowPilotError('ERR_GATEWAY_DECODE', `${describeRegister(quantity, spec)} was not among the registers read`);
    const bad = words.find((word) => !Number.isInteger(word) || word < 0 || word > 0xffff);
    if (bad !== undefined) throw new FlowPilotError('ERR_GATEWAY_DECODE', `${describeRegister(quantity, spec)} holds ${bad}, not a 16-bit register value`);
    raw[quantity] = words;
    if (quantity === 'alarms') {
      alarms = alarmsOf(spec, words);
      continue;
    }
    const value = scaledValue(spec, rawValue(spec.type, words, spec.wordOrder), quantity);
    if (!Number.isFinite(value)) {
      const hex = words.map((word) => `0x${word.toString(16).toUpperCase().padStart(4, '0')}`).join(' ');
      throw new FlowPilotError('ERR_GATEWAY_DECODE', `${describeRegister(quantity, spec)} reads ${value} (words ${hex})`);
    }
    values[quantity] = value;
  }
  const reading: DecodedReading = { flowM3h: values.flow as number, totalM3: values.total as number, alarms, raw };
  for (const quantity of ['totalReverse', 'velocity', 'pressure', 'temperature', 'battery'] as const) {
    const value = values[quantity];
    if (value !== undefined) reading[READING_FIELD[quantity]] = value;
  }
  return reading;
}

const INTEGER_RANGES: Readonly<Partial<Record<RegisterType, readonly [number, number]>>> = {
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
};

/** The words a device holds for a raw (unscaled) value of this type, in the device's word order. */
export function encodeRaw(type: RegisterType, raw: number, wordOrder: WordOrder): number[] {
  const words = registerWords(type);
  const view = new DataView(new ArrayBuffer(words * 2));
  const range = INTEGER_RANGES[type];
  if (range) {
    const n = Math.round(raw);
    if (!(n >= range[0] && n <= range[1])) throw new RangeError(`${raw} does not fit a register of type ${type}`);
    if (type === 'int16') view.setInt16(0, n, false);
    else if (type === 'uint16') view.setUint16(0, n, false);
    else if (type === 'int32') view.setInt32(0, n, false);
    else view.setUint32(0, n, false);
  } else if (type === 'float32') {
    view.setFloat32(0, raw, false);
  } else {
    view.setFloat64(0, raw, false);
  }
  const msbFirst = Array.from({ length: words }, (_, i) => view.getUint16(i * 2, false));
  return wordOrder === 'big' ? msbFirst : msbFirst.reverse();
}

/**
 * The inverse, for tests and the harness: the words a device holds for a value. `value` is in
 * the SPEC unit of the quantity (m³/h for a flow register in L/s); for an alarms register it is
 * the register's raw value (see `encodeAlarms`). Throws a RangeError when the value does not fit
 * the type.
 */
export function encodeValue(spec: RegisterSpec, value: number): number[] {
  if (spec.bits !== undefined) return encodeRaw(spec.type, value, spec.wordOrder);
  const factor = spec.unit === undefined ? { multiply: 1, divide: 1 } : TO_SPEC_UNIT[spec.unit];
  const inRegisterUnit = (value * factor.divide) / factor.multiply;
  return encodeRaw(spec.type, (inRegisterUnit - spec.offset) / spec.scale, spec.wordOrder);
}

/** The words of an alarms register with these alarms raised (bits not listed in the spec stay 0). */
export function encodeAlarms(spec: RegisterSpec, alarms: readonly AlarmName[]): number[] {
  let pattern = 0;
  for (const [bit, alarm] of Object.entries(spec.bits ?? {})) {
    if (alarms.includes(alarm)) pattern += 2 ** Number(bit);
  }
  // Signed types hold the same bit pattern as a negative number.
  const bitsOfType = registerWords(spec.type) * 16;
  const signed = spec.type === 'int16' || spec.type === 'int32';
  const raw = signed && pattern >= 2 ** (bitsOfType - 1) ? pattern - 2 ** bitsOfType : pattern;
  return encodeRaw(spec.type, raw, spec.wordOrder);
}
