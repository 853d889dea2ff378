/**
 * Fit: training rows → algorithm → ONNX model with all metadata, of the lowest contract it needs
 * (contractFor: 1 without rules, 2 naming them in `pumpwatch.requires`).
 * Reproducible: the same rows and options give the same bytes. `trained_at` is the last training
 * timestamp (not the wall clock) and the default version is derived from a hash of the model's own
 * bytes (modelVersion), so one version name always means one model.
 */
import { createHash } from 'node:crypto';
import { packageRoot } from '../lib/package-root.js';
import { packageVersion } from '../lib/build-info.js';
import { contractFor, MAX_FEATURES, metadataToProps, nameProblem, quoteName, trainingSpan, type ModelMetadata, type StoppedRule, type StuckAfter } from '../inference/contract.js';
import type { Algorithm, TrainedModel } from './algorithms/algorithm.js';
import { ALGORITHM_NAMES, DEFAULT_ALGORITHM, findAlgorithm } from './algorithms/index.js';
import type { CsvTable } from './csv.js';
import { CLEAN_DEFAULTS } from './data/clean.js';
import { stuckAfterOf } from './data/runs.js';
import { checkStoppedRule, stoppedRows } from './data/stopped.js';
import { FitError, UsageError } from './errors.js';
import { encodeModel } from './onnx/model.js';
import { segmentBounds } from './windows.js';

/**
 * The ONNX producer_version: package.json's version, not the build id (lib/build-info.ts), which
 * would give every build other model bytes, so another version name, for the same data.
 */
export const TRAINER_VERSION = packageVersion(packageRoot());
export const DEFAULT_SOURCE = 'default';

export interface FitOptions {
  /** Train on the first N rows (default: all). */
  trainRows?: number;
  /** Data source (pump) id written to the metadata (default "default"). */
  source?: string;
  /** Algorithm name as `--algo` takes it (default: DEFAULT_ALGORITHM, "mset"). */
  algorithm?: string;
  /** Readings per window (default: the algorithm's). */
  window?: number;
  /** Model version (default: derived from the data and options). */
  version?: string;
  /** Put before the version derived from the data (the agent's first models: `gw-`); ignored with `version`. */
  versionPrefix?: string;
  /** More entries of the model's `metrics` (the agent's first models: `origin: "gateway"`, what was left out). */
  metrics?: Record<string, unknown>;
  /** The stopped-when rule written into the model's metadata (see inference/contract.ts StoppedRule). */
  stoppedWhen?: StoppedRule;
  /**
   * Leave the training rows the rule calls stopped or starting out here (`fit`'s CSV); `train`
   * has left them out in cleaning already and gives their count in `stoppedLeftOut`.
   */
  leaveOutStopped?: boolean;
  stoppedLeftOut?: StoppedLeftOut;
  /**
   * The frozen-sensor bounds to write (`pumpwatch.stuck_after`): `train` gives those its cleaning
   * found on the range's rows before carrying missing values forward; by default they are found on
   * the training rows (data/runs.ts stuckAfterOf: `fit`'s CSV rows are as read).
   */
  stuckAfter?: StuckAfter;
}

/** Training rows a stopped-when rule left out: `stopped`, `starting` (within its warm-up after a stop), `stopping` (held as a stop's beginning; absent in models fitted before it). */
export interface StoppedLeftOut {
  stopped: number;
  starting: number;
  stopping?: number;
}

export interface FitResult {
  bytes: Uint8Array;
  metadata: ModelMetadata;
  model: TrainedModel;
}

/** The algorithm `--algo` names; a usage error for a name that is none. */
export function algorithmNamed(name: string): Algorithm {
  const algorithm = findAlgorithm(name);
  if (algorithm === undefined) throw new UsageError(`unknown algorithm "${name}" (known: ${ALGORITHM_NAMES.join(', ')})`);
  return algorithm;
}

/**
 * Fits on the first `trainRows` rows of a table. `segmentStarts` (from `train`'s cleaning: pauses
 * and rows left out) keeps windows from spanning a gap; a CSV given to `fit` is one run.
 */
export function fitTable(table: CsvTable & { segmentStarts?: readonly number[] }, options: FitOptions = {}): FitResult {
  checkFeatures(table.features);
  const algoName = options.algorithm ?? DEFAULT_ALGORITHM;
  const algorithm = algorithmNamed(algoName);
  const window = options.window ?? algorithm.defaultWindow;
  if (!Number.isInteger(window) || window < 1) throw new UsageError(`window must be an integer >= 1, got ${window}`);
  const trainRows = options.trainRows ?? table.rows.length;
  if (!Number.isInteger(trainRows) || trainRows < 1) throw new UsageError(`train rows must be an integer >= 1, got ${trainRows}`);
  if (trainRows > table.rows.length) throw new FitError(`${trainRows} training rows asked for, but the data has only ${table.rows.length} rows`);
  const rule = options.stoppedWhen;
  if (rule) checkStoppedRule(rule, table.features);
  const kept = rule && options.leaveOutStopped ? leaveOutStopped(table, trainRows, rule) : null;
  const rows = kept?.rows ?? table.rows.slice(0, trainRows);
  const timestamps = kept?.timestamps ?? table.timestamps.slice(0, trainRows);
  const stoppedLeftOut = kept?.leftOut ?? options.stoppedLeftOut;
  const runs = segmentBounds(kept?.segmentStarts ?? table.segmentStarts, rows.length);
  const segmentStarts = runs.map(([from]) => from);
  const model = algorithm.fit({ features: table.features, rows, window, segmentStarts });
  // Checked after the algorithm's own minimum of rows. A window longer than every run (windows start
  // again after a pause, in training as in the agent): every training window was padded with its
  // run's first row, and the agent would score nothing until that many readings came.
  const longest = runs.reduce((a, [from, to]) => Math.max(a, to - from), 0);
  if (window > longest) {
    const what = runs.length === 1 ? `the ${rows.length} training rows` : `the longest run of the training rows (${longest} rows between pauses or left-out rows)`;
    throw new FitError(`window ${window} is longer than ${what}: no training row has a whole window of readings`, '--window');
  }
  const source = options.source ?? DEFAULT_SOURCE;
  const stuckAfter = modelStuckAfter(options.stuckAfter ?? stuckAfterOf(table.features, rows, CLEAN_DEFAULTS.stuckRows), model.features);
  const first = timestamps.reduce((a, b) => Math.min(a, b));
  const last = timestamps.reduce((a, b) => Math.max(a, b));
  const trainedAt = new Date(last).toISOString();
  const metadata: ModelMetadata = {
    // An agent that does not know a rule must refuse the model rather than score without it.
    contract: contractFor({ stoppedWhen: rule, stuckAfter }),
    features: [...model.features],
    window: model.window,
    threshold: model.threshold,
    source,
    version: options.version ?? '',
    trainedAt,
    algorithm: model.algorithm,
    metrics: { ...model.metrics, trainFrom: new Date(first).toISOString(), trainTo: trainedAt, ...(stoppedLeftOut ? { stoppedRowsLeftOut: stoppedLeftOut } : {}), ...options.metrics },
    ...(rule ? { stoppedWhen: rule } : {}),
    ...(stuckAfter ? { stuckAfter } : {}),
  };
  const encode = (meta: ModelMetadata) =>
    encodeModel(model.toOnnxGraph(), {
      metadata: metadataToProps(meta),
      producerVersion: TRAINER_VERSION,
      docString: `PumpWatch ${model.algorithm} anomaly model for source "${source}"`,
    });
  if (options.version === undefined) metadata.version = (options.versionPrefix ?? '') + modelVersion(trainedAt, encode(metadata));
  const bytes = encode(metadata);
  return { bytes, metadata, model };
}

/** The bounds of the model's own features, in their order; undefined when none is a noisy analog signal. */
function modelStuckAfter(all: StuckAfter, features: readonly string[]): StuckAfter | undefined {
  const own = features.flatMap((f): Array<[string, number]> => (all[f] === undefined ? [] : [[f, all[f]]]));
  return own.length === 0 ? undefined : Object.fromEntries(own);
}

/**
 * The first `trainRows` rows of a CSV without those `rule` calls stopped or starting; a hole they
 * leave starts a new run (windows never span a stop, in training as in the agent).
 */
function leaveOutStopped(table: CsvTable, trainRows: number, rule: StoppedRule): { rows: Float64Array[]; timestamps: number[]; segmentStarts: number[]; leftOut: StoppedLeftOut } {
  const all = table.rows.slice(0, trainRows);
  const ts = table.timestamps.slice(0, trainRows);
  const marks = stoppedRows(rule, table.features, ts, all);
  const rows: Float64Array[] = [];
  const timestamps: number[] = [];
  const segmentStarts: number[] = [];
  let previous = -1;
  all.forEach((row, i) => {
    if (marks.out[i] === 1) return;
    if (previous !== i - 1) segmentStarts.push(rows.length);
    rows.push(row);
    timestamps.push(ts[i] as number);
    previous = i;
  });
  if (rows.length === 0) throw new FitError(`every one of the ${trainRows} training rows is stopped, starting or stopping by the stopped-when rule (${marks.stopped} stopped, ${marks.starting} starting, ${marks.stopping} stopping): nothing to train on`);
  return { rows, timestamps, segmentStarts, leftOut: { stopped: marks.stopped, starting: marks.starting, stopping: marks.stopping } };
}

/**
 * The agent matches a model's features to a reading's values by name, within the reading's limits
 * (inference/contract.ts): a model with more features, or a feature no reading can carry, would be
 * activated and never score, and the agent refuses it. Refused before fitting, with the way out.
 */
export function checkFeatures(features: readonly string[]): void {
  const bad = features.flatMap((name) => {
    const problem = nameProblem(name);
    return problem === null ? [] : [`${quoteName(name)} ${problem}`];
  });
  if (bad.length > 0) {
    throw new UsageError(`feature names the agent cannot take: ${bad.join('; ')}; rename them or leave them out with --exclude`);
  }
  if (features.length > MAX_FEATURES) {
    throw new UsageError(
      `${features.length} features, but a model takes at most ${MAX_FEATURES} (a reading carries at most ${MAX_FEATURES} values): leave ${features.length - MAX_FEATURES} or more out with --exclude`,
    );
  }
}

/**
 * Warns when the model was trained on less than a day of readings (`fit` and `train` both say so).
 * The span is read from the model's own metadata with `trainingSpan`, as the technician's page
 * reads it, so the trainer and the page cannot disagree about which models are short.
 * `blindSpot` names a check that cannot show the resulting false alarms (`train`'s comparison).
 */
export function spanWarnings(meta: Pick<ModelMetadata, 'metrics'>, blindSpot?: string): string[] {
  const span = trainingSpan(meta);
  if (!span) return ['the model carries no training span (metrics.trainFrom/trainTo): whether it has seen a whole day of readings is unknown'];
  if (!span.short) return [];
  // Rounded down, so that a span just short of a day never reads "24.0 h".
  const ms = span.spanMs;
  const shown = ms < 3_600_000 ? `${Math.floor(ms / 60_000)} min` : `${(Math.floor(ms / 360_000) / 10).toFixed(1)} h`;
  return [
    `the trained rows span ${shown}, less than a day: the model has not seen this pump's whole daily cycle, and normal ` +
      `variation it has not seen raises false alarms${blindSpot ? ` that ${blindSpot} cannot show` : ''}; train on a longer range`,
  ];
}

/**
 * `YYYYMMDD-<12 hex>`: sorts by training date; the hex is the sha256 of the model's bytes encoded
 * with an empty version (`unnamed`). So one name is one model: a run that makes other bytes from the
 * same data (other options, or a trainer that writes the model differently, as contract 2 did for
 * models with a stopped-when rule) gets another name, where a hash of the data and options gave it
 * the same name and the registry refused it (PW_TRAINER_REGISTRY_INVALID, "registered as another
 * model"); the same bytes, from any build, the same name (a rerun is idempotent).
 */
function modelVersion(trainedAt: string, unnamed: Uint8Array): string {
  return `${trainedAt.slice(0, 10).replaceAll('-', '')}-${createHash('sha256').update(unnamed).digest('hex').slice(0, 12)}`;
}
