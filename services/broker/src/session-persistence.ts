import { ClassicLevel } from 'classic-level';
// The async class itself: the package's main export wraps it in the callback API that Aedes 1.x no longer takes.
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js';

/**
 * Aedes persistence on disk (LevelDB through classic-level): sessions, subscriptions, QoS 1
 * messages queued for offline subscribers, retained status and wills survive a broker restart.
 * The readings themselves never depend on it: they are in the durable store before the PUBACK.
 */
export interface SessionPersistence {
  destroy(): Promise<void>;
}

export function openSessionPersistence(path: string): SessionPersistence {
  return new AsyncLevelPersistence(new ClassicLevel(path)) as SessionPersistence;
}
