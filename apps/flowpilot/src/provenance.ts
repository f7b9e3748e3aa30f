import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** FlowPilot's own root (the repository, or the unpacked install): three levels above apps/flowpilot/src. */
export const SOFTWARE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A commit as git names it: 40 hex digits (SHA-1) or 64 (SHA-256 repositories). */
const COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/**
 * The git commit of the running software, for the PDF report's traceability page (issue 11):
 * FLOWPILOT_COMMIT when set (a build without a .git, such as a container image, passes it in);
 * else `git rev-parse HEAD` in FlowPilot's root when that holds a .git; else `unknown`. Never
 * throws: a report without its commit still says so. `env` is main.ts's process.env (the only
 * reader of the environment, STYLE habit 1).
 */
export function softwareCommit(env: NodeJS.ProcessEnv, root: string = SOFTWARE_ROOT): string {
  const given = env.FLOWPILOT_COMMIT?.trim();
  // Printed in a signed report: a commit name, a tag or a describe string, never control characters or a page of text.
  if (given && /^[\w.+/-]{1,100}$/.test(given)) return given;
  if (!existsSync(join(root, '.git'))) return 'unknown';
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim();
    return COMMIT.test(head) ? head : 'unknown';
  } catch {
    // No git on this host, or a repository git refuses to read (another owner): unknown.
    return 'unknown';
  }
}
