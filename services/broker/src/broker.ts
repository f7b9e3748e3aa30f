import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Logger } from 'pino';
import { parseMeterTopic, type MeterRegistry } from '@flowpilot/schema';
import type { DeadLetterInput, DurableStore } from '@flowpilot/store';
import { admitPublish } from './admission.ts';
import { canPublish, canSubscribe, isClientIdAllowed } from './access-policy.ts';
import type { CredentialsStore, Login } from './credentials.ts';
import type { SessionPersistence } from './session-persistence.ts';

/**
 * The FlowPilot broker: Aedes with device authentication, the topic ACL and the delivery
 * contract of SPEC section 6 as hooks (STYLE habit 2).
 *
 * Aedes sends a QoS 1 PUBACK only after `authorizePublish` calls back, and before it stores
 * or forwards anything. So the hook is where a reading becomes durable: it validates the
 * payload and commits the readings (as InfluxDB lines) and the dead letters to the durable
 * store, fsynced, and only then lets Aedes acknowledge. A failed commit, or a full store,
 * refuses the publish: the meter is disconnected without a PUBACK and resends later
 * ([MQTT-4.4.0-1]: a persistent session resends unacknowledged QoS 1 messages).
 */
export interface BrokerOptions {
  registry: MeterRegistry;
  credentials: CredentialsStore;
  store: DurableStore;
  log: Logger;
  /** Lab use only: accept clients without a login, as a service. */
  allowAnonymous: boolean;
  maxPayloadBytes: number;
  retentionMs: number;
  clock: { now(): number };
  /** Aedes persistence (openSessionPersistence); in memory when absent. */
  persistence?: SessionPersistence;
}

export const DEFAULT_BROKER_OPTIONS = {
  allowAnonymous: false,
  maxPayloadBytes: 2 * 1024 * 1024,
  retentionMs: 400 * 24 * 3600_000,
  clock: { now: () => Date.now() },
} satisfies Partial<BrokerOptions>;

export interface BrokerStats {
  messagesReceived: number;
  /** Readings and status messages committed to the durable store. */
  recordsAccepted: number;
  rejected: Record<string, number>;
  refusedStoreFull: number;
  refusedStoreError: number;
  connectedClients: number;
}

export interface FlowPilotBroker {
  readonly aedes: Aedes;
  listen(port: number, host: string): Promise<AddressInfo>;
  stats(): BrokerStats;
  close(): Promise<void>;
}

const ANONYMOUS: Login = { id: 'anonymous', role: 'service' };

function authError(message: string, returnCode: 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export async function createBroker(options: Partial<BrokerOptions> & Pick<BrokerOptions, 'registry' | 'credentials' | 'store' | 'log'>): Promise<FlowPilotBroker> {
  const settings: BrokerOptions = { ...DEFAULT_BROKER_OPTIONS, ...options };
  const { registry, credentials, store, log, clock } = settings;
  const logins = new WeakMap<Client, Login>();
  // Packets whose every reading was rejected: accepted (PUBACK) and dead-lettered, but not
  // forwarded to live subscribers.
  const rejectedPackets = new WeakSet<object>();
  const stats: BrokerStats = {
    messagesReceived: 0,
    recordsAccepted: 0,
    rejected: {},
    refusedStoreFull: 0,
    refusedStoreError: 0,
    connectedClients: 0,
  };
  let lastFullWarningAt = 0;

  function countAdmission(accepted: number, deadLetters: readonly DeadLetterInput[]): void {
    stats.recordsAccepted += accepted;
    for (const letter of deadLetters) stats.rejected[letter.code] = (stats.rejected[letter.code] ?? 0) + 1;
  }

  if (settings.allowAnonymous) {
    log.warn('ANONYMOUS ACCESS IS ON: any client on the network can publish readings for any meter. Use this only in a lab; unset FLOWPILOT_ALLOW_ANONYMOUS for a real pilot.');
  }

  const aedes = await Aedes.createBroker({
    // Service clients are `{login}:{meterId}` (access-policy.ts), longer than MQTT 3.1.0's 23 characters.
    maxClientsIdLength: 128,
    ...(settings.persistence ? { persistence: settings.persistence } : {}),
    authenticate(client, username, password, done) {
      if (username === undefined || username === '') {
        if (settings.allowAnonymous) {
          logins.set(client, ANONYMOUS);
          return done(null, true);
        }
        log.warn({ clientId: client.id }, 'refused a client without a login: give the device credentials (flowpilot credentials add)');
        return done(authError('a login is required', 5), false);
      }
      credentials.verify(username, password ?? Buffer.alloc(0)).then(
        (login) => {
          if (!login) {
            log.warn({ clientId: client.id, username }, 'refused a login: wrong username or password');
            return done(authError('bad username or password', 4), false);
          }
          if (!isClientIdAllowed(login, client.id)) {
            log.warn({ clientId: client.id, username }, 'refused a login: a meter must connect with its own id as client id');
            return done(authError('client id does not match the login', 5), false);
          }
          logins.set(client, login);
          done(null, true);
        },
        (error: unknown) => {
          log.error({ err: error }, 'could not read the credentials store: check the file in the data dir');
          done(authError('credentials store unavailable', 5), false);
        },
      );
    },

    authorizePublish(client, packet, callback) {
      const login = client ? logins.get(client) : undefined;
      // client is null only for a will left by a previous broker run: it can only be a status.
      const allowed = login ? canPublish(login, packet.topic) : client === null && parseMeterTopic(packet.topic)?.kind === 'status';
      if (!allowed) {
        log.warn({ clientId: client?.id, topic: packet.topic }, 'refused a publish outside the client\'s topics');
        return callback(new Error(`not authorized to publish to ${packet.topic}`));
      }
      stats.messagesReceived += 1;
      if (store.isFull()) {
        stats.refusedStoreFull += 1;
        const now = clock.now();
        if (now - lastFullWarningAt > 10_000) {
          lastFullWarningAt = now;
          log.warn({ depth: store.depth() }, 'the durable store is full: publishes are refused until InfluxDB catches up (check InfluxDB)');
        }
        return callback(new Error('durable store full'));
      }
      const { records, deadLetters } = admitPublish(
        { topic: packet.topic, payload: packet.payload, clientId: client?.id ?? null },
        { registry, nowMs: clock.now(), retentionMs: settings.retentionMs, maxPayloadBytes: settings.maxPayloadBytes },
      );
      countAdmission(records.length, deadLetters);
      if (records.length === 0) rejectedPackets.add(packet);
      store.append(records, deadLetters).then(
        () => callback(null),
        (error: unknown) => {
          stats.refusedStoreError += 1;
          log.error({ err: error }, 'could not commit to the durable store: check the data dir\'s disk');
          callback(error as Error);
        },
      );
    },

    authorizeSubscribe(client, subscription, callback) {
      const login = logins.get(client);
      if (!login || !canSubscribe(login, subscription.topic)) {
        log.warn({ clientId: client.id, topic: subscription.topic }, 'refused a subscription outside the client\'s topics');
        // null grants nothing: SUBACK return code 0x80 [MQTT-3.9.3-2], the connection stays up.
        return callback(null, null);
      }
      callback(null, subscription);
    },

    authorizeForward(_client, packet) {
      return rejectedPackets.has(packet) ? null : packet;
    },
  });

  aedes.on('clientError', (client, error) => log.debug({ clientId: client.id, err: error.message }, 'client error'));
  aedes.on('client', () => (stats.connectedClients = aedes.connectedClients));
  aedes.on('clientDisconnect', () => (stats.connectedClients = aedes.connectedClients));

  const server: Server = createServer(aedes.handle);

  return {
    aedes,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    stats: () => ({ ...stats, rejected: { ...stats.rejected }, connectedClients: aedes.connectedClients }),
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
      await settings.persistence?.destroy();
    },
  };
}
