import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensurePrivateDir, restrictFileMode, writeFileAtomic } from './private-files.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fp-private-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const modeOf = (path: string): number => statSync(path).mode & 0o777;

describe('ensurePrivateDir', () => {
  it('creates missing directories 0700, each of them, whatever the umask', () => {
    const root = tempDir();
    const previous = process.umask(0o002);
    try {
      ensurePrivateDir(join(root, 'a', 'b', 'c'));
    } finally {
      process.umask(previous);
    }
    for (const dir of ['a', 'a/b', 'a/b/c']) expect(modeOf(join(root, dir)), dir).toBe(0o700);
  });

  it('leaves an existing directory as it is unless told it is FlowPilot\'s alone', () => {
    const root = tempDir();
    const shared = join(root, 'shared');
    mkdirSync(shared, { mode: 0o755 });
    chmodSync(shared, 0o755);
    ensurePrivateDir(shared);
    expect(modeOf(shared)).toBe(0o755);
    ensurePrivateDir(shared, { tightenExisting: true });
    expect(modeOf(shared)).toBe(0o700);
  });
});

describe('writeFileAtomic', () => {
  it('writes the file 0600 in a directory it creates 0700, and leaves no temporary file', () => {
    const root = tempDir();
    const path = join(root, 'data', 'secrets.json');
    writeFileAtomic(path, '{"a":"é"}\n');
    expect(readFileSync(path, 'utf8')).toBe('{"a":"é"}\n');
    expect(modeOf(path)).toBe(0o600);
    expect(modeOf(join(root, 'data'))).toBe(0o700);
    expect(readdirSync(join(root, 'data'))).toEqual(['secrets.json']);
  });

  it('replaces a file an earlier version left 0644 with a 0600 one', () => {
    const root = tempDir();
    const path = join(root, 'secrets.json');
    writeFileSync(path, 'old', { mode: 0o644 });
    chmodSync(path, 0o644);
    writeFileAtomic(path, 'new');
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(modeOf(path)).toBe(0o600);
  });

  it('removes its temporary file when the rename fails and keeps what was there', () => {
    const root = tempDir();
    const path = join(root, 'taken');
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    expect(() => writeFileAtomic(path, 'new')).toThrow();
    expect(readdirSync(root)).toEqual(['taken']);
    expect(readdirSync(path)).toEqual(['inside']);
  });
});

describe('restrictFileMode', () => {
  it('chmods a file that exists and ignores one that does not', () => {
    const root = tempDir();
    const path = join(root, 'f');
    writeFileSync(path, '', { mode: 0o644 });
    restrictFileMode(path);
    expect(modeOf(path)).toBe(0o600);
    expect(() => restrictFileMode(join(root, 'missing'))).not.toThrow();
  });
});
