import type { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Logger } from 'pino';
import { isValidMeterId, MAX_STATUS_PAYLOAD_BYTES, parseMeterTopic, type MeterRegistry } from '@flowpilot/schema';
import type { DeadLetterInput, DurableStore } from '@flowpilot/store';
import { admitPublish } from './admission.ts';
import { canLeaveWill, canPublish, canSubscribe, isClientIdAllowed } from './access-policy.ts';
import type { CredentialsStore, Login } from './credentials.ts';
import { guardPacketSizes, type PacketSizeViolation } from './packet-size-guard.ts';
import { createKeyedRateLimiter, createLoginThrottle, TokenBucket } from './rate-limits.ts';
import type { SessionPersistence } from './session-persistence.ts';
import type { ClusterBackend } from './cluster.ts';

/**
 * The FlowPilot broker: Aedes with device authentication, the topic ACL and the delivery
 * contract of SPEC section 6 as hooks (STYLE habit 2), and the limits of SPEC section 8.
 *
 * Aedes sends a QoS 1 PUBACK only after `authorizePublish` calls back, and before it stores
 * or forwards anything. So the hook is where a reading becomes durable: it validates the
 * payload and commits the readings and the dead letters to the durable store, fsynced, and
 * only then lets Aedes acknowledge. A failed commit, or a full store, refuses the publish: the
 * meter is disconnected without a PUBACK and resends later ([MQTT-4.4.0-1]: a persistent
 * session resends unacknowledged QoS 1 messages).
 *
 * A client is an adversary: every hook is guarded (a throw becomes a refusal, never a crash),
 * every connection passes the connection limits before Aedes sees it, and every packet's size
 * is checked from its header before its body is buffered.
 */
export interface BrokerLimits {
  /** The largest packet after CONNECT (its remaining length, bytes). */
  maxPacketBytes: number;
  /** The largest first packet, the CONNECT, read before authentication. */
  maxConnectBytes: number;
  /** A connection must complete its CONNECT (and TLS handshake) within this. */
  connectTimeoutMs: number;
  maxConnections: number;
  /** New connections per second from one source address (bursts of 10× allowed). */
  connectionsPerSecPerAddress: number;
  /**
   * Publishes per second of one meter client (bursts of 10× allowed); services are exempt.
   * Beyond it the PUBACK waits: Aedes reads no more from that socket meanwhile, so a flood
   * slows to the rate (TCP backpressure) instead of filling memory.
   */
  publishesPerSec: number;
  /** Payload bytes per second of one meter client (bursts of 4 MiB allowed), enforced the same way. */
  publishBytesPerSec: number;
  /** Failed logins per username and per address (in 10 minutes) before a block. */
  loginMaxFailures: number;
  loginBlockMs: number;
}

export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  maxPacketBytes: 1024 * 1024,
  maxConnectBytes: 8 * 1024,
  connectTimeoutMs: 10_000,
  maxConnections: 10_000,
  connectionsPerSecPerAddress: 50,
  publishesPerSec: 50,
  publishBytesPerSec: 256 * 1024,
  loginMaxFailures: 5,
  loginBlockMs: 10 * 60_000,
};

export interface BrokerOptions {
  registry: MeterRegistry;
  credentials: CredentialsStore;
  store: DurableStore;
  log: Logger;
  /** Lab use only: a client without a login gets the rights of the meter whose id it uses. */
  allowAnonymous: boolean;
  maxPayloadBytes: number;
  retentionMs: number;
  clock: { now(): number };
  limits: BrokerLimits;
  /** Aedes persistence (openSessionPersistence); in memory when absent. */
  persistence?: SessionPersistence;
  /** Aedes's heartbeat; leftover wills of a dead broker are published after 4 of them. */
  heartbeatIntervalMs?: number;
  /**
   * A node of a cluster (cluster.ts, SPEC section 11): Aedes's id is the node id and its mq and
   * persistence are Redis's; `persistence` above is ignored.
   */
  cluster?: ClusterBackend;
}

export const DEFAULT_BROKER_OPTIONS = {
  allowAnonymous: false,
  maxPayloadBytes: 512 * 1024,
  retentionMs: 400 * 24 * 3600_000,
  clock: { now: () => Date.now() },
  limits: DEFAULT_BROKER_LIMITS,
} satisfies Partial<BrokerOptions>;

export interface TlsListenerOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** When set, clients must present a certificate from this CA; its CN can log a meter in. */
  ca?: string | Buffer;
}

export interface BrokerStats {
  messagesReceived: number;
  /** Readings and status messages committed to the durable store. */
  recordsAccepted: number;
  rejected: Record<string, number>;
  refusedStoreFull: number;
  refusedStoreError: number;
  connectedClients: number;
  /** Connections, logins and publishes refused by a limit of SPEC section 8, by limit. */
  refusedByLimit: Record<string, number>;
  /** Hook failures turned into refusals (each is logged). */
  hookErrors: number;
}

export interface FlowPilotBroker {
  readonly aedes: Aedes;
  /** The plain MQTT listener. */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** The `mqtts` listener (SPEC section 8). */
  listenTls(port: number, host: string, tls: TlsListenerOptions): Promise<AddressInfo>;
  stats(): BrokerStats;
  close(): Promise<void>;
}

type PublishToAuthorize = { topic: string; payload: Buffer | string; retain: boolean };

/** The prefix a rejected message is re-addressed to: no client may subscribe to it, so it is never forwarded. */
const REJECTED_TOPIC_PREFIX = '$flowpilot/rejected/';
const LOG_EVERY_MS = 60_000;

function authError(message: string, returnCode: 3 | 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function remoteAddressOf(client: Client | null): string {
  const conn = client?.conn as Partial<Socket> | undefined;
  return conn?.remoteAddress ?? 'unknown';
}

/** The CN of a client certificate the TLS listener verified against the site CA, if any. */
function certificateName(client: Client): string | null {
  const conn = client.conn as Partial<TLSSocket>;
  if (conn.authorized !== true || typeof conn.getPeerCertificate !== 'function') return null;
  const cn = conn.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : null;
}

export async function createBroker(options: Partial<BrokerOptions> & Pick<BrokerOptions, 'registry' | 'credentials' | 'store' | 'log'>): Promise<FlowPilotBroker> {
  const settings: BrokerOptions = { ...DEFAULT_BROKER_OPTIONS, ...options, limits: { ...DEFAULT_BROKER_LIMITS, ...options.limits } };
  const { registry, credentials, store, log, clock, limits } = settings;
  const logins = new WeakMap<Client, Login>();
  const willsAtConnect = new WeakMap<Client, { topic: string; payload: Buffer }>();
  const publishBuckets = new WeakMap<Client, { messages: TokenBucket; bytes: TokenBucket }>();
  const connectionRate = createKeyedRateLimiter({ ratePerSec: limits.connectionsPerSecPerAddress, burst: limits.connectionsPerSecPerAddress * 10, maxKeys: 10_000 });
  const loginThrottle = createLoginThrottle({ maxFailures: limits.loginMaxFailures, blockMs: limits.loginBlockMs });
  const stats: BrokerStats = {
    messagesReceived: 0,
    recordsAccepted: 0,
    rejected: {},
    refusedStoreFull: 0,
    refusedStoreError: 0,
    connectedClients: 0,
    refusedByLimit: {},
    hookErrors: 0,
  };
  let openConnections = 0;

  // One log line per kind (and key) per minute: a flood must not become a flood of log lines.
  const lastLoggedAt = new Map<string, number>();
  function logOnce(key: string, level: 'warn' | 'error', fields: object, message: string): void {
    const now = clock.now();
    if (now - (lastLoggedAt.get(key) ?? -Infinity) < LOG_EVERY_MS) return;
    if (lastLoggedAt.size > 1000) lastLoggedAt.clear();
    lastLoggedAt.set(key, now);
    log[level](fields, message);
  }
  function refuse(limit: string): void {
    stats.refusedByLimit[limit] = (stats.refusedByLimit[limit] ?? 0) + 1;
  }
  function hookFailed(hook: string, error: unknown): void {
    stats.hookErrors += 1;
    logOnce(`hook:${hook}`, 'error', { err: error }, `the ${hook} hook failed; the client was refused and the broker goes on`);
  }

  function countAdmission(accepted: number, deadLetters: readonly DeadLetterInput[]): void {
    stats.recordsAccepted += accepted;
    for (const letter of deadLetters) stats.rejected[letter.code] = (stats.rejected[letter.code] ?? 0) + 1;
  }

  if (settings.allowAnonymous) {
    log.warn('ANONYMOUS ACCESS IS ON: a client without a login may publish as the meter whose id it uses as client id. Use this only in a lab; unset FLOWPILOT_ALLOW_ANONYMOUS for a real pilot.');
  }

  /** Completes a login: the client id and the will must fit it. */
  function admitLogin(client: Client, login: Login, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    if (!isClientIdAllowed(login, client.id)) {
      log.warn({ clientId: client.id, login: login.id }, login.role === 'meter' ? 'refused a login: a meter must connect with its own id as client id' : `refused a login: a ${login.role} login connects as "${login.id}" or "${login.id}:<name>"`);
      return done(authError('client id does not match the login', 5), false);
    }
    const will = willsAtConnect.get(client);
    if (will && (!canLeaveWill(login, will.topic) || will.payload.byteLength > MAX_STATUS_PAYLOAD_BYTES)) {
      refuse('will');
      logOnce(`will:${login.id}`, 'warn', { clientId: client.id, topic: will.topic, bytes: will.payload.byteLength }, 'refused a connection whose last will is not its own status topic (or is over 4 KiB)');
      return done(authError('a last will may only be the client\'s own status', 5), false);
    }
    logins.set(client, login);
    done(null, true);
  }

  function loginWithPassword(client: Client, username: string, password: Buffer, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    const address = remoteAddressOf(client);
    const decision = loginThrottle.decide(username, address, clock.now());
    if (decision.kind === 'refuse') {
      refuse('login_blocked');
      if (decision.firstRefusal) {
        log.warn({ blocked: decision.key, until: new Date(decision.untilMs).toISOString() }, 'too many failed logins: refusing this username or address without checking passwords until the block ends');
      }
      return done(authError('too many failed logins', 5), false);
    }
    const check = () =>
      credentials.verify(username, password).then(
        (login) => {
          if (!login) {
            loginThrottle.failed(username, address, clock.now());
            refuse('login_failed');
            logOnce(`badlogin:${username}`, 'warn', { clientId: client.id, username, address }, 'refused a login: wrong username or password');
            return done(authError('bad username or password', 4), false);
          }
          loginThrottle.succeeded(username);
          admitLogin(client, login, done);
        },
        (error: unknown) => {
          logOnce('credentials', 'error', { err: error }, 'could not read the credentials store: check the file in the data dir');
          done(authError('credentials store unavailable', 3), false);
        },
      );
    if (decision.delayMs > 0) setTimeout(check, decision.delayMs).unref();
    else void check();
  }

  function loginWithCertificate(client: Client, name: string, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    const known = credentials.list().find((login) => login.id === name);
    const login: Login | null = known ?? (registry.has(name) ? { id: name, role: 'meter' } : null);
    if (!login) {
      logOnce(`cert:${name}`, 'warn', { clientId: client.id, cn: name }, 'refused a client certificate whose CN is neither a meter of the pilot nor a login');
      return done(authError('the certificate names no meter of this pilot', 5), false);
    }
    admitLogin(client, login, done);
  }

  /** A publish's verdict: admitted to the store (or dead-lettered), or refused without PUBACK. */
  function authorize(client: Client | null, packet: PublishToAuthorize, callback: (error?: Error | null) => void, throttled: boolean): void {
    const login = client ? logins.get(client) : undefined;
    const topic = parseMeterTopic(packet.topic);
    if (client === null) {
      // A will left by an earlier run of the broker, published with no client. Refusing it
      // would leave it in the session store to fail again at every interval: admit it like
      // any status (validated, dead-lettered if bad) or, when it is not a status, drop it
      // unforwarded so it is deleted.
      if (topic?.kind !== 'status') {
        logOnce('leftover-will', 'warn', { topic: packet.topic }, 'dropped a leftover last will that was not a meter status');
        packet.topic = REJECTED_TOPIC_PREFIX + packet.topic;
        packet.retain = false;
        return callback(null);
      }
    } else if (!login || !canPublish(login, packet.topic)) {
      logOnce(`acl:${client.id}`, 'warn', { clientId: client.id, topic: packet.topic }, 'refused a publish outside the client\'s topics');
      return callback(new Error(`not authorized to publish to ${packet.topic}`));
    }

    // Meters and gateways (per connection) are held to the publish rate; FlowPilot's own services are not.
    if (client && login && login.role !== 'service' && !throttled) {
      const payloadBytes = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.byteLength;
      const waitMs = publishWaitMs(client, payloadBytes);
      if (waitMs > 0) {
        refuse('publish_rate');
        logOnce(`rate:${client.id}`, 'warn', { clientId: client.id }, `a ${login.role} publishes faster than ${limits.publishesPerSec} messages or ${limits.publishBytesPerSec} bytes a second: its PUBACKs are slowed to that rate`);
        setTimeout(() => guardedAuthorize(client, packet, callback, true), waitMs).unref();
        return;
      }
    }

    stats.messagesReceived += 1;
    const refusal = topic ? store.refusal(topic.meterId) : store.isFull() ? 'store_full' : null;
    if (refusal === 'store_full') {
      stats.refusedStoreFull += 1;
      logOnce('store-full', 'warn', { depth: store.depth() }, 'the durable store is full: publishes are refused until InfluxDB catches up (check InfluxDB)');
      return callback(new Error('durable store full'));
    }
    if (refusal === 'meter_share') {
      refuse('store_meter_share');
      logOnce(`share:${topic?.meterId}`, 'warn', { meterId: topic?.meterId }, 'a meter holds its whole share of the durable store: its publishes are refused (the others are still accepted) until InfluxDB catches up');
      return callback(new Error('meter\'s share of the durable store is full'));
    }
    const { records, deadLetters } = admitPublish(
      { topic: packet.topic, payload: packet.payload, clientId: client?.id ?? null },
      { registry, nowMs: clock.now(), retentionMs: settings.retentionMs, maxPayloadBytes: settings.maxPayloadBytes },
    );
    countAdmission(records.length, deadLetters);
    if (records.length === 0) {
      // Accepted (PUBACK) and dead-lettered, but never forwarded to live subscribers nor
      // retained: Aedes forwards a copy of this packet, so it is re-addressed here, where
      // the original is still in hand (authorizeForward would see only the copy).
      packet.topic = REJECTED_TOPIC_PREFIX + packet.topic;
      packet.retain = false;
    }
    store.append(records, deadLetters).then(
      () => callback(null),
      (error: unknown) => {
        stats.refusedStoreError += 1;
        logOnce('store-error', 'error', { err: error }, 'could not commit to the durable store: check the data dir\'s disk');
        callback(error as Error);
      },
    );
  }

  function guardedAuthorize(client: Client | null, packet: PublishToAuthorize, callback: (error?: Error | null) => void, throttled = false): void {
    try {
      authorize(client, packet, callback, throttled);
    } catch (error) {
      hookFailed('authorizePublish', error);
      callback(new Error('internal error'));
    }
  }

  /** How long this publish must wait for the client's rate: 0 within it. */
  function publishWaitMs(client: Client, payloadBytes: number): number {
    const now = clock.now();
    let buckets = publishBuckets.get(client);
    if (!buckets) {
      buckets = {
        messages: new TokenBucket(limits.publishesPerSec, limits.publishesPerSec * 10, now),
        bytes: new TokenBucket(limits.publishBytesPerSec, Math.max(4 * 1024 * 1024, limits.maxPacketBytes), now),
      };
      publishBuckets.set(client, buckets);
    }
    return Math.max(buckets.messages.reserve(1, now), buckets.bytes.reserve(payloadBytes, now));
  }

  const aedes = await Aedes.createBroker({
    // Service clients are `{login}:{meterId}` (access-policy.ts), longer than MQTT 3.1.0's 23 characters.
    maxClientsIdLength: 128,
    connectTimeout: limits.connectTimeoutMs,
    ...(settings.cluster
      ? { id: settings.cluster.nodeId, mq: settings.cluster.mq, persistence: settings.cluster.persistence }
      : settings.persistence
        ? { persistence: settings.persistence }
        : {}),
    ...(settings.heartbeatIntervalMs ? { heartbeatInterval: settings.heartbeatIntervalMs } : {}),

    preConnect(client, packet, callback) {
      try {
        if (packet.will) willsAtConnect.set(client, { topic: packet.will.topic, payload: Buffer.from(packet.will.payload ?? '') });
        callback(null, true);
      } catch (error) {
        hookFailed('preConnect', error);
        callback(error as Error, false);
      }
    },

    authenticate(client, username, password, done) {
      try {
        const certified = certificateName(client);
        if (certified !== null && (username === undefined || username === '' || username === certified)) {
          return loginWithCertificate(client, certified, done);
        }
        if (username === undefined || username === '') {
          if (settings.allowAnonymous && isValidMeterId(client.id)) {
            return admitLogin(client, { id: client.id, role: 'meter' }, done);
          }
          logOnce('anonymous', 'warn', { clientId: client.id }, 'refused a client without a login: give the device credentials (flowpilot credentials add)');
          return done(authError('a login is required', 5), false);
        }
        loginWithPassword(client, username, password ?? Buffer.alloc(0), done);
      } catch (error) {
        hookFailed('authenticate', error);
        done(authError('internal error', 3), false);
      }
    },

    authorizePublish(client, packet, callback) {
      guardedAuthorize(client, packet, callback);
    },

    authorizeSubscribe(client, subscription, callback) {
      try {
        const login = logins.get(client);
        if (!login || !canSubscribe(login, subscription.topic)) {
          logOnce(`sub:${client.id}`, 'warn', { clientId: client.id, topic: subscription.topic }, 'refused a subscription outside the client\'s topics');
          // null grants nothing: SUBACK return code 0x80 [MQTT-3.9.3-2], the connection stays up.
          return callback(null, null);
        }
        callback(null, subscription);
      } catch (error) {
        hookFailed('authorizeSubscribe', error);
        callback(null, null);
      }
    },
  });

  // Aedes emits 'error' for failures with no client (a leftover will, the persistence);
  // unheard, an 'error' event ends the process.
  (aedes as unknown as EventEmitter).on('error', (error: Error) => logOnce('aedes', 'error', { err: error }, 'the broker reported an error and goes on'));
  aedes.on('clientError', (client, error) => log.debug({ clientId: client.id, err: error.message }, 'client error'));
  aedes.on('connectionError', (client, error) => log.debug({ clientId: client.id, err: error.message }, 'connection error'));
  aedes.on('client', () => (stats.connectedClients = aedes.connectedClients));
  aedes.on('clientDisconnect', () => (stats.connectedClients = aedes.connectedClients));
  const sessionPersistence = settings.cluster?.persistence ?? settings.persistence;
  if (settings.cluster) await publishOwnLeftoverWills(aedes, settings.cluster, guardedAuthorize, log);

  /** The connection limits, before any byte is read: false closes the socket at once. */
  function admitConnection(socket: Socket): boolean {
    if (openConnections >= limits.maxConnections) {
      refuse('max_connections');
      logOnce('max-connections', 'warn', { limit: limits.maxConnections }, 'refused a connection: the broker holds its maximum number of connections');
      socket.destroy();
      return false;
    }
    const address = socket.remoteAddress ?? 'unknown';
    if (!connectionRate.allow(address, clock.now())) {
      refuse('connection_rate');
      logOnce(`connrate:${address}`, 'warn', { address, perSec: limits.connectionsPerSecPerAddress }, 'refused connections from an address that opens them too fast');
      socket.destroy();
      return false;
    }
    openConnections += 1;
    socket.once('close', () => (openConnections -= 1));
    socket.on('error', () => {}); // a reset by the peer is the client's business, not the broker's
    return true;
  }

  function handle(socket: Socket): void {
    guardPacketSizes(socket, { maxFirstPacketBytes: limits.maxConnectBytes, maxPacketBytes: limits.maxPacketBytes }, (violation: PacketSizeViolation) => {
      refuse(violation.kind === 'too_large' ? 'packet_size' : 'malformed_packet');
      logOnce(`packet:${socket.remoteAddress}`, 'warn', { address: socket.remoteAddress, ...violation }, 'closed a connection whose packet is over the size limit (or malformed)');
    });
    aedes.handle(socket);
  }

  const servers: Server[] = [];
  function listenOn(server: Server, port: number, host: string): Promise<AddressInfo> {
    servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', (error) => log.error({ err: error }, 'the MQTT listener failed'));
        resolve(server.address() as AddressInfo);
      });
    });
  }

  return {
    aedes,
    listen(port, host) {
      const server = createServer((socket) => {
        if (admitConnection(socket)) handle(socket);
      });
      return listenOn(server, port, host);
    },
    listenTls(port, host, tls) {
      const server = createTlsServer({
        key: tls.key,
        cert: tls.cert,
        ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
        handshakeTimeout: limits.connectTimeoutMs,
      });
      // 'connection' is the raw TCP socket, before the handshake costs anything.
      server.on('connection', (socket: Socket) => void admitConnection(socket));
      server.on('secureConnection', (socket: TLSSocket) => handle(socket));
      server.on('tlsClientError', (error) => log.debug({ err: error.message }, 'TLS handshake failed'));
      return listenOn(server, port, host);
    },
    stats: () => ({ ...stats, rejected: { ...stats.rejected }, refusedByLimit: { ...stats.refusedByLimit }, connectedClients: aedes.connectedClients }),
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
      await sessionPersistence?.destroy();
      await settings.cluster?.close();
    },
  };
}

interface LeftoverWill extends PublishToAuthorize {
  clientId: string;
  brokerId: string;
}

/**
 * The wills this node left in Redis before it restarted. Aedes publishes the wills of a broker
 * id only when that id stops sending heartbeats; a node restarting under the same id
 * (FLOWPILOT_NODE_ID) is alive again at once, so nobody would ever publish the wills of the
 * clients its earlier run lost. They are published here, before the node listens (so no
 * client of this run has a will yet), through the same hook as any will (SPEC section 6).
 */
async function publishOwnLeftoverWills(
  aedes: Aedes,
  { nodeId, persistence: shared }: ClusterBackend,
  authorize: (client: Client | null, packet: PublishToAuthorize, callback: (error?: Error | null) => void) => void,
  log: Logger,
): Promise<void> {
  const persistence = shared as unknown as {
    streamWill(brokers: Record<string, number>): AsyncIterable<LeftoverWill>;
    delWill(client: { id: string; brokerId: string }): Promise<unknown>;
  };
  let published = 0;
  try {
    for await (const will of persistence.streamWill({})) {
      if (will.brokerId !== nodeId) continue;
      await new Promise<void>((resolve, reject) => authorize(null, will, (error) => (error ? reject(error) : resolve())));
      await new Promise<void>((resolve, reject) => aedes.publish(will as unknown as Parameters<Aedes['publish']>[0], (error?: Error) => (error ? reject(error) : resolve())));
      await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
      published += 1;
    }
  } catch (error) {
    log.error({ err: error }, 'could not publish the last wills this node left before its restart; they stay in Redis and are tried again at the next start');
    return;
  }
  if (published > 0) log.info({ wills: published }, 'published the last wills of the clients this node lost when it stopped');
}
