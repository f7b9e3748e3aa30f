import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CERTS_USAGE, classifyHosts, parseCertsArgs, runCertsCommand } from './certificates.ts';

// Argument checking happens before any file is touched or openssl is spawned, so these run in
// the unit project (no processes).

const root = mkdtempSync(join(tmpdir(), 'flowpilot-certs-unit-'));
const defaultDir = join(root, 'data', 'tls');
const options = { defaultDir, pilotMeterIds: ['ALM-PS3-DUT1', 'ALM-PS3-REF1'] };

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('parseCertsArgs', () => {
  it('reads init with its defaults, and every --host given', () => {
    expect(parseCertsArgs(['init'], options)).toEqual({
      action: 'init',
      dir: resolve(defaultDir),
      hosts: ['localhost', '127.0.0.1'],
      days: 825,
      name: 'FlowPilot site CA',
    });
    expect(parseCertsArgs(['init', '--dir', 'x/tls', '--host', 'pilot.example.org', '--host', '192.0.2.10', '--days', '90'], options)).toMatchObject({
      dir: resolve('x/tls'),
      hosts: ['pilot.example.org', '192.0.2.10'],
      days: 90,
    });
  });

  it('reads meter ids, and meters --all as every meter of the pilot', () => {
    expect(parseCertsArgs(['meter', 'ALM-PS3-DUT1', 'flowpilot-api', 'ALM-PS3-DUT1'], options)).toEqual({
      action: 'meter',
      dir: resolve(defaultDir),
      ids: ['ALM-PS3-DUT1', 'flowpilot-api'],
      days: 825,
      renew: false,
    });
    expect(parseCertsArgs(['meters', '--all', '--renew'], options)).toMatchObject({ ids: ['ALM-PS3-DUT1', 'ALM-PS3-REF1'], renew: true });
    expect(parseCertsArgs(['list', '--dir', '/srv/tls'], options)).toEqual({ action: 'list', dir: '/srv/tls' });
  });

  it.each([
    [[], CERTS_USAGE.all],
    [['bogus'], 'unknown certs command "bogus"'],
    [['init', '--port', '1'], "Unknown option '--port'"],
    [['init', 'extra'], "Unexpected argument 'extra'"],
    [['init', '--host'], "Option '--host <value>' argument missing"],
    [['init', '--days', '0'], '--days 0: expected a whole number of days'],
    [['init', '--days', '2.5'], '--days 2.5'],
    [['init', '--host', 'bad host'], 'host "bad host": expected a DNS name'],
    [['init', '--host=-x.example'], 'host "-x.example"'],
    [['init', '--name', 'CN=evil/O=x'], '--name "CN=evil/O=x"'],
    [['meter'], 'name at least one meter id'],
    [['meter', '../etc/passwd'], '"../etc/passwd" is not a meter id'],
    [['meter', 'ALM 1'], '"ALM 1" is not a meter id'],
    [['meters'], 'needs --all'],
    [['meters', '--all', 'ALM-PS3-DUT1'], "Unexpected argument 'ALM-PS3-DUT1'"],
    [['list', '--days', '3'], '--days is not an option of `certs list`'],
    [['meters', '--all', '--host', 'x'], '--host is not an option of `certs meters`'],
  ])('refuses %j with ERR_USAGE and a usage sentence on one line', (args, message) => {
    expect(() => parseCertsArgs(args, options)).toThrow(expect.objectContaining({ code: 'ERR_USAGE', message: expect.stringMatching(/usage: flowpilot certs/) }));
    expect(() => parseCertsArgs(args, options)).toThrow(expect.objectContaining({ message: expect.stringContaining(message) }));
    expect(() => parseCertsArgs(args, options)).toThrow(expect.objectContaining({ message: expect.not.stringContaining('\n') }));
  });

  it('shows the usage of the subcommand that was misused', () => {
    expect(() => parseCertsArgs(['meter'], options)).toThrow(CERTS_USAGE.meter);
    expect(() => parseCertsArgs(['init', '--x'], options)).toThrow(CERTS_USAGE.init);
  });

  it('refuses meters --all when the pilot has no meters', () => {
    expect(() => parseCertsArgs(['meters', '--all'], { ...options, pilotMeterIds: [] })).toThrow('the pilot file has no meters');
  });

  it('rejects misuse before creating any directory', async () => {
    await expect(runCertsCommand(['meter', 'bad/id'], { ...options, print: () => {} })).rejects.toMatchObject({ code: 'ERR_USAGE' });
    expect(existsSync(join(root, 'data'))).toBe(false);
  });
});

describe('classifyHosts', () => {
  it('sorts DNS names from IP addresses, keeps each host given once, and reads [::1]', () => {
    expect(classifyHosts(['localhost', '127.0.0.1', 'Pilot.Example.org', 'pilot.example.org', '[::1]', '2001:db8::10', '127.0.0.1'])).toEqual({
      dnsNames: ['localhost', 'Pilot.Example.org'],
      ipAddresses: ['127.0.0.1', '::1', '2001:db8::10'],
    });
  });

  it.each(['', 'a_b', 'x..y', 'host,DNS:evil', 'a'.repeat(64), '*.example.org', 'pilot.example.org.'])('refuses %j', (host) => {
    expect(() => classifyHosts([host])).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
  });
});
