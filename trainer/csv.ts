/**
 * Loads a sensor CSV for training (DESIGN.md, `fit`): a header row; `,` or `;` separated (detected
 * from the header); CRLF, LF or mixed line endings; a `timestamp` or `datetime` column (ISO 8601,
 * or `YYYY-MM-DD hh:mm:ss` read as UTC); every other numeric column is a feature unless excluded.
 * A column with no numeric cell at all (e.g. a text tag) is ignored; a feature column with one
 * non-numeric cell is an error that names the line and the column, and so is a number with a
 * decimal comma (`1,5`) or a thousands separator (`1,234.5`, `1.234,5`), a number beyond the
 * float32 range the models take, a quote left open and a timestamp earlier than the row before it
 * (windows and `--train-rows` follow the file's order; local times without a zone may step back
 * once by at most an hour, a clock set back at the end of daylight saving time). Blank lines are
 * skipped, and so is a separator that ends every line.
 */
import { readFile } from 'node:fs/promises';
import { FLOAT32_MAX } from '../inference/contract.js';
import { CsvError } from './errors.js';
import { readProblem } from './files.js';

export interface CsvTable {
  features: string[];
  /** Epoch milliseconds, one per row. */
  timestamps: number[];
  /** Raw values in `features` order, one per data row. */
  rows: Float64Array[];
  timestampColumn: string;
  /** Columns without any numeric cell, left out. */
  ignoredColumns: string[];
}

export interface CsvOptions {
  /** Column names that are never features (e.g. labels). */
  exclude?: readonly string[];
}

interface Line {
  number: number;
  cells: string[];
}

const TIMESTAMP_NAMES = ['timestamp', 'datetime'];
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** A number written with a decimal comma (`1,5`, `-0,25`), as some locales export `;` files. */
const DECIMAL_COMMA = /^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$/;
/**
 * A number in groups of three digits, as spreadsheets export them: `1,234.5`, `1.234,5`,
 * `1.234.567`, `1 234,5`, `1'234.5` (also with a no-break or thin space, or `’`). Tested only on
 * cells NUMBER does not take: `1.234` is a number with a decimal point.
 */
const GROUPED = /^[+-]?\d{1,3}(?:(?:,\d{3})+(?:\.\d+)?|(?:\.\d{3})+(?:,\d+)?|([ '\u2019\u00A0\u202F])\d{3}(?:\1\d{3})*(?:[.,]\d+)?)$/;
/** The largest step back of local times at the end of daylight saving time, and the least time between two. */
const CLOCK_SET_BACK_MS = 3_600_000;
const DAY_MS = 86_400_000;
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

export async function loadCsv(path: string, options: CsvOptions = {}): Promise<CsvTable> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CsvError(`cannot read CSV "${path}": ${await readProblem(path, err)}`);
  }
  return parseCsv(text, options);
}

export function parseCsv(text: string, options: CsvOptions = {}): CsvTable {
  const physical = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const nonBlank = physical.map((raw, i) => ({ raw, number: i + 1 })).filter((l) => l.raw.trim() !== '');
  const headerLine = nonBlank[0];
  if (headerLine === undefined) throw new CsvError('CSV has no header row (the file is empty)');
  const separator = detectSeparator(headerLine.raw, headerLine.number);
  const header = splitCells(headerLine.raw, separator, headerLine.number).map((h) => h.trim());
  const other = header.length === 1 ? OTHER_SEPARATORS.find((o) => headerLine.raw.includes(o.char)) : undefined;
  if (other !== undefined) {
    // Such a file read as one column got "no timestamp column", which sent people looking at the names.
    throw new CsvError(`line ${headerLine.number}: the header is separated by ${other.name}, not by "," or ";": save the file as CSV with "," or ";" between the cells`, headerLine.number);
  }
  const lines: Line[] = nonBlank.slice(1).map((l) => ({ number: l.number, cells: splitCells(l.raw, separator, l.number) }));
  dropTrailingSeparator(header, lines);
  checkHeader(header, headerLine.number);
  if (lines.length === 0) throw new CsvError(`CSV has a header but no data rows (line ${headerLine.number})`);
  for (const line of lines) {
    if (line.cells.length !== header.length) {
      throw new CsvError(
        `line ${line.number}: ${line.cells.length} cells, but the header has ${header.length} (separator "${separator}")`,
        line.number,
      );
    }
  }
  const tsIndex = header.findIndex((h) => TIMESTAMP_NAMES.includes(h.toLowerCase()));
  if (tsIndex < 0) {
    throw new CsvError(`CSV has no "timestamp" or "datetime" column (columns: ${header.map((h) => `"${h}"`).join(', ')})`, headerLine.number);
  }
  const exclude = new Set(options.exclude ?? []);
  for (const name of exclude) {
    if (!header.includes(name)) throw new CsvError(`--exclude names "${name}", which is not a column of the CSV`);
  }
  const candidates = header.map((_, i) => i).filter((i) => i !== tsIndex && !exclude.has(header[i] as string));
  const numeric = candidates.filter((i) => lines.some((l) => NUMBER.test((l.cells[i] as string).trim())));
  // A column of decimal commas holds no "number": checked before it is left out as text.
  for (const i of candidates) checkDecimalPoint(lines, i, header[i] as string, numeric.includes(i));
  const ignoredColumns = candidates.filter((i) => !numeric.includes(i)).map((i) => header[i] as string);
  if (numeric.length === 0) throw new CsvError('CSV has no numeric column to use as a feature', headerLine.number);
  const timestampColumn = header[tsIndex] as string;
  const timestamps = lines.map((l) => parseTimestamp(l.cells[tsIndex] as string, l.number, timestampColumn));
  checkTimeOrder(lines, timestamps, tsIndex, timestampColumn);
  return {
    features: numeric.map((i) => header[i] as string),
    timestamps,
    // Rounded to float32, as the agent's window holds readings: the fit sees exactly what the model
    // will score (a feature at 1e12 varying by 1000 is constant in float32, not 34 scales off).
    rows: lines.map((l) => Float64Array.from(numeric, (i) => Math.fround(parseNumber(l.cells[i] as string, l.number, header[i] as string)))),
    timestampColumn,
    ignoredColumns,
  };
}

/** Separators of other exports, named when the header holds no "," or ";" but one of them. */
const OTHER_SEPARATORS = [
  { char: '\t', name: 'tabs' },
  { char: '|', name: '"|"' },
];

function detectSeparator(header: string, lineNumber: number): ',' | ';' {
  // Where a cell starts depends on the separator, and so whether a quote opens one: a header whose
  // quote is left open when split at one separator counts as one cell for it, not as an error
  // (splitting at the separator chosen still refuses a quote left open).
  const count = (sep: string) => {
    try {
      return splitCells(header, sep, lineNumber).length;
    } catch {
      return 1;
    }
  };
  return count(';') > count(',') ? ';' : ',';
}

/** Splits one line; a cell may be double-quoted ("" inside quotes is a quote; the quote must close on its line). */
function splitCells(line: string, separator: string, lineNumber: number): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell.trim() === '') {
      quoted = true;
      cell = '';
    } else if (c === separator) {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  if (quoted) throw new CsvError(`line ${lineNumber}: a quoted cell is not closed (a line break inside quotes is not supported)`, lineNumber);
  cells.push(cell);
  return cells;
}

/** A thousands separator and a decimal mark both (`1,234.5`, `1.234,5`, `1 234,5`): a number, nothing else. */
const twoMarks = (t: string): boolean => (t.includes(',') && t.includes('.')) || (/[ '\u2019\u00A0\u202F]/.test(t) && /[.,]/.test(t));

/**
 * A decimal comma or a thousands separator is refused by name: read as text, its column would
 * silently not be a feature. A text column (a cell that is no number in any of these ways) is
 * text that may hold a `1,5`: it is ignored as before.
 */
function checkDecimalPoint(lines: readonly Line[], index: number, column: string, hasNumbers: boolean): void {
  const grouped = (t: string) => !NUMBER.test(t) && GROUPED.test(t);
  const text = (cell: string) => cell.trim() !== '' && !NUMBER.test(cell.trim()) && !DECIMAL_COMMA.test(cell.trim()) && !grouped(cell.trim());
  if (!hasNumbers && lines.some((l) => text(l.cells[index] as string))) return;
  for (const line of lines) {
    const cell = line.cells[index] as string;
    if (cell.includes(',') && DECIMAL_COMMA.test(cell.trim())) {
      throw new CsvError(`line ${line.number}, column "${column}": "${cell}" is written with a comma; write numbers with a decimal point and no thousands separator (1.5, not 1,5)`, line.number, column);
    }
    // Without a decimal mark besides its groups (`1.234.567`, `192.168.1.10`, `+41 800 123 456`),
    // a grouped cell may as well be an address or a phone number: refused only among numbers.
    if (grouped(cell.trim()) && (hasNumbers || twoMarks(cell.trim()))) {
      throw new CsvError(
        `line ${line.number}, column "${column}": "${cell}" is written with a thousands separator; write numbers with a decimal point and no thousands separator (1234.5, not 1,234.5 or 1.234,5)`,
        line.number,
        column,
      );
    }
  }
}

/**
 * Rows in time order (equal timestamps allowed): fit's windows and `--train-rows` take the file's
 * order. Local times without a zone step back at the end of daylight saving time (02:59 then
 * 02:00): one step back of at most an hour is the clock set back, not rows out of order, unless
 * another came less than a day before it (a file sorted newest first steps back at every row).
 */
function checkTimeOrder(lines: readonly Line[], timestamps: readonly number[], tsIndex: number, column: string): void {
  let setBackAt = -Infinity;
  for (let i = 1; i < lines.length; i++) {
    const step = (timestamps[i] as number) - (timestamps[i - 1] as number);
    if (step >= 0) continue;
    const line = lines[i] as Line;
    const before = lines[i - 1] as Line;
    const local = !hasZone(line.cells[tsIndex] as string) && !hasZone(before.cells[tsIndex] as string);
    if (local && step >= -CLOCK_SET_BACK_MS && (timestamps[i - 1] as number) - setBackAt >= DAY_MS) {
      setBackAt = timestamps[i - 1] as number;
      continue;
    }
    throw new CsvError(
      `line ${line.number}, column "${column}": "${line.cells[tsIndex] as string}" is earlier than "${before.cells[tsIndex] as string}" on line ${before.number}; ` +
        'sort the rows by time (windows and --train-rows follow the order of the file)',
      line.number,
      column,
    );
  }
}

/**
 * A separator at the end of every line (some exporters write one) makes a last column with no
 * name and no value: it is dropped. A named or filled last column is kept (and checked as usual).
 */
function dropTrailingSeparator(header: string[], lines: readonly Line[]): void {
  const last = header.length - 1;
  if (last < 1 || header[last] !== '' || !lines.every((l) => l.cells.length === header.length && (l.cells[last] as string).trim() === '')) return;
  header.pop();
  for (const l of lines) l.cells.pop();
}

function checkHeader(header: string[], line: number): void {
  const seen = new Set<string>();
  header.forEach((name, i) => {
    if (name === '') throw new CsvError(`line ${line}: header column ${i + 1} has no name`, line);
    if (seen.has(name)) throw new CsvError(`line ${line}: header names column "${name}" twice`, line, name);
    seen.add(name);
  });
}

function parseNumber(cell: string, line: number, column: string): number {
  const text = cell.trim();
  if (!NUMBER.test(text)) throw new CsvError(`line ${line}, column "${column}": "${cell}" is not a number`, line, column);
  const value = Number(text);
  if (!(Math.abs(value) <= FLOAT32_MAX)) {
    throw new CsvError(`line ${line}, column "${column}": "${cell}" is beyond the float32 range the models take (magnitude at most ${FLOAT32_MAX})`, line, column);
  }
  return value;
}

/** ISO 8601 or `YYYY-MM-DD hh:mm:ss[.fff]`; without a zone the time is UTC. */
export function parseTimestamp(cell: string, line: number, column: string): number {
  const m = DATE_TIME.exec(cell.trim());
  const fail = () => new CsvError(`line ${line}, column "${column}": "${cell}" is not a date-time (ISO 8601 or YYYY-MM-DD hh:mm:ss)`, line, column);
  if (m === null) throw fail();
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'] = m;
  if (!validZone(zone)) throw fail();
  const ms = Math.round(Number(`0${frac}`) * 1000);
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  const check = new Date(utc);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw fail();
  }
  return utc - zoneOffsetMinutes(zone) * 60_000;
}

/** Whether a timestamp cell (already parsed) names its zone. */
function hasZone(cell: string): boolean {
  return DATE_TIME.exec(cell.trim())?.[8] !== undefined;
}

/** `Z`, or an offset of at most 23 hours and 59 minutes. */
function validZone(zone: string): boolean {
  if (zone.toUpperCase() === 'Z') return true;
  const digits = zone.slice(1).replace(':', '');
  return Number(digits.slice(0, 2)) <= 23 && Number(digits.slice(2) || '0') <= 59;
}

function zoneOffsetMinutes(zone: string): number {
  if (zone.toUpperCase() === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
}
