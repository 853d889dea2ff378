import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { readModelMetadata } from '../../inference/contract.js';
import { runCli } from '../../trainer/commands/index.js';
import { writeAtomically } from '../../trainer/files.js';

let dir: string;
let out: string[];
let err: string[];
const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };

const run = promisify(execFile);
const TRAINER = join(packageRoot(), 'dist', 'trainer', 'cli.js');
/** Root ignores file permissions, so the permission cases only mean something for other users. */
const ROOT = process.getuid?.() === 0;

/** A SKAB-like CSV: ';' separated, CRLF and LF mixed, labels in the last column; `stepS` seconds apart. */
function skabLikeCsv(rows: number, stepS = 1): string {
  const lines = ['datetime;Current;Pressure;Volume Flow RateRMS;anomaly'];
  for (let i = 0; i < rows; i++) {
    const load = Math.sin(i / 7) + 0.3 * Math.cos(i / 3);
    const noise = 0.05 * Math.sin(i * 12.9898);
    const ts = new Date(Date.UTC(2020, 2, 9, 10, 0, i * stepS)).toISOString().replace('T', ' ').slice(0, 19);
    lines.push(`${ts};${(1.3 + 0.4 * load).toFixed(5)};${(0.3 + 0.1 * Math.sin(i / 5)).toFixed(5)};${(32 + 3 * load + noise).toFixed(4)};${i > rows - 5 ? 1 : 0}`);
  }
  return lines.map((l, i) => l + (i % 3 === 0 ? '\r\n' : '\n')).join('');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pw-trainer-fit-'));
  out = [];
  err = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pumpwatch-trainer fit', () => {
  it('writes a contract-1 model that onnxruntime-node loads and that flags a broken reading', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(300));
    const model = join(dir, 'models', 'pump-17.onnx');
    const code = await runCli(['fit', '--csv', csv, '--out', model, '--train-rows', '200', '--source', 'pump-17', '--exclude', 'anomaly', '--window', '3'], io);
    expect(err).toEqual([expect.stringMatching(/^warning: the trained rows span 3 min, less than a day/)]);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/wrote .*pump-17\.onnx .*source "pump-17"/);
    const bytes = await readFile(model);
    const meta = readModelMetadata(bytes);
    expect(meta).toMatchObject({ features: ['Current', 'Pressure', 'Volume Flow RateRMS'], window: 3, source: 'pump-17', algorithm: 'mset-horizon' });
    expect(meta.trainedAt).toBe('2020-03-09T10:03:19.000Z');
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    try {
      const normal = [1.3, 0.3, 32];
      const broken = [1.7, 0.3, 10]; // flow collapses while the current rises
      const input = new Float32Array([...normal, ...normal, ...normal, ...broken, ...broken, ...broken]);
      const res = await session.run({ features: new ort.Tensor('float32', input, [2, 3, 3]) });
      const scores = res.score!.data as Float32Array;
      expect(scores[0]!).toBeLessThan(meta.threshold);
      expect(scores[1]!).toBeGreaterThan(meta.threshold);
    } finally {
      await session.release();
    }
  });

  it('writes identical bytes when run twice on the same CSV with the same options', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(120));
    const args = (o: string) => ['fit', '--csv', csv, '--out', join(dir, o), '--exclude', 'anomaly'];
    expect(await runCli(args('a.onnx'), io)).toBe(0);
    expect(await runCli(args('b.onnx'), io)).toBe(0);
    expect((await readFile(join(dir, 'a.onnx'))).equals(await readFile(join(dir, 'b.onnx')))).toBe(true);
    expect(err.filter((line) => !line.startsWith('warning: the trained rows span'))).toEqual([]);
    expect(await runCli([...args('c.onnx'), '--version', 'v7'], io)).toBe(0);
    expect(readModelMetadata(await readFile(join(dir, 'c.onnx'))).version).toBe('v7');
  });

  it("leaves SKAB's label column out by itself, and warns when another column that looks like a label is used as a feature", async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(60));
    expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'm.onnx')], io)).toBe(0);
    expect(readModelMetadata(await readFile(join(dir, 'm.onnx'))).features).toEqual(['Current', 'Pressure', 'Volume Flow RateRMS']);
    expect(err).toContain("note: label columns left out of the features (SKAB's labels, never model inputs): anomaly; pass --keep-labels if they are sensors");
    err = [];
    await writeFile(csv, skabLikeCsv(60).replace(';anomaly', ';label'));
    expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'm.onnx')], io)).toBe(0);
    expect(err.join('\n')).toMatch(/columns used as features look like labels: label; pass --exclude label if they are/);
  });

  it('notes a feature that only grows in the trained rows (a counter), which train leaves out by itself', async () => {
    const csv = join(dir, 'pump.csv');
    const lines = skabLikeCsv(120).split(/\r?\n/).filter((l) => l !== '');
    await writeFile(csv, lines.map((l, i) => `${l};${i === 0 ? 'RunningHours' : (5000 + i / 7).toFixed(2)}`).join('\n'));
    expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--exclude', 'anomaly'], io)).toBe(0);
    expect(err).toContain(
      'note: features that only grow in the trained rows look like counters (running hours, totals): RunningHours; a model of their level flags every reading once they pass the trained values: pass --exclude RunningHours if they are',
    );
  });

  it('warns on stderr, after writing the model, when the trained rows span less than a day, as train does', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(120));
    expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'short.onnx'), '--exclude', 'anomaly'], io)).toBe(0);
    expect(out).toEqual([expect.stringMatching(/^wrote .*short\.onnx/), expect.stringMatching(/^frozen sensor after: /)]);
    expect(err).toEqual([
      "warning: the trained rows span 1 min, less than a day: the model has not seen this pump's whole daily cycle, and normal " +
        'variation it has not seen raises false alarms; train on a longer range',
    ]);
    // 60 rows 30 min apart span 29.5 h: a whole day, no warning.
    await writeFile(csv, skabLikeCsv(60, 1800));
    err = [];
    expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'long.onnx'), '--exclude', 'anomaly'], io)).toBe(0);
    expect(err).toEqual([]);
  });

  it('prints help for the command and for the program', async () => {
    expect(await runCli(['fit', '--help'], io)).toBe(0);
    expect(out.join('\n')).toMatch(/Usage: pumpwatch-trainer fit --csv FILE --out MODEL\.onnx/);
    expect(await runCli(['--help'], io)).toBe(0);
    expect(out.at(-1)).toMatch(/fit +train on a local CSV/);
  });

  it('exits 2 with a message that names the line and column of a bad cell', async () => {
    const csv = join(dir, 'bad.csv');
    await writeFile(csv, 'datetime;Current;Pressure\n2020-01-01 00:00:00;1;2\n2020-01-01 00:00:01;1;abc\n');
    expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'm.onnx')], io)).toBe(2);
    expect(err.join('\n')).toBe('pumpwatch-trainer fit: line 3, column "Pressure": "abc" is not a number');
  });

  it('exits 2 naming the feature columns no reading can carry to the agent, and fits once --exclude leaves them out', async () => {
    // Models with these features were written, and the agent activated them but could never score a reading.
    const csvWith = (names: string[]) =>
      [['datetime', ...names].join(',')].concat(Array.from({ length: 40 }, (_, i) => [new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), ...names.map((_, f) => Math.sin(i * (f + 1)).toFixed(4))].join(','))).join('\n');
    const long = 'L'.repeat(130);
    const wide = Array.from({ length: 300 }, (_, f) => `s${f}`);
    const cases: Array<[string, string[], string, string[]]> = [
      [
        'names.csv',
        ['Flow', '__proto__', long, 'constructor'],
        `pumpwatch-trainer fit: feature names the agent cannot take: "__proto__" is reserved: a JavaScript object cannot hold a value by that name; "${'L'.repeat(40)}…" is 130 characters long, at most 128 allowed; rename them or leave them out with --exclude`,
        ['__proto__', long],
      ],
      [
        'invisible.csv',
        ['Flow', 'Pres\u200bsure', 'Current'],
        'pumpwatch-trainer fit: feature names the agent cannot take: "Pres\\u200bsure" has an invisible or control character (U+200B at character 5): control, bidirectional, zero-width and blank characters are refused in a name, which must show as it is matched; rename them or leave them out with --exclude',
        ['Pres\u200bsure'],
      ],
      ['wide.csv', wide, 'pumpwatch-trainer fit: 300 features, but a model takes at most 256 (a reading carries at most 256 values): leave 44 or more out with --exclude', wide.slice(256)],
    ];
    for (const [name, columns, message, exclude] of cases) {
      const csv = join(dir, name);
      await writeFile(csv, csvWith(columns));
      err = [];
      expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--algo', 'pca', '--window', '1'], io), name).toBe(2);
      expect(err.join('\n'), name).toBe(message);
      expect(await readdir(dir), name).not.toContain('m.onnx');
      err = [];
      expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--algo', 'pca', '--window', '1', '--exclude', exclude.join(',')], io), name).toBe(0);
      expect(readModelMetadata(await readFile(join(dir, 'm.onnx'))).features, name).toEqual(columns.filter((c) => !exclude.includes(c)));
      await rm(join(dir, 'm.onnx'));
    }
  });

  it('exits 2 on bad usage: missing options, unknown options, bad numbers, unknown algorithm or command', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(50));
    const cases: [string[], RegExp][] = [
      [['fit', '--out', 'x.onnx'], /--csv is required/],
      [['fit', '--csv', csv], /--out is required/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--bogus'], /Unknown option '--bogus'/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--train-rows', '0'], /--train-rows must be an integer >= 1, got "0"/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--window', '2.5'], /--window must be an integer from 1 to 1000, got "2.5"/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--window', '1001'], /--window must be an integer from 1 to 1000, got "1001"/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--algo', 'magic'], /unknown algorithm "magic" \(known: mset, mset-rel, pca/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--train-rows', '500'], /500 training rows asked for, but the data has only 50 rows/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--train-rows', '4'], /at least 10 training rows, got 4/],
      // It used to write a model whose every training window was padded, which the agent could not use before 1000 readings.
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--window', '1000'], /^pumpwatch-trainer fit: window 1000 is longer than the 50 training rows: no training row has a whole window of readings$/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--train-rows', '20', '--window', '21'], /window 21 is longer than the 20 training rows/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--source', 'pump.7'], /--source "pump\.7" is not a pump id/],
      [['fit', '--csv', csv, '--out', join(dir, 'm.onnx'), '--version', '..'], /--version "\.\." is not a model version/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      err = [];
      expect(await runCli(args, io), args.join(' ')).toBe(2);
      expect(err.join('\n')).toMatch(message);
      expect(err.join('\n'), 'the command is named once').not.toMatch(/fit: fit:/);
    }
    err = [];
    await runCli(['fit', '--csv', csv], io);
    expect(err).toEqual(['pumpwatch-trainer fit: --out is required (see "pumpwatch-trainer fit --help")']);
  });

  it('exits 2 saying in plain words why the CSV cannot be read', async () => {
    await writeFile(join(dir, 'file.csv'), 'not a folder');
    const cases: [string, string][] = [
      [join(dir, 'missing.csv'), 'no such file'],
      [dir, 'it is a folder, not a file'],
      [join(dir, 'file.csv', 'pump.csv'), `"${join(dir, 'file.csv')}" is a file, not a folder`],
    ];
    if (!ROOT) {
      await writeFile(join(dir, 'secret.csv'), skabLikeCsv(50));
      await chmod(join(dir, 'secret.csv'), 0o000);
      cases.push([join(dir, 'secret.csv'), 'permission denied']);
    }
    for (const [csv, why] of cases) {
      err = [];
      expect(await runCli(['fit', '--csv', csv, '--out', join(dir, 'm.onnx')], io), csv).toBe(2);
      expect(err).toEqual([`pumpwatch-trainer fit: cannot read CSV "${csv}": ${why}`]);
    }
  });

  it('exits 2 naming the path and the reason when the model cannot be written there, and creates nothing', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(50));
    await writeFile(join(dir, 'file.csv'), 'not a folder');
    const cases: [string, string][] = [
      [join(dir, 'file.csv', 'm.onnx'), `"${join(dir, 'file.csv')}" is a file, not a folder`],
      [join(dir, 'file.csv', 'models', 'm.onnx'), `"${join(dir, 'file.csv')}" is a file, not a folder`],
      [dir, 'it is a folder, not a file'],
    ];
    if (!ROOT) {
      await mkdir(join(dir, 'locked'), { mode: 0o555 });
      cases.push([join(dir, 'locked', 'm.onnx'), `no permission to write in "${join(dir, 'locked')}"`]);
    }
    const before = await readdir(dir);
    for (const [model, why] of cases) {
      err = [];
      expect(await runCli(['fit', '--csv', csv, '--out', model], io), model).toBe(2);
      expect(err).toEqual([`pumpwatch-trainer fit: cannot write the model to "${model}": ${why}`]);
    }
    expect(await readdir(dir)).toEqual(before);
  });
});

describe('writing an output file', () => {
  it('says what stands in the way when the write itself fails, and leaves no temporary file', async () => {
    await writeFile(join(dir, 'file.csv'), 'not a folder');
    await expect(writeAtomically(join(dir, 'file.csv', 'r.html'), '<p>', 'the report')).rejects.toThrow(
      `cannot write the report to "${join(dir, 'file.csv', 'r.html')}": "${join(dir, 'file.csv')}" is a file, not a folder`,
    );
    const folder = join(dir, 'reports');
    await mkdir(folder);
    await expect(writeAtomically(folder, '<p>', 'the report')).rejects.toMatchObject({ code: 'PW_TRAINER_USAGE', message: `cannot write the report to "${folder}": it is a folder, not a file` });
    expect((await readdir(dir)).sort()).toEqual(['file.csv', 'reports']);
  });
});

describe('pumpwatch-trainer as a process', () => {
  it('exits 2 with one line on stderr, no stack trace, for an unwritable --out and a missing option', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(50));
    await writeFile(join(dir, 'file.csv'), 'not a folder');
    const model = join(dir, 'file.csv', 'm.onnx');
    await expect(run(process.execPath, [TRAINER, 'fit', '--csv', csv, '--out', model])).rejects.toMatchObject({
      code: 2,
      stdout: '',
      stderr: `pumpwatch-trainer fit: cannot write the model to "${model}": "${join(dir, 'file.csv')}" is a file, not a folder\n`,
    });
    await expect(run(process.execPath, [TRAINER, 'fit', '--csv', csv])).rejects.toMatchObject({
      code: 2,
      stderr: 'pumpwatch-trainer fit: --out is required (see "pumpwatch-trainer fit --help")\n',
    });
  });

  it('writes the model, its summary on stdout and the short-span warning on stderr', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, skabLikeCsv(400));
    const { stdout, stderr } = await run(process.execPath, [TRAINER, 'fit', '--csv', csv, '--exclude', 'anomaly', '--out', join(dir, 'm.onnx')]);
    expect(stdout).toMatch(/^wrote .*m\.onnx .*trained on 400 rows/);
    expect(stderr).toMatch(/^warning: the trained rows span 6 min, less than a day: .*; train on a longer range\n$/);
    expect(readModelMetadata(await readFile(join(dir, 'm.onnx'))).metrics.trainRows).toBe(400);
  });
});
