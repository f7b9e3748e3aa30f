import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/*
 * Files that hold secrets or every meter's readings (the durable store, the credentials, the
 * services' own logins) are readable by their owner only (SPEC section 8): directories 0700,
 * files 0600. The modes are set explicitly after creating, since the umask may only remove bits
 * and a file left by an earlier version keeps the mode it was created with.
 */

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

export interface PrivateDirOptions {
  /**
   * Also chmod 0700 a directory that exists already. Only for a directory that belongs to
   * FlowPilot alone (a LevelDB folder, influxd's data): a directory the operator named may be
   * shared (a home, /var/lib, /tmp), and is left as it is; the files in it are 0600 anyway.
   */
  tightenExisting?: boolean;
}

/** Creates `path` and any missing parents with mode 0700 (whatever the umask). */
export function ensurePrivateDir(path: string, options: PrivateDirOptions = {}): void {
  const target = resolve(path);
  const first = mkdirSync(target, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first !== undefined) {
    // mkdir returns the first directory it created: chmod it and every one below it.
    const top = resolve(first);
    for (let dir = target; ; dir = dirname(dir)) {
      chmodSync(dir, PRIVATE_DIR_MODE);
      if (dir === top || dir === dirname(dir)) break;
    }
  } else if (options.tightenExisting && (statSync(target).mode & 0o077) !== 0) {
    chmodSync(target, PRIVATE_DIR_MODE);
  }
}

/** chmod `path` to `mode` if it exists (a SQLite -wal or -shm file may not yet). */
export function restrictFileMode(path: string, mode: number = PRIVATE_FILE_MODE): void {
  try {
    chmodSync(path, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Replaces `path` with `text` atomically: a reader sees the old file or the new one, never half
 * of one, and a crash leaves the old file. The temporary file has an unpredictable name in the
 * same directory and is created with O_EXCL ('wx'), so nothing placed there in advance (a
 * symlink, a file someone else can read) is ever written through; it is fsynced before the
 * rename and the directory after it.
 */
export function writeFileAtomic(path: string, text: string, mode: number = PRIVATE_FILE_MODE): void {
  const dir = dirname(resolve(path));
  ensurePrivateDir(dir);
  const temp = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', mode);
  try {
    try {
      chmodSync(temp, mode);
      const bytes = Buffer.from(text, 'utf8');
      for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  syncDir(dir);
}

/** fsync a directory so a rename in it survives a crash; not every platform allows it (Windows). */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: the file itself is fsynced already.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
