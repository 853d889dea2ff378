/**
 * `pumpwatch-agent simulate`: writes simulated pump readings as a SKAB-format CSV
 * (`;` separated, `datetime` as `YYYY-MM-DD hh:mm:ss` UTC, `anomaly` and `changepoint` labels).
 */
import { createWriteStream } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import type { Reading } from '../buffer/types.js';
import { PumpSimulator, SIMULATED_FEATURES, SimulatorError, randomStopsProblem, type RandomStops } from './simulator.js';

const USAGE = `Usage: pumpwatch-agent simulate [options]

Writes simulated pump readings as a SKAB-format CSV (datetime;<8 sensors>;anomaly;changepoint).

Options:
  --out FILE                     write to FILE (default: standard output)
  --rows N                       number of readings (default 3600)
  --seed S                       integer seed 0–4294967295; the same seed gives the same file (default 1)
  --pump ID                      pump id (default sim-pump-1)
  --faults none|random           inject random faults (default random)
  --mean-fault-interval-min M    mean minutes from the end of a random fault to the next (default 180)
  --start ISO                    time of the first reading, with its zone (Z or ±hh:mm), or a date
                                 (midnight UTC) (default 2026-01-01T00:00:00Z)
  --period-ms MS                 time between readings, whole seconds (default 1000)
  --stops N                      the pump stops N times a day on average (default 0: never); a
                                 stopped pump's rows read no flow, ~0 A, vibration at the ambient
                                 floor, the static pressure, cooling temperatures; labelled normal
  --stop-minutes MIN-MAX         each stop lasts MIN to MAX minutes (default 10-120)
  --help                         show this help
`;

const ROWS_PER_CHUNK = 2000;

export interface SimulateCliIo {
  stdout: Writable;
  stderr: Writable;
}

class UsageError extends Error {
  readonly code = 'PW_SIM_USAGE';
}

interface SimulateArgs {
  out: string | undefined;
  rows: number;
  seed: number;
  pumpId: string;
  faults: 'none' | 'random';
  meanFaultIntervalMs: number;
  startTs: number;
  periodMs: number;
  stops: RandomStops | 'none';
  help: boolean;
}

function positiveNumber(name: string, text: string, integer: boolean): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be a positive ${integer ? 'whole ' : ''}number, got "${text}"`);
  }
  return value;
}

const OPTIONS = {
  out: { type: 'string' },
  rows: { type: 'string', default: '3600' },
  seed: { type: 'string', default: '1' },
  pump: { type: 'string', default: 'sim-pump-1' },
  faults: { type: 'string', default: 'random' },
  'mean-fault-interval-min': { type: 'string', default: '180' },
  start: { type: 'string', default: '2026-01-01T00:00:00Z' },
  'period-ms': { type: 'string', default: '1000' },
  stops: { type: 'string', default: '0' },
  'stop-minutes': { type: 'string', default: '10-120' },
  help: { type: 'boolean', default: false },
} as const;

/** The simulator's seeds are 32-bit (agent/simulator/rng.ts): a larger one would give a smaller one's file. */
const MAX_SEED = 2 ** 32 - 1;
/** A time with its zone (Z or ±hh:mm), or a date alone (midnight UTC, as ISO 8601 dates are read). */
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}(?:T.*(?:Z|[+-]\d{2}:?\d{2}))?$/i;

/**
 * `--period-ms -1` as `--period-ms=-1`: parseArgs takes a value starting with a dash for an option
 * and answers "argument is ambiguous"; joined, the value gets the option's own check and message.
 */
function joinDashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    const name = arg.slice(2) as keyof typeof OPTIONS;
    if (arg.startsWith('--') && OPTIONS[name]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

export function parseSimulateArgs(argv: string[]): SimulateArgs {
  const { values } = parseArgs({ args: joinDashValues(argv), strict: true, allowPositionals: false, options: OPTIONS });
  if (!/^\d+$/.test(values.seed) || Number(values.seed) > MAX_SEED) {
    throw new UsageError(`--seed must be a whole number from 0 to ${MAX_SEED} (the simulator's seeds are 32-bit), got "${values.seed}"`);
  }
  if (values.faults !== 'none' && values.faults !== 'random') {
    throw new UsageError(`--faults must be none or random, got "${values.faults}"`);
  }
  const startTs = Date.parse(values.start);
  if (!ZONED_TIME.test(values.start.trim()) || !Number.isFinite(startTs)) {
    throw new UsageError(`--start must be an ISO 8601 time with its zone (Z or ±hh:mm, e.g. 2026-01-01T00:00:00Z) or a date (midnight UTC), got "${values.start}"`);
  }
  if (values.pump.trim() === '') throw new UsageError('--pump must not be empty');
  const periodMs = positiveNumber('period-ms', values['period-ms'], false);
  // datetime is written to the second: a period of 500 ms would write two rows per second, 1 500 ms gaps of 1 and 2 s
  if (periodMs % 1000 !== 0) throw new UsageError(`--period-ms must be a whole number of seconds (1000, 2000, …): the CSV's datetime is to the second, got "${values['period-ms']}"`);
  return {
    stops: parseStops(values.stops, values['stop-minutes']),
    out: values.out,
    rows: positiveNumber('rows', values.rows, true),
    seed: Number(values.seed),
    pumpId: values.pump,
    faults: values.faults,
    meanFaultIntervalMs: positiveNumber('mean-fault-interval-min', values['mean-fault-interval-min'], false) * 60_000,
    startTs,
    periodMs,
    help: values.help,
  };
}

/** `--stops N` and `--stop-minutes MIN-MAX`: random stops, or none for N = 0. */
function parseStops(perDayText: string, minutesText: string): RandomStops | 'none' {
  const perDay = Number(perDayText);
  if (perDayText.trim() === '' || !Number.isFinite(perDay) || perDay < 0) throw new UsageError(`--stops must be a number of stops a day ≥ 0, got "${perDayText}"`);
  const m = /^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$/.exec(minutesText);
  if (!m) throw new UsageError(`--stop-minutes must be MIN-MAX in minutes, e.g. 10-120, got "${minutesText}"`);
  const stops = { perDay, minMinutes: Number(m[1]), maxMinutes: Number(m[2]) };
  const problem = randomStopsProblem(stops);
  if (perDay > 0 && problem !== null) throw new UsageError(`--stops ${perDayText} --stop-minutes ${minutesText}: ${problem}`);
  return perDay === 0 ? 'none' : stops;
}

export function skabCsvHeader(): string {
  return ['datetime', ...SIMULATED_FEATURES, 'anomaly', 'changepoint'].join(';');
}

/**
 * A value as SKAB writes it (`126.0`, `0.382638`), with at most six decimals (the simulator's
 * resolution). Integer arithmetic: several times faster than String(number) on a million rows.
 */
function formatNumber(v: number | null): string {
  if (v === null) return '';
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  let whole = Math.trunc(abs);
  let micros = Math.round((abs - whole) * 1e6);
  if (micros === 1e6) {
    whole += 1;
    micros = 0;
  }
  const sign = v < 0 && (whole > 0 || micros > 0) ? '-' : '';
  if (micros === 0) return `${sign}${whole}.0`;
  let digits = 6;
  while (micros % 10 === 0) {
    micros /= 10;
    digits--;
  }
  return `${sign}${whole}.${String(micros).padStart(digits, '0')}`;
}

const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const DAY_MS = 86_400_000;
let cachedDay = Number.NaN;
let cachedDate = '';

/** `YYYY-MM-DD hh:mm:ss` in UTC. */
export function skabDatetime(ts: number): string {
  const day = Math.floor(ts / DAY_MS);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDate = new Date(day * DAY_MS).toISOString().slice(0, 10);
  }
  const seconds = Math.floor((ts - day * DAY_MS) / 1000);
  const [h, m, sec] = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  return `${cachedDate} ${TWO_DIGITS[h] ?? ''}:${TWO_DIGITS[m] ?? ''}:${TWO_DIGITS[sec] ?? ''}`;
}

export function skabCsvLine(reading: Reading, anomaly: boolean, changepoint: boolean): string {
  let line = skabDatetime(reading.ts);
  for (const f of SIMULATED_FEATURES) line += `;${formatNumber(reading.values[f] ?? null)}`;
  return `${line};${anomaly ? '1.0' : '0.0'};${changepoint ? '1.0' : '0.0'}`;
}

/**
 * The CSV text in chunks: the header, then `rows` readings; `changepoint` marks a fault's onset on
 * the first row it shows on: a fault that begins while the pump is stopped gets it on the first
 * running row after the stop (a stopped row is labelled normal), and one that begins and ends
 * inside a stop gets none, as no row shows it. A fault that goes on through a stop is labelled
 * again after it, with no second changepoint.
 */
export function* skabCsvChunks(sim: PumpSimulator, rows: number): Generator<string> {
  yield `${skabCsvHeader()}\n`;
  let lines: string[] = [];
  /** Planned ends of the faults begun that no row has shown yet. */
  let unshown: number[] = [];
  for (let i = 0; i < rows; i++) {
    const faultsBefore = sim.faultLog.length;
    const { reading, fault } = sim.next();
    unshown = [...unshown, ...sim.faultLog.slice(faultsBefore).map((f) => f.endTs)].filter((endTs) => reading.ts < endTs);
    const changepoint = fault !== null && unshown.length > 0;
    if (changepoint) unshown = [];
    lines.push(skabCsvLine(reading, fault !== null, changepoint));
    if (lines.length === ROWS_PER_CHUNK || i === rows - 1) {
      yield `${lines.join('\n')}\n`;
      lines = [];
    }
  }
}

async function writeCsv(args: SimulateArgs, io: SimulateCliIo): Promise<void> {
  const sim = new PumpSimulator({
    pumpId: args.pumpId,
    seed: args.seed,
    startTs: args.startTs,
    periodMs: args.periodMs,
    faults: args.faults,
    meanFaultIntervalMs: args.meanFaultIntervalMs,
    stops: args.stops,
  });
  const source = Readable.from(skabCsvChunks(sim, args.rows));
  if (args.out === undefined) await pipeline(source, io.stdout, { end: false });
  else await pipeline(source, createWriteStream(args.out));
}

/** Runs `simulate`; returns the exit code (0 done, 2 bad usage, 1 could not write). */
export async function runSimulateCli(
  argv: string[],
  io: SimulateCliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let args: SimulateArgs;
  try {
    args = parseSimulateArgs(argv);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`simulate: ${message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  try {
    await writeCsv(args, io);
    return 0;
  } catch (err) {
    const code = err instanceof SimulatorError ? 2 : 1;
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`simulate: could not write the CSV${args.out === undefined ? '' : ` to ${args.out}`}: ${message}\n`);
    return code;
  }
}
