/** Readings of a source and range, with the technicians' labels, cleaned: what train and drift start from. */
import type { ContainerClient } from '@azure/storage-blob';
import { labelTargets, readLabels, type LabelRecord } from '../../sync/labels-upload.js';
import type { StoppedRule } from '../../inference/contract.js';
import { cleanSeries, type Cleaned, type Target } from '../data/clean.js';
import { stoppedRows, type StoppedRows } from '../data/stopped.js';
import { keepRaw, type RawReadings } from '../eval/as-agent.js';
import { idleLimitOf } from '../cloud/blob-limits.js';
import { loadReadings, type LoadOptions, type LoadResult } from '../data/load.js';
import { fromStorage, TrainerError } from '../errors.js';
import type { Progress } from '../progress.js';
import { newestReadingsDay } from './sources.js';

/** A label blob that is not a valid label record: skipped, named in a warning, counted in model.json. */
export interface SkippedLabel {
  blob: string;
  reason: string;
}

/** The labels in Blob Storage of some sources, and the blobs skipped as invalid. */
export interface LabelSet {
  labels: readonly LabelRecord[];
  skipped: readonly SkippedLabel[];
}

/**
 * Reads the labels of `sources` once (readLabels: a blob whose metadata names another pump is
 * not downloaded, one that names none is read), collecting the blobs it skips instead of
 * dropping them unseen.
 */
export async function readLabelSet(container: ContainerClient, sources: readonly string[]): Promise<LabelSet> {
  const skipped: SkippedLabel[] = [];
  const labels = await fromStorage('reading the labels', () =>
    readLabels(container, undefined, { pumps: sources, onInvalid: (blob, reason) => skipped.push({ blob, reason }), idleMs: idleLimitOf(container) }),
  );
  return { labels, skipped };
}

/** The warning for a skipped label blob. */
export function skippedLabelWarning(s: SkippedLabel): string {
  return `label blob ${s.blob} skipped: not a valid label (${s.reason})`;
}

export interface Prepared {
  loaded: LoadResult;
  cleaned: Cleaned;
  /** Labels of this source found in Blob Storage. */
  labels: number;
  /** Label blobs read (this source's, and those whose metadata names no pump) skipped as invalid. */
  skippedLabels: readonly SkippedLabel[];
  /** The readings as loaded, before cleaning (only when asked for: a copy of every value). */
  raw: RawReadings | null;
  /** The readings before stuck-run and outlier removal, for drift (only when asked for: a copy of every value). */
  uncleaned: Uncleaned | null;
  /** The rows the stopped-when rule left out (null without a rule). */
  stopped: Omit<StoppedRows, 'out' | 'restarts'> | null;
}

/**
 * The readings of a range as drift judges them: every reading but those inside maintenance
 * labels, with the values the agent received (no stuck-run or outlier removal, nothing carried
 * forward: a value not sent is NaN, and drift skips it), in time order. Cleaning drops a frozen
 * or dead sensor's readings before training; judged after it, such a sensor looked unchanged.
 */
export interface Uncleaned {
  features: readonly string[];
  timestamps: number[];
  /** Float64 copies, as the baseline was computed (a float32 copy moves a set point off its percentile). */
  rows: Float64Array[];
  /** Per feature, 1 for each row whose value cleaning removes as a stuck run or an outlier. */
  removed: Uint8Array[];
}

/** Per feature, how many values of rows [from, to) of `u` cleaning removes (stuck runs, outliers). */
export function removedIn(u: Uncleaned, from = 0, to = u.rows.length): Record<string, number> {
  const out: Record<string, number> = {};
  u.features.forEach((name, f) => {
    const marks = u.removed[f] as Uint8Array;
    let n = 0;
    for (let i = from; i < to; i++) n += marks[i] as number;
    out[name] = n;
  });
  return out;
}

export interface PrepareOptions {
  /** Labels already read (train-all reads them once for every source). */
  labels?: LabelSet;
  /** Keep a copy of the readings before cleaning, to score them as the agent would (train). */
  raw?: boolean;
  /** Keep a float64 copy of the readings before cleaning, maintenance rows left out, for drift (`uncleaned`). */
  uncleaned?: boolean;
  /** What `train` leaves out of the features (--exclude, counters). */
  load?: LoadOptions;
  /**
   * The features of the one model scored (`evaluate`): the others are passive in cleaning (never
   * cleaned, and a row missing one is kept). Without it, the features the loader kept only for
   * the live model (`leftOutButKept`) are.
   */
  watched?: readonly string[];
  /**
   * A stopped-when rule: the rows it calls stopped, starting or stopping (judged on the values as loaded,
   * as the agent judges them) are left out of cleaning's output and of `uncleaned`, as
   * maintenance rows are, a segment starts after each stop, and no missing value is filled in
   * across a stop (cleanSeries `carryBreaks`).
   */
  stoppedWhen?: StoppedRule;
}

/**
 * How `train` and `evaluate` load a range for a comparison: counters left out (a model of a
 * counter's level flags every reading once it passes the trained values), `exclude` left out, and
 * the features of the models to score (`keep`) kept whatever those rules say.
 */
export function comparisonLoad(exclude: readonly string[] | undefined, keep: readonly string[]): LoadOptions {
  return { exclude, leaveOutCounters: true, keep };
}

export async function prepareData(
  container: ContainerClient,
  range: { source: string; from: number; to: number },
  progress: Progress,
  options: PrepareOptions = {},
): Promise<Prepared> {
  progress.stage('reading blobs');
  const loaded = await fromStorage(`reading the readings of "${range.source}"`, () =>
    loadReadings(container, { pumpId: range.source, from: range.from, to: range.to }, (n) => progress.update(n), options.load),
  );
  progress.stage('reading labels');
  const set = options.labels ?? (await readLabelSet(container, [range.source]));
  const labels = set.labels.filter((l) => l.pumpId === range.source);
  const labelled = labelTargets(labels, range.source, loaded.series.timestamps);
  // As the agent scores them: each model there judges stops by its own rule.
  const raw = options.raw ? keepRaw(loaded.series, labelled) : null;
  const rule = options.stoppedWhen;
  const marks = rule ? stoppedRows(rule, loaded.series.features, loaded.series.timestamps, loaded.series.rows) : null;
  const targets: Target[] = marks ? labelled.map((t, i) => (marks.out[i] === 1 ? 'stopped' : t)) : labelled;
  // cleanSeries cleans the rows in place: the copy is taken before.
  const kept = options.uncleaned ? loaded.series.rows.flatMap((row, i) => (targets[i] === 'exclude' || targets[i] === 'stopped' ? [] : [i])) : [];
  // One buffer, rows as views on it: a million rows of their own buffers cost far more than their values.
  const width = loaded.series.features.length;
  const flat = new Float64Array(kept.length * width);
  kept.forEach((i, k) => flat.set(loaded.series.rows[i] as Float64Array, k * width));
  const copies = kept.map((_, k) => flat.subarray(k * width, (k + 1) * width));
  progress.stage('cleaning');
  const watched = options.watched;
  const passive = watched === undefined ? loaded.leftOutButKept : loaded.series.features.filter((name) => !watched.includes(name));
  const cleaned = cleanSeries(loaded.series, targets, undefined, passive, options.uncleaned === true, marks?.restarts ?? null);
  const uncleaned: Uncleaned | null = options.uncleaned
    ? {
        features: loaded.series.features,
        timestamps: kept.map((i) => loaded.series.timestamps[i] as number),
        rows: copies,
        removed: (cleaned.removed ?? []).map((marks) => Uint8Array.from(kept, (i) => marks[i] as number)),
      }
    : null;
  return { loaded, cleaned, labels: labels.length, skippedLabels: set.skipped, raw, uncleaned, stopped: marks && { stopped: marks.stopped, starting: marks.starting, stopping: marks.stopping } };
}

/** A range as messages name it: `between <from> and <to>` (ISO 8601, UTC; `to` excluded). */
export function between(range: { from: number; to: number }): string {
  return `between ${new Date(range.from).toISOString()} and ${new Date(range.to).toISOString()}`;
}

/**
 * For a message about a range with too little data: `; its newest readings (blobs dated
 * YYYY-MM-DD, UTC) are after the range` when the source's newest blobs are dated on or after the
 * end of the range (a blob is dated by the UTC day of its first reading, so that reading is after
 * the range); '' otherwise. Costs three small listings, on the failure path only.
 */
export async function newerReadingsNote(container: ContainerClient, range: { source: string; to: number }): Promise<string> {
  const day = await newestReadingsDay(container, range.source);
  return day !== null && day >= range.to ? `; its newest readings (blobs dated ${new Date(day).toISOString().slice(0, 10)}, UTC) are after the range` : '';
}

/** PW_TRAINER_NO_DATA for a range that left no usable row (drift, evaluate). */
export async function noUsableRows(container: ContainerClient, range: { source: string; from: number; to: number }, readings: number): Promise<TrainerError> {
  const what = readings === 0 ? 'no readings' : `no usable readings (${readings} read, none left after cleaning)`;
  return new TrainerError('PW_TRAINER_NO_DATA', `${what} of "${range.source}" ${between(range)}${await newerReadingsNote(container, range)}`);
}
