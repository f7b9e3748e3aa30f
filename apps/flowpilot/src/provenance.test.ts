import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { softwareCommit, SOFTWARE_ROOT } from './provenance.ts';
import { loadPilotFile } from './run-services.ts';

// What the PDF report's traceability page states (issue 11): the software's commit and the
// SHA-256 of the pilot file's bytes, found by the command that reads them.

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-provenance-'));
  dirs.push(dir);
  return dir;
};

function hasGit(): boolean {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('softwareCommit', () => {
  it('takes FLOWPILOT_COMMIT first (a build without .git passes it in)', () => {
    expect(softwareCommit({ FLOWPILOT_COMMIT: ' 0123456789abcdef0123456789abcdef01234567\n' }, tempDir())).toBe('0123456789abcdef0123456789abcdef01234567');
    expect(softwareCommit({ FLOWPILOT_COMMIT: 'v0.1.0-3-g0123abc' }, tempDir())).toBe('v0.1.0-3-g0123abc');
  });

  it('says unknown without FLOWPILOT_COMMIT and without a .git, and ignores a value no commit looks like', () => {
    expect(softwareCommit({}, tempDir())).toBe('unknown');
    expect(softwareCommit({ FLOWPILOT_COMMIT: 'abc\u001b[2J' }, tempDir())).toBe('unknown');
    expect(softwareCommit({ FLOWPILOT_COMMIT: '' }, tempDir())).toBe('unknown');
  });

  it.runIf(hasGit())('reads `git rev-parse HEAD` where a .git exists', () => {
    const root = tempDir();
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', '-c', 'commit.gpgsign=false', ...args], { cwd: root, encoding: 'utf8' }).trim();
    git('init', '-q');
    writeFileSync(join(root, 'a.txt'), 'a');
    git('add', 'a.txt');
    git('commit', '-q', '-m', 'a');
    expect(softwareCommit({}, root)).toBe(git('rev-parse', 'HEAD'));
    // A .git that git cannot read is no commit.
    const broken = tempDir();
    mkdirSync(join(broken, '.git'));
    expect(softwareCommit({}, broken)).toBe('unknown');
  });

  it('looks for FlowPilot\'s own root, not the working directory', () => {
    expect(readFileSync(join(SOFTWARE_ROOT, 'package.json'), 'utf8')).toContain('"name": "flowpilot"');
  });
});

describe('loadPilotFile', () => {
  it('gives the SHA-256 of the bytes it parsed', () => {
    const file = join(tempDir(), 'pilot.yaml');
    const text = readFileSync(join(SOFTWARE_ROOT, 'examples', 'pilot.yaml'));
    writeFileSync(file, text);
    const { pilot, sha256 } = loadPilotFile(file);
    expect(sha256).toBe(createHash('sha256').update(text).digest('hex'));
    expect(pilot.meters.length).toBeGreaterThan(0);
    // One byte more (a trailing newline), another hash.
    writeFileSync(file, Buffer.concat([text, Buffer.from('\n')]));
    expect(loadPilotFile(file).sha256).not.toBe(sha256);
  });
});
