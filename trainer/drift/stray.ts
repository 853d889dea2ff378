/**
 * The empirical null of drift, stored with the baseline (model.json `driftNull`): how far the
 * model's own training rows, cut into consecutive blocks, stray from the whole baseline in PSI
 * and KS, per feature and block size.
 *
 * Why: the χ² and Kolmogorov laws behind compare.ts's raised thresholds hold for independent
 * rows. Pump readings 10 s apart are correlated over minutes to days (the operating point and
 * the temperatures wander slowly), so an hour of them holds far fewer independent values than
 * its 360 rows: an unchanged simulated pump was called drifted in 72 of 72 one-hour windows of
 * its own training days. A block of the training rows, in time order, strays from the whole by
 * what that wandering alone gives; recent data of about as many rows is judged against
 * max(the configured/raised threshold, STRAY_FACTOR × that stray). The factor leaves room for
 * the next days wandering a little further than the training days did (measured:
 * trainer/README.md, "Drift").
 *
 * Block sizes: 50 rows (5 per decile: PSI's least), then ×4, up to half the training rows (at
 * least 2 blocks of a size). Recent data of n rows takes the largest block size ≤ n (the smallest
 * when n is below it): smaller blocks stray more, so that errs on the side of calling less drift
 * for n between two sizes.
 *
 * A block is part of the baseline it is compared with, which hides part of its stray: with s of
 * the N rows in the block, F_block − F_whole = (1 − s/N)·(F_block − F_rest) exactly for the CDFs
 * (KS), and PSI, a squared distance, shrinks by about (1 − s/N)². Each block's KS is divided by
 * (1 − s/N) and its PSI by (1 − s/N)²: the stray of a block against the rest, as new data is
 * against the whole. Without it a block of half the rows showed half its stray.
 */
import { binShares, type Baseline } from './baseline.js';
import { ksDistance, psiOf } from './compare.js';

/** The version of the `driftNull` document in model.json (absent from records written before it). */
export const DRIFT_NULL_VERSION = 1;
/** Recent data drifts only beyond this many times the training rows' own largest stray. */
export const STRAY_FACTOR = 1.5;
export const FIRST_BLOCK_ROWS = 50;
const BLOCK_GROWTH = 4;
const MIN_BLOCKS = 2;

export interface StrayAt {
  /** Rows per block. */
  rows: number;
  /** How many blocks of that size the training rows held. */
  blocks: number;
  /** Per feature, the largest PSI and KS of a block against the whole baseline. */
  psi: Record<string, number>;
  ks: Record<string, number>;
}

export interface DriftNull {
  version: typeof DRIFT_NULL_VERSION;
  factor: number;
  /** Ascending block sizes; empty when the training rows were too few for 4 blocks of 50. */
  sizes: StrayAt[];
}

/** The empirical null of `rows` (in time order), the rows `baseline` was made of. */
export function driftNullOf(baseline: Baseline, features: readonly string[], rows: readonly ArrayLike<number>[]): DriftNull {
  const sizes: StrayAt[] = [];
  for (let size = FIRST_BLOCK_ROWS; size * MIN_BLOCKS <= rows.length; size *= BLOCK_GROWTH) {
    const blocks = Math.floor(rows.length / size);
    const rest = 1 - size / rows.length;
    const psi: Record<string, number> = {};
    const ks: Record<string, number> = {};
    features.forEach((name, f) => {
      const base = baseline[name];
      if (!base) return;
      let maxPsi = 0;
      let maxKs = 0;
      const values = new Float64Array(size);
      for (let b = 0; b < blocks; b++) {
        for (let i = 0; i < size; i++) values[i] = (rows[b * size + i] as ArrayLike<number>)[f] as number;
        values.sort();
        maxPsi = Math.max(maxPsi, psiOf(base.shares, binShares(values, base.edges), size) / rest ** 2);
        maxKs = Math.max(maxKs, ksDistance(values, base.percentiles) / rest);
      }
      psi[name] = round(maxPsi);
      ks[name] = round(maxKs);
    });
    sizes.push({ rows: size, blocks, psi, ks });
  }
  return { version: DRIFT_NULL_VERSION, factor: STRAY_FACTOR, sizes };
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}
