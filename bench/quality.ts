/**
 * SKAB quality benchmark (the published outlier-detection protocol, ../shared/data/skab/README.md):
 * for every labelled CSV, fit a model on the first 400 rows with the trainer's own fit code,
 * export it to ONNX, score every later row in onnxruntime-node as the agent does (windows of the
 * last `window` readings, padded with the first reading), and pool TP/FP/FN/TN. SKAB's
 * anomaly-free recording is the false-alarm check: it is cut into segments as long as a valve1
 * experiment, each fit on its first 400 rows, and the share of its later (all normal) rows flagged
 * is its FAR. Prints F1, FAR and MAR per algorithm and split beside the published table, then
 * how long a range `train` needs: the false alarms of models fit on spans of the anomaly-free
 * recording, on their held-out rows and on the rows after them.
 *
 *   node dist/bench/quality.js [--skab DIR] [--algo NAME[,NAME]] [--window W] [--files]
 *
 * Labelled files are the CSVs of every folder of DIR except `anomaly-free/` (SKAB's layout:
 * valve1/, valve2/, other/). Splits (fixed before any candidate was scored, trainer/QUALITY.md):
 * development = valve1 files 0, 2, …, 14 and anomaly-free segments 1–4; held out = valve1 files
 * 1, 3, …, 15 and segments 5–8; unseen = every labelled folder other than valve1, which no design
 * choice has looked at. The SKAB files are GPL-3.0 and never part of this repository: without them
 * it says so and exits 0.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { INPUT_NAME, OUTPUT_NAME } from '../inference/contract.js';
import { ALGORITHM_NAMES } from '../trainer/algorithms/index.js';
import { parseCsv, type CsvTable } from '../trainer/csv.js';
import { fitTable } from '../trainer/fit.js';
import { TRAIN_DEFAULTS } from '../trainer/train/pipeline.js';
import { slidingWindows, toInputTensor } from '../trainer/windows.js';

const TRAIN_ROWS = 400;
/** Rows per segment of the anomaly-free recording: about one valve1 experiment. */
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

type Split = 'development' | 'held out' | 'unseen';
const SPLITS: readonly Split[] = ['development', 'held out', 'unseen'];
/** The one labelled folder the design was developed on (trainer/QUALITY.md); other folders are unseen. */
const DEVELOPED_ON = 'valve1';
const ANOMALY_FREE = 'anomaly-free';
interface Experiment {
  name: string;
  /** Folder under the SKAB root. */
  folder: string;
  kind: 'labelled' | 'anomaly-free';
  split: Split;
  data: CsvTable;
  labels: boolean[];
}
interface Counts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}
const zero = (): Counts => ({ tp: 0, fp: 0, fn: 0, tn: 0 });

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench/quality: cannot find the repository root (package.json)');
    dir = up;
  }
  return dir;
}

interface SkabFile {
  data: CsvTable;
  labels: boolean[] | null;
}

/** Parses a SKAB CSV; the label column is split off the features (labels null when it has none). */
function readSkab(path: string): SkabFile {
  const text = readFileSync(path, 'utf8');
  const header = text.slice(0, text.search(/\r?\n/)).split(/[;,]/);
  const table = parseCsv(text, { exclude: NOT_FEATURES.filter((c) => c !== LABEL && header.includes(c)) });
  const li = table.features.indexOf(LABEL);
  if (li < 0) return { data: table, labels: null };
  const keep = table.features.map((_, i) => i).filter((i) => i !== li);
  return {
    data: { ...table, features: keep.map((i) => table.features[i] as string), rows: table.rows.map((r) => Float64Array.from(keep, (i) => r[i] as number)) },
    labels: table.rows.map((r) => (r[li] as number) > 0.5),
  };
}

/** Names in reading order: numbers compared as numbers (SKAB's 0.csv, 1.csv, …, 10.csv). */
const byName = new Intl.Collator('en', { numeric: true }).compare;

function labelledSplit(folder: string, file: string): Split {
  if (folder !== DEVELOPED_ON) return 'unseen';
  return /^\d+\.csv$/.test(file) && parseInt(file) % 2 === 0 ? 'development' : 'held out';
}

/** SKAB's recording of normal running, or null when the folder has none. */
function readAnomalyFree(skab: string): SkabFile | null {
  const path = join(skab, ANOMALY_FREE, 'anomaly-free.csv');
  return existsSync(path) ? readSkab(path) : null;
}

/** The labelled files, then the anomaly-free recording cut into segments. */
function experiments(skab: string, free: SkabFile | null): Experiment[] {
  const out: Experiment[] = [];
  const folders = readdirSync(skab, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== ANOMALY_FREE)
    .map((d) => d.name)
    .sort((a, b) => (a === DEVELOPED_ON ? -1 : b === DEVELOPED_ON ? 1 : byName(a, b)));
  for (const folder of folders) {
    const files = readdirSync(join(skab, folder)).filter((f) => f.toLowerCase().endsWith('.csv')).sort(byName);
    for (const file of files) {
      const { data, labels } = readSkab(join(skab, folder, file));
      if (!labels) throw new Error(`bench/quality: ${folder}/${file} has no "${LABEL}" column; every CSV outside ${ANOMALY_FREE}/ must be labelled`);
      out.push({ name: `${folder}/${file}`, folder, kind: 'labelled', split: labelledSplit(folder, file), data, labels });
    }
  }
  if (!free) return out;
  const normal = free.labels ?? free.data.rows.map(() => false);
  for (let s = 0; (s + 1) * SEGMENT_ROWS <= free.data.rows.length; s++) {
    const cut = <T>(a: T[]) => a.slice(s * SEGMENT_ROWS, (s + 1) * SEGMENT_ROWS);
    out.push({
      name: `anomaly-free#${s + 1}`,
      folder: ANOMALY_FREE,
      kind: 'anomaly-free',
      split: s < 4 ? 'development' : 'held out',
      data: { ...free.data, rows: cut(free.data.rows), timestamps: cut(free.data.timestamps) },
      labels: cut(normal),
    });
  }
  return out;
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

async function runExperiment(e: Experiment, algorithm: string, window: number | undefined) {
  const t0 = performance.now();
  const fit = fitTable(e.data, { trainRows: TRAIN_ROWS, algorithm, window, source: 'skab' });
  const trainMs = performance.now() - t0;
  const scores = await scoreWithOnnx(fit.bytes, e.data.rows, fit.metadata.window, TRAIN_ROWS);
  const counts = zero();
  scores.forEach((s, i) => {
    const predicted = s > fit.metadata.threshold;
    const actual = e.labels[TRAIN_ROWS + i] as boolean;
    if (predicted && actual) counts.tp++;
    else if (predicted) counts.fp++;
    else if (actual) counts.fn++;
    else counts.tn++;
  });
  return { counts, trainMs, label: `${fit.metadata.algorithm} (window ${fit.metadata.window})` };
}

/** Training spans (rows, about 1 Hz) and their starts in the anomaly-free recording for the range study (each needs a segment's rows after it). */
const SPANS = [600, 1200, 2400, 4800];
const SPAN_STARTS = [0, 4600];

/**
 * How long a range `train` needs, on real normal running: each span of the anomaly-free recording
 * is split as `train` splits a range (the most recent share held out), a model is fit on the rest,
 * and the share of normal rows it flags is printed for the held-out rows (what `train` sees) and
 * for every row of the recording after the range (what the field would see next).
 */
async function trainingSpans(data: CsvTable, algos: readonly string[], window: number | undefined): Promise<void> {
  const n = data.rows.length;
  const cases = SPAN_STARTS.flatMap((start) => SPANS.map((span) => ({ start, span }))).filter((c) => c.start + c.span + SEGMENT_ROWS <= n);
  if (cases.length === 0) return;
  const minutes = (a: number, b: number) => ((data.timestamps[b] as number) - (data.timestamps[a] as number)) / 60_000;
  const pct = (scores: Float32Array, threshold: number) => (100 * scores.filter((s) => s > threshold).length) / scores.length;
  console.log(`\nHow long a range to train on (${ANOMALY_FREE}.csv, ${n} normal rows): a model fit on a span as \`train\` splits it (last ${TRAIN_DEFAULTS.holdoutFraction * 100} % held out)`);
  console.log(`${'algorithm'.padEnd(26)} ${'span (rows)'.padEnd(18)} ${'minutes'.padStart(7)}  ${'held-out FAR %'.padStart(14)}  ${'FAR % after the range'.padStart(21)}`);
  for (const algo of algos) {
    for (const { start, span } of cases) {
      const trainEnd = start + Math.floor(span * (1 - TRAIN_DEFAULTS.holdoutFraction));
      const cut = <T>(a: T[]) => a.slice(start, trainEnd);
      const fit = fitTable({ ...data, rows: cut(data.rows), timestamps: cut(data.timestamps) }, { algorithm: algo, window, source: 'skab' });
      const scores = await scoreWithOnnx(fit.bytes, data.rows, fit.metadata.window, trainEnd);
      const held = scores.subarray(0, start + span - trainEnd);
      const after = scores.subarray(start + span - trainEnd);
      const label = `${fit.metadata.algorithm} (window ${fit.metadata.window})`;
      const rows = `${start + 1}-${start + span}`;
      console.log(`${label.padEnd(26)} ${rows.padEnd(18)} ${num(minutes(start, start + span - 1), 0, 7)}  ${num(pct(held, fit.metadata.threshold), 2, 14)}  ${num(pct(after, fit.metadata.threshold), 2, 14)} of ${String(after.length).padStart(4)}`);
    }
  }
}

const add = (a: Counts, b: Counts) => ({ tp: a.tp + b.tp, fp: a.fp + b.fp, fn: a.fn + b.fn, tn: a.tn + b.tn });
const f1 = (c: Counts) => c.tp / (c.tp + (c.fn + c.fp) / 2);
const far = (c: Counts) => (100 * c.fp) / (c.fp + c.tn);
const mar = (c: Counts) => (100 * c.fn) / (c.fn + c.tp);
const num = (x: number, digits: number, width: number) => (Number.isFinite(x) ? x.toFixed(digits) : '-').padStart(width);

function tableRow(name: string, valve: Counts | null, free: Counts | null, published?: [number, number, number]): string {
  const [a, b, c] = published ?? (valve ? [f1(valve), far(valve), mar(valve)] : [NaN, NaN, NaN]);
  return `${name.padEnd(50)} ${num(a, 3, 6)} ${num(b, 2, 7)} ${num(c, 2, 7)}   ${num(free ? far(free) : NaN, 2, 9)}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { skab: { type: 'string' }, algo: { type: 'string' }, window: { type: 'string' }, files: { type: 'boolean' } } });
  const algos = values.algo === undefined ? ALGORITHM_NAMES : values.algo.split(',');
  const window = values.window === undefined ? undefined : Number(values.window);
  const skab = values.skab === undefined ? resolve(repoRoot(), '../shared/data/skab') : resolve(values.skab);
  const free = readAnomalyFree(skab);
  const all = existsSync(skab) ? experiments(skab, free) : [];
  if (!all.some((e) => e.kind === 'labelled')) {
    console.log(`bench/quality: skipped: no labelled SKAB data in ${skab} (the GPL-3.0 data is never copied into this repository)`);
    return;
  }
  const folders = [...new Set(all.filter((e) => e.kind === 'labelled').map((e) => e.folder))];
  const splits = SPLITS.filter((split) => all.some((e) => e.split === split));
  console.log(`SKAB outlier detection: one model per file (per anomaly-free segment of ${SEGMENT_ROWS} rows) fit on its first ${TRAIN_ROWS} rows; every later row scored in onnxruntime-node`);
  console.log(`labelled files: ${folders.map((f) => `${f}/ (${all.filter((e) => e.folder === f).length})`).join(', ')}; anomaly-free segments: ${all.filter((e) => e.kind === 'anomaly-free').length}`);
  console.log(`development = ${DEVELOPED_ON} 0,2,…,14 + anomaly-free segments 1-4; held out = ${DEVELOPED_ON} 1,3,…,15 + segments 5-8${splits.includes('unseen') ? `; unseen = ${folders.filter((f) => f !== DEVELOPED_ON).join(', ')}` : ''} (trainer/QUALITY.md)\n`);
  const lines: string[] = [];
  for (const algo of algos) {
    const sums = new Map<string, Counts>();
    const times: number[] = [];
    let label = algo;
    for (const e of all) {
      const r = await runExperiment(e, algo, window).catch((err: unknown) => {
        throw new Error(`bench/quality: ${e.name} with --algo ${algo}: ${err instanceof Error ? err.message : String(err)}`);
      });
      label = r.label;
      times.push(r.trainMs);
      for (const key of [`${e.split}|${e.kind}`, `all|${e.kind}`, `${e.folder}|${e.kind}`]) sums.set(key, add(sums.get(key) ?? zero(), r.counts));
      if (values.files === true) {
        const c = r.counts;
        console.log(`${label.padEnd(26)} ${e.name.padEnd(16)} ${e.split.padEnd(11)} TP ${c.tp} FP ${c.fp} FN ${c.fn} TN ${c.tn}  train ${r.trainMs.toFixed(1)} ms`);
      }
    }
    for (const split of [...splits, 'all']) {
      lines.push(tableRow(`PumpWatch ${label}, ${split}`, sums.get(`${split}|labelled`) ?? null, sums.get(`${split}|anomaly-free`) ?? null));
    }
    if (folders.length > 1) for (const f of folders) lines.push(tableRow(`PumpWatch ${label}, ${f}/ only`, sums.get(`${f}|labelled`) ?? null, null));
    const pooled = sums.get('all|labelled') as Counts;
    lines.push(`${''.padEnd(50)} labelled pooled TP ${pooled.tp} FP ${pooled.fp} FN ${pooled.fn} TN ${pooled.tn}; training ${(times.reduce((a, b) => a + b, 0) / times.length).toFixed(1)} ms per file on average, ${Math.max(...times).toFixed(1)} ms at most`);
  }
  if (values.files === true) console.log('');
  console.log(`${'algorithm'.padEnd(50)} ${'F1'.padStart(6)} ${'FAR %'.padStart(7)} ${'MAR %'.padStart(7)}   ${'AF FAR %'.padStart(9)}`);
  console.log(`${''.padEnd(50)} ${'(labelled files)'.padStart(22)}   (anomaly-free)`);
  for (const l of lines) console.log(l);
  console.log('\npublished (SKAB README, all 34 anomalous files; no anomaly-free figure published):');
  for (const [name, a, b, c] of PUBLISHED) console.log(tableRow(name, null, null, [a, b, c]));
  if (free) await trainingSpans(free.data, algos, window);
}

await main();
