/**
 * Cleaning before training and comparison, in this order, per feature unless stated:
 * 1. outliers: a value further than `outlierSpreads` robust spreads (1.4826·MAD, or the standard
 *    deviation when the MAD is 0) from the median is a glitch: it becomes missing;
 * 2. stuck sensors: a run of at least `stuckRows` identical readings of a feature that varies
 *    elsewhere: the run becomes missing (a frozen transmitter repeats its last value);
 * 3. missing values: carried forward from the last good reading for up to `maxCarryRows` rows,
 *    as the agent does live; a row still missing a value is dropped;
 * 4. maintenance: rows the technicians' labels mark as maintenance are dropped;
 * 5. gaps: a pause longer than `gapFactor` × the median interval (at least `minGapMs`) starts a
 *    new segment: windows never reach back across it.
 * Rows labelled as confirmed faults are never altered by 1–2 (they are the evidence).
 * The input rows are cleaned in place (no copy of a million rows); the result keeps views on them.
 */
import { GAP_FACTOR, GAP_MIN_MS } from '../../inference/contract.js';
import type { Series } from './series.js';

export type Target = 'anomaly' | 'normal' | 'exclude' | null;

export interface CleanOptions {
  outlierSpreads: number;
  stuckRows: number;
  maxCarryRows: number;
  gapFactor: number;
  minGapMs: number;
}

export const CLEAN_DEFAULTS: CleanOptions = { outlierSpreads: 10, stuckRows: 600, maxCarryRows: 60, gapFactor: GAP_FACTOR, minGapMs: GAP_MIN_MS };

export interface CleanStats {
  inputRows: number;
  outputRows: number;
  outliers: Record<string, number>;
  stuckValues: Record<string, number>;
  carriedValues: number;
  droppedMissing: number;
  droppedMaintenance: number;
  gaps: number;
  longestGapSeconds: number;
}

export interface Cleaned {
  series: Series;
  /** Label target per kept row. */
  targets: Target[];
  /** Indices of kept rows that start a segment (0 first). */
  segmentStarts: number[];
  stats: CleanStats;
}

export function cleanSeries(input: Series, targets: readonly Target[], options: CleanOptions = CLEAN_DEFAULTS): Cleaned {
  const rows = input.rows;
  const protectedRow = (i: number) => targets[i] === 'anomaly';
  const outliers: Record<string, number> = {};
  const stuckValues: Record<string, number> = {};
  input.features.forEach((name, f) => {
    outliers[name] = removeOutliers(rows, f, options.outlierSpreads, protectedRow);
    stuckValues[name] = removeStuckRuns(rows, f, options.stuckRows, protectedRow);
  });
  const carriedValues = carryForward(rows, options.maxCarryRows);
  const keep: number[] = [];
  let droppedMissing = 0;
  let droppedMaintenance = 0;
  rows.forEach((row, i) => {
    if (targets[i] === 'exclude') droppedMaintenance++;
    else if (row.some(Number.isNaN)) droppedMissing++;
    else keep.push(i);
  });
  const timestamps = keep.map((i) => input.timestamps[i] as number);
  const { starts, gaps, longest } = segments(timestamps, options);
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
      droppedMaintenance,
      gaps,
      longestGapSeconds: Math.round(longest / 1000),
    },
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

function removeOutliers(rows: Float64Array[], f: number, spreads: number, keep: (i: number) => boolean): number {
  const values = presentValues(rows, f);
  if (values.length < 3) return 0;
  const centre = median(values);
  let spread = 1.4826 * median(values.map((v) => Math.abs(v - centre)));
  // `values` is sorted now; the mean and deviation below do not depend on order.
  if (!(spread > 0)) {
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    spread = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  }
  if (!(spread > 0)) return 0;
  let removed = 0;
  rows.forEach((r, i) => {
    if (!keep(i) && Math.abs((r[f] as number) - centre) > spreads * spread) {
      r[f] = NaN;
      removed++;
    }
  });
  return removed;
}

function removeStuckRuns(rows: Float64Array[], f: number, minRun: number, keep: (i: number) => boolean): number {
  let first = NaN;
  let varies = false;
  for (const r of rows) {
    const v = r[f] as number;
    if (Number.isNaN(v)) continue;
    if (Number.isNaN(first)) first = v;
    else if (v !== first) {
      varies = true;
      break;
    }
  }
  if (!varies) return 0;
  let removed = 0;
  let start = 0;
  for (let i = 1; i <= rows.length; i++) {
    const same = i < rows.length && rows[i]?.[f] === rows[start]?.[f] && !Number.isNaN(rows[i]?.[f]);
    if (same) continue;
    if (i - start >= minRun && !Number.isNaN(rows[start]?.[f])) {
      for (let k = start; k < i; k++) {
        if (keep(k)) continue;
        (rows[k] as Float64Array)[f] = NaN;
        removed++;
      }
    }
    start = i;
  }
  return removed;
}

function carryForward(rows: Float64Array[], maxCarry: number): number {
  const n = rows[0]?.length ?? 0;
  let carried = 0;
  for (let f = 0; f < n; f++) {
    let last = NaN;
    let age = 0;
    for (const r of rows) {
      if (!Number.isNaN(r[f])) {
        last = r[f] as number;
        age = 0;
      } else if (!Number.isNaN(last) && age < maxCarry) {
        r[f] = last;
        age++;
        carried++;
      }
    }
  }
  return carried;
}

function segments(timestamps: readonly number[], options: CleanOptions): { starts: number[]; gaps: number; longest: number } {
  if (timestamps.length === 0) return { starts: [], gaps: 0, longest: 0 };
  const steps = Float64Array.from(timestamps.slice(1), (t, i) => t - (timestamps[i] as number));
  const limit = Math.max(options.minGapMs, options.gapFactor * (steps.length > 0 ? median(Float64Array.from(steps)) : 0));
  const starts = [0];
  let longest = 0;
  steps.forEach((s, i) => {
    longest = Math.max(longest, s);
    if (s > limit) starts.push(i + 1);
  });
  return { starts, gaps: starts.length - 1, longest };
}
