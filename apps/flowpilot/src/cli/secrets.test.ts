import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readSecretFile, readSecretLine } from './secrets.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowpilot-secrets-'));
  dirs.push(dir);
  const path = join(dir, 'secret');
  writeFileSync(path, text);
  return path;
}

describe('readSecretFile', () => {
  it.each([
    ['s3cret\n', 's3cret'],
    ['s3cret', 's3cret'],
    ['s3cret\r\n', 's3cret'],
    ['with spaces  \nsecond line\n', 'with spaces  '],
  ])('takes the first line of %j', async (text, secret) => {
    expect(await readSecretFile('--password-file', file(text))).toBe(secret);
  });

  it('names the flag and the file it cannot read, or whose first line is empty', async () => {
    await expect(readSecretFile('--password-file', '/nonexistent/secret')).rejects.toMatchObject({ code: 'ERR_USAGE', detail: '--password-file /nonexistent/secret cannot be read (ENOENT)' });
    await expect(readSecretFile('--password-file', file('\nsecond'))).rejects.toMatchObject({ code: 'ERR_USAGE', detail: expect.stringContaining('its first line is empty') });
  });
});

describe('readSecretLine', () => {
  it('takes the first line piped in, in one chunk or several', async () => {
    expect(await readSecretLine('--password-stdin', Readable.from(['s3cret\nignored\n']))).toBe('s3cret');
    expect(await readSecretLine('--password-stdin', Readable.from(['s3', 'cr', 'et']))).toBe('s3cret');
  });

  it('refuses nothing, an empty line, and a terminal (it would echo the secret)', async () => {
    await expect(readSecretLine('--password-stdin', Readable.from([]))).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(readSecretLine('--password-stdin', Readable.from(['\n']))).rejects.toMatchObject({ code: 'ERR_USAGE' });
    const tty = Object.assign(Readable.from(['s3cret\n']), { isTTY: true });
    await expect(readSecretLine('--password-stdin', tty)).rejects.toMatchObject({ code: 'ERR_USAGE', detail: expect.stringContaining('stdin is a terminal') });
  });
});
