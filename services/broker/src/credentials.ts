import { createHmac, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { isValidMeterId } from '@flowpilot/schema';
import { writeFileAtomic } from '@flowpilot/store';

/**
 * The credentials store (SPEC section 3: device credentials live apart from the pilot file,
 * hashed). One JSON file in the data dir, mode 0600 in a directory created 0700 (SPEC section
 * 8); passwords as scrypt hashes only. Replaced atomically, so the broker never reads half a file.
 */
export type LoginRole = 'meter' | 'service' | 'gateway';

/**
 * Who logged in. A `gateway` (SPEC section 10: a field gateway that polls meters over Modbus)
 * publishes only for the meters it carries, so its login holds their ids.
 */
export type Login =
  | { id: string; role: 'meter' | 'service' }
  | { id: string; role: 'gateway'; meters: readonly string[] };

type StoredLogin = Login & {
  hash: string;
  createdAt: string;
};

interface CredentialsFile {
  version: 1;
  logins: Record<string, StoredLogin>;
}

const scrypt = promisify(scryptCallback) as (password: string | Buffer, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

// OWASP's scrypt floor (N=2^17, r=8, p=1) costs ~130 MiB per hash; N=2^15 keeps 500 meters
// reconnecting at once within memory while staying far above brute-force range for random
// 24-character passwords.
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keyLength, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 256 * SCRYPT.N * SCRYPT.r });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string | Buffer, encoded: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = encoded.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const N = Number(n);
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export interface CredentialsStore {
  /** The login if the password matches, else null. */
  verify(username: string, password: string | Buffer): Promise<Login | null>;
  /** Creates or replaces a login; returns the password (generated when none is given). */
  add(id: string, role: 'meter' | 'service', password?: string): Promise<string>;
  /** A gateway's login carries the ids of the meters it serves (at least one, each a valid meter id). */
  add(id: string, role: 'gateway', password: string | undefined, meters: readonly string[]): Promise<string>;
  list(): Login[];
}

/**
 * A stored entry as the broker may trust it, or null. Read fail-closed: an unknown role is no
 * login at all, and a gateway whose meter list is missing or damaged serves no meter (its
 * login still succeeds, and every publish is refused). Stores written before gateways
 * existed hold only meters and services, which load unchanged.
 */
function trustedLogin(stored: Partial<StoredLogin> & { meters?: unknown }): Login | null {
  const id = stored.id;
  if (typeof id !== 'string') return null;
  if (stored.role === 'meter' || stored.role === 'service') return { id, role: stored.role };
  if (stored.role !== 'gateway') return null;
  const meters = Array.isArray(stored.meters) ? stored.meters.filter((m): m is string => typeof m === 'string' && isValidMeterId(m)) : [];
  return { id, role: 'gateway', meters: Object.freeze([...new Set(meters)]) };
}

function gatewayMeters(id: string, role: LoginRole, meters: readonly string[] | undefined): readonly string[] | undefined {
  if (role !== 'gateway') {
    if (meters !== undefined && meters.length > 0) throw new Error(`login "${id}": only a gateway login carries meters`);
    return undefined;
  }
  // A gateway's id prefixes its client ids (`{id}:{anything}`) and is its certificate's CN.
  if (!isValidMeterId(id)) throw new Error(`gateway login "${id}": its id must match the meter id grammar (no ':')`);
  const unique = [...new Set(meters ?? [])];
  const invalid = unique.filter((m) => !isValidMeterId(m));
  if (invalid.length > 0) throw new Error(`gateway login "${id}": not meter ids: ${invalid.join(', ')}`);
  if (unique.length === 0) throw new Error(`gateway login "${id}" needs at least one meter`);
  return unique;
}

/** Opens the credentials file at `path`; it is re-read when it changes, so `flowpilot credentials add` needs no restart. */
export function openCredentialsStore(path: string): CredentialsStore {
  let cached: CredentialsFile = { version: 1, logins: {} };
  let cachedMtimeMs = -1;
  // Logins verified since the file last changed, keyed by an HMAC of the password under a key
  // that lives only in this process: a reconnect storm (500 meters after a broker restart, or
  // every service client sharing one login) costs one scrypt per login, not one per connection.
  const verifiedKey = randomBytes(32);
  const verified = new Map<string, Buffer>();
  const mac = (username: string, password: string | Buffer) => createHmac('sha256', verifiedKey).update(username).update('\0').update(password).digest();

  function load(): CredentialsFile {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(path).mtimeMs;
    } catch {
      return cached;
    }
    if (mtimeMs !== cachedMtimeMs) {
      verified.clear();
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as CredentialsFile;
      const logins = Object.create(null) as Record<string, StoredLogin>;
      for (const [key, stored] of Object.entries(parsed.logins ?? {})) {
        const login = trustedLogin(stored);
        // The key is the username; an entry whose id disagrees with it is no login of that name.
        if (login && login.id === key && typeof stored.hash === 'string') logins[key] = { ...login, hash: stored.hash, createdAt: typeof stored.createdAt === 'string' ? stored.createdAt : '' };
      }
      cached = { version: 1, logins };
      cachedMtimeMs = mtimeMs;
    }
    return cached;
  }

  function save(file: CredentialsFile): void {
    // An unpredictable temporary name opened with O_EXCL, fsynced, then renamed over the file.
    writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    cached = file;
    cachedMtimeMs = statSync(path).mtimeMs;
    verified.clear();
  }

  /** The login without its hash, a copy the caller cannot change the store through. */
  const publicLogin = (stored: StoredLogin): Login =>
    stored.role === 'gateway' ? { id: stored.id, role: 'gateway', meters: [...stored.meters] } : { id: stored.id, role: stored.role };

  return {
    async verify(username, password) {
      // Own properties only: a username such as `__proto__` or `constructor` is no login.
      const logins = load().logins;
      const login = Object.hasOwn(logins, username) ? logins[username] : undefined;
      if (!login) return null;
      const known = verified.get(username);
      const digest = mac(username, password);
      if (known && timingSafeEqual(known, digest)) return publicLogin(login);
      if (!(await verifyPassword(password, login.hash))) return null;
      verified.set(username, digest);
      return publicLogin(login);
    },
    async add(id: string, role: LoginRole, password?: string, meters?: readonly string[]) {
      const served = gatewayMeters(id, role, meters);
      const secret = password ?? generatePassword();
      const hash = await hashPassword(secret);
      const file = load();
      const createdAt = new Date().toISOString();
      const entry: StoredLogin = role === 'gateway' ? { id, role, meters: served ?? [], hash, createdAt } : { id, role, hash, createdAt };
      save({ version: 1, logins: { ...file.logins, [id]: entry } });
      return secret;
    },
    list() {
      return Object.values(load().logins).map(publicLogin);
    },
  };
}
