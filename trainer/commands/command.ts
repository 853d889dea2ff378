/** What a trainer CLI command is, and the argument parsing they share. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CommandContext } from '../cloud/context.js';
import { PUMP_ID_PATTERN, PUMP_ID_RULE } from '../../sync/layout.js';
import { UsageError } from '../errors.js';
import { MODEL_VERSION_PATTERN, MODEL_VERSION_RULE } from '../registry/records.js';

export type { CommandContext } from '../cloud/context.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Raw text to stderr without a newline (progress bars); absent: no bar. */
  raw?(text: string): void;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full `--help` text. */
  help: string;
  /** Returns the exit code; throws UsageError/CsvError/FitError for bad input (exit 2). */
  run(args: string[], io: Io, ctx: CommandContext): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Strict option parsing; unknown options and stray positionals are usage errors. */
export function parseOptions<O extends Options>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (see "pumpwatch-trainer ${command} --help")`);
  }
}

export function requireString(command: string, value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required (see "pumpwatch-trainer ${command} --help")`);
  return value;
}

export function optionalInteger(value: unknown, flag: string, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) throw new UsageError(`${flag} must be an integer ${range}, got "${String(value)}"`);
  return n;
}

export function optionalList(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function optionalNumber(value: unknown, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} must be a number from ${min} to ${max}, got "${String(value)}"`);
  return n;
}

/** A source (pump) id: the agent's pump id rule (sync/layout.ts), as it names blob folders and twin keys. */
export function requireSource(command: string, value: unknown): string {
  const source = requireString(command, value, '--source');
  if (!PUMP_ID_PATTERN.test(source)) throw new UsageError(`--source "${source}" is not a pump id (${PUMP_ID_RULE})`);
  return source;
}

/** A model version (`--version`): the registry's rule (registry/records.ts), checked before any work. */
export function requireVersion(command: string, value: unknown): string {
  const version = requireString(command, value, '--version');
  if (!MODEL_VERSION_PATTERN.test(version)) throw new UsageError(`--version "${version}" is not a model version (${MODEL_VERSION_RULE})`);
  return version;
}

const DAY_MS = 86_400_000;

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * `YYYY-MM-DD` (00:00 UTC) or an ISO 8601 date-time, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z` or an
 * offset (`+02:00`); without one it is UTC, like a date alone (never the machine's time zone).
 * A date or time that does not exist (2026-02-30, 24:00, 10:61) is refused, not rolled over.
 * Epoch ms.
 */
export function parseDate(flag: string, value: string): number {
  const text = value.trim();
  const bad = (why: string) => new UsageError(`${flag} "${value}" ${why} (YYYY-MM-DD, or ISO 8601 like 2026-11-23T10:00:00Z; a date-time without an offset is UTC)`);
  const m = DATE_TIME.exec(text);
  if (!m) throw bad('is not a date');
  const [y, mo, d, h = 0, mi = 0, sec = 0] = m.slice(1, 7).map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const local = Date.UTC(y as number, (mo as number) - 1, d, h, mi, sec, fraction);
  const back = new Date(local);
  // Date.UTC rolls 2026-02-30 over to 2026-03-02: a value that does not come back is not a date.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() + 1 !== mo || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== sec) {
    throw bad('is not a date that exists');
  }
  const zone = m[8];
  if (zone === undefined || zone.toUpperCase() === 'Z') return local;
  const [, sign, oh, om] = /^([+-])(\d{2}):?(\d{2})$/.exec(zone) as unknown as [string, string, string, string];
  if (Number(oh) > 23 || Number(om) > 59) throw bad('has an offset that does not exist');
  return local - (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
}

/**
 * The time range of `--from DATE --to DATE` (to exclusive), or of `--days N`: the N whole UTC
 * days before today (reproducible all day long).
 */
export function timeRange(command: string, v: { from?: unknown; to?: unknown; days?: unknown }, now: Date): { from: number; to: number } {
  if (v.days !== undefined) {
    if (v.from !== undefined || v.to !== undefined) throw new UsageError('give either --days or --from/--to, not both');
    const days = optionalInteger(v.days, '--days', 1) as number;
    const to = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
    return { from: to - days * DAY_MS, to };
  }
  const from = parseDate('--from', requireString(command, v.from, '--from (or --days)'));
  const to = parseDate('--to', requireString(command, v.to, '--to (or --days)'));
  if (to <= from) throw new UsageError('--to must be after --from');
  return { from, to };
}
