/** What a trainer CLI command is, and the argument parsing they share. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full `--help` text. */
  help: string;
  /** Returns the exit code; throws UsageError/CsvError/FitError for bad input (exit 2). */
  run(args: string[], io: Io): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Strict option parsing; unknown options and stray positionals are usage errors. */
export function parseOptions<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message} (see "pumpwatch-trainer ${command} --help")`);
  }
}

export function requireString(command: string, value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${command}: ${flag} is required (see "pumpwatch-trainer ${command} --help")`);
  return value;
}

export function optionalInteger(command: string, value: unknown, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${command}: ${flag} must be an integer >= ${min}, got "${String(value)}"`);
  return n;
}

export function optionalList(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
