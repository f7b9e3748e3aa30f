import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CredentialsStore } from '@flowpilot/broker';
import { writeFileAtomic } from '@flowpilot/store';

/**
 * Logins of FlowPilot's own services (api, simulator) on this host. The broker stores only
 * their hashes; the plain secrets sit beside the data in a 0600 file that only the services
 * on this host read, so `flowpilot api` on the same data dir finds its login. Replaced
 * atomically (SPEC section 8): a service starting meanwhile reads the old file or the new one.
 */
export interface MqttLogin {
  username: string;
  password: string;
}

const SECRETS_FILE = 'service-logins.json';

export async function ensureServiceLogin(dataDir: string, credentials: CredentialsStore, name: string): Promise<MqttLogin> {
  const path = join(dataDir, SECRETS_FILE);
  const secrets: Record<string, string> = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>) : {};
  const known = secrets[name];
  if (known !== undefined && (await credentials.verify(name, known))?.role === 'service') return { username: name, password: known };
  const password = await credentials.add(name, 'service');
  writeFileAtomic(path, `${JSON.stringify({ ...secrets, [name]: password }, null, 2)}\n`, 0o600);
  return { username: name, password };
}

/** The login a standalone service uses: FLOWPILOT_MQTT_USERNAME/PASSWORD, else this host's service login. */
export function readServiceLogin(dataDir: string, name: string): MqttLogin | null {
  const path = join(dataDir, SECRETS_FILE);
  if (!existsSync(path)) return null;
  const password = (JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>)[name];
  return password === undefined ? null : { username: name, password };
}
