/**
 * The part of preparing a range that follows loading, storage-free: the readings' targets (from
 * labels, or the agent's own marks), the stopped-when rule's marks, cleaning (data/clean.ts), and
 * the copies `train` and `drift` ask for. `prepareData` (prepare.ts) runs it on readings loaded
 * from Blob Storage; the agent runs it on its buffer rows to fit a pump's first model
 * (agent/first-model/), so both are cleaned by the one cleaning.
 */
import type { StoppedRule } from '../../inference/contract.js';
import type { LoadResult } from '../data/collect.js';
import { cleanSeries, type Cleaned, type Target } from '../data/clean.js';
import { stoppedRows, type StoppedRows } from '../data/stopped.js';
import { keepRaw, type RawReadings } from '../eval/as-agent.js';

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

/** How the loaded readings are cleaned (prepare.ts PrepareOptions adds how they are loaded). */
export interface CleanLoadedOptions {
  /** Keep a copy of the readings before cleaning, to score them as the agent would (train). */
  raw?: boolean;
  /** Keep a float64 copy of the readings before cleaning, maintenance rows left out, for drift (`uncleaned`). */
  uncleaned?: boolean;
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

export interface PreparedLoaded {
  loaded: LoadResult;
  cleaned: Cleaned;
  /** The readings as loaded, before cleaning (only when asked for: a copy of every value). */
  raw: RawReadings | null;
  /** The readings before stuck-run and outlier removal, for drift (only when asked for: a copy of every value). */
  uncleaned: Uncleaned | null;
  /** The rows the stopped-when rule left out (null without a rule). */
  stopped: Omit<StoppedRows, 'out' | 'restarts'> | null;
}

/**
 * Cleans loaded readings (in place: `loaded.series` holds cleaned values afterwards). `labelled`:
 * the target of each loaded row before the stopped-when rule (labels.ts labelTargets: `exclude`
 * for maintenance, `anomaly` for a confirmed fault, null for none).
 */
export function prepareLoaded(loaded: LoadResult, labelled: readonly Target[], options: CleanLoadedOptions = {}): PreparedLoaded {
  // As the agent scores them: each model there judges stops by its own rule.
  const raw = options.raw ? keepRaw(loaded.series, labelled) : null;
  const rule = options.stoppedWhen;
  const marks = rule ? stoppedRows(rule, loaded.series.features, loaded.series.timestamps, loaded.series.rows) : null;
  const targets: readonly Target[] = marks ? labelled.map((t, i) => (marks.out[i] === 1 ? 'stopped' : t)) : labelled;
  // cleanSeries cleans the rows in place: the copy is taken before.
  const kept = options.uncleaned ? loaded.series.rows.flatMap((row, i) => (targets[i] === 'exclude' || targets[i] === 'stopped' ? [] : [i])) : [];
  // One buffer, rows as views on it: a million rows of their own buffers cost far more than their values.
  const width = loaded.series.features.length;
  const flat = new Float64Array(kept.length * width);
  kept.forEach((i, k) => flat.set(loaded.series.rows[i] as Float64Array, k * width));
  const copies = kept.map((_, k) => flat.subarray(k * width, (k + 1) * width));
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
  return { loaded, cleaned, raw, uncleaned, stopped: marks && { stopped: marks.stopped, starting: marks.starting, stopping: marks.stopping } };
}
