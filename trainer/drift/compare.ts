/**
 * Drift of recent data against a model's baseline, per feature:
 * - PSI (population stability index) over the baseline's decile bins:
 *   Σ (recent − base)·ln(recent / base), shares floored at 1e-4 so an empty bin stays finite.
 *   Rule of thumb: < 0.1 stable, 0.1–0.25 moderate, > 0.25 a major shift;
 * - KS: the largest distance between the recent empirical CDF and the baseline CDF (linear
 *   between the stored percentiles).
 * A feature drifts when its PSI or its KS distance exceeds the threshold given.
 */
import { binShares, type Baseline } from './baseline.js';

export interface DriftThresholds {
  psi: number;
  ks: number;
}

export const DRIFT_DEFAULTS: DriftThresholds = { psi: 0.25, ks: 0.3 };
const SHARE_FLOOR = 1e-4;

export interface FeatureDrift {
  feature: string;
  psi: number;
  ks: number;
  baselineMean: number;
  recentMean: number;
  recentCount: number;
  drifted: boolean;
}

export interface DriftReport {
  features: FeatureDrift[];
  drifted: boolean;
  thresholds: DriftThresholds;
  /** Baseline features absent from the recent data (counted as drift). */
  missing: string[];
}

export function compareWithBaseline(baseline: Baseline, features: readonly string[], rows: readonly ArrayLike<number>[], thresholds = DRIFT_DEFAULTS): DriftReport {
  const missing = Object.keys(baseline).filter((f) => !features.includes(f));
  const result = Object.entries(baseline)
    .filter(([name]) => features.includes(name))
    .map(([name, base]) => {
      const f = features.indexOf(name);
      const sorted = new Float64Array(rows.length);
      for (let i = 0; i < rows.length; i++) sorted[i] = (rows[i] as ArrayLike<number>)[f] as number;
      sorted.sort();
      const psi = psiOf(base.shares, binShares(sorted, base.edges));
      const ks = ksDistance(sorted, base.percentiles);
      const recentMean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
      return {
        feature: name,
        psi: round(psi),
        ks: round(ks),
        baselineMean: base.mean,
        recentMean: round(recentMean),
        recentCount: sorted.length,
        drifted: psi > thresholds.psi || ks > thresholds.ks,
      };
    });
  return { features: result, drifted: missing.length > 0 || result.some((r) => r.drifted), thresholds, missing };
}

export function psiOf(base: readonly number[], recent: readonly number[]): number {
  return base.reduce((sum, b, k) => {
    const p = Math.max(SHARE_FLOOR, recent[k] ?? 0);
    const q = Math.max(SHARE_FLOOR, b);
    return sum + (p - q) * Math.log(p / q);
  }, 0);
}

/** Baseline CDF at x, linear between percentiles (0 below the minimum, 1 above the maximum). */
export function baselineCdf(percentiles: readonly number[], x: number): number {
  const last = percentiles.length - 1;
  if (last < 1 || x < (percentiles[0] as number)) return 0;
  if (x >= (percentiles[last] as number)) return 1;
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((percentiles[mid] as number) <= x) lo = mid;
    else hi = mid;
  }
  const a = percentiles[lo] as number;
  const b = percentiles[hi] as number;
  return (lo + (b > a ? (x - a) / (b - a) : 1)) / last;
}

/** Baseline CDF just below x (its left limit: a point mass at x is not included). */
export function baselineCdfLeft(percentiles: readonly number[], x: number): number {
  const last = percentiles.length - 1;
  if (last < 1 || x <= (percentiles[0] as number)) return 0;
  if (x > (percentiles[last] as number)) return 1;
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((percentiles[mid] as number) < x) lo = mid;
    else hi = mid;
  }
  const a = percentiles[lo] as number;
  const b = percentiles[hi] as number;
  return (lo + (x - a) / (b - a)) / last;
}

/** sup |F_recent − F_baseline| over the recent values (sorted), both sides of each step. */
export function ksDistance(sorted: Float64Array, percentiles: readonly number[]): number {
  const n = sorted.length;
  let d = 0;
  for (let i = 0; i < n; ) {
    const x = sorted[i] as number;
    let j = i;
    while (j + 1 < n && sorted[j + 1] === x) j++;
    d = Math.max(d, Math.abs((j + 1) / n - baselineCdf(percentiles, x)), Math.abs(i / n - baselineCdfLeft(percentiles, x)));
    i = j + 1;
  }
  return d;
}

function round(x: number): number {
  return Number(x.toFixed(4));
}
