import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { FlowPilotError } from '@flowpilot/schema';

/**
 * Secrets given to a command (SPEC section 8): read from a file or from stdin, never taken from
 * the command line itself, where `ps`, the shell's history and process accounting would keep them.
 * A secret is one line: what comes after the first line break is not part of it.
 */

function firstLine(text: string): string {
  return (text.split(/\r?\n/, 1)[0] ?? '').replace(/\r$/, '');
}

/** The first line of `file`; ERR_USAGE naming `flag` when it cannot be read or the line is empty. */
export async function readSecretFile(flag: string, file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FlowPilotError('ERR_USAGE', `${flag} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  }
  const secret = firstLine(text);
  if (secret === '') throw new FlowPilotError('ERR_USAGE', `${flag} ${file}: its first line is empty`);
  return secret;
}

/**
 * The first line piped into `input` (as `docker login --password-stdin` reads it). A terminal is
 * refused: what is typed there would be echoed on the screen.
 */
export async function readSecretLine(flag: string, input: NodeJS.ReadableStream & { isTTY?: boolean }): Promise<string> {
  if (input.isTTY) {
    throw new FlowPilotError('ERR_USAGE', `${flag} reads a secret piped in (e.g. printf '%s\\n' "$SECRET" | flowpilot …), and stdin is a terminal`);
  }
  const lines = createInterface({ input, crlfDelay: Infinity, terminal: false });
  let secret = '';
  try {
    for await (const line of lines) {
      secret = line;
      break;
    }
  } finally {
    lines.close();
  }
  if (secret === '') throw new FlowPilotError('ERR_USAGE', `${flag}: stdin gave an empty line or nothing`);
  return secret;
}
