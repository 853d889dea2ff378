/**
 * SKAB quality benchmark (the published outlier-detection protocol, ../shared/data/skab/README.md):
 * for every CSV of an experiment folder, fit a model on the first 400 rows with the trainer's own
 * fit code, export it to ONNX, score every later row in onnxruntime-node as the agent does (windows
 * of the last `window` readings, padded with the first reading), and pool TP/FP/FN/TN over all
 * files. Prints F1, FAR and MAR beside the published table, and the training time of each file.
 *
 *   node dist/bench/quality.js [--algo NAME] [--window W] [folder ...]   (folders under ../shared/data/skab; default valve1)
 *
 * A folder whose CSVs have no `anomaly` column (SKAB's anomaly-free recording) is a false-alarm
 * check instead: each file is cut into segments as long as a valve1 experiment, each segment is fit
 * on its first 400 rows, and the share of its later (all normal) rows flagged is printed as FAR.
 * The default run does valve1 and then anomaly-free.
 *
 * The SKAB files are GPL-3.0 and never part of this repository: without the folder, it says so and exits 0.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { INPUT_NAME, OUTPUT_NAME } from '../inference/contract.js';
import { parseCsv, type CsvTable } from '../trainer/csv.js';
import { fitTable } from '../trainer/fit.js';
import { slidingWindows, toInputTensor } from '../trainer/windows.js';

const TRAIN_ROWS = 400;
/** Rows per segment of an unlabelled (all-normal) recording: about one valve1 experiment. */
const SEGMENT_ROWS = 1150;
const LABEL = 'anomaly';
const NOT_FEATURES = [LABEL, 'changepoint'];
const PUBLISHED: [string, number, number, number][] = [
  ['Conv-AE', 0.78, 13.55, 28.02],
  ['MSET', 0.78, 39.73, 14.13],
  ['T-squared+Q (PCA)', 0.76, 26.62, 24.92],
  ['LSTM-AE', 0.74, 29.96, 25.92],
  ['T-squared', 0.66, 19.21, 42.6],
  ['LSTM-VAE', 0.56, 9.13, 55.03],
  ['Vanilla LSTM', 0.54, 12.54, 59.53],
  ['Vanilla AE', 0.39, 2.59, 75.15],
  ['Isolation forest', 0.29, 2.56, 82.89],
];

interface Counts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench/quality: cannot find the repository root (package.json)');
    dir = up;
  }
  return dir;
}

/** Splits the label column off a table parsed with it as a numeric column. */
function splitLabels(table: CsvTable): { data: CsvTable; labels: boolean[] } {
  const li = table.features.indexOf(LABEL);
  if (li < 0) return { data: table, labels: table.rows.map(() => false) };
  const keep = table.features.map((_, i) => i).filter((i) => i !== li);
  return {
    data: { ...table, features: keep.map((i) => table.features[i] as string), rows: table.rows.map((r) => Float64Array.from(keep, (i) => r[i] as number)) },
    labels: table.rows.map((r) => (r[li] as number) > 0.5),
  };
}

async function scoreWithOnnx(bytes: Uint8Array, rows: Float64Array[], window: number, from: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const batch = slidingWindows(rows, window).slice(from);
    const n = rows[0]?.length ?? 0;
    const input = new ort.Tensor('float32', toInputTensor(batch, n), [batch.length, window, n]);
    const out = await session.run({ [INPUT_NAME]: input });
    return out[OUTPUT_NAME]?.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** The labelled file itself, or segments of an unlabelled (all-normal) recording. */
function experiments(path: string): { data: CsvTable; labels: boolean[] }[] {
  const text = readFileSync(path, 'utf8');
  const header = text.slice(0, text.search(/\r?\n/)).split(/[;,]/);
  const parsed = parseCsv(text, { exclude: NOT_FEATURES.filter((c) => c !== LABEL && header.includes(c)) });
  const whole = splitLabels(parsed);
  if (parsed.features.includes(LABEL)) return [whole];
  const segments = [];
  for (let start = 0; start + SEGMENT_ROWS <= parsed.rows.length; start += SEGMENT_ROWS) {
    const cut = <T>(a: T[]) => a.slice(start, start + SEGMENT_ROWS);
    segments.push({ data: { ...whole.data, rows: cut(whole.data.rows), timestamps: cut(whole.data.timestamps) }, labels: cut(whole.labels) });
  }
  return segments;
}

async function benchExperiment(data: CsvTable, labels: boolean[], algorithm: string | undefined, window: number | undefined) {
  const t0 = performance.now();
  const fit = fitTable(data, { trainRows: TRAIN_ROWS, algorithm, window, source: 'skab' });
  const trainMs = performance.now() - t0;
  const scores = await scoreWithOnnx(fit.bytes, data.rows, fit.metadata.window, TRAIN_ROWS);
  const counts: Counts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  scores.forEach((s, i) => {
    const predicted = s > fit.metadata.threshold;
    const actual = labels[TRAIN_ROWS + i] as boolean;
    if (predicted && actual) counts.tp++;
    else if (predicted) counts.fp++;
    else if (actual) counts.fn++;
    else counts.tn++;
  });
  return { counts, trainMs, algorithm: fit.metadata.algorithm, window: fit.metadata.window };
}

function metrics(c: Counts) {
  return { f1: c.tp / (c.tp + (c.fn + c.fp) / 2), far: (100 * c.fp) / (c.fp + c.tn), mar: (100 * c.fn) / (c.fn + c.tp) };
}

function row(name: string, f1: number, far: number, mar: number): string {
  return `${name.padEnd(28)} ${f1.toFixed(2).padStart(5)} ${far.toFixed(2).padStart(8)} ${mar.toFixed(2).padStart(8)}`;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { algo: { type: 'string' }, window: { type: 'string' } }, allowPositionals: true });
  const window = values.window === undefined ? undefined : Number(values.window);
  const skab = resolve(repoRoot(), '../shared/data/skab');
  for (const folder of positionals.length > 0 ? positionals : ['valve1', 'anomaly-free']) {
    const dir = join(skab, folder);
    if (!existsSync(dir)) {
      console.log(`bench/quality: skipped: SKAB folder ${dir} is absent (the GPL-3.0 data is never copied into this repository)`);
      continue;
    }
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.csv'))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const total: Counts = { tp: 0, fp: 0, fn: 0, tn: 0 };
    let label = '';
    console.log(`SKAB ${folder}: ${files.length} files, fit on the first ${TRAIN_ROWS} rows of each, later rows scored in onnxruntime-node`);
    console.log(`${'file'.padEnd(18)} ${'train ms'.padStart(9)} ${'TP'.padStart(5)} ${'FP'.padStart(5)} ${'FN'.padStart(5)} ${'TN'.padStart(5)}   F1`);
    for (const file of files) {
      const parts = experiments(join(dir, file));
      for (const [i, part] of parts.entries()) {
        const r = await benchExperiment(part.data, part.labels, values.algo, window);
        label = `${r.algorithm}, window ${r.window}`;
        for (const k of ['tp', 'fp', 'fn', 'tn'] as const) total[k] += r.counts[k];
        const c = r.counts;
        const name = parts.length > 1 ? `${file}#${i + 1}` : file;
        console.log(
          `${name.padEnd(18)} ${r.trainMs.toFixed(1).padStart(9)} ${String(c.tp).padStart(5)} ${String(c.fp).padStart(5)} ${String(c.fn).padStart(5)} ${String(c.tn).padStart(5)}   ${c.tp + c.fn > 0 ? metrics(c).f1.toFixed(3) : '-'}`,
        );
      }
    }
    const m = metrics(total);
    if (total.tp + total.fn === 0) {
      console.log(`\nPumpWatch (${label}) on normal data only: FAR ${m.far.toFixed(2)} % (FP ${total.fp} of ${total.fp + total.tn} rows)\n`);
      continue;
    }
    console.log(`\n${'algorithm'.padEnd(28)} ${'F1'.padStart(5)} ${'FAR %'.padStart(8)} ${'MAR %'.padStart(8)}`);
    console.log(`${row(`PumpWatch (${label})`, m.f1, m.far, m.mar)}   <- ${folder}, pooled TP ${total.tp} FP ${total.fp} FN ${total.fn} TN ${total.tn}`);
    console.log('published (SKAB README, all 34 anomalous files):');
    for (const [name, f1, far, mar] of PUBLISHED) console.log(row(name, f1, far, mar));
    console.log('');
  }
}

await main();
