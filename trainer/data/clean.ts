/**
 * Cleaning before training and comparison, in this order, per feature unless stated:
 * 1. outliers: a value further than `outlierSpreads` robust spreads from the median is a glitch:
 *    it becomes missing. The spread is the larger of 1.4826·MAD and the range of the central 98 %
 *    of the values / 4.6527 (both equal the standard deviation of normal data; the standard
 *    deviation when both are 0). The second keeps every state that holds more than 1 % of the
 *    readings: a pump stopped for most of the range and then running has a MAD of its stopped
 *    readings, and its running readings are not glitches;
 * 2. stuck sensors: a run of at least `stuckRows` identical readings of a feature that changes
 *    between most consecutive readings elsewhere (at least half of them, outside such runs):
 *    the run becomes missing (a frozen transmitter repeats its last value). A feature that holds
 *    its value by nature (a set point, an on/off status, a slow transmitter polled fast) is left
 *    alone;
 * 3. missing values: carried forward from the last good reading for up to `maxCarryRows` rows,
 *    as the agent does live; a row still missing a value is dropped. Nothing is carried past a
 *    row a stopped-when rule calls stopped or starting (`carryBreaks`), nor across a pause in the
 *    readings (the rule of 5, on every reading loaded): the agent's window starts again after a
 *    stop and after a pause, so a stopped pump's values (0 l/min) or a running one's from before
 *    the stop or the pause never stand in for a value missing after it;
 * 4. maintenance: rows the technicians' labels mark as maintenance are dropped, and so are rows
 *    a stopped-when rule calls stopped or starting (target `stopped`: see data/stopped.ts); the
 *    row after such a stop starts a new segment, however short the stop (the agent starts its
 *    window again after a stop too);
 * 5. gaps: a pause by the agent's own rule (pauseStarts in inference/contract.ts: longer than
 *    GAP_FACTOR × the median of the pump's last GAP_INTERVALS intervals since the last pause, and
 *    than GAP_MIN_MS), judged on every reading loaded as the agent judges every reading it
 *    receives, starts a new segment at the first row kept after it: windows never reach back
 *    across it. A hole that rows dropped by 3–4 leave starts one too when it is a pause by the
 *    same rule among the rows kept (counted apart as `gapsByCleaning`: the readings themselves had
 *    none there).
 * Rows labelled as confirmed faults are never altered by 1–2 (they are the evidence).
 * The input rows are cleaned in place (no copy of a million rows); the result keeps views on them.
 */
import { MAX_CARRY_READINGS, pauseStarts, type StuckAfter } from '../../inference/contract.js';
import { quantileSorted } from '../linalg/stats.js';
import { noisyAnalog, runProfile, stuckAfterOf } from './runs.js';
import type { Series } from './series.js';

export type Target = 'anomaly' | 'normal' | 'exclude' | 'stopped' | null;

export interface CleanOptions {
  outlierSpreads: number;
  stuckRows: number;
  maxCarryRows: number;
}

/** The pause rule is not an option: it is the agent's (pauseStarts in inference/contract.ts). */
export const CLEAN_DEFAULTS: CleanOptions = { outlierSpreads: 10, stuckRows: 600, maxCarryRows: MAX_CARRY_READINGS };

export interface CleanStats {
  inputRows: number;
  outputRows: number;
  outliers: Record<string, number>;
  stuckValues: Record<string, number>;
  carriedValues: number;
  droppedMissing: number;
  /** Of the rows dropped for missing values, how many lacked each feature (a row may lack several). */
  missingByFeature: Record<string, number>;
  droppedMaintenance: number;
  /** Rows a stopped-when rule called stopped or starting (target `stopped`); absent when the run had no rule. */
  droppedStopped?: number;
  /** Segment starts: pauses in the readings, or holes that dropped rows left (`gapsByCleaning` of them). */
  gaps: number;
  /** Gaps with no pause in the readings themselves: made only by rows dropped above (missing values, maintenance). */
  gapsByCleaning: number;
  longestGapSeconds: number;
}

export interface Cleaned {
  series: Series;
  /** Label target per kept row. */
  targets: Target[];
  /** Indices of kept rows that start a segment (0 first). */
  segmentStarts: number[];
  stats: CleanStats;
  /**
   * The frozen-sensor bounds a model trained on these rows carries (`pumpwatch.stuck_after`, see
   * data/runs.ts), judged on the rows before missing values were carried forward; absent from a
   * view of them (rowsWith).
   */
  stuckAfter?: StuckAfter;
  /**
   * Only when asked (`markRemoved`): per feature, 1 for each INPUT row whose value steps 1–2
   * removed (outlier or stuck run), whatever became of the row after. Drift reads it: a frozen
   * sensor's readings are dropped here, and what is left looks unchanged.
   */
  removed?: Uint8Array[];
}

/**
 * `passive`: features kept in the data only for another model (the live one, when `train` leaves
 * them out of the challenger; those the model `evaluate` scores does not use). They are left as
 * the agent receives them: never cleaned of outliers or stuck runs, carried forward like the
 * others, and a row still missing one after that is kept with it missing (NaN): it takes no row
 * from the model being trained, whose rows are then the same whatever model is live. A model
 * that needs such a feature cannot score that row: `rowsWith` leaves those rows out of a
 * comparison.
 * `carryBreaks`: 1 for each row no value is carried past (data/stopped.ts StoppedRows.restarts).
 */
export function cleanSeries(
  input: Series,
  targets: readonly Target[],
  options: CleanOptions = CLEAN_DEFAULTS,
  passive: readonly string[] = [],
  markRemoved = false,
  carryBreaks: ArrayLike<number> | null = null,
): Cleaned {
  const rows = input.rows;
  const protectedRow = (i: number) => targets[i] === 'anomaly';
  const outliers: Record<string, number> = {};
  const stuckValues: Record<string, number> = {};
  const active = input.features.map((name) => !passive.includes(name));
  const removed = markRemoved ? input.features.map(() => new Uint8Array(rows.length)) : undefined;
  input.features.forEach((name, f) => {
    if (!active[f]) return;
    outliers[name] = removeOutliers(rows, f, options.outlierSpreads, protectedRow, removed?.[f]);
    stuckValues[name] = removeStuckRuns(rows, f, options.stuckRows, protectedRow, removed?.[f]);
  });
  // Before values are carried forward (which makes runs of its own), on the rows training keeps.
  const notTrained = (i: number): boolean => targets[i] === 'stopped' || targets[i] === 'exclude';
  const stuckAfter = stuckAfterOf(input.features, rows, options.stuckRows, notTrained, (f) => active[f] === true);
  // The agent judges a pause on every reading it receives, stopped and maintenance ones included.
  const pauses = pauseStarts(input.timestamps);
  const carriedValues = carryForward(rows, options.maxCarryRows, active, carryBreaks, pauses);
  const keep: number[] = [];
  let droppedMissing = 0;
  let droppedMaintenance = 0;
  let droppedStopped = 0;
  /** Positions in `keep` of the first kept row after a stop. */
  const afterStops: number[] = [];
  let stopBefore = false;
  const missingByFeature: Record<string, number> = Object.fromEntries(input.features.filter((_, f) => active[f]).map((name) => [name, 0]));
  rows.forEach((row, i) => {
    if (targets[i] === 'stopped') {
      droppedStopped++;
      stopBefore = true;
    } else if (targets[i] === 'exclude') droppedMaintenance++;
    else if (row.some((v, f) => active[f] && Number.isNaN(v))) {
      droppedMissing++;
      input.features.forEach((name, f) => {
        if (active[f] && Number.isNaN(row[f])) missingByFeature[name] = (missingByFeature[name] as number) + 1;
      });
    } else {
      if (stopBefore && keep.length > 0) afterStops.push(keep.length);
      stopBefore = false;
      keep.push(i);
    }
  });
  const timestamps = keep.map((i) => input.timestamps[i] as number);
  const afterPauses = firstAtOrAfter(pauses, keep);
  const starts = union(afterPauses, pauseStarts(timestamps), afterStops);
  const gaps = starts.length - 1;
  const paused = new Set(afterPauses);
  const gapsByCleaning = starts.filter((k) => k > 0 && !paused.has(k)).length;
  let longest = 0;
  for (let k = 1; k < timestamps.length; k++) longest = Math.max(longest, (timestamps[k] as number) - (timestamps[k - 1] as number));
  return {
    series: { features: [...input.features], timestamps, rows: keep.map((i) => rows[i] as Float64Array) },
    targets: keep.map((i) => targets[i] ?? null),
    segmentStarts: starts,
    stats: {
      inputRows: input.rows.length,
      outputRows: keep.length,
      outliers,
      stuckValues,
      carriedValues,
      droppedMissing,
      missingByFeature,
      droppedMaintenance,
      ...(droppedStopped > 0 ? { droppedStopped } : {}),
      gaps,
      gapsByCleaning,
      longestGapSeconds: Math.round(longest / 1000),
    },
    stuckAfter,
    ...(removed ? { removed } : {}),
  };
}

/** The rows of a cleaned series that a comparison scores, and which cleaned row each one is. */
export interface RowsView {
  view: Cleaned;
  /** `index[k]`: the row of the cleaned series that row k of the view is; null when the view is the cleaned series itself. */
  index: number[] | null;
}

/**
 * The cleaned rows that have a value for every one of `features` (passive features, which
 * cleaning leaves missing rather than dropping their rows), for a model that needs them. Their
 * segments are the cleaned series' (each starts at the first row of the view at or after one of
 * its starts) and, as when cleaning drops rows, the hole left-out rows make when it is a pause by
 * the agent's rule among the rows of the view. The cleaned series itself when no row lacks one.
 */
export function rowsWith(cleaned: Cleaned, features: readonly string[]): RowsView {
  const columns = features.map((name) => cleaned.series.features.indexOf(name)).filter((f) => f >= 0);
  const complete = (row: Float64Array) => columns.every((f) => !Number.isNaN(row[f]));
  if (cleaned.series.rows.every(complete)) return { view: cleaned, index: null };
  const index = cleaned.series.rows.flatMap((row, i) => (complete(row) ? [i] : []));
  const timestamps = index.map((i) => cleaned.series.timestamps[i] as number);
  return {
    view: {
      series: { features: cleaned.series.features, timestamps, rows: index.map((i) => cleaned.series.rows[i] as Float64Array) },
      targets: index.map((i) => cleaned.targets[i] ?? null),
      segmentStarts: union(firstAtOrAfter(cleaned.segmentStarts, index), pauseStarts(timestamps)),
      stats: cleaned.stats,
    },
    index,
  };
}

/** Median; sorts `values` in place. */
export function median(values: Float64Array): number {
  if (values.length === 0) return NaN;
  const s = values.sort();
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function presentValues(rows: readonly Float64Array[], f: number): Float64Array {
  let count = 0;
  for (const r of rows) if (!Number.isNaN(r[f])) count++;
  const out = new Float64Array(count);
  let k = 0;
  for (const r of rows) if (!Number.isNaN(r[f])) out[k++] = r[f] as number;
  return out;
}

function removeOutliers(rows: Float64Array[], f: number, spreads: number, keep: (i: number) => boolean, mark?: Uint8Array): number {
  const values = presentValues(rows, f);
  if (values.length < 3) return 0;
  const centre = median(values);
  // `values` is sorted now (median sorts in place); the mean and deviation below do not depend on order.
  const central = (quantileSorted(values, 1 - CENTRAL_TAIL) - quantileSorted(values, CENTRAL_TAIL)) / CENTRAL_RANGE_SD;
  let spread = Math.max(1.4826 * median(values.map((v) => Math.abs(v - centre))), central);
  if (!(spread > 0)) {
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    spread = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  }
  if (!(spread > 0)) return 0;
  let removed = 0;
  rows.forEach((r, i) => {
    if (!keep(i) && Math.abs((r[f] as number) - centre) > spreads * spread) {
      r[f] = NaN;
      if (mark) mark[i] = 1;
      removed++;
    }
  });
  return removed;
}

/** Share of each tail left out of the central range of the outlier spread (1 %: the central 98 %). */
const CENTRAL_TAIL = 0.01;
/** Width of the central 98 % of a normal distribution in standard deviations: 2·Φ⁻¹(0.99). */
const CENTRAL_RANGE_SD = 4.6527;
function removeStuckRuns(rows: Float64Array[], f: number, minRun: number, keep: (i: number) => boolean, mark?: Uint8Array): number {
  // Outside the long runs, does the value change between consecutive readings most of the time?
  const profile = runProfile(rows, f, minRun);
  if (profile.long.length === 0 || !noisyAnalog(profile)) return 0;
  let removed = 0;
  for (const [a, b] of profile.long) {
    for (let k = a; k < b; k++) {
      if (keep(k)) continue;
      (rows[k] as Float64Array)[f] = NaN;
      if (mark) mark[k] = 1;
      removed++;
    }
  }
  return removed;
}

/**
 * Carries every feature forward; counts the values carried in the `counted` ones (the stats describe
 * the cleaned features, whatever passive ones ride along). Nothing is carried into or past a row of
 * `breaks` (a stop: left out of training, and the agent's window starts again after it), nor into
 * a row of `pauses` (ascending: the first reading after a pause, where the agent's window starts
 * again) or past it but for the row's own values.
 */
function carryForward(rows: Float64Array[], maxCarry: number, counted: readonly boolean[], breaks: ArrayLike<number> | null, pauses: readonly number[]): number {
  const n = rows[0]?.length ?? 0;
  let carried = 0;
  for (let f = 0; f < n; f++) {
    let last = NaN;
    let age = 0;
    let next = 0; // the next of `pauses`
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i] as Float64Array;
      if (pauses[next] === i) {
        last = NaN;
        next++;
      }
      if (breaks !== null && breaks[i] === 1) last = NaN;
      else if (!Number.isNaN(r[f])) {
        last = r[f] as number;
        age = 0;
      } else if (!Number.isNaN(last) && age < maxCarry) {
        r[f] = last;
        age++;
        if (counted[f]) carried++;
      }
    }
  }
  return carried;
}

/**
 * For each of `starts` (ascending indices of a series), the position in `kept` (ascending indices
 * of the rows kept from it) of the first row kept at or after it; each position once.
 */
function firstAtOrAfter(starts: readonly number[], kept: readonly number[]): number[] {
  const out: number[] = [];
  let k = 0;
  for (const s of starts) {
    while (k < kept.length && (kept[k] as number) < s) k++;
    if (k === kept.length) break;
    if (out.at(-1) !== k) out.push(k);
  }
  return out;
}

/** The ascending union of lists of indices. */
function union(...lists: readonly (readonly number[])[]): number[] {
  return [...new Set(lists.flat())].sort((a, b) => a - b);
}
