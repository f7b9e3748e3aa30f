import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword, openCredentialsStore, verifyPassword } from './credentials.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('credentials', () => {
  it('verifies a password against its scrypt hash and nothing else', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct hors', hash)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });

  it('stores logins hashed in a 0600 file, and generates a password when none is given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fp-cred-'));
    dirs.push(dir);
    const path = join(dir, 'credentials.json');
    const store = openCredentialsStore(path);
    const generated = await store.add('M1', 'meter');
    await store.add('svc', 'service', 'given-secret');
    expect(generated).toHaveLength(24);
    expect(readFileSync(path, 'utf8')).not.toContain(generated);
    expect(readFileSync(path, 'utf8')).not.toContain('given-secret');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await store.verify('M1', generated)).toEqual({ id: 'M1', role: 'meter' });
    expect(await store.verify('M1', 'wrong')).toBeNull();
    expect(await store.verify('nobody', generated)).toBeNull();
    // A second check of the same password is answered from the verified cache, a wrong one never is.
    expect(await store.verify('M1', generated)).toEqual({ id: 'M1', role: 'meter' });
    expect(await store.verify('M1', `${generated}x`)).toBeNull();
    // Replacing the login invalidates what was verified.
    await store.add('M1', 'meter', 'new-password');
    expect(await store.verify('M1', generated)).toBeNull();
    expect(await store.verify('M1', 'new-password')).toEqual({ id: 'M1', role: 'meter' });
    // A second handle (another process) sees the logins: the file is the truth.
    expect(openCredentialsStore(path).list()).toEqual([
      { id: 'M1', role: 'meter' },
      { id: 'svc', role: 'service' },
    ]);
  });
});
