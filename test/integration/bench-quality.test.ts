/**
 * bench/quality judges the trainer on every labelled SKAB folder it finds (valve1 split into the
 * development and held-out halves, any other folder as "unseen"), through the real fit and
 * onnxruntime-node. The SKAB files are GPL-3.0 and not needed here: the folder tree is built from the
 * project's own simulator in SKAB's format, with its fault rows labelled.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { runSimulateCli } from '../../agent/simulate-cli.js';

const run = promisify(execFile);
const BENCH = join(packageRoot(), 'dist', 'bench', 'quality.js');
const TRAIN_ROWS = 400;
const ROWS = 1150;

async function simulateTo(path: string, args: string[]): Promise<void> {
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const code = await runSimulateCli(['--out', path, ...args], { stdout: sink, stderr: sink });
  if (code !== 0) throw new Error(`simulate ${args.join(' ')} exited ${code}`);
}

/** Anomaly rows after the training rows: what TP + FN of the pooled counts must add up to. */
async function scoredAnomalies(path: string): Promise<{ scored: number; anomalies: number }> {
  const rows = (await readFile(path, 'utf8')).trimEnd().split('\n').slice(1 + TRAIN_ROWS);
  return { scored: rows.length, anomalies: rows.filter((l) => l.split(';')[9] === '1.0').length };
}

async function bench(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [BENCH, ...args], { timeout: 120_000 });
  return stdout;
}

const pooled = (out: string) => {
  const m = /labelled pooled TP (\d+) FP (\d+) FN (\d+) TN (\d+)/.exec(out);
  if (!m) throw new Error(`no pooled counts in:\n${out}`);
  const [tp, fp, fn, tn] = m.slice(1).map(Number) as [number, number, number, number];
  return { tp, fp, fn, tn };
};

describe('bench/quality on a SKAB-layout tree', () => {
  let dir: string;
  const labelled = ['valve1/0.csv', 'valve1/1.csv', 'valve1/2.csv', 'valve2/0.csv', 'other/3.csv'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pw-bench-quality-'));
    for (const sub of ['valve1', 'valve2', 'other', 'anomaly-free']) await mkdir(join(dir, sub));
    let seed = 11;
    for (const file of labelled) {
      await simulateTo(join(dir, file), ['--rows', String(ROWS), '--seed', String(seed++), '--faults', 'random', '--mean-fault-interval-min', '4']);
    }
    await simulateTo(join(dir, 'anomaly-free', 'anomaly-free.csv'), ['--rows', String(2 * ROWS + 100), '--seed', '99', '--faults', 'none']);
  }, 60_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('scores every labelled file once, valve1 by parity and other folders as unseen, with their labels', async () => {
    const out = await bench(['--skab', dir, '--algo', 'mset', '--files']);
    expect(out).toContain('labelled files: valve1/ (3), other/ (1), valve2/ (1); anomaly-free segments: 2');
    const perFile = [...out.matchAll(/^\S+ \(window \d+\)\s+(\S+)\s+(development|held out|unseen)\s/gm)].map((m) => [m[1], m[2]]);
    expect(perFile).toEqual([
      ['valve1/0.csv', 'development'],
      ['valve1/1.csv', 'held out'],
      ['valve1/2.csv', 'development'],
      ['other/3.csv', 'unseen'],
      ['valve2/0.csv', 'unseen'],
      ['anomaly-free#1', 'development'],
      ['anomaly-free#2', 'development'],
    ]);
    for (const split of ['development', 'held out', 'unseen', 'all']) expect(out).toMatch(new RegExp(`^PumpWatch mset-horizon \\(window 10\\), ${split} +\\d\\.\\d{3}`, 'm'));
    for (const f of ['valve1', 'valve2', 'other']) expect(out).toMatch(new RegExp(`^PumpWatch mset-horizon \\(window 10\\), ${f}/ only +\\d\\.\\d{3}`, 'm'));

    // The pooled counts cover every scored row of the labelled files, and the labels came through.
    const truth = await Promise.all(labelled.map((f) => scoredAnomalies(join(dir, f))));
    const c = pooled(out);
    expect(c.tp + c.fp + c.fn + c.tn).toBe(truth.reduce((a, t) => a + t.scored, 0));
    const anomalies = truth.reduce((a, t) => a + t.anomalies, 0);
    expect(anomalies).toBeGreaterThan(100);
    expect(c.tp + c.fn).toBe(anomalies);
    // The simulator's faults are strong: a model that saw nothing would not find them.
    expect(c.tp).toBeGreaterThan(c.fn);

    // The range study: spans of the anomaly-free recording followed by at least a segment's rows.
    expect(out).toContain(`How long a range to train on (anomaly-free.csv, ${2 * ROWS + 100} normal rows)`);
    const spans = [...out.matchAll(/^mset-horizon \(window 10\)\s+(\d+-\d+)\s+\d+\s+(\d+\.\d\d)\s+(\d+\.\d\d) of\s+(\d+)$/gm)];
    expect(spans.map((m) => [m[1], Number(m[4])])).toEqual([
      ['1-600', 2 * ROWS + 100 - 600],
      ['1-1200', 2 * ROWS + 100 - 1200],
    ]);
    for (const m of spans) for (const far of [Number(m[2]), Number(m[3])]) expect(far).toBeLessThanOrEqual(100);
  }, 120_000);

  it('says it skipped, and exits 0, when the folder holds no labelled files', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'pw-bench-quality-empty-'));
    try {
      await mkdir(join(empty, 'anomaly-free'));
      const out = await bench(['--skab', empty]);
      expect(out).toMatch(/^bench\/quality: skipped: no labelled SKAB data in /);
      expect(await bench(['--skab', join(empty, 'missing')])).toMatch(/^bench\/quality: skipped/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  }, 60_000);

  it('names the file when a CSV outside anomaly-free/ has no anomaly column', async () => {
    const bad = await mkdtemp(join(tmpdir(), 'pw-bench-quality-bad-'));
    try {
      await mkdir(join(bad, 'valve2'));
      const csv = (await readFile(join(dir, 'valve2', '0.csv'), 'utf8')).replace(/;anomaly;changepoint/, ';x;changepoint');
      await writeFile(join(bad, 'valve2', '7.csv'), csv);
      const err = await bench(['--skab', bad]).then(
        () => '',
        (e: { stderr?: string }) => e.stderr ?? '',
      );
      expect(err).toContain('valve2/7.csv has no "anomaly" column');
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  }, 60_000);
});
