import type { Command, CommanderError } from 'commander';
import { FlowPilotError } from '@flowpilot/schema';
import { printable } from '../printable.ts';

/**
 * Mistakes on the command line (Issue 14): one line on stderr that names the mistake and the
 * help to read, `flowpilot: <what is wrong> (see flowpilot <command> --help)`, and exit code 2,
 * as getopt-style tools do. Commander's own complaints (unknown command or option, a missing
 * argument, a value outside its choices) and the commands' checks of their values end here alike.
 */

/** A command-line mistake found while parsing a command's values: it knows the command whose help to show. */
export class UsageError extends FlowPilotError {
  readonly command: readonly string[];

  constructor(problem: string, command: readonly string[]) {
    super('ERR_USAGE', problem);
    this.command = command;
  }
}

/** The words that name a command under the program, e.g. ['credentials', 'add']; [] for the program itself. */
export function commandPath(command: Command): string[] {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent; at = at.parent) names.unshift(at.name());
  return names;
}

/** The one line a usage error prints. A problem may quote what was typed: escaped, so it cannot drive the terminal. */
export function usageLine(problem: string, command: readonly string[]): string {
  // Modules that parse on their own (certs, gateway check) end a problem with their usage; the help replaces it.
  const what = problem.replace(/;\s*usage: flowpilot [\s\S]*$/, '').replace(/\s*\n\s*/g, ' ').trim();
  return `flowpilot: ${printable(what, 300)} (see ${['flowpilot', ...command, '--help'].join(' ')})`;
}

/** Commander's error message as a problem: no "error: " prefix, a suggestion kept on the same line. */
function commanderProblem(error: CommanderError, command: Command): string {
  if (error.code === 'commander.excessArguments') {
    // "too many arguments … Expected 0 arguments but got 1" does not say which; the first one over does.
    const extra = command.args[command.registeredArguments.length];
    if (extra !== undefined) return command.commands.length > 0 ? `unknown command '${extra}'` : `unexpected argument '${extra}'`;
  }
  return error.message
    .replace(/^error: /, '')
    .replace(/\.\s*$/, '')
    .replace(/\s*\n\((Did you mean [^)]*)\)/, (_, suggestion: string) => `; ${suggestion.charAt(0).toLowerCase()}${suggestion.slice(1)}`);
}

/** Help or the version was printed: the command line ends there, successfully. */
export class HelpShown extends Error {
  constructor() {
    super('help shown');
    this.name = 'HelpShown';
  }
}

/**
 * What commander's exit on `command` means for FlowPilot: help and --version end with exit code
 * 0; a command group named without its subcommand, and every parse error, are usage errors.
 */
export function fromCommanderExit(error: CommanderError, command: Command): Error {
  const path = commandPath(command);
  if (error.exitCode === 0) return new HelpShown();
  const parent = command.parent;
  if (error.code === 'commander.excessArguments' && parent?.parent && parent.args[0] !== command.name() && parent.args[0] === command.args[command.registeredArguments.length]) {
    // `gateway frobnicate` reached the default subcommand (`gateway run`): a word that names no subcommand of `gateway`.
    return new UsageError(`unknown command '${parent.args[0]}'`, commandPath(parent));
  }
  if (error.code === 'commander.help') {
    // `flowpilot credentials` alone, or `flowpilot credentials help frob`: commander would print the help to stderr.
    const [first, second] = command.args;
    if (first === 'help' && second !== undefined) return new UsageError(`unknown command '${second}'`, path);
    const names = command.commands.map((sub) => sub.name()).filter((name) => name !== 'help');
    return new UsageError(`${path.join(' ')} needs a command: ${names.join(', ')}`, path);
  }
  return new UsageError(commanderProblem(error, command), path);
}

