/**
 * The trainer CLI's command table and dispatch. To add a command (train, evaluate, drift, deploy,
 * train-all, refresh-urls, undeploy): write `commands/<name>.ts` exporting a `Command` and list it in COMMANDS.
 */
import { defaultContext, TRAINER_ENV, type CommandContext } from '../cloud/context.js';
import { unknownVariables } from '../../sync/env-names.js';
import { SyncError } from '../../sync/errors.js';
import { safeErrorMessage, safeStackFrames } from '../../sync/redact.js';
import { EXIT, isInputError, storageError, TrainerError } from '../errors.js';
import type { Command, Io } from './command.js';
import { deployCommand } from './deploy.js';
import { driftCommand } from './drift.js';
import { evaluateCommand } from './evaluate.js';
import { fitCommand } from './fit.js';
import { refreshUrlsCommand } from './refresh-urls.js';
import { rollbackCommand } from './rollback.js';
import { trainAllCommand } from './train-all.js';
import { trainCommand } from './train.js';
import { undeployCommand } from './undeploy.js';

const COMMANDS: readonly Command[] = [fitCommand, trainCommand, evaluateCommand, driftCommand, deployCommand, rollbackCommand, trainAllCommand, refreshUrlsCommand, undeployCommand];

export const EXIT_OK = EXIT.ok;
export const EXIT_FAILURE = EXIT.failure;
export const EXIT_USAGE = EXIT.usage;

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

/**
 * Runs one CLI invocation (argv without node and script); returns the exit code. `ctx` gives the
 * cloud clients (default: from the environment, made on first use).
 */
export async function runCli(argv: readonly string[], io: Io, ctx: CommandContext = defaultContext()): Promise<number> {
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
  warnMisspeltVariables(ctx.env, io);
  try {
    return await command.run(args, io, ctx);
  } catch (thrown) {
    if (isInputError(thrown)) {
      io.err(`pumpwatch-trainer ${name}: ${thrown.message}`);
      return EXIT_USAGE;
    }
    // A Blob Storage SDK error no command wrapped is told like those it did: status and code, no response body.
    const err = storageError('a Blob Storage request', thrown);
    // A blob the sync reader refuses (not gzip, a sha256 mismatch) is named by its code, not a stack trace.
    if (err instanceof TrainerError || err instanceof SyncError) {
      io.err(`pumpwatch-trainer ${name}: ${err.code}: ${safeErrorMessage(err)}`);
      return EXIT_FAILURE;
    }
    io.err(`pumpwatch-trainer ${name}: unexpected failure: ${safeErrorMessage(err)}${safeStackFrames(err)}`);
    return EXIT_FAILURE;
  }
}

/**
 * Says, on stderr, each PUMPWATCH_* variable set whose name is near one the trainer reads but is
 * not it (`PUMPWATCH_BLOB_CONTAINR`): ignored, its setting would silently keep its default (the
 * `pumpwatch` container). Only near misses: the image also sets the agent's variables
 * (PUMPWATCH_DATA_DIR, …), which the trainer does not read and need no word. Names, never values.
 */
function warnMisspeltVariables(env: CommandContext['env'], io: Io): void {
  for (const v of unknownVariables(env, TRAINER_ENV)) {
    if (v.nearest !== null) io.err(`pumpwatch-trainer: warning: ${v.name} is not a variable the trainer reads and is ignored: did you mean ${v.nearest}?`);
  }
}
