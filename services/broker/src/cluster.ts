import type { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js';
import { Redis, type RedisOptions } from 'ioredis';
import MQEmitterRedis from 'mqemitter-redis';
import type { SessionPersistence } from './session-persistence.ts';

/**
 * A broker cluster (SPEC section 11): every node runs Aedes over one Redis, which holds the
 * sessions, subscriptions, retained status and wills (aedes-persistence-redis) and forwards
 * every publish to every node (mqemitter-redis). The readings do not go through Redis for
 * durability: each node still commits them to its own durable store before the PUBACK
 * (SPEC section 6), so Redis may lose everything without losing an accepted reading.
 */

/** A node id: a Redis key part and an Aedes broker id, so never a ':' (aedes-persistence-redis splits will keys on it). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export interface ClusterOptions {
  /** `redis://host:port[/db]` (or `rediss://`). */
  redisUrl: string;
  /** This node's name: the Aedes broker id, the key of its wills in Redis, the `node` label of its metrics. */
  nodeId: string;
  /**
   * A Redis connection failed (ioredis reconnects by itself). Told, never thrown: an unheard
   * 'error' of mqemitter-redis would end the process at the first Redis restart, and the node
   * must go on accepting readings into its own store meanwhile (SPEC section 6).
   */
  onRedisError?: (error: Error) => void;
}

export interface ClusterBackend {
  readonly nodeId: string;
  /** Aedes's `mq`: forwards every publish to the subscribers of every node. */
  readonly mq: unknown;
  /** Aedes's `persistence`, shared by every node. */
  readonly persistence: SessionPersistence;
  /** Redis reachability for /readyz, now: the state of a connection of its own, which PINGs Redis every few seconds. */
  readiness(): { ok: boolean; reason?: string };
  /** Ends the readiness connection (Aedes ends the mq's, the broker the persistence's). */
  close(): Promise<void>;
}

/**
 * ioredis 5.11 sends CLIENT SETINFO after each (re)connect; on a connection in subscriber mode
 * Redis refuses it and ioredis throws "Connection in subscriber mode" (ioredis #2037), which
 * ends the process at the first Redis restart. mqemitter-redis's subscriber needs it off; the
 * other connections get the same options so they behave alike.
 */
export const CLUSTER_REDIS_OPTIONS: RedisOptions = {
  disableClientInfo: true,
  // Commands wait for a reconnect (the default), but a PING for /readyz must not hang.
  maxRetriesPerRequest: null,
};

/**
 * aedes-persistence-redis 12 returns its retained messages and outgoing queue as async
 * generators; Aedes 1.2 `.pipe()`s the retained ones (lib/handlers/subscribe.js), which a
 * generator has not ("stream.pipe is not a function" at the first SUBSCRIBE). Streams, as
 * aedes-persistence-level returns them.
 */
class StreamingRedisPersistence extends AsyncRedisPersistence {
  override createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(super.createRetainedStreamCombi(patterns));
  }
  override createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }
  override outgoingStream(client: { id: string }): Readable {
    return Readable.from(super.outgoingStream(client));
  }
}

const PING_EVERY_MS = 5000;
const PING_TIMEOUT_MS = 2000;

export function openRedis(redisUrl: string, extra: RedisOptions = {}): Redis {
  return new Redis(redisUrl, { ...CLUSTER_REDIS_OPTIONS, ...extra });
}

export function openClusterBackend(options: ClusterOptions): ClusterBackend {
  if (!NODE_ID_PATTERN.test(options.nodeId)) throw new Error(`invalid node id "${options.nodeId}": 1 to 64 letters, digits, '_', '.' or '-'`);
  // mqemitter-redis ignores its Redis options when given a connection string, so it gets its
  // two connections (one subscribes, one publishes) made here, with the options above.
  const onRedisError = options.onRedisError ?? (() => {});
  const subConn = openRedis(options.redisUrl);
  const pubConn = openRedis(options.redisUrl);
  const persistenceConn = openRedis(options.redisUrl);
  const mq = MQEmitterRedis({ subConn, pubConn });
  (mq as unknown as { state: EventEmitter }).state.on('error', onRedisError);
  persistenceConn.on('error', onRedisError);
  const persistence = new StreamingRedisPersistence({ conn: persistenceConn }) as SessionPersistence;
  // A connection of its own for /readyz: ioredis knows at once when it drops, and the PING
  // every few seconds finds a Redis that hangs without closing the connection.
  const probe = openRedis(options.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  let pingFailed = false;
  probe.on('error', () => {}); // its state is what readiness() reports; an unheard 'error' would end the process
  const pinger = setInterval(() => {
    if (probe.status !== 'ready') return;
    const timeout = setTimeout(() => (pingFailed = true), PING_TIMEOUT_MS);
    probe.ping().then(
      () => ((pingFailed = false), clearTimeout(timeout)),
      () => ((pingFailed = true), clearTimeout(timeout)),
    );
  }, PING_EVERY_MS);
  pinger.unref();
  return {
    nodeId: options.nodeId,
    mq,
    persistence,
    readiness() {
      if (probe.status === 'ready' && !pingFailed) return { ok: true };
      // /readyz may be public: the reason names no address (the log of ioredis's reconnects has it).
      return { ok: false, reason: `Redis (FLOWPILOT_CLUSTER_REDIS_URL) does not answer (connection ${pingFailed ? 'ready, PING failed' : probe.status}): this node cannot share sessions and forwarding with the others` };
    },
    async close() {
      clearInterval(pinger);
      probe.disconnect();
    },
  };
}

/** The URL without its password, for logs. */
export function redactRedisUrl(redisUrl: string): string {
  try {
    const url = new URL(redisUrl);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
}
