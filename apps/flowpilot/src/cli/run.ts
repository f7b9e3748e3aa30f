import { inspect } from 'node:util';
import { CommanderError, type Command } from 'commander';
import { FlowPilotError, type ErrorCode } from '@flowpilot/schema';
import { commandPath, fromCommanderExit, HelpShown, UsageError, usageLine } from './usage.ts';

/** Exit codes by what the operator must do: 2 to fix the command line (as getopt-style tools do), 1 for everything else. */
export const EXIT_CODES: Partial<Record<ErrorCode, number>> = { ERR_USAGE: 2 };

export interface CommandLineIo {
  /** Help and --version; the commands print their own output. */
  stdout(text: string): void;
  /** One line per failure (no trailing newline). */
  stderr(line: string): void;
}

function commandsOf(command: Command): Command[] {
  return [command, ...command.commands.flatMap(commandsOf)];
}

/** `flowpilot help credentials add`: the command those words name, or a usage error at the first word that names none. */
function helpTarget(program: Command, words: readonly string[]): Command {
  let target = program;
  for (const word of words) {
    const next = target.commands.find((command) => command.name() === word || command.aliases().includes(word));
    if (!next) throw new UsageError(`unknown command '${word}'`, commandPath(target));
    target = next;
  }
  return target;
}

/**
 * Parses `argv` with `program` (from createProgram) and runs the command it names. Resolves with
 * the exit code: 0 once the command has done its work (a service keeps running after that), 2 for
 * a mistake on the command line, EXIT_CODES or 1 for any other failure, each told in one line on
 * stderr (an error that is not a FlowPilotError prints in full: it is a bug). Call it once per program.
 */
export async function runCommandLine(program: Command, argv: readonly string[], io: CommandLineIo): Promise<number> {
  // The command whose action runs, for the help a usage error thrown by that action points to.
  let running: Command | undefined;
  program.hook('preAction', (_program, action) => {
    running = action;
  });
  for (const command of commandsOf(program)) {
    // Commander reports through these: its own text goes nowhere (help on stdout aside), and every exit becomes an error we print once.
    command.configureOutput({ writeOut: (text) => io.stdout(text), writeErr: () => {}, outputError: () => {} });
    command.exitOverride((error: CommanderError) => {
      throw fromCommanderExit(error, command);
    });
  }
  try {
    if (argv.length === 0) {
      program.outputHelp();
    } else if (argv[0] === 'help' && argv.length > 1) {
      helpTarget(program, argv.slice(1)).outputHelp();
    } else {
      await program.parseAsync([...argv], { from: 'user' });
    }
    return 0;
  } catch (error) {
    if (error instanceof HelpShown) return 0;
    if (error instanceof FlowPilotError && error.code === 'ERR_USAGE') {
      const path = error instanceof UsageError ? error.command : running ? commandPath(running) : [];
      io.stderr(usageLine(error.detail, path));
      return EXIT_CODES.ERR_USAGE ?? 2;
    }
    if (error instanceof FlowPilotError) {
      io.stderr(`flowpilot: ${error.message}`);
      return EXIT_CODES[error.code] ?? 1;
    }
    if (error instanceof CommanderError) {
      // Not expected: every exit of the program goes through fromCommanderExit.
      io.stderr(usageLine(error.message.replace(/^error: /, ''), []));
      return 2;
    }
    io.stderr(inspect(error));
    return 1;
  }
}
