import { parseMeterTopic } from '@flowpilot/schema';
import type { Login } from './credentials.ts';

/**
 * Who may do what on the broker (issue: topic ACL). Pure functions; the broker's Aedes hooks
 * ask them. A meter publishes only to its own `meters/{id}/readings` and `meters/{id}/status`
 * and subscribes to nothing; a service (ingest, api, simulator) publishes for any meter and
 * subscribes under `meters/`.
 */

/** A meter's client id is its login; a service may run several clients as `{login}:{anything}`. */
export function isClientIdAllowed(login: Login, clientId: string): boolean {
  if (clientId === login.id) return true;
  return login.role === 'service' && clientId.startsWith(`${login.id}:`) && clientId.length > login.id.length + 1;
}

export function canPublish(login: Login, topic: string): boolean {
  const parsed = parseMeterTopic(topic);
  if (!parsed) return false;
  return login.role === 'service' || parsed.meterId === login.id;
}

export function canSubscribe(login: Login, topicFilter: string): boolean {
  if (login.role !== 'service') return false;
  return topicFilter === 'meters/#' || topicFilter.startsWith('meters/');
}

/**
 * A last will may only be the client's own status (SPEC section 1: "A meter's last will may
 * only be on its own status topic; any other will refuses the CONNECT"). Aedes stores a will
 * at CONNECT without asking `authorizePublish`, so the broker asks this at login.
 */
export function canLeaveWill(login: Login, willTopic: string): boolean {
  return parseMeterTopic(willTopic)?.kind === 'status' && canPublish(login, willTopic);
}
