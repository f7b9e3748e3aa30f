import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { FlowPilotError } from '@flowpilot/schema';
import { API_ROLES, isApiRole, openApiTokenStore, type ApiRole } from './api-tokens.ts';

export const TOKENS_USAGE = `usage: flowpilot tokens add <name> --role ${API_ROLES.join('|')} | tokens list [--json] | tokens revoke <name>`;

function usage(problem?: string): FlowPilotError {
  return new FlowPilotError('ERR_USAGE', problem ? `${problem}; ${TOKENS_USAGE}` : TOKENS_USAGE);
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage((error as Error).message.replace(/\.$/, ''));
  }
}

export interface TokensCommandIo {
  /** The token file: `<dataDir>/api-tokens.json`. */
  storePath: string;
  /** Gets each line of output. */
  print: (line: string) => void;
}

/** `flowpilot tokens add <name> --role R` (SPEC section 8): the token, printed once. */
export function tokensAdd(name: string, role: ApiRole, { storePath, print }: TokensCommandIo): void {
  const store = openApiTokenStore(storePath);
  const first = !store.hasTokens();
  const token = store.add(name, role);
  print(`Created ${role} token "${name}". The token, shown only this once:`);
  print('');
  print(`  ${token}`);
  print('');
  print('Send it as "Authorization: Bearer <token>", or paste it into the dashboard\'s sign-in page.');
  if (first) print('This is the first token: from now on every API client needs one, the dashboard on this machine included.');
}

/** `flowpilot tokens list [--json]`: a table, or one JSON document. */
export function tokensList(options: { json?: boolean }, { storePath, print }: TokensCommandIo): void {
  const tokens = openApiTokenStore(storePath).list();
  if (options.json) {
    print(JSON.stringify(tokens, null, 2));
    return;
  }
  if (tokens.length === 0) {
    print('No API tokens: the API serves clients on this machine only (loopback).');
    return;
  }
  const width = Math.max(4, ...tokens.map((t) => t.name.length));
  print(`${'NAME'.padEnd(width)}  ${'ROLE'.padEnd(9)}  CREATED`);
  for (const t of tokens) print(`${t.name.padEnd(width)}  ${t.role.padEnd(9)}  ${t.createdAt}`);
}

/** `flowpilot tokens revoke <name>`; a name that is not there is ERR_CONFIG. */
export function tokensRevoke(name: string, { storePath, print }: TokensCommandIo): void {
  const store = openApiTokenStore(storePath);
  if (!store.revoke(name)) throw new FlowPilotError('ERR_CONFIG', `No token named "${name}"; flowpilot tokens list shows them`);
  print(`Revoked token "${name}": the API refuses it from its next request.`);
  if (!store.hasTokens()) print('No tokens remain: the API serves clients on this machine only (loopback) again.');
}

/**
 * `tokens add|list|revoke` from an argument list, over the token file at `storePath`; `print`
 * gets each line of output. The flowpilot command line parses with commander (apps/flowpilot
 * src/cli/program.ts) and calls the functions above; this entry stays for scripts and tests.
 * Misuse throws FlowPilotError('ERR_USAGE') with the usage.
 */
export function runTokensCommand(args: readonly string[], storePath: string, print: (line: string) => void): void {
  const io = { storePath, print };
  const [action, ...rest] = args;
  if (action === 'add') {
    const { values, positionals } = parse(rest, { role: { type: 'string' } });
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw usage('tokens add takes one name');
    if (values.role === undefined) throw usage(`tokens add ${name} needs --role (${API_ROLES.join(', ')})`);
    if (!isApiRole(values.role)) throw usage(`--role ${String(values.role)}: expected ${API_ROLES.join(', ')}`);
    tokensAdd(name, values.role, io);
    return;
  }
  if (action === 'list') {
    const { values, positionals } = parse(rest, { json: { type: 'boolean', default: false } });
    if (positionals.length > 0) throw usage('tokens list takes no names');
    tokensList({ json: values.json === true }, io);
    return;
  }
  if (action === 'revoke') {
    const { positionals } = parse(rest, {});
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw usage('tokens revoke takes one name');
    tokensRevoke(name, io);
    return;
  }
  throw usage(action === undefined ? undefined : `unknown action "${action}"`);
}
