/**
 * Counters: features that only grow (running hours, energy or volume totals, start counts). Every
 * algorithm models a feature's level, and a counter's level after the range is one no trained row
 * had: measured on a pump with running hours in hundredths, trained on 3 days, the default `mset`
 * model flagged 0 % of the next day's normal readings but 100 % a week later (its horizon scale
 * stretches over the trained counter's range, then the counter leaves it). `train` leaves them
 * out, names them in a warning and in `model.json` `data.counterFeatures`.
 *
 * The rule, on a feature's values in time order: it rose between at least COUNTER_MIN_RISES
 * consecutive values and fell between at most COUNTER_FALL_SHARE of the changes (a counter reset
 * by a technician, or rolled over). An analog sensor with noise falls about as often as it rises,
 * even while it drifts; a set point that stepped a few times has too few rises. A smooth reading
 * that really only rose over the whole range, with no noise (a slow transmitter on a warming
 * pump), would be taken for a counter: leave such a range short of training, or train on a
 * range in which it also falls.
 */
import type { Series } from './series.js';

export const COUNTER_MIN_RISES = 10;
export const COUNTER_FALL_SHARE = 0.01;

export interface CounterCheck {
  rises: number;
  falls: number;
}

/** Rises and falls between consecutive present values of feature `f` (rows in time order). */
export function changesOf(rows: readonly Float64Array[], f: number): CounterCheck {
  let rises = 0;
  let falls = 0;
  let last = NaN;
  for (const row of rows) {
    const v = row[f] as number;
    if (Number.isNaN(v)) continue;
    if (v > last) rises++;
    else if (v < last) falls++;
    last = v;
  }
  return { rises, falls };
}

export function isCounter(c: CounterCheck): boolean {
  return c.rises >= COUNTER_MIN_RISES && c.falls <= COUNTER_FALL_SHARE * (c.rises + c.falls);
}

/** The series' counters, in feature order, with their changes (for the warning). */
export function findCounters(series: Series): Array<{ name: string } & CounterCheck> {
  return series.features.flatMap((name, f) => {
    const c = changesOf(series.rows, f);
    return isCounter(c) ? [{ name, ...c }] : [];
  });
}

/**
 * The series without the features named; the same series when none is in it. The rows are
 * copied, unless `inPlace` and they are consecutive views of one buffer (as SeriesBuilder builds
 * them): then they are compacted in that buffer, with no second copy of a million rows, and every
 * other view on it (the caller's rows) holds shifted values afterwards.
 */
export function withoutFeatures(series: Series, names: readonly string[], inPlace = false): Series {
  const keep = series.features.map((_, f) => f).filter((f) => !names.includes(series.features[f] as string));
  if (keep.length === series.features.length) return series;
  const width = keep.length;
  const features = keep.map((f) => series.features[f] as string);
  const rows = inPlace && contiguous(series.rows, series.features.length) ? compact(series.rows, keep) : series.rows.map((row) => Float64Array.from(keep, (f) => row[f] as number));
  return { features, timestamps: series.timestamps, rows: rows.map((r) => r.subarray(0, width)) };
}

/** True when row i is the view [i·width, (i + 1)·width) of one buffer. */
function contiguous(rows: readonly Float64Array[], width: number): boolean {
  const first = rows[0];
  if (!first) return false;
  return rows.every((r, i) => r.buffer === first.buffer && r.byteOffset === first.byteOffset + i * width * 8 && r.length === width);
}

/** Moves each row's kept values to the front of the buffer, row after row (a value only ever moves towards the start). */
function compact(rows: readonly Float64Array[], keep: readonly number[]): Float64Array[] {
  const first = rows[0] as Float64Array;
  const data = new Float64Array(first.buffer, first.byteOffset, rows.length * first.length);
  const width = keep.length;
  rows.forEach((row, i) => keep.forEach((f, k) => (data[i * width + k] = row[f] as number)));
  return rows.map((_, i) => data.subarray(i * width, (i + 1) * width));
}
