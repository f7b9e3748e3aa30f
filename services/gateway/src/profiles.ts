import { readdirSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ALARMS, FlowPilotError, type AlarmName } from '@flowpilot/schema';
import {
  DEFAULT_REGISTER_SPEC,
  INTEGER_REGISTER_TYPES,
  QUANTITY_UNITS,
  READING_QUANTITIES,
  REGISTER_TABLES,
  REGISTER_TYPES,
  REGISTER_UNITS,
  registerWords,
  type ReadingQuantity,
  type RegisterSpec,
} from './registers.ts';

/**
 * Register-map profiles: a meter family's registers, written once from its manufacturer's
 * published Modbus map and named by a device in the gateway file (`profile: siemens-mag6000`)
 * or given as a file of the same format (`profile: ./maps/our-meter.yaml`). A device's own
 * `registers` override the profile field by field.
 */

/** One problem of a file, at the path of its field (STYLE habit 3: every problem at once). */
export interface ConfigProblem {
  path: readonly (string | number)[];
  message: string;
}

/** Where a profile's map comes from: the manual it follows, so it can be checked against the meter in hand. */
export interface ProfileSource {
  manual: string;
  document: string;
  version: string;
  url: string;
  note?: string;
}

export interface GatewayProfile {
  name: string;
  title: string;
  sources: readonly ProfileSource[];
  /** What must be checked against the meter in hand before its readings are trusted. */
  verify: string;
  registers: Readonly<Partial<Record<ReadingQuantity, RegisterSpec>>>;
  /** The file it was read from. */
  file: string;
}

/** The folder of the shipped profiles (services/gateway/profiles), beside src/. */
export const SHIPPED_PROFILES_DIR = fileURLToPath(new URL('../profiles/', import.meta.url));

/** A shipped profile's name: lower case, digits and hyphens; anything else is a file path. */
const PROFILE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** The names of the shipped profiles, sorted. */
export function listShippedProfiles(dir = SHIPPED_PROFILES_DIR): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => file.slice(0, -'.yaml'.length))
    .sort();
}

/** `generic`, `siemens-mag6000`: a shipped profile; `./maps/x.yaml`, `/etc/…`, `ours.json`: a file. */
export function isProfileName(ref: string): boolean {
  return !/[\\/]/.test(ref) && !/\.(ya?ml|json)$/i.test(ref);
}

// --- register specs, as a profile or a device's override writes them -------------------------

/** zod's own message for a missing field says what type it expected; an operator reads "required". */
export function required(message: string) {
  return { error: (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : message) };
}

const oneOf = (values: readonly string[]) => `must be one of ${values.join(', ')}`;

/**
 * A register spec with every field optional: a profile's spec is checked complete after the
 * defaults are merged, a device's override after it is merged over its profile.
 */
export const partialRegisterSpecSchema = z.strictObject({
  table: z.enum(REGISTER_TABLES, { error: `${oneOf(REGISTER_TABLES)} (Modbus function 3 or 4)` }).optional(),
  address: z
    .number({ error: 'must be a whole number 0–65535 (the 0-based address: register 40001 is holding 0, 30001 input 0)' })
    .int({ message: 'must be a whole number 0–65535' })
    .min(0, { message: 'must be 0–65535: the 0-based address (register 40001 is holding 0)' })
    .max(65535, { message: 'must be 0–65535: the 0-based address (register 43003 is holding 3002, not 43003)' })
    .optional(),
  type: z.enum(REGISTER_TYPES, { error: oneOf(REGISTER_TYPES) }).optional(),
  wordOrder: z.enum(['big', 'little'], { error: 'must be big (the first register holds the most significant word) or little' }).optional(),
  scale: z
    .number({ error: 'must be a number (value = raw · scale + offset)' })
    .refine((n) => Number.isFinite(n) && n !== 0, { message: 'must be a finite number other than 0' })
    .optional(),
  offset: z.number({ error: 'must be a number (value = raw · scale + offset)' }).refine(Number.isFinite, { message: 'must be finite' }).optional(),
  unit: z.enum(REGISTER_UNITS, { error: oneOf(REGISTER_UNITS) }).optional(),
  bits: z
    .record(z.string(), z.enum(ALARMS, { error: `must be an alarm of SPEC section 1: ${ALARMS.join(', ')}` }), {
      error: 'must map bit numbers to alarms, e.g. { 0: empty_pipe, 1: reverse_flow }',
    })
    .optional(),
});
export type PartialRegisterSpec = z.infer<typeof partialRegisterSpecSchema>;

const registerMapShape = Object.fromEntries(READING_QUANTITIES.map((quantity) => [quantity, partialRegisterSpecSchema.optional()])) as Record<
  ReadingQuantity,
  z.ZodOptional<typeof partialRegisterSpecSchema>
>;
/** A profile's `registers`. */
export const profileRegistersSchema = z.strictObject(registerMapShape, { error: `must map quantities (${READING_QUANTITIES.join(', ')}) to registers` });

/** A device's `registers`: overrides of its profile; `null` removes a quantity the profile maps. */
export const registerOverridesSchema = z.strictObject(
  Object.fromEntries(READING_QUANTITIES.map((quantity) => [quantity, partialRegisterSpecSchema.nullable().optional()])) as Record<
    ReadingQuantity,
    z.ZodOptional<z.ZodNullable<typeof partialRegisterSpecSchema>>
  >,
  { error: `must map quantities (${READING_QUANTITIES.join(', ')}) to registers` },
);
export type RegisterOverrides = z.infer<typeof registerOverridesSchema>;

/**
 * Checks a merged spec is complete and fits its quantity, reporting each problem at `path` +
 * field. `origin(field)` names where a field's value came from (a profile), for the message.
 */
export function completeRegisterSpec(
  quantity: ReadingQuantity,
  spec: PartialRegisterSpec,
  path: readonly (string | number)[],
  problems: ConfigProblem[],
  origin: (field: keyof PartialRegisterSpec) => string = () => '',
): RegisterSpec | undefined {
  const before = problems.length;
  const report = (field: keyof PartialRegisterSpec | undefined, message: string) =>
    problems.push({ path: field ? [...path, field] : path, message: `${message}${field ? origin(field) : ''}` });
  for (const field of ['table', 'address', 'type'] as const) {
    if (spec[field] === undefined) report(field, `required (${quantity} needs table, address and type)`);
  }
  const { table, address, type } = spec;
  if (address !== undefined && type !== undefined && address + registerWords(type) - 1 > 65535) {
    report('address', `${address} with type ${type} (${registerWords(type)} registers) runs past 65535`);
  }
  if (quantity === 'alarms') {
    if (spec.unit !== undefined) report('unit', 'an alarms register has no unit');
    if (spec.scale !== undefined && spec.scale !== 1) report('scale', 'does not apply to an alarms register (its bits are read as they are)');
    if (spec.offset !== undefined && spec.offset !== 0) report('offset', 'does not apply to an alarms register (its bits are read as they are)');
    if (type !== undefined && !INTEGER_REGISTER_TYPES.includes(type)) report('type', `an alarms register is an integer: ${INTEGER_REGISTER_TYPES.join(', ')}`);
    if (spec.bits === undefined) report('bits', 'required: which bit raises which alarm, e.g. { 0: empty_pipe, 1: reverse_flow }');
    else {
      const width = type === undefined ? 64 : registerWords(type) * 16;
      for (const bit of Object.keys(spec.bits)) {
        if (!/^\d+$/.test(bit) || Number(bit) >= width) {
          report('bits', `bit "${bit}" must be a whole number 0–${width - 1}${type === undefined ? '' : ` (a ${type} has ${width} bits)`}`);
        }
      }
    }
  } else {
    if (spec.bits !== undefined) report('bits', 'only an alarms register carries bits');
    const units = QUANTITY_UNITS[quantity];
    if (spec.unit !== undefined && !units.includes(spec.unit)) report('unit', `"${spec.unit}" is not a unit of ${quantity}: ${oneOf(units)}`);
  }
  if (problems.length > before || table === undefined || address === undefined || type === undefined) return undefined;
  const complete: RegisterSpec = {
    table,
    address,
    type,
    wordOrder: spec.wordOrder ?? DEFAULT_REGISTER_SPEC.wordOrder,
    scale: spec.scale ?? DEFAULT_REGISTER_SPEC.scale,
    offset: spec.offset ?? DEFAULT_REGISTER_SPEC.offset,
  };
  if (spec.unit !== undefined) complete.unit = spec.unit;
  if (spec.bits !== undefined) {
    complete.bits = Object.fromEntries(Object.entries(spec.bits).map(([bit, alarm]) => [Number(bit), alarm])) as Record<number, AlarmName>;
  }
  return complete;
}

// --- issues and paths -------------------------------------------------------------------------

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key)), '');
}

/** Edit distance, for suggestions between short keys. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The known key an unknown one was probably meant to be (`baudrate` → `baudRate`, `brokers` → `broker`). */
export function didYouMean(key: string, known: readonly string[]): string {
  const normal = (text: string) => text.toLowerCase().replace(/[-_\s]/g, '');
  const match =
    known.find((candidate) => normal(candidate) === normal(key)) ??
    (key.length >= 4 ? known.find((candidate) => distance(normal(candidate), normal(key)) <= (key.length >= 8 ? 2 : 1)) : undefined);
  return match ? `; did you mean ${match}?` : '';
}

/** zod's issues as problems, prefixed by where the parsed value sits; unknown keys one per key. */
export function zodProblems(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly (string | number)[],
  knownKeys: (path: readonly PropertyKey[]) => readonly string[] = () => [],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: [...path, key], message: `unknown field${didYouMean(key, knownKeys(issue.path))}` });
    } else {
      problems.push({ path, message: issue.message });
    }
  }
  return problems;
}

export function problemsText(source: string, problems: readonly ConfigProblem[]): string {
  const lines = problems.map((problem) => `  - ${formatPath(problem.path) || '(file)'}: ${problem.message}`);
  return `${source} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}\n`;
}

// --- profile files ----------------------------------------------------------------------------

const text = (what: string) => z.string(required(`must be a string (${what})`)).min(1, { message: 'must not be empty' });

const profileFileSchema = z.strictObject({
  name: z.string(required('must be a string')).regex(PROFILE_NAME, { message: 'must be lower case letters, digits and hyphens' }),
  title: text('the meter family'),
  sources: z
    .array(
      z.strictObject({
        manual: text("the manual's title"),
        document: text("the manual's document number"),
        version: text("the manual's version or date"),
        url: text('where the manual was published'),
        note: z.string().optional(),
      }),
    )
    .default([]),
  verify: text('what to check against the meter in hand'),
  registers: profileRegistersSchema.default({}),
});

const PROFILE_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(profileFileSchema.shape),
  registers: READING_QUANTITIES,
};

/**
 * Parses a profile file (YAML or JSON). Returns its problems rather than throwing, so that the
 * gateway file's parser reports them with the device that names the profile.
 */
export function parseProfileText(source: string, file: string): { profile?: GatewayProfile; problems: ConfigProblem[] } {
  let raw: unknown;
  try {
    raw = parseYaml(source);
  } catch (error) {
    return { problems: [{ path: [], message: `not valid YAML or JSON: ${(error as Error).message}` }] };
  }
  const parsed = profileFileSchema.safeParse(raw);
  if (!parsed.success) {
    const keys = (path: readonly PropertyKey[]) =>
      path.length === 0 ? PROFILE_KEYS['']! : path.length === 1 && path[0] === 'registers' ? PROFILE_KEYS.registers! : path.length === 2 && path[0] === 'registers' ? Object.keys(partialRegisterSpecSchema.shape) : [];
    return { problems: zodProblems(parsed.error.issues, [], keys) };
  }
  const problems: ConfigProblem[] = [];
  const registers: Partial<Record<ReadingQuantity, RegisterSpec>> = {};
  for (const quantity of READING_QUANTITIES) {
    const spec = parsed.data.registers[quantity];
    if (spec === undefined) continue;
    const complete = completeRegisterSpec(quantity, spec, ['registers', quantity], problems);
    if (complete) registers[quantity] = complete;
  }
  if (problems.length > 0) return { problems };
  const { name, title, sources, verify } = parsed.data;
  return { profile: { name, title, sources, verify: verify.trim(), registers, file }, problems };
}

/** Reads a profile by name (shipped) or by path (resolved against `baseDir`), or says why it cannot. */
export function readProfile(ref: string, baseDir: string, shippedDir = SHIPPED_PROFILES_DIR): { profile?: GatewayProfile; problems: ConfigProblem[] } {
  const named = isProfileName(ref);
  const file = named ? resolve(shippedDir, `${ref}.yaml`) : isAbsolute(ref) ? ref : resolve(baseDir, ref);
  let source: string | undefined;
  try {
    if (!named || PROFILE_NAME.test(ref)) source = readFileSync(file, 'utf8');
  } catch {
    source = undefined;
  }
  if (source === undefined) {
    const message = named
      ? `no shipped profile "${ref}": shipped are ${listShippedProfiles(shippedDir).join(', ')}; or give the path of a profile file`
      : `cannot read the profile file ${file}`;
    return { problems: [{ path: [], message }] };
  }
  const { profile, problems } = parseProfileText(source, file);
  if (profile && named && profile.name !== ref) {
    return { problems: [{ path: ['name'], message: `is "${profile.name}" in ${basename(file)}, expected "${ref}"` }] };
  }
  return profile ? { profile, problems } : { problems };
}

/** A profile by name or path; throws ERR_GATEWAY_CONFIG naming every problem of its file. */
export function loadProfile(ref: string, baseDir = process.cwd()): GatewayProfile {
  const { profile, problems } = readProfile(ref, baseDir);
  if (!profile) throw new FlowPilotError('ERR_GATEWAY_CONFIG', problemsText(`profile ${ref}`, problems));
  return profile;
}
