declare module 'aedes-persistence-redis/asyncPersistence.js' {
  import type { Redis } from 'ioredis';
  /** The async class: the package's main export wraps it in the callback API that Aedes 1.x no longer takes. */
  export default class AsyncRedisPersistence {
    constructor(options: { conn: Redis; maxSessionDelivery?: number });
    destroy(): Promise<void>;
    createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown>;
    createRetainedStream(pattern: string): AsyncIterable<unknown>;
    outgoingStream(client: { id: string }): AsyncIterable<unknown>;
  }
}
