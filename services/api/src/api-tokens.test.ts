import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowPilotError } from '@flowpilot/schema';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { API_TOKEN_PREFIX, openApiTokenStore } from './api-tokens.ts';
import { runTokensCommand } from './tokens-command.ts';

// The token file of SPEC section 8: private, hashed, written whole, read again when it changes.

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowpilot-tokens-'));
  path = join(dir, 'data', 'api-tokens.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the token store', () => {
  it('makes long random tokens with a prefix, and keeps only their SHA-256 in a 0600 file in a 0700 folder', () => {
    const store = openApiTokenStore(path);
    expect(store.hasTokens()).toBe(false);
    const token = store.add('alice', 'evaluator');
    expect(token).toMatch(new RegExp(`^${API_TOKEN_PREFIX}[A-Za-z0-9_-]{43}$`));
    expect(store.add('bob', 'viewer')).not.toBe(token);

    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.slice(API_TOKEN_PREFIX.length, 20));
    const file = JSON.parse(text) as { tokens: Array<{ name: string; role: string; hash: string; createdAt: string }> };
    expect(file.tokens.map((t) => [t.name, t.role])).toEqual([['alice', 'evaluator'], ['bob', 'viewer']]);
    expect(file.tokens[0]?.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
    // No temporary file is left behind.
    expect(readdirSync(join(dir, 'data'))).toEqual(['api-tokens.json']);
  });

  it('verifies a token to its name and role, and nothing else', () => {
    const store = openApiTokenStore(path);
    const token = store.add('alice', 'admin');
    expect(store.verify(token)).toEqual({ name: 'alice', role: 'admin' });
    expect(store.verify(`${token}x`)).toBeNull();
    expect(store.verify(token.slice(0, -1))).toBeNull();
    expect(store.verify('')).toBeNull();
    expect(store.verify('x'.repeat(10_000))).toBeNull();
  });

  it('lists names, roles and times, never a token or its hash', () => {
    const store = openApiTokenStore(path);
    const token = store.add('alice', 'viewer');
    const listed = store.list();
    expect(listed).toEqual([{ name: 'alice', role: 'viewer', createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/) }]);
    expect(JSON.stringify(listed)).not.toContain(token);
    expect(JSON.stringify(listed)).not.toContain('sha256');
  });

  it('sees tokens added and revoked by another process without being reopened', () => {
    const api = openApiTokenStore(path);
    const cli = openApiTokenStore(path);
    expect(api.hasTokens()).toBe(false);
    const token = cli.add('field-1', 'viewer');
    expect(api.hasTokens()).toBe(true);
    expect(api.verify(token)).toEqual({ name: 'field-1', role: 'viewer' });
    expect(cli.revoke('field-1')).toBe(true);
    expect(api.verify(token)).toBeNull();
    expect(api.hasTokens()).toBe(false);
    expect(cli.revoke('field-1')).toBe(false);
  });

  it('refuses a duplicate name, a bad name and a bad role', () => {
    const store = openApiTokenStore(path);
    store.add('alice', 'viewer');
    expect(() => store.add('alice', 'admin')).toThrow(/A token named "alice" exists: revoke it first/);
    expect(() => store.add('no spaces', 'admin')).toThrow(FlowPilotError);
    expect(() => store.add('', 'admin')).toThrow(FlowPilotError);
    expect(() => store.add('ok', 'root' as never)).toThrow(/Role "root": expected viewer, evaluator, admin/);
  });

  it('fails closed on a broken file: verifying throws ERR_CONFIG instead of letting anyone in', () => {
    const store = openApiTokenStore(path);
    store.add('alice', 'viewer');
    writeFileSync(path, '{ not json');
    expect(() => store.verify('fpt_anything')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => store.hasTokens()).toThrow(/is not valid JSON/);
  });
});

describe('flowpilot tokens', () => {
  const run = (...args: string[]): string[] => {
    const lines: string[] = [];
    runTokensCommand(args, path, (line) => lines.push(line));
    return lines;
  };

  it('adds a token and prints it once, then lists without it, then revokes it', () => {
    const added = run('add', 'alice', '--role', 'evaluator');
    const token = added.map((line) => line.trim()).find((line) => line.startsWith(API_TOKEN_PREFIX));
    expect(token).toBeDefined();
    expect(added.join('\n')).toMatch(/Created evaluator token "alice"/);
    expect(added.join('\n')).toMatch(/first token/);
    expect(openApiTokenStore(path).verify(token as string)).toEqual({ name: 'alice', role: 'evaluator' });

    const listed = run('list');
    expect(listed[0]).toMatch(/^NAME\s+ROLE\s+CREATED$/);
    expect(listed[1]).toMatch(/^alice\s+evaluator\s+\d{4}-/);
    expect(listed.join('\n')).not.toContain(token);
    const json = JSON.parse(run('list', '--json').join('\n')) as unknown[];
    expect(json).toEqual([{ name: 'alice', role: 'evaluator', createdAt: expect.any(String) }]);

    expect(run('revoke', 'alice').join('\n')).toMatch(/Revoked token "alice".*\n.*No tokens remain/);
    expect(openApiTokenStore(path).verify(token as string)).toBeNull();
    expect(run('list')).toEqual(['No API tokens: the API serves clients on this machine only (loopback).']);
  });

  it.each([
    [[], /^usage: flowpilot tokens add <name> --role viewer\|evaluator\|admin/],
    [['remove', 'x'], /unknown action "remove"/],
    [['add'], /tokens add takes one name/],
    [['add', 'alice'], /needs --role/],
    [['add', 'alice', '--role', 'root'], /--role root: expected viewer, evaluator, admin/],
    [['add', 'alice', '--rol', 'viewer'], /Unknown option '--rol'/],
    [['revoke'], /tokens revoke takes one name/],
    [['revoke', 'nobody'], /No token named "nobody"; flowpilot tokens list shows them/, 'ERR_CONFIG'],
    [['list', 'extra'], /tokens list takes no names/],
  ])('refuses %j with a usage error (or, for a token that is not there, ERR_CONFIG) and what to type', (args, message, code = 'ERR_USAGE') => {
    let thrown: unknown;
    try {
      run(...args);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(FlowPilotError);
    expect((thrown as FlowPilotError).code).toBe(code);
    expect((thrown as FlowPilotError).detail).toMatch(message);
  });
});
