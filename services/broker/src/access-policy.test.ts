import { describe, expect, it } from 'vitest';
import { canLeaveWill, canPublish, canSubscribe, isClientIdAllowed } from './access-policy.ts';
import type { Login } from './credentials.ts';

const meter: Login = { id: 'ALM-PS3-DUT1', role: 'meter' };
const service: Login = { id: 'flowpilot-api', role: 'service' };
const gateway: Login = { id: 'gw-ps3', role: 'gateway', meters: ['ALM-PS3-DUT1', 'ALM-PS3-REF'] };
/** A gateway whose stored meter list was lost or damaged: it logs in and may do nothing. */
const emptyGateway: Login = { id: 'gw-ps9', role: 'gateway', meters: [] };

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
    // A gateway: the two topics of each of its meters, nothing else.
    [gateway, 'meters/ALM-PS3-DUT1/readings', true],
    [gateway, 'meters/ALM-PS3-DUT1/status', true],
    [gateway, 'meters/ALM-PS3-REF/readings', true],
    [gateway, 'meters/ALM-PS3-REF/status', true],
    [gateway, 'meters/ALM-PS2-DUT1/readings', false],
    [gateway, 'meters/ALM-PS2-DUT1/status', false],
    [gateway, 'meters/gw-ps3/readings', false],
    [gateway, 'meters/gw-ps3/status', false],
    [gateway, 'meters/ALM-PS3-DUT1/config', false],
    [gateway, 'meters/ALM-PS3-DUT1/readings/extra', false],
    [gateway, 'meters/+/readings', false],
    [gateway, 'meters/ALM-PS3-DUT1', false],
    [gateway, 'meters/alm-ps3-dut1/readings', false],
    [gateway, '$SYS/broker/clients', false],
    [gateway, 'anything', false],
    [gateway, '', false],
    [emptyGateway, 'meters/ALM-PS3-DUT1/readings', false],
    [emptyGateway, 'meters/gw-ps9/status', false],
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
    // A gateway subscribes to nothing, not even its own meters' topics.
    [gateway, '#', false],
    [gateway, 'meters/#', false],
    [gateway, 'meters/+/readings', false],
    [gateway, 'meters/+/status', false],
    [gateway, 'meters/ALM-PS3-DUT1/readings', false],
    [gateway, 'meters/ALM-PS3-DUT1/status', false],
    [gateway, '$SYS/#', false],
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
    [gateway, 'gw-ps3', true],
    [gateway, 'gw-ps3:ALM-PS3-DUT1', true],
    [gateway, 'gw-ps3:anything:at:all', true],
    [gateway, 'gw-ps3:', false],
    [gateway, 'gw-ps3x', false],
    [gateway, 'gw-ps', false],
    [gateway, 'ALM-PS3-DUT1', false],
    [gateway, 'ALM-PS3-DUT1:gw-ps3', false],
    [gateway, 'flowpilot-api:gw-ps3', false],
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
    [gateway, 'meters/ALM-PS3-DUT1/status', true],
    [gateway, 'meters/ALM-PS3-REF/status', true],
    [gateway, 'meters/ALM-PS3-DUT1/readings', false],
    [gateway, 'meters/ALM-PS2-DUT1/status', false],
    [gateway, 'meters/gw-ps3/status', false],
    [gateway, 'alerts/everyone', false],
    [gateway, '$SYS/x', false],
    [emptyGateway, 'meters/gw-ps9/status', false],
  ] as const)('%o leaves a will on %s: %s', (login, topic, allowed) => {
    expect(canLeaveWill(login, topic)).toBe(allowed);
  });
});
