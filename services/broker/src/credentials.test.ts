import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword, openCredentialsStore, verifyPassword } from './credentials.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function storePath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-cred-'));
  dirs.push(dir);
  return join(dir, 'credentials.json');
}

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

  it('keeps a gateway\'s meters with its hashed credential, and gives them back at login and in the list', async () => {
    const path = storePath();
    const store = openCredentialsStore(path);
    await store.add('gw-ps3', 'gateway', 'gw-secret', ['ALM-PS3-DUT1', 'ALM-PS3-REF', 'ALM-PS3-DUT1']);
    await store.add('M1', 'meter', 'm1-secret');
    const gateway = { id: 'gw-ps3', role: 'gateway', meters: ['ALM-PS3-DUT1', 'ALM-PS3-REF'] };
    expect(await store.verify('gw-ps3', 'gw-secret')).toEqual(gateway);
    expect(await store.verify('gw-ps3', 'gw-secret')).toEqual(gateway); // from the verified cache
    expect(await store.verify('gw-ps3', 'wrong')).toBeNull();
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { version: number; logins: Record<string, Record<string, unknown>> };
    expect(stored.version).toBe(1);
    expect(stored.logins['gw-ps3']).toMatchObject({ ...gateway, hash: expect.stringMatching(/^scrypt\$/) });
    expect(stored.logins['M1']).not.toHaveProperty('meters');
    expect(readFileSync(path, 'utf8')).not.toContain('gw-secret');
    // Another process sees the role and the meters; what it is given is a copy.
    const list = openCredentialsStore(path).list();
    expect(list).toEqual([gateway, { id: 'M1', role: 'meter' }]);
    (list[0] as unknown as { meters: string[] }).meters.push('ALM-PS9-DUT1');
    expect(store.list()[0]).toEqual(gateway);
    // Replacing the gateway replaces its meters.
    await store.add('gw-ps3', 'gateway', 'gw-secret', ['ALM-PS3-REF']);
    expect(await store.verify('gw-ps3', 'gw-secret')).toEqual({ id: 'gw-ps3', role: 'gateway', meters: ['ALM-PS3-REF'] });
  });

  it('refuses a gateway without meters or with ids that are no meter ids, and meters on any other login', async () => {
    const path = storePath();
    const store = openCredentialsStore(path);
    await expect(store.add('gw', 'gateway', 'pw', [])).rejects.toThrow('needs at least one meter');
    await expect(store.add('gw:1', 'gateway', 'pw', ['ALM-PS3-DUT1'])).rejects.toThrow('meter id grammar');
    await expect(store.add('gw', 'gateway', 'pw', ['ALM-PS3-DUT1', 'meters/#', ''])).rejects.toThrow('not meter ids: meters/#, ');
    const untyped = store.add.bind(store) as (id: string, role: string, password?: string, meters?: readonly string[]) => Promise<string>;
    await expect(untyped('M1', 'meter', 'pw', ['ALM-PS3-DUT1'])).rejects.toThrow('only a gateway login carries meters');
    expect(store.list()).toEqual([]);
  });

  it('loads a store written before gateways existed, and reads a damaged entry fail-closed', async () => {
    const path = storePath();
    const hash = await hashPassword('pw');
    const createdAt = '2026-01-01T00:00:00.000Z';
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        logins: {
          M1: { id: 'M1', role: 'meter', hash, createdAt },
          svc: { id: 'svc', role: 'service', hash, createdAt },
          // Written by hand or damaged: each is read as the least it can mean.
          'gw-lost': { id: 'gw-lost', role: 'gateway', hash, createdAt },
          'gw-odd': { id: 'gw-odd', role: 'gateway', meters: ['ALM-PS3-DUT1', 7, 'meters/#'], hash, createdAt },
          root: { id: 'root', role: 'admin', hash, createdAt },
          alias: { id: 'svc', role: 'service', hash, createdAt },
          'M2': { id: 'M2', role: 'meter', meters: ['ALM-PS3-DUT1'], hash, createdAt },
        },
      }),
      { mode: 0o600 },
    );
    const store = openCredentialsStore(path);
    expect(store.list()).toEqual([
      { id: 'M1', role: 'meter' },
      { id: 'svc', role: 'service' },
      { id: 'gw-lost', role: 'gateway', meters: [] },
      { id: 'gw-odd', role: 'gateway', meters: ['ALM-PS3-DUT1'] },
      { id: 'M2', role: 'meter' },
    ]);
    expect(await store.verify('M1', 'pw')).toEqual({ id: 'M1', role: 'meter' });
    expect(await store.verify('svc', 'pw')).toEqual({ id: 'svc', role: 'service' });
    expect(await store.verify('root', 'pw')).toBeNull();
    expect(await store.verify('alias', 'pw')).toBeNull();
    expect(await store.verify('__proto__', 'pw')).toBeNull();
    expect(await store.verify('constructor', 'pw')).toBeNull();
    // Adding a gateway keeps the old logins as they were.
    await store.add('gw-ps3', 'gateway', undefined, ['ALM-PS3-DUT1']);
    expect(openCredentialsStore(path).list().map((login) => login.id)).toEqual(['M1', 'svc', 'gw-lost', 'gw-odd', 'M2', 'gw-ps3']);
  });
});
