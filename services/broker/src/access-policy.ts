import { parseMeterTopic } from '@flowpilot/schema';
import type { Login } from './credentials.ts';

/**
 * Who may do what on the broker (issue: topic ACL; SPEC section 8). Pure functions; the
 * broker's Aedes hooks ask them.
 * - A meter publishes only to its own `meters/{id}/readings` and `meters/{id}/status` and
 *   subscribes to nothing.
 * - A gateway (SPEC section 10) publishes the same two topics of each meter its login carries,
 *   and subscribes to nothing: a device in the field, trusted with its meters only.
 * - A service (ingest, api, simulator) publishes for any meter and subscribes under `meters/`.
 */

/**
 * A meter's client id is its login; a service or a gateway may run several clients as
 * `{login}:{anything}` (a gateway, say, one connection per meter it polls).
 */
export function isClientIdAllowed(login: Login, clientId: string): boolean {
  if (clientId === login.id) return true;
  return login.role !== 'meter' && clientId.startsWith(`${login.id}:`) && clientId.length > login.id.length + 1;
}

export function canPublish(login: Login, topic: string): boolean {
  const parsed = parseMeterTopic(topic);
  if (!parsed) return false;
  switch (login.role) {
    case 'service':
      return true;
    case 'gateway':
      return login.meters.includes(parsed.meterId);
    case 'meter':
      return parsed.meterId === login.id;
  }
}

export function canSubscribe(login: Login, topicFilter: string): boolean {
  if (login.role !== 'service') return false;
  return topicFilter === 'meters/#' || topicFilter.startsWith('meters/');
}

/**
 * A last will may only be the client's own status (SPEC section 1: "A meter's last will may
 * only be on its own status topic; any other will refuses the CONNECT"); a gateway's, the
 * status of one of its meters. Aedes stores a will at CONNECT without asking
 * `authorizePublish`, so the broker asks this at login.
 */
export function canLeaveWill(login: Login, willTopic: string): boolean {
  return parseMeterTopic(willTopic)?.kind === 'status' && canPublish(login, willTopic);
}
