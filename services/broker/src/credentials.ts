import { createHmac, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { writeFileAtomic } from '@flowpilot/store';

/**
 * The credentials store (SPEC section 3: device credentials live apart from the pilot file,
 * hashed). One JSON file in the data dir, mode 0600 in a directory created 0700 (SPEC section
 * 8); passwords as scrypt hashes only. Replaced atomically, so the broker never reads half a file.
 */
export type LoginRole = 'meter' | 'service';

export interface Login {
  id: string;
  role: LoginRole;
}

interface StoredLogin extends Login {
  hash: string;
  createdAt: string;
}

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
  add(id: string, role: LoginRole, password?: string): Promise<string>;
  list(): Login[];
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
      cached = { version: 1, logins: parsed.logins ?? {} };
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

  return {
    async verify(username, password) {
      const login = load().logins[username];
      if (!login) return null;
      const known = verified.get(username);
      const digest = mac(username, password);
      if (known && timingSafeEqual(known, digest)) return { id: login.id, role: login.role };
      if (!(await verifyPassword(password, login.hash))) return null;
      verified.set(username, digest);
      return { id: login.id, role: login.role };
    },
    async add(id, role, password) {
      const secret = password ?? generatePassword();
      const hash = await hashPassword(secret);
      const file = load();
      save({ version: 1, logins: { ...file.logins, [id]: { id, role, hash, createdAt: new Date().toISOString() } } });
      return secret;
    },
    list() {
      return Object.values(load().logins).map(({ id, role }) => ({ id, role }));
    },
  };
}
