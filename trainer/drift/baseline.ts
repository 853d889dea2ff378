/**
 * Baseline feature statistics, stored in model.json with every model: what the model's training
 * data looked like, so later data can be compared with it (drift.ts). Per feature: count, mean,
 * standard deviation, range, the decile edges with the share of training values in each bin
 * (for PSI) and the 101 percentiles (for the Kolmogorov–Smirnov distance).
 */
import { quantileSorted } from '../linalg/stats.js';

export interface FeatureBaseline {
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  /** The 9 inner decile edges; bin k holds values in (edges[k-1], edges[k]]. */
  edges: number[];
  /** Share of training values in each of the 10 bins. */
  shares: number[];
  /** Percentiles 0, 1, …, 100. */
  percentiles: number[];
}

export type Baseline = Record<string, FeatureBaseline>;

export function baselineOf(features: readonly string[], rows: readonly ArrayLike<number>[]): Baseline {
  const out: Baseline = {};
  features.forEach((name, f) => {
    const values = new Float64Array(rows.length);
    for (let i = 0; i < rows.length; i++) values[i] = (rows[i] as ArrayLike<number>)[f] as number;
    values.sort();
    out[name] = featureBaseline(values);
  });
  return out;
}

/** Statistics of already sorted values. */
export function featureBaseline(sorted: Float64Array): FeatureBaseline {
  const n = sorted.length;
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const std = Math.sqrt(sorted.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, n - 1));
  const edges = Array.from({ length: 9 }, (_, k) => quantileSorted(sorted, (k + 1) / 10));
  // Edges and percentiles at full precision: recent values are binned and compared against them,
  // and a value the training data held (a set point, a status level) must fall where it fell then.
  // Rounded to 8 digits, 230.10000610351562 (a float32 reading) became 230.10001: the same constant
  // reading later lay below every percentile, KS 1, drift.
  return {
    count: n,
    mean: round(mean),
    std: round(std),
    min: n > 0 ? (sorted[0] as number) : NaN,
    max: n > 0 ? (sorted[n - 1] as number) : NaN,
    edges,
    shares: binShares(sorted, edges).map(round),
    percentiles: Array.from({ length: 101 }, (_, k) => quantileSorted(sorted, k / 100)),
  };
}

/** Share of (sorted) values in each bin (edges[k-1], edges[k]]; 10 bins for 9 edges. */
export function binShares(sorted: Float64Array, edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  let bin = 0;
  for (const v of sorted) {
    while (bin < edges.length && v > (edges[bin] as number)) bin++;
    counts[bin] = (counts[bin] as number) + 1;
  }
  return counts.map((c) => c / Math.max(1, sorted.length));
}

function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(8)) : x;
}

/** Floor of a share in PSI's logarithm (an empty bin without a row count). */
const SHARE_FLOOR = 1e-4;

/**
 * PSI of recent shares against baseline shares. `n`, the recent rows behind the shares: a bin
 * they leave empty counts as half a row, or as its baseline share when that is smaller (see
 * compare.ts's header); without it, as 1e-4.
 */
export function psiOf(base: readonly number[], recent: readonly number[], n?: number): number {
  return base.reduce((sum, b, k) => {
    const empty = n !== undefined && n > 0 ? Math.min(0.5 / n, b) : 0;
    const p = Math.max(SHARE_FLOOR, recent[k] ?? 0, empty);
    const q = Math.max(SHARE_FLOOR, b);
    return sum + (p - q) * Math.log(p / q);
  }, 0);
}
