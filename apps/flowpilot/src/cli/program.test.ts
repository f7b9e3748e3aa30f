import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { FlowPilotError } from '@flowpilot/schema';
import { createProgram, type CommandActions } from './program.ts';
import { runCommandLine } from './run.ts';

/**
 * The command line parsed in process, each action recorded instead of run: what every command
 * accepts, its help, and the one line and exit code of each mistake (Issue 14).
 */

interface Outcome {
  code: number;
  stdout: string;
  stderr: string[];
  calls: { action: keyof CommandActions; args: unknown[] }[];
}

function recordingActions(calls: Outcome['calls'], fail?: Partial<Record<keyof CommandActions, Error>>): CommandActions {
  return new Proxy({} as CommandActions, {
    get: (_target, action: keyof CommandActions) => (...args: unknown[]) => {
      calls.push({ action, args });
      const error = fail?.[action];
      if (error) throw error;
    },
  });
}

function program(actions: CommandActions): Command {
  return createProgram(actions, { version: '9.8.7', reportLanguages: () => ['en', 'ru'] });
}

async function flowpilot(argv: string[], fail?: Partial<Record<keyof CommandActions, Error>>): Promise<Outcome> {
  const outcome: Outcome = { code: -1, stdout: '', stderr: [], calls: [] };
  outcome.code = await runCommandLine(program(recordingActions(outcome.calls, fail)), argv, {
    stdout: (text) => (outcome.stdout += text),
    stderr: (line) => outcome.stderr.push(line),
  });
  return outcome;
}

/** Every command and subcommand as the words that name it, e.g. ['credentials', 'add']. */
function commandPaths(command: Command, prefix: string[] = []): { path: string[]; command: Command }[] {
  return command.commands.flatMap((sub) => [{ path: [...prefix, sub.name()], command: sub }, ...commandPaths(sub, [...prefix, sub.name()])]);
}

const ALL = commandPaths(program(recordingActions([])));

describe('the command tree', () => {
  it('has every command of SPEC section 7 and Issue 14', () => {
    expect(ALL.map(({ path }) => path.join(' '))).toEqual([
      'start', 'broker', 'ingest', 'api', 'simulate',
      'credentials', 'credentials add', 'credentials list',
      'deadletters', 'deadletters list', 'deadletters replay',
      'report',
      'tokens', 'tokens add', 'tokens list', 'tokens revoke',
      'certs', 'certs init', 'certs meter', 'certs meters', 'certs list',
      'check',
      'gateway', 'gateway run', 'gateway probe', 'gateway check',
      'alerts', 'alerts prometheus-rules',
    ]);
  });

  it.each(ALL.map(({ path, command }) => [path.join(' '), path, command] as const))('%s --help exits 0 and names its options and an example', async (_name, path, command) => {
    const result = await flowpilot([...path, '--help']);
    expect(result).toMatchObject({ code: 0, stderr: [], calls: [] });
    expect(result.stdout).toContain(`Usage: flowpilot ${path.join(' ')}`);
    for (const option of command.options) expect(result.stdout).toContain(option.long);
    for (const sub of command.commands) expect(result.stdout).toContain(sub.name());
    expect(result.stdout).toMatch(/\nExamples?:\n {2}\$ [^\n]*flowpilot /);
    // `flowpilot help <command>` prints the same.
    expect((await flowpilot(['help', ...path])).stdout).toBe(result.stdout);
  });

  it('prints the overview for no command, `help` and --help, and the version for --version', async () => {
    const overview = await flowpilot([]);
    expect(overview).toMatchObject({ code: 0, stderr: [] });
    expect(overview.stdout).toContain('Usage: flowpilot [options] [command]');
    expect(overview.stdout).toContain('FLOWPILOT_DATA_DIR');
    expect((await flowpilot(['help'])).stdout).toBe(overview.stdout);
    expect((await flowpilot(['--help'])).stdout).toBe(overview.stdout);
    expect(await flowpilot(['--version'])).toMatchObject({ code: 0, stdout: '9.8.7\n', stderr: [] });
    expect(await flowpilot(['-V'])).toMatchObject({ code: 0, stdout: '9.8.7\n' });
  });
});

describe('what each command receives', () => {
  it.each([
    [['start'], 'start', [{ simulator: true, backfill: true }]],
    [['start', '--no-simulator', '--no-backfill', '--play', 'silent:M', '--play', 'leak:M=4'], 'start', [{ simulator: false, backfill: false, play: ['silent:M', 'leak:M=4'] }]],
    [['broker', '--no-ingest'], 'broker', [{ ingest: false }]],
    [['simulate'], 'simulate', [{ speed: 1, seed: 1, backfillMs: 0 }]],
    [['simulate', '--speed', '60', '--seed', '7', '--backfill', '14d'], 'simulate', [{ speed: 60, seed: 7, backfillMs: 14 * 86_400_000 }]],
    [['credentials', 'add', 'M1'], 'credentialsAdd', ['M1', { role: 'meter' }]],
    [['credentials', 'add', 'gw', '--role', 'gateway', '--meters', 'A,B', '--password-stdin'], 'credentialsAdd', ['gw', { role: 'gateway', meters: 'A,B', passwordStdin: true }]],
    [['credentials', 'list', '--json'], 'credentialsList', [{ json: true }]],
    [['deadletters', 'list'], 'deadLettersList', [{ limit: 50 }]],
    [['deadletters', 'replay', '--meter', 'M', '--limit', '10'], 'deadLettersReplay', [{ meter: 'M', limit: 10 }]],
    [['report', '--from', '2026-11-01', '--to', '2026-11-02', '--out', 'r.xlsx', '--format', 'xlsx'], 'report', [{ from: '2026-11-01', to: '2026-11-02', out: 'r.xlsx', format: 'xlsx', lang: 'en' }]],
    [['tokens', 'add', 'vera', '--role', 'viewer'], 'tokensAdd', ['vera', { role: 'viewer' }]],
    [['tokens', 'list'], 'tokensList', [{}]],
    [['tokens', 'revoke', 'vera'], 'tokensRevoke', ['vera']],
    [['certs', 'init', '--host', 'a.example', '--host', '192.0.2.1', '--days', '90'], 'certsInit', [{ host: ['a.example', '192.0.2.1'], days: '90' }]],
    [['certs', 'meter', 'M1', 'M2', '--renew'], 'certsMeter', [['M1', 'M2'], { renew: true }]],
    [['certs', 'meters', '--all'], 'certsMeters', [{ all: true }]],
    [['certs', 'list', '--json', '--dir', '/srv/tls'], 'certsList', [{ json: true, dir: '/srv/tls' }]],
    [['check'], 'check', [undefined]],
    [['check', 'pilot.yaml'], 'check', ['pilot.yaml']],
    [['gateway'], 'gatewayRun', [{}]],
    [['gateway', '--config', 'g.yaml'], 'gatewayRun', [{ config: 'g.yaml' }]],
    [['gateway', 'run', '--config', 'g.yaml'], 'gatewayRun', [{ config: 'g.yaml' }]],
    // The option after the subcommand is the subcommand's (positional options).
    [['gateway', 'probe', '--config', 'g.yaml', '--meter', 'M'], 'gatewayProbe', [{ config: 'g.yaml', meter: 'M' }]],
    [['gateway', 'check', 'g.yaml'], 'gatewayCheck', ['g.yaml', {}]],
    [['alerts', 'prometheus-rules', '--out', 'r.yml'], 'alertsPrometheusRules', [{ out: 'r.yml' }]],
  ])('%j', async (argv, action, args) => {
    const result = await flowpilot(argv);
    expect(result).toMatchObject({ code: 0, stderr: [] });
    expect(result.calls).toHaveLength(1);
    expect(result.calls[0]!.action).toBe(action);
    // Commander passes the options object and the command after the arguments; the action gets the arguments and the options.
    expect(result.calls[0]!.args.slice(0, args.length)).toEqual(args);
  });
});

describe('a mistake on the command line: one line naming it and the help to read, exit code 2', () => {
  it.each([
    [['frobnicate'], "unknown command 'frobnicate'", 'flowpilot --help'],
    [['start', '--no-simulation'], "unknown option '--no-simulation'; did you mean --no-simulator?", 'flowpilot start --help'],
    [['start', 'now'], "unexpected argument 'now'", 'flowpilot start --help'],
    [['broker', '--verbose'], "unknown option '--verbose'", 'flowpilot broker --help'],
    [['simulate', '--speed', '0.5'], '--speed 0.5: expected a number ≥ 1', 'flowpilot simulate --help'],
    [['simulate', '--seed', 'x'], '--seed x: expected a whole number', 'flowpilot simulate --help'],
    [['simulate', '--backfill', 'two weeks'], '--backfill two weeks: expected a number with a unit', 'flowpilot simulate --help'],
    [['simulate', '--speed'], "option '--speed <n>' argument missing", 'flowpilot simulate --help'],
    [['credentials'], 'credentials needs a command: add, list', 'flowpilot credentials --help'],
    [['credentials', 'remove'], "unknown command 'remove'", 'flowpilot credentials --help'],
    [['credentials', 'add'], "missing required argument 'id'", 'flowpilot credentials add --help'],
    [['credentials', 'add', 'M1', '--role', 'root'], "argument 'root' is invalid. Allowed choices are meter, service, gateway", 'flowpilot credentials add --help'],
    [['credentials', 'add', 'M1', '--password', 'secret'], "unknown option '--password'", 'flowpilot credentials add --help'],
    [['credentials', 'add', 'M1', '--password-file', 'f', '--password-stdin'], "'--password-stdin' cannot be used with option '--password-file <file>'", 'flowpilot credentials add --help'],
    [['deadletters', 'list', '--limit', 'all'], '--limit all: expected a whole number ≥ 1', 'flowpilot deadletters list --help'],
    [['deadletters', 'replay', '--limit', '0'], '--limit 0: expected a whole number ≥ 1', 'flowpilot deadletters replay --help'],
    [['report', '--from', 'x'], '--from x: expected an ISO 8601 time', 'flowpilot report --help'],
    [['report', '--from', '2026-11-01', '--to', '2026-11-02'], "required option '--out <file>' not specified", 'flowpilot report --help'],
    [['report', '--to', '2026-11-02', '--out', 'r.pdf'], "required option '--from <time>' not specified", 'flowpilot report --help'],
    [['report', '--from', '2026-11-01', '--to', '2026-11-02', '--out', 'r', '--format', 'docx'], "argument 'docx' is invalid. Allowed choices are pdf, csv, xlsx", 'flowpilot report --help'],
    [['report', '--from', '2026-11-01', '--to', '2026-11-02', '--out', 'r', '--lang', 'fr'], '--lang fr: expected en or ru', 'flowpilot report --help'],
    [['report', '--from', '2026-11-01', '--to', '2026-11-02', '--out', 'r', '--api', 'localhost'], '--api localhost: expected a URL', 'flowpilot report --help'],
    [['report', '--from', '2026-11-01', '--to', '2026-11-02', '--out', 'r', '--token', 't'], "unknown option '--token'", 'flowpilot report --help'],
    [['tokens', 'add', 'vera'], "required option '--role <role>' not specified", 'flowpilot tokens add --help'],
    [['tokens', 'add', 'vera', '--role', 'root'], 'Allowed choices are viewer, evaluator, admin', 'flowpilot tokens add --help'],
    [['tokens', 'revoke'], "missing required argument 'name'", 'flowpilot tokens revoke --help'],
    [['tokens', 'list', 'extra'], "unexpected argument 'extra'", 'flowpilot tokens list --help'],
    [['certs', 'meter'], "missing required argument 'id'", 'flowpilot certs meter --help'],
    [['certs', 'list', '--days', '3'], "unknown option '--days'", 'flowpilot certs list --help'],
    [['check', 'a.yaml', 'b.yaml'], "unexpected argument 'b.yaml'", 'flowpilot check --help'],
    [['gateway', 'frobnicate'], "unknown command 'frobnicate'", 'flowpilot gateway --help'],
    [['gateway', 'probe', '--config', 'g.yaml'], "required option '--meter <id>' not specified", 'flowpilot gateway probe --help'],
    [['alerts'], 'alerts needs a command: prometheus-rules', 'flowpilot alerts --help'],
    [['alerts', 'rules'], "unknown command 'rules'", 'flowpilot alerts --help'],
    [['help', 'credentials', 'remove'], "unknown command 'remove'", 'flowpilot credentials --help'],
  ])('%j', async (argv, mistake, help) => {
    const result = await flowpilot(argv);
    expect(result.code).toBe(2);
    expect(result.calls).toEqual([]);
    expect(result.stdout).toBe('');
    expect(result.stderr).toHaveLength(1);
    const [line] = result.stderr as [string];
    expect(line).not.toContain('\n');
    expect(line.startsWith('flowpilot: ')).toBe(true);
    expect(line).toContain(mistake);
    expect(line.endsWith(` (see ${help})`)).toBe(true);
  });

  it('names the help of the command whose action found the mistake, without the usage a module appends', async () => {
    const result = await flowpilot(['certs', 'init', '--days', '0'], {
      certsInit: new FlowPilotError('ERR_USAGE', '--days 0: expected a whole number of days from 1 to 36500; usage: flowpilot certs init [--dir D]'),
    });
    expect(result).toMatchObject({ code: 2, stderr: ['flowpilot: --days 0: expected a whole number of days from 1 to 36500 (see flowpilot certs init --help)'] });
  });

  it('escapes what was typed, so a mistake cannot drive the terminal', async () => {
    const result = await flowpilot(['start', '--\u001b[2Jx']);
    expect(result.code).toBe(2);
    expect(result.stderr[0]).toContain('\\x1b[2Jx');
    expect(result.stderr[0]).not.toContain('\u001b');
  });
});

describe('other failures keep their codes', () => {
  it('prints a FlowPilotError in one line with its exit code (1), and anything else in full', async () => {
    const config = await flowpilot(['check'], { check: new FlowPilotError('ERR_CONFIG', 'FLOWPILOT_HTTP_PORT="eighty": expected a port') });
    expect(config.code).toBe(1);
    expect(config.stderr).toEqual([expect.stringMatching(/^flowpilot: FLOWPILOT_HTTP_PORT="eighty": expected a port\. /)]);
    const bug = await flowpilot(['check'], { check: new TypeError('x is undefined') });
    expect(bug.code).toBe(1);
    expect(bug.stderr[0]).toContain('TypeError: x is undefined');
  });
});
