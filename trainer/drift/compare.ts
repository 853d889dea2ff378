/**
 * Drift of recent data against a model's baseline, per feature:
 * - PSI (population stability index) over the baseline's B bins (deciles: B = 10):
 *   Σ (recent − base)·ln(recent / base). Rule of thumb: < 0.1 stable, 0.1–0.25 moderate,
 *   > 0.25 a major shift. Baseline shares are floored at 1e-4 so an empty bin stays finite; a bin
 *   that the n recent rows leave empty counts as half a row (0.5/n), or as its baseline share when
 *   that is smaller (n rows cannot tell a share below about 1/n from none), and at least 1e-4.
 *   With the 1e-4 floor alone every empty decile added 0.69 whatever n, and 50 rows of unchanged
 *   data leave one decile empty 5 % of the time; from 5 000 rows on both floors are the same;
 * - KS: the largest distance between the recent empirical CDF and the baseline CDF (linear
 *   between the stored percentiles).
 *
 * When a value counts as drift. Both measures are noisy on few rows, on either side: the n recent
 * rows, and the N training rows the baseline's deciles and percentiles were estimated from (N is
 * the baseline's `count`). Under no drift the two-sample laws hold with the effective row count
 * n_eff = n·N/(n + N) (n when N is far larger; n/2 when N = n). So the configured thresholds
 * (--psi, --ks) are raised to what unchanged data stays below 99.9 % of the time, never lowered:
 * - KS drifts above max(--ks, 1.95/√n_eff): 1.95 is the 0.999 point of the Kolmogorov
 *   distribution (√n_eff·KS of two samples of the same law). Below 4 rows that is above 1: KS
 *   cannot call drift, and neither can it where the training rows' own stray (below) raises the
 *   threshold to 1 or more (a model trained on a short range): the output says so per feature
 *   (ksCannotDriftNotes), rather than print a threshold no KS can exceed as if it judged.
 * - PSI is the symmetric Kullback–Leibler divergence; under no drift n_eff·PSI is about Pearson's
 *   χ² with B − 1 degrees of freedom, so PSI drifts above max(--psi, χ²_{B−1}(0.999)/n_eff)
 *   (27.88/n_eff for deciles; chi-square.ts). That approximation needs about 5 rows expected per
 *   bin on both sides: with fewer than 5·B rows (50) in the recent data or in the baseline, PSI
 *   is not judged at all, and KS alone decides.
 * Counting n alone, as before, a live model trained on about 100 rows called unchanged data drift
 * in 14–52 % of runs. A baseline without a usable count (a hand-made record: the trainer has
 * always stored it) is judged by n alone. With the defaults (0.25, 0.3) and a large baseline the
 * configured thresholds are the ones used from 112 rows on (PSI; KS from 43); against a baseline
 * of 1000 rows from 126 (KS 45), and of 200 rows from 253 (KS 54); against one of fewer than 112
 * rows the PSI threshold stays above 0.25 at any n. A baseline feature missing from the recent
 * data counts as drift, and so does a feature of the recent data that the baseline lacks (a sensor
 * fitted since, or renamed): the live model cannot watch it, and a retrain would use it, so
 * `train --if-drifted` must not call that range unchanged. The caller passes the features a
 * retrain would take (train's loader has left out the sparse, stale, excluded and counter ones).
 *
 * Those laws assume independent rows; readings seconds apart are not (stray.ts). With the
 * baseline's empirical null (model.json `driftNull`) each threshold is also at least
 * STRAY_FACTOR × how far blocks of the training rows strayed from the baseline; without it (a
 * record written before it) as above, and the caller warns. And a feature with more than
 * MAX_REMOVED_SHARE of its values in stuck runs or outliers (`removed`, counted by the caller on
 * the readings before cleaning) drifted, whatever PSI and KS say.
 *
 * PSI saturates: n rows all in one bin give at most psiReachable (8.28 for deciles from 5 000 rows,
 * 7.78 at 2 880, 6.51 at 720), however far they moved, and the stray factor can raise a threshold
 * above that (10.39 seen for a temperature trained on 8 h): PSI then cannot call drift, and the
 * output says "PSI not judged" instead of "ok" (psiCannotDrift), as for KS at or above 1. So that
 * a large shift is drift whatever the thresholds, a feature whose recent median lies outside the
 * baseline's [min..max] (every value the model was trained on) by more than that range's width
 * drifted: the trained-range rule (outsideTrainedRange).
 */
import { binShares, psiOf, type Baseline, type FeatureBaseline } from './baseline.js';
import { chiSquareQuantile } from './chi-square.js';
import type { DriftNull, StrayAt } from './stray.js';

export { psiOf };

export interface DriftThresholds {
  psi: number;
  ks: number;
}

export const DRIFT_DEFAULTS: DriftThresholds = { psi: 0.25, ks: 0.3 };
/** The share of unchanged data that stays below the effective thresholds. */
export const DRIFT_CONFIDENCE = 0.999;
/** The Kolmogorov distribution's DRIFT_CONFIDENCE point: P(√n·KS > 1.95) = 0.001 under no drift. */
export const KS_CRITICAL = 1.95;
/** Rows expected per bin below which PSI's χ² law does not hold, and PSI is not judged. */
export const MIN_ROWS_PER_BIN = 5;

/**
 * A feature whose values cleaning would remove as stuck runs or outliers in more than this share
 * of the compared rows drifted, whatever PSI and KS say: a frozen or dead transmitter (cleaning
 * drops its readings before training, so the statistics of what is left look unchanged).
 */
export const MAX_REMOVED_SHARE = 0.05;

/**
 * Rows below which the trained-range rule does not judge: the median of 1 or 2 values is those
 * values, and one wild reading is the stuck/outlier rule's to judge, not a shift of the pump.
 */
export const MIN_RANGE_ROWS = 5;

/** The thresholds a feature was judged by: the configured ones, raised for few rows and by the training rows' own stray. */
export interface EffectiveThresholds {
  /** PSI above which it drifted; null when PSI was not judged (fewer than 5 rows per bin). */
  psi: number | null;
  ks: number;
}

/** How unchanged data was modelled: the training rows' own stray stored with the baseline, or independent rows only (a model.json without `driftNull`). */
export type NullModel = 'empirical' | 'independent-rows';

export interface FeatureDrift {
  feature: string;
  psi: number;
  ks: number;
  baselineMean: number;
  recentMean: number;
  /** n: the recent rows compared. */
  recentCount: number;
  /** N: the training rows the baseline was made of; null when the baseline has no usable count (judged by n alone). */
  baselineCount: number | null;
  drifted: boolean;
  /** B: the baseline's bins (PSI's χ² has B − 1 degrees of freedom). */
  bins: number;
  effective: EffectiveThresholds;
  /** STRAY_FACTOR × the largest PSI and KS of a block of `blockRows` training rows against the baseline (stray.ts); null without an empirical null. */
  stray: { psi: number; ks: number; blockRows: number; factor: number } | null;
  /** Values of the compared rows that cleaning removed as stuck runs or outliers (0 when not told). */
  removed: number;
  /** The largest PSI the recent rows could reach against the baseline's bins: all of them in one bin (psiReachable). */
  psiMax: number;
  /** The median of the recent values (NaN without any). */
  recentMedian: number;
  /** Why it drifted: `PSI`, `KS`, `41.2 % stuck/outlier`, `median -9.8 far outside the trained 19.9..21.3`; empty when it did not. */
  reasons: string[];
  /** Set when it did not drift and neither PSI nor KS could call drift on these rows: why, and from how many rows they could (verdict.ts). */
  notJudged: NotJudged | null;
  /** When KS cannot call drift on these rows (ksCannotDrift): the fewest recent rows from which it could, null when no number of rows could (the baseline). */
  ksFrom?: number | null;
}

/**
 * Why a feature was not judged. `recent-rows`: PSI or KS can call drift from `from` recent rows
 * on (a longer window). `training-range`: at no window length, because the model's own training
 * rows strayed from its baseline further than PSI and KS can reach (the model was trained on too
 * short a range). `baseline-rows`: at no window length, because the baseline was made of too few
 * rows (PSI needs 5 per bin, KS 1.95/√N below 1).
 */
export interface NotJudged {
  cause: 'recent-rows' | 'training-range' | 'baseline-rows';
  /** The fewest recent rows from which PSI or KS can call drift (cause `recent-rows`); null otherwise. */
  from: number | null;
}

/** The overall verdict: `inconclusive` when nothing judged drifted but some features were not judged. */
export type DriftVerdict = 'drift' | 'inconclusive' | 'no drift';

export interface DriftReport {
  features: FeatureDrift[];
  drifted: boolean;
  /**
   * `drift` when anything drifted (whatever was not judged), `no drift` only when every feature
   * was judged, `inconclusive` otherwise: a window that no rule could judge is not a clean one.
   */
  verdict: DriftVerdict;
  /** As configured; each feature's `effective` says what it was judged by. */
  thresholds: DriftThresholds;
  /** Baseline features absent from the recent data (counted as drift). */
  missing: string[];
  /** Features of the recent data that the baseline lacks (a sensor added or renamed; counted as drift). */
  added: string[];
  /** n: the recent rows compared. */
  rows: number;
  /** `independent-rows`: the baseline has no empirical null (a model.json written before it): judged as before, and the caller warns. */
  nullModel: NullModel;
}

/** What compareWithBaseline knows beyond the rows. */
export interface CompareExtras {
  /** The baseline's empirical null (model.json `driftNull`); null or absent: independent rows only. */
  driftNull?: DriftNull | null;
  /** Per feature, how many of the compared rows' values cleaning removes as stuck runs or outliers. */
  removed?: Readonly<Record<string, number>>;
}

const chiSquare999 = new Map<number, number>();

/**
 * The thresholds n recent rows are judged by, against a baseline of `bins` bins made of
 * `baselineRows` rows (N; see the header). Without N (undefined, or not a positive count), by n
 * alone, as against an exact baseline.
 */
export function effectiveThresholds(configured: DriftThresholds, n: number, bins: number, baselineRows?: number): EffectiveThresholds {
  const df = Math.max(1, bins - 1);
  let chi = chiSquare999.get(df);
  if (chi === undefined) {
    chi = chiSquareQuantile(DRIFT_CONFIDENCE, df);
    chiSquare999.set(df, chi);
  }
  const rows = Math.max(1, n);
  const N = usableCount(baselineRows);
  const nEff = N === null ? rows : (rows * N) / (rows + N);
  const needed = MIN_ROWS_PER_BIN * bins;
  return {
    psi: n >= needed && (N === null || N >= needed) ? Math.max(configured.psi, chi / nEff) : null,
    ks: Math.max(configured.ks, KS_CRITICAL / Math.sqrt(nEff)),
  };
}

/** A baseline's row count as a number of rows, or null when it is none (absent, zero, not finite). */
function usableCount(count: number | undefined): number | null {
  return count !== undefined && Number.isFinite(count) && count >= 1 ? count : null;
}

/** `leftOut`: features in the rows only to score a model that has them (loader's leftOutButKept), never new. */
export function compareWithBaseline(
  baseline: Baseline,
  features: readonly string[],
  rows: readonly ArrayLike<number>[],
  thresholds = DRIFT_DEFAULTS,
  leftOut: readonly string[] = [],
  extras: CompareExtras = {},
): DriftReport {
  const nul = extras.driftNull ?? null;
  const missing = Object.keys(baseline).filter((f) => !features.includes(f));
  const added = features.filter((f) => !Object.hasOwn(baseline, f) && !leftOut.includes(f));
  const result = Object.entries(baseline)
    .filter(([name]) => features.includes(name))
    .map(([name, base]): FeatureDrift => {
      const f = features.indexOf(name);
      // The rows with a value: a feature kept only for a model that has it (cleaning's passive ones) may be missing (NaN) in some.
      let present = 0;
      for (const row of rows) if (!Number.isNaN(row[f])) present++;
      const sorted = new Float64Array(present);
      let k = 0;
      for (const row of rows) if (!Number.isNaN(row[f])) sorted[k++] = row[f] as number;
      sorted.sort();
      const psi = psiOf(base.shares, binShares(sorted, base.edges), sorted.length);
      const ks = ksDistance(sorted, base.percentiles);
      const recentMean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
      const baselineCount = usableCount(base.count);
      const { effective, stray } = judgedBy(thresholds, base, baselineCount, nul, name, sorted.length);
      const removed = extras.removed?.[name] ?? 0;
      const recentMedian = sorted.length > 0 ? medianSorted(sorted) : NaN;
      const reasons = [
        ...(effective.psi !== null && psi > effective.psi ? ['PSI'] : []),
        ...(ks > effective.ks ? ['KS'] : []),
        ...(sorted.length > 0 && removed / sorted.length > MAX_REMOVED_SHARE ? [`${((100 * removed) / sorted.length).toFixed(1)} % stuck/outlier`] : []),
        ...(sorted.length >= MIN_RANGE_ROWS && outsideTrainedRange(recentMedian, base.min, base.max) ? [`median ${round(recentMedian)} far outside the trained ${round(base.min)}..${round(base.max)}`] : []),
      ];
      const psiMax = round(psiReachable(base.shares, sorted.length));
      const can = canCallDrift(effective, psiMax);
      // Whether PSI or KS could call drift on n recent rows, with the training rows' stray (`nul`) or without it (null).
      const judgeWith = (stray: DriftNull | null) => (n: number) => canCallDrift(judgedBy(thresholds, base, baselineCount, stray, name, n).effective, psiReachable(base.shares, n));
      const judge = judgeWith(nul);
      return {
        feature: name,
        psi: round(psi),
        ks: round(ks),
        baselineMean: base.mean,
        recentMean: round(recentMean),
        recentCount: sorted.length,
        baselineCount,
        drifted: reasons.length > 0,
        bins: base.shares.length,
        effective,
        stray,
        removed,
        psiMax,
        recentMedian: round(recentMedian),
        reasons,
        notJudged: reasons.length > 0 || can.psi || can.ks ? null : notJudgedWhy(judge, judgeWith(null), strayBounds(nul, name), MIN_ROWS_PER_BIN * base.shares.length),
        ...(can.ks ? {} : { ksFrom: fewestRows((n) => judge(n).ks, strayBounds(nul, name)) }),
      };
    });
  const drifted = missing.length > 0 || added.length > 0 || result.some((r) => r.drifted);
  return {
    features: result,
    drifted,
    verdict: drifted ? 'drift' : result.some((r) => r.notJudged !== null) ? 'inconclusive' : 'no drift',
    thresholds,
    missing,
    added,
    rows: rows.length,
    nullModel: nul === null ? 'independent-rows' : 'empirical',
  };
}

/** The thresholds n recent rows of a feature are judged by: the configured ones raised for few rows (effectiveThresholds) and by the training rows' stray. */
function judgedBy(thresholds: DriftThresholds, base: FeatureBaseline, baselineCount: number | null, nul: DriftNull | null, name: string, n: number): { effective: EffectiveThresholds; stray: FeatureDrift['stray'] } {
  const raised = effectiveThresholds(thresholds, n, base.shares.length, baselineCount ?? undefined);
  const stray = nul === null ? null : strayFor(nul, name, n);
  const effective = stray === null ? raised : { psi: raised.psi === null ? null : Math.max(raised.psi, stray.psi), ks: Math.max(raised.ks, stray.ks) };
  return { effective, stray };
}

/** Whether PSI and KS can call drift at all by these thresholds: a threshold no data can cross (or PSI not judged) cannot. */
function canCallDrift(effective: EffectiveThresholds, psiMax: number): { psi: boolean; ks: boolean } {
  return { psi: effective.psi !== null && effective.psi < psiMax, ks: effective.ks < KS_MAX };
}

/** Beyond this many recent rows nothing changes that could make a feature judged (n_eff is near N, the stray's largest block long passed). */
const MAX_ROWS_TO_JUDGE = 100_000_000;

/** The row counts at which a feature's stray steps (strayFor takes the largest block ≤ n): between them the thresholds only fall as n grows. */
function strayBounds(nul: DriftNull | null, name: string): number[] {
  return nul === null ? [] : nul.sizes.filter((s) => s.psi[name] !== undefined && s.ks[name] !== undefined).map((s) => s.rows);
}

/**
 * The fewest recent rows from which `can` holds, null when it holds at no count up to
 * MAX_ROWS_TO_JUDGE. Between the bounds (PSI's 5 rows per bin, the stray's block sizes) the
 * thresholds fall and what PSI can reach rises as n grows, so `can` turns true at most once in
 * each stretch: a binary search per stretch.
 */
function fewestRows(can: (n: number) => boolean, bounds: readonly number[], extra: readonly number[] = []): number | null {
  const starts = [...new Set([1, ...bounds, ...extra])].filter((b) => b >= 1 && b <= MAX_ROWS_TO_JUDGE).sort((a, b) => a - b);
  for (let i = 0; i < starts.length; i++) {
    let lo = starts[i] as number;
    let hi = (starts[i + 1] ?? MAX_ROWS_TO_JUDGE + 1) - 1;
    if (!can(hi)) continue;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (can(mid)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  return null;
}

/**
 * Why a feature neither PSI nor KS could judge was not judged: a longer recent window would do
 * (and from how many rows), or none would, because of the training rows' stray (judged again
 * without it: `withoutStray`) or the baseline's few rows.
 */
function notJudgedWhy(judge: (n: number) => { psi: boolean; ks: boolean }, withoutStray: (n: number) => { psi: boolean; ks: boolean }, strays: readonly number[], psiFrom: number): NotJudged {
  const either = (f: typeof judge) => (n: number) => {
    const c = f(n);
    return c.psi || c.ks;
  };
  // PSI's 5 rows per bin (psiFrom) is a step too, where PSI starts to be judged.
  const from = fewestRows(either(judge), strays, [psiFrom]);
  if (from !== null) return { cause: 'recent-rows', from };
  return { cause: fewestRows(either(withoutStray), [], [psiFrom]) !== null ? 'training-range' : 'baseline-rows', from: null };
}

/**
 * The largest PSI n rows can reach against baseline shares: every row in the one bin that gives
 * the most (PSI saturates there, whatever the size of the shift: 8.28 for deciles from 5 000 rows
 * on, 7.78 at 2 880, 6.51 at 720). A threshold at or above it cannot be crossed by any data.
 */
export function psiReachable(shares: readonly number[], n: number): number {
  return Math.max(0, ...shares.map((_, k) => psiOf(shares, shares.map((__, j) => (j === k ? 1 : 0)), n)));
}

/**
 * True when the centre of the recent values lies far outside everything the model was trained
 * on: drift whatever PSI and KS can say (both saturate, and their thresholds, raised by the
 * training rows' stray, can lie beyond reach). The median, not one value, so a few outliers are
 * not drift (the stuck/outlier rule judges those); and beyond the trained [min..max] by more than
 * its width, because a pump wanders past the range of a short training stretch on its own: with
 * the range itself as the limit, an unchanged simulated pump's Thermocouple was drift in 63 of
 * 1008 ten-minute windows of the week after 3 training days (measured: trainer/README.md, "Drift").
 * A baseline without a finite range (a hand-made record) is not judged by it.
 */
export function outsideTrainedRange(median: number, min: number, max: number): boolean {
  if (!Number.isFinite(median) || !Number.isFinite(min) || !Number.isFinite(max)) return false;
  const margin = max - min;
  return median < min - margin || median > max + margin;
}

function medianSorted(sorted: Float64Array): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The stray that n recent rows of `feature` are judged by (already × the factor), or null when the null has none for it. */
export function strayFor(nul: DriftNull, feature: string, n: number): FeatureDrift['stray'] {
  const usable = nul.sizes.filter((s) => s.psi[feature] !== undefined && s.ks[feature] !== undefined);
  if (usable.length === 0) return null;
  const at = [...usable].reverse().find((s) => s.rows <= n) ?? (usable[0] as StrayAt);
  return { psi: (at.psi[feature] as number) * nul.factor, ks: (at.ks[feature] as number) * nul.factor, blockRows: at.rows, factor: nul.factor };
}


/** The features that drifted, missing and new ones included: `Current, Flow (new)`. */
export function driftedNames(report: DriftReport): string[] {
  return [...report.features.filter((f) => f.drifted).map((f) => f.feature), ...report.missing, ...report.added.map((a) => `${a} (new)`)];
}

/** The largest KS distance there is (two CDFs differ by at most 1). */
export const KS_MAX = 1;

/**
 * True when KS cannot call drift in this feature: its threshold, raised for few rows or by the
 * training rows' own stray, is at or above the largest KS there is. The table would show
 * `KS > 1.123`, which no data can reach; the output says so instead of leaving it to be read as a
 * judgement.
 */
export function ksCannotDrift(f: FeatureDrift): boolean {
  return f.effective.ks >= KS_MAX;
}

/**
 * True when PSI is judged (enough rows) but cannot call drift: its threshold, raised by few rows or
 * by the training rows' stray, is at or above the largest PSI the rows can reach (psiReachable).
 * Such a feature is "PSI not judged", never "ok" on PSI's strength.
 */
export function psiCannotDrift(f: FeatureDrift): boolean {
  return f.effective.psi !== null && f.effective.psi >= f.psiMax;
}

/** `DRIFT (KS; 41.2 % stuck/outlier)`, `ok`, `not judged` (neither PSI nor KS can call drift on these rows), with why PSI was not judged and when KS cannot call drift. */
export function featureStatus(f: FeatureDrift): string {
  const psi =
    f.effective.psi === null
      ? ` (PSI not judged: ${psiNotJudged(f)}, ${MIN_ROWS_PER_BIN * f.bins} needed)`
      : psiCannotDrift(f)
        ? ` (PSI not judged: threshold ${f.effective.psi.toFixed(3)} at or above ${f.psiMax.toFixed(3)}, the largest PSI ${f.recentCount} rows can reach)`
        : '';
  const ks = ksCannotDrift(f) ? ` (KS cannot call drift: threshold at least ${KS_MAX}, see the note)` : '';
  return `${f.drifted ? `DRIFT (${f.reasons.join('; ')})` : f.notJudged !== null ? 'not judged' : 'ok'}${psi}${ks}`;
}

/**
 * One line per feature whose KS threshold is at or above 1, the largest KS there is: KS cannot call
 * drift in it, and the line says why (the training rows' own stray, or too few rows) and what
 * still can (PSI, when judged; the stuck/outlier rule).
 */
export function ksCannotDriftNotes(report: DriftReport): string[] {
  return report.features.filter(ksCannotDrift).map((f) => {
    const fewRows = effectiveThresholds(report.thresholds, f.recentCount, f.bins, f.baselineCount ?? undefined).ks >= KS_MAX;
    const strayed = f.stray !== null && f.stray.ks >= KS_MAX ? `blocks of ${f.stray.blockRows} of the model's own training rows strayed from its baseline by KS ${round(f.stray.ks / f.stray.factor)} (× ${f.stray.factor})` : '';
    // A longer window helps when KS can judge from some row count (ksFrom): the training rows' stray
    // steps down for longer blocks, so a threshold out of reach on 20 rows need not be on 200; the
    // baseline advice only when no window length would do.
    const why =
      f.ksFrom !== undefined && f.ksFrom !== null
        ? `the ${f.recentCount} rows compared are too few (${fewRows ? `KS ${KS_CRITICAL}/√n_eff` : strayed}): KS can call drift in it from ${f.ksFrom} rows on; compare a longer range`
        : strayed !== ''
          ? `${strayed}: the model was trained on too short a range to show how far unchanged data wanders; retrain it on a longer range`
          : `the baseline was made of ${f.baselineCount ?? '?'} rows, too few for KS ${KS_CRITICAL}/√n_eff to fall below ${KS_MAX} at any window length; retrain it on more rows`;
    const psiCan = f.effective.psi !== null && !psiCannotDrift(f);
    const still = f.recentCount >= MIN_RANGE_ROWS ? 'the trained-range rule (median far outside the training values) and the stuck/outlier rule' : 'the stuck/outlier rule';
    const rest = psiCan
      ? `PSI, ${still} still can`
      : `only ${still} can (PSI ${f.effective.psi === null ? 'is not judged either' : `cannot either: its threshold is at or above the ${f.psiMax.toFixed(3)} these rows can reach`})`;
    return `${f.feature}: KS cannot call drift: its threshold ${f.effective.ks.toFixed(3)} is at least ${KS_MAX}, the largest KS distance there is, because ${why}; ${rest}`;
  });
}

/** One line per feature whose PSI threshold no rows can cross while KS can still judge it (the KS note covers both otherwise). */
export function psiCannotDriftNotes(report: DriftReport): string[] {
  return report.features
    .filter((f) => psiCannotDrift(f) && !ksCannotDrift(f))
    .map(
      (f) =>
        `${f.feature}: PSI cannot call drift: its threshold ${(f.effective.psi as number).toFixed(3)} is at or above ${f.psiMax.toFixed(3)}, the largest PSI ${f.recentCount} rows can reach (all in one bin), ` +
        'because of the training rows\' own stray; KS, the trained-range rule and the stuck/outlier rule still can',
    );
}

/** What the thresholds were raised by, the features KS cannot judge, and the stuck/outlier rule: the lines above the table (the report shows them too). */
export function driftNotes(rows: number, report: DriftReport): string[] {
  const out: string[] = [];
  const raised = report.features.filter((f) => thresholdsRaised(f, report.thresholds));
  if (raised.length > 0) {
    const bins = Math.max(...raised.map((f) => f.bins));
    out.push(
      `with ${rows} rows against ${baselineRowsOf(raised)} the thresholds are raised to what independent unchanged rows stay below ${DRIFT_CONFIDENCE * 100} % of the time ` +
        `(KS ${KS_CRITICAL}/√n_eff; PSI χ²(${bins - 1}, ${DRIFT_CONFIDENCE})/n_eff, n_eff = n·N/(n+N), and only judged from ${MIN_ROWS_PER_BIN * bins} rows on each side, ${MIN_ROWS_PER_BIN} per baseline bin): columns "PSI >" and "KS >"`,
    );
  }
  const strays = report.features.filter((f) => f.stray !== null);
  if (strays.length > 0) {
    const blocks = [...new Set(strays.map((f) => f.stray?.blockRows))].join('/');
    out.push(
      `readings are correlated in time: each threshold is at least ${strays[0]?.stray?.factor ?? ''} × the largest PSI and KS that blocks of ${blocks} consecutive training rows showed against the baseline ` +
        '(the unchanged pump\'s own wandering, stored with the model)',
    );
  }
  out.push(...ksCannotDriftNotes(report), ...psiCannotDriftNotes(report));
  const removed = report.features.filter((f) => f.removed > 0);
  if (removed.length > 0) {
    out.push(
      `stuck runs or outliers (what cleaning removes before training) in ${removed.map((f) => `${f.feature} ${f.removed}`).join(', ')} of ${rows} rows; ` +
        `more than ${MAX_REMOVED_SHARE * 100} % of a feature's values is drift: a frozen or dead sensor`,
    );
  }
  return out;
}

/** The warning for a baseline without an empirical null (a model.json written before it). */
export function noNullWarning(version: string): string {
  return `the baseline of ${version} has no empirical null (driftNull: written by an older trainer): judged as if readings were independent, which calls slowly wandering but unchanged data drift; retrain to store one`;
}

/** True when a feature was judged by thresholds raised above the configured ones (few rows, or the training rows' stray), or PSI not judged at all. */
export function thresholdsRaised(f: FeatureDrift, configured: DriftThresholds): boolean {
  return f.effective.psi !== configured.psi || f.effective.ks !== configured.ks;
}

/** "a baseline of N rows" (N, the training rows the baseline was made of: the features share it), or what stands in for N when it is not recorded. */
export function baselineRowsOf(features: readonly FeatureDrift[]): string {
  const counts = [...new Set(features.map((f) => f.baselineCount))];
  if (counts.includes(null)) return 'a baseline that records no row count (N: judged by n alone)';
  return `a baseline of ${counts.map(String).join('/')} rows (N)`;
}

/** Why PSI was not judged (fewer than 5 rows per bin): too few recent rows, or too few in the baseline. */
export function psiNotJudged(f: FeatureDrift): string {
  return f.recentCount < MIN_ROWS_PER_BIN * f.bins ? 'too few rows' : `the baseline was made of ${f.baselineCount ?? '?'} rows`;
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

/**
 * sup |F_recent − F_baseline| over the recent values (sorted), both sides of each step. The same
 * figures as baselineCdf and baselineCdfLeft give, found by walking the percentiles alongside the
 * sorted values instead of a binary search per value (the empirical null computes this for every
 * block of the training rows).
 */
export function ksDistance(sorted: Float64Array, percentiles: readonly number[]): number {
  const n = sorted.length;
  const last = percentiles.length - 1;
  const p = (k: number) => percentiles[k] as number;
  // le: the last percentile index with p ≤ x; lt: the last with p < x (−1: none).
  let le = -1;
  let lt = -1;
  let d = 0;
  for (let i = 0; i < n; ) {
    const x = sorted[i] as number;
    let j = i;
    while (j + 1 < n && sorted[j + 1] === x) j++;
    while (le < last && p(le + 1) <= x) le++;
    while (lt < last && p(lt + 1) < x) lt++;
    const at = last < 1 || le < 0 ? 0 : le >= last ? 1 : (le + (p(le + 1) > p(le) ? (x - p(le)) / (p(le + 1) - p(le)) : 1)) / last;
    const left = last < 1 || lt < 0 ? 0 : lt >= last ? 1 : (lt + (x - p(lt)) / (p(lt + 1) - p(lt))) / last;
    d = Math.max(d, Math.abs((j + 1) / n - at), Math.abs(i / n - left));
    i = j + 1;
  }
  return d;
}

function round(x: number): number {
  return Number(x.toFixed(4));
}
