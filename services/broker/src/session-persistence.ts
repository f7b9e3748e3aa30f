import { ClassicLevel } from 'classic-level';
// The async class itself: the package's main export wraps it in the callback API that Aedes 1.x no longer takes.
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js';
import { ensurePrivateDir } from '@flowpilot/store';

/**
 * Aedes persistence on disk (LevelDB through classic-level): sessions, subscriptions, QoS 1
 * messages queued for offline subscribers, retained status and wills survive a broker restart.
 * The readings themselves never depend on it: they are in the durable store before the PUBACK.
 */
export interface SessionPersistence {
  destroy(): Promise<void>;
}

export function openSessionPersistence(path: string): SessionPersistence {
  // The folder is LevelDB's alone (sessions name every client and hold queued messages): 0700,
  // an existing one from an earlier version included (SPEC section 8).
  ensurePrivateDir(path, { tightenExisting: true });
  return new AsyncLevelPersistence(new ClassicLevel(path)) as SessionPersistence;
}
