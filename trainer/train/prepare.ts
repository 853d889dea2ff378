/** Readings of a source and range, with the technicians' labels, cleaned: what train and drift start from. */
import type { ContainerClient } from '@azure/storage-blob';
import { readLabels, type LabelRecord } from '../../sync/labels-upload.js';
import { idleLimitOf } from '../cloud/blob-limits.js';
import { loadReadings, type LoadOptions } from '../data/load.js';
import { fromStorage, TrainerError } from '../errors.js';
import type { Progress } from '../progress.js';
import { labelUseOf, type LabelUse, type Withdrawn } from './labels-used.js';
import { prepareLoaded, type CleanLoadedOptions, type PreparedLoaded } from './prepare-loaded.js';
import { newestReadingsDay } from './sources.js';

export { removedIn, type Uncleaned } from './prepare-loaded.js';

/** A label blob that is not a valid label record: skipped, named in a warning, counted in model.json. */
export interface SkippedLabel {
  blob: string;
  reason: string;
}

/** The labels in Blob Storage of some sources, the withdrawals that took some out, and the blobs skipped as invalid. */
export interface LabelSet {
  labels: readonly LabelRecord[];
  withdrawals: readonly Withdrawn[];
  skipped: readonly SkippedLabel[];
}

/**
 * Reads the labels of `sources` once (readLabels: a blob whose metadata names another pump is
 * not downloaded, one that names none is read), collecting the blobs it skips instead of
 * dropping them unseen.
 */
export async function readLabelSet(container: ContainerClient, sources: readonly string[]): Promise<LabelSet> {
  const skipped: SkippedLabel[] = [];
  const withdrawals: Withdrawn[] = [];
  const labels = await fromStorage('reading the labels', () =>
    readLabels(container, undefined, {
      pumps: sources,
      onInvalid: (blob, reason) => skipped.push({ blob, reason }),
      onWithdrawal: (withdrawal, label) => withdrawals.push({ withdrawal, label }),
      idleMs: idleLimitOf(container),
    }),
  );
  return { labels, withdrawals, skipped };
}

/** The warning for a skipped label blob. */
export function skippedLabelWarning(s: SkippedLabel): string {
  return `label blob ${s.blob} skipped: not a valid label (${s.reason})`;
}

export interface Prepared extends PreparedLoaded {
  /** Labels of this source found in Blob Storage. */
  labels: number;
  /** This source's labels and withdrawals, and the readings of the range each decided (train records them). */
  labelUse: LabelUse;
  /** Label blobs read (this source's, and those whose metadata names no pump) skipped as invalid. */
  skippedLabels: readonly SkippedLabel[];
}

export interface PrepareOptions extends CleanLoadedOptions {
  /** Labels already read (train-all reads them once for every source). */
  labels?: LabelSet;
  /** What `train` leaves out of the features (--exclude, counters). */
  load?: LoadOptions;
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
  const withdrawals = set.withdrawals.filter((w) => w.withdrawal.pumpId === range.source);
  // Before cleaning: the readings as loaded are what each label and withdrawal is counted against.
  const { targets, use } = labelUseOf(range.source, labels, withdrawals, loaded.series.timestamps);
  progress.stage('cleaning');
  return { ...prepareLoaded(loaded, targets, options), labels: labels.length, labelUse: use, skippedLabels: set.skipped };
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
  const day = await fromStorage(`listing the readings of "${range.source}"`, () => newestReadingsDay(container, range.source));
  return day !== null && day >= range.to ? `; its newest readings (blobs dated ${new Date(day).toISOString().slice(0, 10)}, UTC) are after the range` : '';
}

/** PW_TRAINER_NO_DATA for a range that left no usable row (drift, evaluate). */
export async function noUsableRows(container: ContainerClient, range: { source: string; from: number; to: number }, readings: number): Promise<TrainerError> {
  const what = readings === 0 ? 'no readings' : `no usable readings (${readings} read, none left after cleaning)`;
  return new TrainerError('PW_TRAINER_NO_DATA', `${what} of "${range.source}" ${between(range)}${await newerReadingsNote(container, range)}`);
}
