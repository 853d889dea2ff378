/** `pumpwatch-trainer fit`: train on a local CSV and write an ONNX model (contract 1, or 2 with a rule). */
import { MAX_WINDOW } from '../../inference/contract.js';
import { ALGORITHM_NAMES, DEFAULT_ALGORITHM } from '../algorithms/index.js';
import { loadCsv, type CsvTable } from '../csv.js';
import { CsvError } from '../errors.js';
import { findCounters } from '../data/counters.js';
import { checkWritable, writeAtomically } from '../files.js';
import { describeStoppedRule } from '../../inference/contract.js';
import { parseStoppedWhenOption } from '../data/stopped.js';
import { DEFAULT_SOURCE, fitTable, spanWarnings, type StoppedLeftOut } from '../fit.js';
import { optionalInteger, optionalList, parseOptions, requireSource, requireString, requireVersion, type Command } from './command.js';

const HELP = `Usage: pumpwatch-trainer fit --csv FILE --out MODEL.onnx [options]

Trains an anomaly model on a local CSV and writes an ONNX model with its threshold: contract 1,
or contract 2 when it carries a stopped-when rule or frozen-sensor bounds (agents before
2026-12-07 refuse it rather than score without the rule).
The CSV has a header row, ',' or ';' separators, and a "timestamp" or "datetime" column
(ISO 8601 or YYYY-MM-DD hh:mm:ss, read as UTC); every other numeric column is a feature, except
SKAB's label columns "anomaly" and "changepoint" (which "pumpwatch-agent simulate" writes too):
labels are never model inputs, so they are left out unless --keep-labels is given. Rows labelled
anomaly=1 are trained on like the others; a note says how many there are.

Options:
  --csv FILE          training data (required)
  --out MODEL.onnx    where to write the model (required; parent folders are created)
  --train-rows N      train on the first N data rows (default: all)
  --source ID         data source (pump) id in the metadata (default: "${DEFAULT_SOURCE}")
  --exclude a,b       columns that are not features (e.g. labels other than SKAB's)
  --keep-labels       use columns named "anomaly" and "changepoint" as features (sensors so named)
  --algo NAME         ${ALGORITHM_NAMES.join(' | ')} (default: ${DEFAULT_ALGORITHM})
  --window W          readings per window (default: the algorithm's)
  --version V         model version (default: training date + hash of data and options)
  --stopped-when "FEATURE<NUMBER [& FEATURE<NUMBER ...]"
                      the pump is stopped while FEATURE is below NUMBER (e.g. "Current<0.5"),
                      or every one of several (e.g. "Current<0.2 & Volume Flow RateRMS<5": a
                      dead current sensor on a running pump is then no stop): those rows are left out of training, and the rule is written into the
                      model, so the agent stores such readings unscored (no alarm on a stop)
  --after-start S     with --stopped-when: a warm-up of S seconds (0-86400, default 0) after the
                      last stopped row, left out of training and unscored by the agent too
  -h, --help          this help

The same CSV and options always give the same model bytes.
Exit codes: 0 model written, 1 unexpected failure, 2 bad usage, including a CSV it cannot
read, use or train on.`;

/**
 * SKAB's label columns (its README: "anomaly" and "changepoint" are labels, not inputs), also in
 * `pumpwatch-agent simulate`'s CSV. Left out by default: as features they would make every field
 * reading unscorable (no sensor sends them), and a fault inside the training rows would make a
 * label a real input.
 */
const SKAB_LABELS = ['anomaly', 'changepoint'];
/** Column names that usually hold labels, not sensor values. */
const LABEL_LIKE = [...SKAB_LABELS, 'label', 'labels', 'is_anomaly'];

/** The table without the named feature columns. */
function withoutFeatures(table: CsvTable, names: readonly string[]): CsvTable {
  const keep = table.features.map((_, i) => i).filter((i) => !names.includes(table.features[i] as string));
  return { ...table, features: keep.map((i) => table.features[i] as string), rows: table.rows.map((r) => Float64Array.from(keep, (i) => r[i] as number)) };
}

/**
 * `frozen sensor after: Current 60, Flow 120 identical readings in a row; not judged (hold their
 * values by nature): Setpoint`: the model's pumpwatch.stuck_after as fit says it.
 */
export function stuckAfterLine(features: readonly string[], bounds: Readonly<Record<string, number>>): string {
  const judged = features.filter((f) => bounds[f] !== undefined);
  const not = features.filter((f) => bounds[f] === undefined);
  const after = judged.length > 0 ? `frozen sensor after: ${judged.map((f) => `${f} ${bounds[f]}`).join(', ')} identical readings in a row` : 'frozen sensor after: none (no feature is a noisy analog signal in the trained rows)';
  return not.length > 0 && judged.length > 0 ? `${after}; not judged (hold their values by nature): ${not.join(', ')}` : after;
}

/** `stopped when Current<0.5: 120 rows left out of training (100 stopped, 20 starting)`, `, 2 stopping` with rows held as a stop's beginning. */
export function stoppedLine(rule: string, n: StoppedLeftOut | undefined): string {
  const stopping = n?.stopping ?? 0;
  const left = n ? `${n.stopped + n.starting + stopping} rows left out of training (${n.stopped} stopped, ${n.starting} starting${stopping > 0 ? `, ${stopping} stopping` : ''})` : 'no count of rows left out';
  return `stopped when ${rule}: ${left}; the agent stores such readings unscored`;
}

export const fitCommand: Command = {
  name: 'fit',
  summary: 'train on a local CSV and write an ONNX model',
  help: HELP,
  async run(args, io) {
    const v = parseOptions('fit', args, {
      csv: { type: 'string' },
      out: { type: 'string' },
      'train-rows': { type: 'string' },
      source: { type: 'string' },
      exclude: { type: 'string' },
      algo: { type: 'string' },
      window: { type: 'string' },
      version: { type: 'string' },
      'keep-labels': { type: 'boolean' },
      'stopped-when': { type: 'string' },
      'after-start': { type: 'string' },
    });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const csv = requireString('fit', v.csv, '--csv');
    const out = requireString('fit', v.out, '--out');
    // The cloud commands' rules: a model fitted here may be registered and deployed under them.
    const source = v.source === undefined ? undefined : requireSource('fit', v.source);
    const version = v.version === undefined ? undefined : requireVersion('fit', v.version);
    const stoppedWhen = parseStoppedWhenOption(v['stopped-when'], v['after-start']);
    await checkWritable(out, 'the model');
    const keepLabels = v['keep-labels'] === true;
    const loaded = await loadCsv(csv, { exclude: optionalList(v.exclude) });
    const labels = keepLabels ? [] : loaded.features.filter((f) => SKAB_LABELS.includes(f));
    const table = labels.length > 0 ? withoutFeatures(loaded, labels) : loaded;
    if (table.features.length === 0) throw new CsvError(`CSV has no numeric column to use as a feature besides the label columns ${labels.join(', ')} (pass --keep-labels if they are sensors)`);
    const trainRows = optionalInteger(v['train-rows'], '--train-rows', 1);
    const result = fitTable(table, {
      trainRows,
      source,
      algorithm: typeof v.algo === 'string' ? v.algo : undefined,
      window: optionalInteger(v.window, '--window', 1, MAX_WINDOW),
      version,
      stoppedWhen: stoppedWhen ?? undefined,
      leaveOutStopped: true,
    });
    await writeAtomically(out, result.bytes, 'the model');
    const m = result.metadata;
    io.out(
      `wrote ${out} (${result.bytes.length} bytes): source "${m.source}", version ${m.version}, ${m.algorithm}, ` +
        `${m.features.length} features, window ${m.window}, threshold ${m.threshold}, ` +
        `trained on ${String(m.metrics.trainRows)} rows up to ${m.trainedAt}`,
    );
    if (m.stoppedWhen) io.out(stoppedLine(describeStoppedRule(m.stoppedWhen), m.metrics.stoppedRowsLeftOut as StoppedLeftOut));
    io.out(stuckAfterLine(m.features, m.stuckAfter ?? {}));
    for (const w of spanWarnings(m)) io.err(`warning: ${w}`);
    if (labels.length > 0) io.err(`note: label columns left out of the features (SKAB's labels, never model inputs): ${labels.join(', ')}; pass --keep-labels if they are sensors`);
    const anomalous = anomalousTrainRows(loaded, trainRows ?? loaded.rows.length);
    if (anomalous !== null) io.err(anomalous);
    // Kept on purpose with --keep-labels: not said again.
    const labelLike = m.features.filter((f) => LABEL_LIKE.includes(f.toLowerCase()) && !(keepLabels && SKAB_LABELS.includes(f)));
    if (labelLike.length > 0) io.err(`note: columns used as features look like labels: ${labelLike.join(', ')}; pass --exclude ${labelLike.join(',')} if they are`);
    const counters = findCounters({ ...table, rows: table.rows.slice(0, Number(m.metrics.trainRows)) }).map((c) => c.name);
    if (counters.length > 0) io.err(`note: features that only grow in the trained rows look like counters (running hours, totals): ${counters.join(', ')}; a model of their level flags every reading once they pass the trained values: pass --exclude ${counters.join(',')} if they are`);
    if (table.ignoredColumns.length > 0) io.err(`note: non-numeric columns left out: ${table.ignoredColumns.join(', ')}`);
    const constant = m.metrics.constantFeatures;
    // The model gives them no weight, but they are still among its inputs: the agent scores a
    // reading only when it has a value for every feature (trainer/train/warnings.ts says the same).
    if (Array.isArray(constant) && constant.length > 0) {
      io.err(`note: features that never vary in the trained rows get no weight in the model, but the agent still needs them in every reading of the pump: ${constant.join(', ')}; pass --exclude ${constant.join(',')} to leave them out`);
    }
    return 0;
  },
};

/**
 * The note on the rows labelled anomalous among those trained on, when the CSV has SKAB's `anomaly`
 * column (null without one). They are trained on as normal, as SKAB's protocol trains on its first
 * 400 rows whatever they are; said, so that a fit on `simulate`'s default random faults is not
 * taken for a fit on healthy readings.
 */
function anomalousTrainRows(table: CsvTable, trainRows: number): string | null {
  const col = table.features.indexOf('anomaly');
  if (col < 0) return null;
  let anomalous = 0;
  for (const row of table.rows.slice(0, trainRows)) if ((row[col] ?? 0) >= 0.5) anomalous++;
  const what = `note: ${anomalous} of the ${trainRows} rows trained on are labelled anomaly=1`;
  return anomalous === 0 ? what : `${what}: they are trained on as normal (as SKAB's protocol trains on its first rows whatever they are); pass --train-rows to stop before them, or fit on readings without faults (pumpwatch-agent simulate --faults none)`;
}

