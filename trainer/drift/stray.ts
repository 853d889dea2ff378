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
import { psiOf, type Baseline, type FeatureBaseline } from './baseline.js';

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
    sizes.push({ rows: size, blocks: Math.floor(rows.length / size), psi: {}, ks: {} });
  }
  features.forEach((name, f) => {
    const base = baseline[name];
    if (!base || sizes.length === 0) return;
    const places = placesOf(rows, f, base);
    for (const at of sizes) {
      const rest = 1 - at.rows / rows.length;
      let maxPsi = 0;
      let maxKs = 0;
      for (let b = 0; b < at.blocks; b++) {
        const { psi, ks } = blockStray(places, base, b * at.rows, (b + 1) * at.rows);
        maxPsi = Math.max(maxPsi, psi / rest ** 2);
        maxKs = Math.max(maxKs, ks / rest);
      }
      at.psi[name] = round(maxPsi);
      at.ks[name] = round(maxKs);
    }
  });
  return { version: DRIFT_NULL_VERSION, factor: STRAY_FACTOR, sizes };
}

/**
 * Where each training value of feature f lies against the baseline, found once (sorting every
 * block of every size took 11 s for 800 000 rows of 8 features): `below[i]`, how many of the P + 1
 * percentiles are < the value; `upTo[i]`, how many are ≤ it; `bin[i]`, its decile bin (as
 * binShares bins it: how many edges are < the value).
 */
interface Places {
  below: Uint8Array;
  upTo: Uint8Array;
  bin: Uint8Array;
}

function placesOf(rows: readonly ArrayLike<number>[], f: number, base: FeatureBaseline): Places {
  const n = rows.length;
  const out: Places = { below: new Uint8Array(n), upTo: new Uint8Array(n), bin: new Uint8Array(n) };
  for (let i = 0; i < n; i++) {
    const x = (rows[i] as ArrayLike<number>)[f] as number;
    out.below[i] = countBelow(base.percentiles, x, false);
    out.upTo[i] = countBelow(base.percentiles, x, true);
    out.bin[i] = countBelow(base.edges, x, false);
  }
  return out;
}

/** How many of the sorted `edges` are < x (≤ x with `orEqual`). */
function countBelow(edges: readonly number[], x: number, orEqual: boolean): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const e = edges[mid] as number;
    if (e < x || (orEqual && e === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * PSI (exact, as psiOf over binShares) and KS of rows [from, to) against the baseline. KS is
 * taken at the percentiles, both sides of each (the block's CDF against the baseline's there):
 * between two percentiles the baseline CDF rises by 1/P only, so this is at most 1/P (0.01)
 * below ksDistance over the sorted block (checked on smooth and on stepped values, set points).
 */
function blockStray(places: Places, base: FeatureBaseline, from: number, to: number): { psi: number; ks: number } {
  const last = base.percentiles.length - 1;
  const size = to - from;
  const below = new Uint32Array(last + 2);
  const upTo = new Uint32Array(last + 2);
  const bins = new Array<number>(base.shares.length).fill(0);
  for (let i = from; i < to; i++) {
    const b = places.bin[i] as number;
    const lo = places.below[i] as number;
    const hi = places.upTo[i] as number;
    below[lo] = (below[lo] as number) + 1;
    upTo[hi] = (upTo[hi] as number) + 1;
    bins[b] = (bins[b] as number) + 1;
  }
  // At percentile k: values < p_k are those with at most k percentiles ≤ them; values ≤ p_k, at most k percentiles < them.
  let ks = 0;
  let lessThan = 0;
  let atMost = 0;
  const p = base.percentiles;
  for (let k = 0; k <= last; k++) {
    lessThan += upTo[k] as number;
    atMost += below[k] as number;
    // A value held by percentiles a..b (a set point) is a step of the baseline CDF, from a/P just below it to b/P at it.
    if (k === 0 || (p[k - 1] as number) < (p[k] as number)) ks = Math.max(ks, Math.abs(lessThan / size - k / last));
    if (k === last || (p[k + 1] as number) > (p[k] as number)) ks = Math.max(ks, Math.abs(atMost / size - k / last));
  }
  return { psi: psiOf(base.shares, bins.map((c) => c / size), size), ks };
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}
