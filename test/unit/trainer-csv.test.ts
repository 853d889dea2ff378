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
    expect(Array.from(t.rows[1]!)).toEqual([0.0261697, 0.382638, 32].map(Math.fround)); // float32, as the agent holds readings
    expect(t.timestampColumn).toBe('datetime');
  });

  it('reads "," separated files with an ISO timestamp column, zones and a BOM', () => {
    const text = '\uFEFFtimestamp,a,b\n2026-11-23T10:00:00.250Z,1,-2.5e-3\n2026-11-23T12:00:00.500+02:00,3,.5\n';
    const t = parseCsv(text);
    expect(t.features).toEqual(['a', 'b']);
    expect(t.timestamps).toEqual([Date.parse('2026-11-23T10:00:00.250Z'), Date.parse('2026-11-23T10:00:00.500Z')]);
    expect(Array.from(t.rows[0]!)).toEqual([1, Math.fround(-0.0025)]);
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
    // a tab- or |-separated export reads as one column: its separator is named, not its "missing" timestamp
    expect(csvError('timestamp\ta\n2026-01-01T00:00:00Z\t1\n').message).toBe('line 1: the header is separated by tabs, not by "," or ";": save the file as CSV with "," or ";" between the cells');
    expect(csvError('timestamp|a\n2026-01-01T00:00:00Z|1\n').message).toBe('line 1: the header is separated by "|", not by "," or ";": save the file as CSV with "," or ";" between the cells');
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

  it('refuses a number beyond the float32 range of the model input instead of training on Infinity', () => {
    // Number("1e999") is Infinity: it used to reach the fit, which wrote a model of NaN parameters (exit 0).
    expect(csvError('timestamp,a\n2026-01-01T00:00:00Z,1\n2026-01-01T00:00:01Z,1e999\n').message).toBe(
      'line 3, column "a": "1e999" is beyond the float32 range the models take (magnitude at most 3.4028234663852886e+38)',
    );
    expect(csvError('timestamp,a\n2026-01-01T00:00:00Z,-4e38\n').message).toMatch(/^line 2, column "a": "-4e38" is beyond the float32 range/);
    expect(Array.from(parseCsv('timestamp,a\n2026-01-01T00:00:00Z,1e30\n').rows[0]!)).toEqual([Math.fround(1e30)]);
  });

  it('refuses numbers with a decimal comma by name instead of leaving their column out as text', () => {
    // A ';' file exported with decimal commas: "Current" used to be left out as a text column (a note), the model trained on Flow alone.
    const err = csvError('datetime;Current;Flow\n2020-01-01 00:00:00;1,25;32\n2020-01-01 00:00:01;1,31;33\n');
    expect(err.message).toBe('line 2, column "Current": "1,25" is written with a comma; write numbers with a decimal point and no thousands separator (1.5, not 1,5)');
    expect(err.column).toBe('Current');
    expect(csvError('datetime;a\n2020-01-01 00:00:00;-0,5\n').message).toMatch(/^line 2, column "a": "-0,5" is written with a comma/);
    // Excluded columns and text are not numbers to read.
    expect(parseCsv('datetime;a;note\n2020-01-01 00:00:00;1.5;ok, 2\n').features).toEqual(['a']);
    expect(parseCsv('datetime;a;b\n2020-01-01 00:00:00;1.5;1,5\n', { exclude: ['b'] }).features).toEqual(['a']);
  });

  it('refuses numbers with a thousands separator by name instead of leaving their column out as text', () => {
    // An Excel export of an energy column: every cell grouped ("1,001.5"), so none read as a number and the column was left out with a note.
    const err = csvError('datetime,A,Energy\n2020-01-01 00:00:00,1,"1,001.5"\n2020-01-01 00:00:01,2,"1,002.5"\n');
    expect(err.message).toBe(
      'line 2, column "Energy": "1,001.5" is written with a thousands separator; write numbers with a decimal point and no thousands separator (1234.5, not 1,234.5 or 1.234,5)',
    );
    expect(err.line).toBe(2);
    expect(err.column).toBe('Energy');
    // European ';' files, other groupings, and one grouped cell among plain numbers.
    const refused: Array<[string, string]> = [
      ['datetime;A;Power_W\n2020-01-01 00:00:00;1;3.202,5\n2020-01-01 00:00:01;2;1.203,5\n', 'line 2, column "Power_W": "3.202,5"'],
      ['datetime;A;P\n2020-01-01 00:00:00;1;5\n2020-01-01 00:00:01;1;1.234.567\n', 'line 3, column "P": "1.234.567"'],
      ['datetime;A;P\n2020-01-01 00:00:00;1;-1 234,5\n', 'line 2, column "P": "-1 234,5"'],
      ["datetime,A,P\n2020-01-01 00:00:00,1,1'234.5\n", 'line 2, column "P": "1\'234.5"'],
      ['datetime,A,P\n2020-01-01 00:00:00,1,7\n2020-01-01 00:00:01,1,12\u00A0345\n', 'line 3, column "P": "12\u00A0345"'],
      ['datetime,A,P\n2020-01-01 00:00:00,1,999.5\n2020-01-01 00:00:01,2,"1,005.5"\n', 'line 3, column "P": "1,005.5"'],
    ];
    for (const [text, where] of refused) expect(csvError(text).message, text).toBe(`${where} is written with a thousands separator; write numbers with a decimal point and no thousands separator (1234.5, not 1,234.5 or 1.234,5)`);
    // Grouped cells without a decimal mark and no number beside them may be addresses or phone numbers: text, left out as before.
    expect(parseCsv('datetime,A,ip,phone\n2020-01-01 00:00:00,1,192.168.178.100,+41 800 123 456\n2020-01-01 00:00:01,2,192.168.178.101,+41 800 123 457\n').ignoredColumns).toEqual(['ip', 'phone']);
    // A decimal point with three decimals is a number; text holding a grouped number, or an excluded column, is not read.
    expect(parseCsv('datetime,A\n2020-01-01 00:00:00,1.234\n').rows[0]![0]).toBeCloseTo(1.234, 6);
    expect(parseCsv('datetime,A,note\n2020-01-01 00:00:00,1,"1,234.5 kWh"\n2020-01-01 00:00:01,2,"1,234.5"\n2020-01-01 00:00:02,3,valve shut\n').ignoredColumns).toEqual(['note']);
    expect(parseCsv('datetime,A,P\n2020-01-01 00:00:00,1,"1,234.5"\n', { exclude: ['P'] }).features).toEqual(['A']);
  });

  it('refuses rows out of time order, naming both lines, and accepts equal timestamps', () => {
    // Shuffled rows made window means of unrelated readings: on SKAB anomaly-free.csv a model fit on 400 shuffled rows flagged 730 of the next 750 normal rows (115 when sorted).
    const err = csvError('timestamp,a\n2026-01-01T00:00:00Z,1\n2026-01-01T00:00:02Z,2\n\n2026-01-01T01:00:01+02:00,3\n');
    expect(err.message).toBe(
      'line 5, column "timestamp": "2026-01-01T01:00:01+02:00" is earlier than "2026-01-01T00:00:02Z" on line 3; sort the rows by time (windows and --train-rows follow the order of the file)',
    );
    expect(err.line).toBe(5);
    expect(parseCsv('timestamp,a\n2026-01-01T00:00:00Z,1\n2026-01-01T00:00:00Z,2\n2026-01-01T02:00:01+02:00,3\n').timestamps).toEqual([
      Date.UTC(2026, 0, 1),
      Date.UTC(2026, 0, 1),
      Date.UTC(2026, 0, 1, 0, 0, 1),
    ]);
  });

  it('still ignores a text column in which a cell reads like a number with a decimal comma', () => {
    // A note or a position ("1,5") among words is text, as it was before decimal commas were refused.
    const t = parseCsv('timestamp,a,note\n2026-01-01T00:00:00Z,1,ok\n2026-01-01T00:00:01Z,2,"1,5"\n2026-01-01T00:00:02Z,3,valve shut\n');
    expect(t.features).toEqual(['a']);
    expect(t.ignoredColumns).toEqual(['note']);
    expect(parseCsv('datetime;a;pos\n2020-01-01 00:00:00;1;1,5\n2020-01-01 00:00:01;2;bay 2\n').ignoredColumns).toEqual(['pos']);
    // A column of numbers, some with a decimal comma (or a gap), is still refused by name.
    expect(csvError('datetime;a;b\n2020-01-01 00:00:00;1;1,5\n2020-01-01 00:00:01;2;\n').message).toMatch(/^line 2, column "b": "1,5" is written with a comma/);
    expect(csvError('datetime;a;b\n2020-01-01 00:00:00;1;2\n2020-01-01 00:00:01;2;1,5\n').message).toMatch(/^line 3, column "b": "1,5" is written with a comma/);
  });

  it('accepts local times without a zone that step back once at the end of daylight saving time', () => {
    // Recorded in local time across the night the clocks went back: in the order of recording, not to be sorted.
    const dst = 'timestamp,a\n2024-10-27 02:30:00,1\n2024-10-27 02:59:00,2\n2024-10-27 02:00:00,3\n2024-10-27 02:30:00,4\n2024-10-27 03:00:00,5\n';
    expect(parseCsv(dst).rows.map((r) => r[0])).toEqual([1, 2, 3, 4, 5]);
    // A year later, again.
    expect(parseCsv(`${dst}2025-10-26 02:59:00,6\n2025-10-26 02:00:00,7\n`).rows).toHaveLength(7);
    // Rows newest first step back at every row; more than an hour back, or with a zone, is out of order.
    expect(csvError('timestamp,a\n2024-10-27 02:00:02,1\n2024-10-27 02:00:01,2\n2024-10-27 02:00:00,3\n').message).toMatch(/^line 4, column "timestamp": "2024-10-27 02:00:00" is earlier than "2024-10-27 02:00:01" on line 3/);
    expect(csvError('timestamp,a\n2024-10-27 03:00:01,1\n2024-10-27 02:00:00,2\n').message).toMatch(/^line 3, column "timestamp"/);
    expect(csvError('timestamp,a\n2024-10-27T02:59:00+01:00,1\n2024-10-27T02:00:00+01:00,2\n').message).toMatch(/^line 3, column "timestamp"/);
  });

  it('refuses a quote that does not close on its line', () => {
    expect(csvError('timestamp,a\n2026-01-01T00:00:00Z,"1\n2026-01-01T00:00:01Z,2"\n').message).toBe('line 2: a quoted cell is not closed (a line break inside quotes is not supported)');
    expect(csvError('timestamp,"a\n2026-01-01T00:00:00Z,1\n').message).toMatch(/^line 1: a quoted cell is not closed/);
    // Split at "," (the separator it is not), this ";" header has a quote left open; split at ";", none.
    expect(parseCsv('datetime;Length, "inch;Temp\n2020-01-01 00:00:00;1;2\n').features).toEqual(['Length, "inch', 'Temp']);
  });

  it('refuses a zone offset beyond 23:59', () => {
    expect(csvError('timestamp,a\n2026-01-01T05:00:00+25:00,1\n').message).toMatch(/^line 2, column "timestamp": "2026-01-01T05:00:00\+25:00" is not a date-time/);
    expect(csvError('timestamp,a\n2026-01-01T05:00:00-05:99,1\n').message).toMatch(/^line 2, column "timestamp"/);
    expect(parseCsv('timestamp,a\n2026-01-01T05:30:00+0530,1\n').timestamps).toEqual([Date.UTC(2026, 0, 1)]);
  });

  it('drops the empty last column a separator at the end of every line makes', () => {
    const t = parseCsv('datetime;a;b;\r\n2020-01-01 00:00:00;1;2;\r\n2020-01-01 00:00:01;3;4; \r\n\r\n');
    expect(t.features).toEqual(['a', 'b']);
    expect(Array.from(t.rows[1]!)).toEqual([3, 4]);
    // A last column with a value somewhere, or a name, is a column: checked as usual.
    expect(csvError('timestamp,a,\n2026-01-01T00:00:00Z,1,\n2026-01-01T00:00:01Z,1,7\n').message).toBe('line 1: header column 3 has no name');
    expect(parseCsv('timestamp,a,b\n2026-01-01T00:00:00Z,1,\n').ignoredColumns).toEqual(['b']);
  });
});
