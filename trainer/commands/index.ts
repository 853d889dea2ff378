/**
 * The trainer CLI's command table and dispatch. To add a command (train, evaluate, drift, deploy,
 * train-all): write `commands/<name>.ts` exporting a `Command` and list it in COMMANDS.
 */
import { isInputError } from '../errors.js';
import type { Command, Io } from './command.js';
import { fitCommand } from './fit.js';

const COMMANDS: readonly Command[] = [fitCommand];

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: pumpwatch-trainer <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "pumpwatch-trainer <command> --help" for the options of a command.',
  ].join('\n');
}

/** Runs one CLI invocation (argv without node and script); returns the exit code. */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(overview());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.err(`pumpwatch-trainer: unknown command "${name}"\n\n${overview()}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(args, io);
  } catch (err) {
    if (isInputError(err)) {
      io.err(`pumpwatch-trainer ${name}: ${err.message}`);
      return EXIT_USAGE;
    }
    io.err(`pumpwatch-trainer ${name}: unexpected failure: ${(err as Error).stack ?? String(err)}`);
    return EXIT_FAILURE;
  }
}
