import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSimulateCli, skabCsvChunks } from '../../agent/simulate-cli.js';
import { PumpSimulator, SIMULATED_FEATURES, type FaultPlan } from '../../agent/simulator.js';

const HEADER = ['datetime', ...SIMULATED_FEATURES, 'anomaly', 'changepoint'].join(';');

function capture(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function simulate(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [out, err] = [capture(), capture()];
  const code = await runSimulateCli(argv, { stdout: out.stream, stderr: err.stream });
  return { code, stdout: out.text(), stderr: err.text() };
}

function rowsOf(csv: string): string[][] {
  return csv.trimEnd().split('\n').slice(1).map((line) => line.split(';'));
}

describe('simulate CLI', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pumpwatch-simulate-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a SKAB-format CSV with the header and one line per row', async () => {
    const file = join(dir, 'sim.csv');
    const { code, stderr } = await simulate(['--out', file, '--rows', '4500', '--faults', 'none']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const csv = await readFile(file, 'utf8');
    expect(csv.split('\n')[0]).toBe(HEADER);
    const rows = rowsOf(csv);
    expect(rows).toHaveLength(4500);
    expect(rows[0]?.[0]).toBe('2026-01-01 00:00:00');
    expect(rows[4499]?.[0]).toBe('2026-01-01 01:14:59');
    const malformed = rows.filter(
      (row) =>
        row.length !== 11 ||
        !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(row[0] ?? '') ||
        row.slice(1).some((cell) => cell === '' || !Number.isFinite(Number(cell))) ||
        row[9] !== '0.0' ||
        row[10] !== '0.0',
    );
    expect(malformed).toEqual([]);
  });

  it('writes the same bytes for the same seed and different bytes for another seed', async () => {
    const a = await simulate(['--rows', '500', '--seed', '7']);
    const b = await simulate(['--rows', '500', '--seed', '7']);
    const c = await simulate(['--rows', '500', '--seed', '8']);
    expect(a.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).not.toBe(a.stdout);
  });

  it('labels fault rows as anomalies and marks each onset as a changepoint', async () => {
    const args = ['--rows', '43200', '--faults', 'random', '--mean-fault-interval-min', '60', '--seed', '3', '--pump', 'p-9'];
    const { code, stdout } = await simulate([...args, '--start', '2026-05-01T12:00:00Z']);
    expect(code).toBe(0);
    const rows = rowsOf(stdout);
    expect(rows[0]?.[0]).toBe('2026-05-01 12:00:00');
    const anomaly = rows.map((r) => r[9] === '1.0');
    const changepoints = rows.flatMap((r, i) => (r[10] === '1.0' ? [i] : []));
    const onsets = anomaly.flatMap((a, i) => (a && !anomaly[i - 1] ? [i] : []));
    expect(onsets.length).toBeGreaterThan(3);
    expect(changepoints).toEqual(onsets);
  });

  it('with --stops the pump stops: its rows read ~0 A and no flow, labelled normal; without, the same bytes as before', async () => {
    const args = ['--rows', '21600', '--seed', '4', '--faults', 'random', '--mean-fault-interval-min', '30'];
    const plain = await simulate(args);
    expect(await simulate([...args, '--stops', '0'])).toEqual(plain);
    const { code, stdout, stderr } = await simulate([...args, '--stops', '24', '--stop-minutes', '5-20']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const rows = rowsOf(stdout);
    const stoppedRows = rows.filter((r) => Number(r[3]) < 0.2);
    expect(stoppedRows.length).toBeGreaterThan(1000); // ~24 a day × 12.5 min over 6 h ≈ 75 min
    expect(stoppedRows.length).toBeLessThan(rows.length / 2);
    for (const r of stoppedRows) expect(r[9]).toBe('0.0');
    // a changepoint only on a row that shows a fault
    expect(rows.filter((r) => r[10] === '1.0' && r[9] !== '1.0')).toEqual([]);
    // no flow but the meter's noise (the counter's 3-sample average lets the last flow go over two rows)
    expect(stoppedRows.filter((r) => Number(r[8]) > 1).length).toBeLessThan(stoppedRows.length * 0.05);
    expect(rowsOf(plain.stdout).filter((r) => Number(r[3]) < 0.2)).toEqual([]);
  });

  it('prints usage for --help and refuses bad options with exit code 2', async () => {
    const help = await simulate(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--faults none|random');
    for (const bad of [['--rows', '0'], ['--faults', 'sometimes'], ['--start', 'yesterday'], ['--seed', 'x'], ['--nope'], ['--stops', '-1'], ['--stop-minutes', '20'], ['--stops', '200']]) {
      const res = await simulate(bad);
      expect(res.code, bad.join(' ')).toBe(2);
      expect(res.stderr, bad.join(' ')).toMatch(/^simulate: /);
      expect(res.stdout).toBe('');
    }
  });

  it('refuses with a message naming the option a period not of whole seconds, a seed past 32 bits, a negative value and a start without a zone', async () => {
    const cases: [string[], string][] = [
      [['--period-ms', '500'], '--period-ms must be a whole number of seconds (1000, 2000, …): the CSV\'s datetime is to the second, got "500"'],
      [['--period-ms', '1500'], '--period-ms must be a whole number of seconds (1000, 2000, …): the CSV\'s datetime is to the second, got "1500"'],
      [['--period-ms', '-1'], '--period-ms must be a positive number, got "-1"'],
      [['--rows', '-5'], '--rows must be a positive whole number, got "-5"'],
      [['--seed', '4294967296'], '--seed must be a whole number from 0 to 4294967295 (the simulator\'s seeds are 32-bit), got "4294967296"'],
      [['--seed', '-1'], '--seed must be a whole number from 0 to 4294967295 (the simulator\'s seeds are 32-bit), got "-1"'],
      [['--start', '2026-01-01T00:00:00'], '--start must be an ISO 8601 time with its zone (Z or ±hh:mm, e.g. 2026-01-01T00:00:00Z) or a date (midnight UTC), got "2026-01-01T00:00:00"'],
    ];
    for (const [args, message] of cases) {
      const res = await simulate(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr.split('\n')[0], args.join(' ')).toBe(`simulate: ${message}`);
    }
    const zoned = await simulate(['--rows', '2', '--period-ms', '2000', '--seed', '4294967295', '--start', '2026-01-01T01:00:00+01:00']);
    expect(zoned.code).toBe(0);
    expect(rowsOf(zoned.stdout).map((r) => r[0])).toEqual(['2026-01-01 00:00:00', '2026-01-01 00:00:02']);
    expect((await simulate(['--rows', '1', '--start', '2026-03-04'])).stdout).toContain('2026-03-04 00:00:00');
  });

  it('exits 1 and names the file when the output cannot be written', async () => {
    const res = await simulate(['--rows', '10', '--out', join(dir, 'missing', 'sim.csv')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(join(dir, 'missing', 'sim.csv'));
  });
});

describe('simulate: changepoints around stops', () => {
  const T0 = Date.parse('2026-01-01T00:00:00Z');
  const MIN = 60_000;

  /** An hour of one pump stopped from 10 min for `stopMin` minutes, with one planned fault: its anomaly and changepoint labels. */
  function labels(stopMin: number, fault: FaultPlan): { anomaly: string; changepoint: string }[] {
    const sim = new PumpSimulator({
      pumpId: 'p', seed: 1, startTs: T0, duty: { speed: 1, flow: 1 },
      stops: [{ startTs: T0 + 10 * MIN, durationMs: stopMin * MIN }],
      faults: [fault],
    });
    const text = [...skabCsvChunks(sim, 60 * 60)].join('');
    return text.trim().split('\n').slice(1).map((l) => {
      const p = l.split(';');
      return { anomaly: p[9] ?? '', changepoint: p[10] ?? '' };
    });
  }

  it('marks the changepoint of a fault whose onset falls in a stop on the first running row it shows on', () => {
    const r = labels(20, { kind: 'leak', startTs: T0 + 15 * MIN, durationMs: 30 * MIN });
    // the leak begins at row 900 (15 min), in the stop; the pump runs again from row 1800
    expect(r.flatMap((x, i) => (x.changepoint === '1.0' ? [i] : []))).toEqual([1800]);
    expect(r[1800]?.anomaly).toBe('1.0');
    expect(r[1799]?.anomaly).toBe('0.0');
  });

  it('marks no changepoint for a fault that begins and ends inside a stop', () => {
    const r = labels(30, { kind: 'valve', startTs: T0 + 15 * MIN, durationMs: 5 * MIN });
    expect(r.filter((x) => x.anomaly === '1.0')).toEqual([]);
    expect(r.filter((x) => x.changepoint === '1.0')).toEqual([]);
  });
});

