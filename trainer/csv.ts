/**
 * Loads a sensor CSV for training (DESIGN.md, `fit`): a header row; `,` or `;` separated (detected
 * from the header); CRLF, LF or mixed line endings; a `timestamp` or `datetime` column (ISO 8601,
 * or `YYYY-MM-DD hh:mm:ss` read as UTC); every other numeric column is a feature unless excluded.
 * A column with no numeric cell at all (e.g. a text tag) is ignored; a feature column with one
 * non-numeric cell is an error that names the line and the column. Blank lines are skipped.
 */
import { readFile } from 'node:fs/promises';
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
  const separator = detectSeparator(headerLine.raw);
  const header = splitCells(headerLine.raw, separator).map((h) => h.trim());
  checkHeader(header, headerLine.number);
  const lines: Line[] = nonBlank.slice(1).map((l) => ({ number: l.number, cells: splitCells(l.raw, separator) }));
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
  const ignoredColumns = candidates.filter((i) => !numeric.includes(i)).map((i) => header[i] as string);
  if (numeric.length === 0) throw new CsvError('CSV has no numeric column to use as a feature', headerLine.number);
  const timestampColumn = header[tsIndex] as string;
  return {
    features: numeric.map((i) => header[i] as string),
    timestamps: lines.map((l) => parseTimestamp(l.cells[tsIndex] as string, l.number, timestampColumn)),
    rows: lines.map((l) => Float64Array.from(numeric, (i) => parseNumber(l.cells[i] as string, l.number, header[i] as string))),
    timestampColumn,
    ignoredColumns,
  };
}

function detectSeparator(header: string): ',' | ';' {
  const count = (sep: string) => splitCells(header, sep).length;
  return count(';') > count(',') ? ';' : ',';
}

/** Splits one line; a cell may be double-quoted ("" inside quotes is a quote). */
function splitCells(line: string, separator: string): string[] {
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
  cells.push(cell);
  return cells;
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
  return Number(text);
}

/** ISO 8601 or `YYYY-MM-DD hh:mm:ss[.fff]`; without a zone the time is UTC. */
export function parseTimestamp(cell: string, line: number, column: string): number {
  const m = DATE_TIME.exec(cell.trim());
  const fail = () => new CsvError(`line ${line}, column "${column}": "${cell}" is not a date-time (ISO 8601 or YYYY-MM-DD hh:mm:ss)`, line, column);
  if (m === null) throw fail();
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'] = m;
  const ms = Math.round(Number(`0${frac}`) * 1000);
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  const check = new Date(utc);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw fail();
  }
  return utc - zoneOffsetMinutes(zone) * 60_000;
}

function zoneOffsetMinutes(zone: string): number {
  if (zone.toUpperCase() === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
}
