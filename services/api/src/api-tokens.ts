import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { FlowPilotError } from '@flowpilot/schema';
import { writeFileAtomic } from '@flowpilot/store/private-files';

/**
 * API tokens (SPEC section 8): each has a name and a role; the file keeps only SHA-256 hashes.
 * A token is 32 random bytes, so a plain hash is enough: there is nothing to guess a dictionary
 * from, and a fast hash keeps every request's check cheap (scrypt is for human passwords).
 */
export const API_ROLES = ['viewer', 'evaluator', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** Every token starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const API_TOKEN_PREFIX = 'fpt_';

/** Who a token belongs to. */
export interface TokenPrincipal {
  name: string;
  role: ApiRole;
}

/** What the API needs of a token store (createApi's `tokens` option). */
export interface TokenVerifier {
  /** Is any token configured? From the first one on, every request needs one (SPEC section 8). */
  hasTokens(): boolean;
  /** The token's name and role, or null for an unknown or revoked token. */
  verify(token: string): TokenPrincipal | null;
}

export interface ApiTokenInfo extends TokenPrincipal {
  /** ISO 8601. */
  createdAt: string;
}

export interface ApiTokenStore extends TokenVerifier {
  /** Creates a token; returns it. It is never stored, so this is the only time anyone sees it. */
  add(name: string, role: ApiRole): string;
  /** The tokens' names, roles and creation times: never the tokens. */
  list(): ApiTokenInfo[];
  /** Removes a token; false when there was none of that name. */
  revoke(name: string): boolean;
}

interface StoredToken extends ApiTokenInfo {
  /** `sha256:` and the hex digest of the token. */
  hash: string;
}

interface TokensFile {
  version: 1;
  tokens: StoredToken[];
}

const TOKEN_BYTES = 32;
const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** Longer than any token this store makes: refuse before hashing whatever a client sends. */
const MAX_TOKEN_LENGTH = 256;

export function isApiRole(value: unknown): value is ApiRole {
  return typeof value === 'string' && (API_ROLES as readonly string[]).includes(value);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function parseFile(text: string, path: string): TokensFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FlowPilotError('ERR_CONFIG', `The API tokens file ${path} is not valid JSON: fix it, or delete it and add the tokens again`);
  }
  const tokens = (parsed as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(tokens)) throw new FlowPilotError('ERR_CONFIG', `The API tokens file ${path} has no "tokens" list: fix it, or delete it and add the tokens again`);
  const valid = tokens.filter(
    (t: Partial<StoredToken>): t is StoredToken =>
      typeof t?.name === 'string' && isApiRole(t.role) && typeof t.hash === 'string' && /^sha256:[0-9a-f]{64}$/.test(t.hash),
  );
  if (valid.length !== tokens.length) throw new FlowPilotError('ERR_CONFIG', `The API tokens file ${path} has entries without a name, a role or a sha256 hash: fix them, or delete the file and add the tokens again`);
  return { version: 1, tokens: valid };
}

/**
 * Opens the token file at `path` (the CLI uses `<dataDir>/api-tokens.json`); a missing file is
 * no tokens. The file is read again whenever it changed on disk, so `flowpilot tokens add` and
 * `revoke` in another process take effect on the next request, without a restart.
 */
export function openApiTokenStore(path: string): ApiTokenStore {
  let cached: TokensFile = { version: 1, tokens: [] };
  let hashes: Array<{ hash: Buffer; principal: TokenPrincipal }> = [];
  let cachedStamp = 'none';

  function use(file: TokensFile, stamp: string): TokensFile {
    cached = file;
    cachedStamp = stamp;
    hashes = file.tokens.map((t) => ({ hash: Buffer.from(t.hash.slice('sha256:'.length), 'hex'), principal: { name: t.name, role: t.role } }));
    return file;
  }

  /** Identity of the file's current version: a save renames a new file into place, so the inode changes too. */
  function stampOf(): string {
    try {
      const s = statSync(path, { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
      throw error;
    }
  }

  function load(): TokensFile {
    const stamp = stampOf();
    if (stamp === cachedStamp) return cached;
    // A file that is unreadable or broken throws: the API answers 500 and logs it (fail closed).
    if (stamp === 'none') return use({ version: 1, tokens: [] }, stamp);
    return use(parseFile(readFileSync(path, 'utf8'), path), stamp);
  }

  function save(file: TokensFile): void {
    // Atomic, 0600, never through a file someone placed there first (@flowpilot/store's private files).
    writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
    use(file, stampOf());
  }

  return {
    hasTokens: () => load().tokens.length > 0,
    verify(token) {
      const current = load();
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH || current.tokens.length === 0) return null;
      const presented = digest(token);
      let found: TokenPrincipal | null = null;
      // Every hash is compared, each in constant time: the answer's timing says nothing about which matched.
      for (const entry of hashes) {
        if (timingSafeEqual(entry.hash, presented)) found = entry.principal;
      }
      return found ? { ...found } : null;
    },
    add(name, role) {
      if (!TOKEN_NAME.test(name)) {
        throw new FlowPilotError('ERR_CONFIG', `Token name "${name}": use 1 to 64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit`);
      }
      if (!isApiRole(role)) throw new FlowPilotError('ERR_CONFIG', `Role "${String(role)}": expected ${API_ROLES.join(', ')}`);
      const file = load();
      if (file.tokens.some((t) => t.name === name)) {
        throw new FlowPilotError('ERR_CONFIG', `A token named "${name}" exists: revoke it first (flowpilot tokens revoke ${name}) or choose another name`);
      }
      const token = `${API_TOKEN_PREFIX}${randomBytes(TOKEN_BYTES).toString('base64url')}`;
      const stored: StoredToken = { name, role, createdAt: new Date().toISOString(), hash: `sha256:${digest(token).toString('hex')}` };
      save({ version: 1, tokens: [...file.tokens, stored] });
      return token;
    },
    list() {
      return load().tokens.map(({ name, role, createdAt }) => ({ name, role, createdAt }));
    },
    revoke(name) {
      const file = load();
      const kept = file.tokens.filter((t) => t.name !== name);
      if (kept.length === file.tokens.length) return false;
      save({ version: 1, tokens: kept });
      return true;
    },
  };
}
