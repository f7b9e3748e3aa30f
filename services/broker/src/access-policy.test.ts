import { describe, expect, it } from 'vitest';
import { canLeaveWill, canPublish, canSubscribe, isClientIdAllowed } from './access-policy.ts';
import type { Login } from './credentials.ts';

const meter: Login = { id: 'ALM-PS3-DUT1', role: 'meter' };
const service: Login = { id: 'flowpilot-api', role: 'service' };

describe('topic ACL', () => {
  it.each([
    [meter, 'meters/ALM-PS3-DUT1/readings', true],
    [meter, 'meters/ALM-PS3-DUT1/status', true],
    [meter, 'meters/ALM-PS3-REF/readings', false],
    [meter, 'meters/ALM-PS3-DUT1/config', false],
    [meter, '$SYS/broker/clients', false],
    [meter, 'anything', false],
    [service, 'meters/ALM-PS3-REF/readings', true],
    [service, 'meters/ALM-PS3-REF/status', true],
    [service, '$SYS/x', false],
  ] as const)('%o publishes to %s: %s', (login, topic, allowed) => {
    expect(canPublish(login, topic)).toBe(allowed);
  });

  it.each([
    [meter, '#', false],
    [meter, 'meters/ALM-PS3-DUT1/readings', false],
    [service, 'meters/+/readings', true],
    [service, 'meters/#', true],
    [service, '#', false],
    [service, '$SYS/#', false],
  ] as const)('%o subscribes to %s: %s', (login, filter, allowed) => {
    expect(canSubscribe(login, filter)).toBe(allowed);
  });

  it.each([
    [meter, 'ALM-PS3-DUT1', true],
    [meter, 'ALM-PS3-DUT1:2', false],
    [meter, 'someone-else', false],
    [service, 'flowpilot-api', true],
    [service, 'flowpilot-api:1234', true],
    [service, 'flowpilot-api:', false],
    [service, 'flowpilot-apix', false],
  ] as const)('%o connects as client id %s: %s', (login, clientId, allowed) => {
    expect(isClientIdAllowed(login, clientId)).toBe(allowed);
  });
});

describe('last wills', () => {
  it.each([
    [meter, 'meters/ALM-PS3-DUT1/status', true],
    [meter, 'meters/ALM-PS3-REF/status', false],
    [meter, 'meters/ALM-PS3-DUT1/readings', false],
    [meter, 'alerts/everyone', false],
    [service, 'meters/ALM-PS3-REF/status', true],
    [service, 'meters/ALM-PS3-REF/readings', false],
    [service, '$SYS/x', false],
  ] as const)('%o leaves a will on %s: %s', (login, topic, allowed) => {
    expect(canLeaveWill(login, topic)).toBe(allowed);
  });
});
