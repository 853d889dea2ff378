import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../trainer/csv.js';
import { CsvError } from '../../trainer/errors.js';

function csvError(text: string, exclude?: string[]): CsvError {
  try {
    parseCsv(text, { exclude });
  } catch (err) {
    expect(err).toBeInstanceOf(CsvError);
    expect((err as CsvError).code).toBe('PW_TRAINER_CSV');
    return err as CsvError;
  }
  throw new Error('expected a CsvError');
}

describe('parseCsv', () => {
  it('reads SKAB-style files: ";" separated, mixed CRLF/LF, "YYYY-MM-DD hh:mm:ss" read as UTC', () => {
    const text =
      'datetime;Accelerometer1RMS;Pressure;Volume Flow RateRMS\r\n' +
      '2020-03-09 10:14:33;0.0265878;0.054711;32.0\n' +
      '2020-03-09 10:14:34;0.0261697;0.382638;32.0\r\n';
    const t = parseCsv(text);
    expect(t.features).toEqual(['Accelerometer1RMS', 'Pressure', 'Volume Flow RateRMS']);
    expect(t.timestamps).toEqual([Date.UTC(2020, 2, 9, 10, 14, 33), Date.UTC(2020, 2, 9, 10, 14, 34)]);
    expect(Array.from(t.rows[1]!)).toEqual([0.0261697, 0.382638, 32]);
    expect(t.timestampColumn).toBe('datetime');
  });

  it('reads "," separated files with an ISO timestamp column, zones and a BOM', () => {
    const text = '\uFEFFtimestamp,a,b\n2026-11-23T10:00:00.250Z,1,-2.5e-3\n2026-11-23T12:00:00+02:00,3,.5\n';
    const t = parseCsv(text);
    expect(t.features).toEqual(['a', 'b']);
    expect(t.timestamps).toEqual([Date.parse('2026-11-23T10:00:00.250Z'), Date.parse('2026-11-23T10:00:00Z')]);
    expect(Array.from(t.rows[0]!)).toEqual([1, -0.0025]);
  });

  it('treats a zone-less ISO time as UTC, whatever the local time zone', () => {
    expect(parseCsv('timestamp,a\n2026-01-01T00:00:00,1\n').timestamps).toEqual([Date.UTC(2026, 0, 1)]);
  });

  it('skips blank lines (including a trailing newline) but keeps line numbers of the file', () => {
    const err = csvError('timestamp,a\n\n2026-01-01T00:00:00Z,1\r\n\r\n2026-01-01T00:00:01Z,x\n\n');
    expect(err.message).toBe('line 5, column "a": "x" is not a number');
    expect(err.line).toBe(5);
    expect(err.column).toBe('a');
  });

  it('leaves out excluded columns and columns that hold no number at all', () => {
    const text = 'datetime;tag;a;anomaly;b\n2020-01-01 00:00:00;north;1;0;2\n2020-01-01 00:00:01;north;3;1;4\n';
    const t = parseCsv(text, { exclude: ['anomaly'] });
    expect(t.features).toEqual(['a', 'b']);
    expect(t.ignoredColumns).toEqual(['tag']);
    expect(Array.from(t.rows[1]!)).toEqual([3, 4]);
  });

  it('accepts double-quoted cells', () => {
    const t = parseCsv('"timestamp","flow, m3/h"\n"2026-01-01 00:00:00","1.5"\n');
    expect(t.features).toEqual(['flow, m3/h']);
    expect(Array.from(t.rows[0]!)).toEqual([1.5]);
  });

  it('names the line and column of a non-numeric cell', () => {
    const rows = Array.from({ length: 15 }, (_, i) => `2020-01-01 00:00:${String(i).padStart(2, '0')};1;2`);
    rows[15] = '2020-01-01 00:00:15;1;abc';
    expect(csvError(`datetime;Current;Pressure\n${rows.join('\n')}\n`).message).toBe('line 17, column "Pressure": "abc" is not a number');
  });

  it('refuses an empty cell in a feature column, and NaN or Infinity', () => {
    expect(csvError('timestamp,a,b\n2026-01-01T00:00:00Z,1,2\n2026-01-01T00:00:01Z,,2\n').message).toBe('line 3, column "a": "" is not a number');
    expect(csvError('timestamp,a\n2026-01-01T00:00:00Z,1\n2026-01-01T00:00:01Z,NaN\n').message).toMatch(/line 3, column "a": "NaN"/);
    expect(csvError('timestamp,a\n2026-01-01T00:00:00Z,1\n2026-01-01T00:00:01Z,Infinity\n').message).toMatch(/"Infinity" is not a number/);
  });

  it('refuses a file without a header', () => {
    expect(csvError('').message).toMatch(/no header row/);
    expect(csvError('\r\n\n  \n').message).toMatch(/no header row/);
  });

  it('refuses a header without data rows', () => {
    expect(csvError('timestamp,a\r\n').message).toMatch(/no data rows/);
  });

  it('refuses a file without a timestamp or datetime column, listing the columns', () => {
    expect(csvError('time,a\n2026-01-01T00:00:00Z,1\n').message).toBe('CSV has no "timestamp" or "datetime" column (columns: "time", "a")');
  });

  it('refuses a file without a numeric column', () => {
    expect(csvError('timestamp,label\n2026-01-01T00:00:00Z,ok\n').message).toMatch(/no numeric column/);
    expect(csvError('timestamp,a\n2026-01-01T00:00:00Z,1\n', ['a']).message).toMatch(/no numeric column/);
  });

  it('refuses a row with the wrong number of cells, naming the line', () => {
    const err = csvError('timestamp;a;b\n2026-01-01T00:00:00Z;1;2\n2026-01-01T00:00:01Z;1\n');
    expect(err.message).toBe('line 3: 2 cells, but the header has 3 (separator ";")');
    expect(err.line).toBe(3);
  });

  it('refuses an unreadable or impossible date-time, naming line and column', () => {
    expect(csvError('datetime,a\n2020-01-01 00:00:00,1\n09/03/2020 10:00,2\n').message).toBe(
      'line 3, column "datetime": "09/03/2020 10:00" is not a date-time (ISO 8601 or YYYY-MM-DD hh:mm:ss)',
    );
    expect(csvError('datetime,a\n2020-02-30 00:00:00,1\n').message).toMatch(/line 2, column "datetime"/);
  });

  it('refuses duplicate or empty header names and unknown --exclude names', () => {
    expect(csvError('timestamp,a,a\n2026-01-01T00:00:00Z,1,2\n').message).toBe('line 1: header names column "a" twice');
    expect(csvError('timestamp,,a\n2026-01-01T00:00:00Z,1,2\n').message).toBe('line 1: header column 2 has no name');
    expect(csvError('timestamp,a,b\n2026-01-01T00:00:00Z,1,2\n', ['c']).message).toMatch(/--exclude names "c", which is not a column/);
  });
});
