/**
 * PCA T² + Q on window means, with the residual weighted the probabilistic-PCA way and an
 * allowance for slow drift.
 *
 * The model scores the mean of the last `window` readings (averaging suppresses sensor noise), so
 * everything is fitted to that statistic, on the training rows only and without labels:
 * 1. take the mean of every training window (windows of `window` readings ending at each row;
 *    only full windows when there are enough of them, as padded ones are not typical data);
 * 2. standardise each feature with the mean and standard deviation of those window means (a
 *    feature that does not vary gets weight 0: it says nothing about normal behaviour);
 * 3. eigen-decompose their covariance (Jacobi, Float64) and keep the fewest components that
 *    explain `explainedVariance` of it (at most n_features - 1);
 * 4. raw score = T² + Q / σ², where T² is Hotelling's statistic in the kept components (each
 *    scaled by its eigenvalue), Q the squared residual outside them, and σ² the mean of the
 *    discarded eigenvalues: the Mahalanobis distance under probabilistic PCA (Tipping & Bishop,
 *    1999), one score in which a broken correlation (Q) and an unusual operating point (T²) weigh
 *    alike, with the noisy small-variance directions pooled rather than inverted one by one;
 * 5. drift allowance: a feature whose training readings drift rather than scatter (von Neumann
 *    ratio r = ½·var(xₜ - xₜ₋₁) / var(x) below 1, e.g. a temperature) will wander beyond its
 *    short training range in normal operation; its standardised deviation is divided by 1/r, the
 *    factor by which its slow variation exceeds its reading-to-reading noise. Noise-like features
 *    (r ≈ 1) are unchanged;
 * 6. score = raw score / its `quantile` over the training windows, so 1 is the level that 1 % of
 *    normal training windows reach; the threshold is `thresholdFactor` (2.5): a safety margin for
 *    in-sample optimism and for the variation that a short training period does not show;
 * 7. envelope guard: the drift allowance of step 5 grows as readings get denser (a temperature
 *    read every second hardly changes between readings), up to 1 000, and a feature with such an
 *    allowance weighs almost nothing: measured (bench/field), the agent's bundled default model
 *    (allowances 417 for flow, 465 and 1 000 for the temperatures, 74–76 for vibration) did not
 *    flag a flow meter, a thermocouple or an accelerometer reading 50 training standard
 *    deviations off. So the score is also at least `thresholdFactor` × the distance, in envelope
 *    widths, by which a window mean lies outside the range of the training window means of its
 *    feature (the envelope), divided by ENVELOPE_MARGIN (1): a window mean one whole envelope
 *    width below the lowest or above the highest training window mean reaches the threshold,
 *    whatever the allowance. Inside the envelope it adds nothing. The contributions then name the
 *    features outside it.
 */
import type { Algorithm, TrainedModel, TrainingSet } from './algorithm.js';
import { FitError } from '../errors.js';
import { symmetricEigen } from '../linalg/jacobi.js';
import { columnMeans, columnStds, covariance, quantile } from '../linalg/stats.js';
import { segmentBounds, segmentWindows } from '../windows.js';
import { PcaModel, statistics } from './pca-model.js';
import { PCA_ALGORITHM, type PcaParams } from './pca-params.js';

export interface PcaOptions {
  explainedVariance: number;
  quantile: number;
  thresholdFactor: number;
}

export const PCA_DEFAULTS: PcaOptions = { explainedVariance: 0.9, quantile: 0.99, thresholdFactor: 2.5 };
/** Ten readings (10 s at 1 Hz): averages out sensor noise, short next to the minutes a fault lasts. */
export const PCA_DEFAULT_WINDOW = 10;

const MIN_ROWS = 10;
/** Floor of σ² (standardised units): exactly dependent features must not turn rounding into alarms. */
const MIN_RESIDUAL_VARIANCE = 1e-6;
/** Envelope widths outside the training envelope at which the guard reaches the threshold (step 7). */
export const ENVELOPE_MARGIN = 1;
/** Largest drift allowance: bounds the weight loss of a feature that hardly changes between readings. */
const MAX_DRIFT_ALLOWANCE = 1e3;

export const pcaAlgorithm = (options: Partial<PcaOptions> = {}): Algorithm => ({
  name: PCA_ALGORITHM,
  defaultWindow: PCA_DEFAULT_WINDOW,
  fit: (set) => fitPca(set, { ...PCA_DEFAULTS, ...options }),
});

export function fitPca(set: TrainingSet, options: PcaOptions): TrainedModel {
  const n = set.features.length;
  if (set.rows.length < MIN_ROWS) throw new FitError(`PCA needs at least ${MIN_ROWS} training rows, got ${set.rows.length}`);
  const full = segmentWindows(set.rows, set.window, set.segmentStarts, true);
  const windows = full.length >= Math.max(MIN_ROWS, 2 * n) ? full : segmentWindows(set.rows, set.window, set.segmentStarts, false);
  const means = windows.map((w) => columnMeans(w));
  const mean = columnMeans(means);
  const std = columnStds(means, mean);
  const varies = (j: number) => (std[j] as number) > 1e-12 * Math.max(1, Math.abs(mean[j] as number));
  const constant = set.features.filter((_, j) => !varies(j));
  if (constant.length === n) throw new FitError('no feature varies in the training rows');
  const invStd = std.map((s, j) => (varies(j) ? 1 / s : 0));
  const z = means.map((row) => row.map((v, j) => (v - (mean[j] as number)) * (invStd[j] as number)));
  const eigen = symmetricEigen(covariance(z));
  const total = eigen.values.reduce((a, b) => a + Math.max(0, b), 0);
  const k = chooseComponents(eigen.values, total, options.explainedVariance, n);
  const discarded = eigen.values.slice(k);
  const sigma2 = Math.max(MIN_RESIDUAL_VARIANCE, discarded.reduce((a, b) => a + Math.max(0, b), 0) / Math.max(1, discarded.length));
  const kept = eigen.vectors.slice(0, k);
  const allowance = driftAllowance(set.rows, set.segmentStarts);
  // Parameters are rounded to float32 now, as the ONNX graph stores them, so that the in-memory
  // scorer (and the limit) use exactly the exported model.
  const params: PcaParams = {
    features: set.features,
    window: set.window,
    mean: mean.map(Math.fround),
    invStd: invStd.map((s, j) => Math.fround(s / (allowance[j] as number))),
    whiten: kept.map((vec, i) => vec.map((v) => Math.fround(v / Math.sqrt(eigen.values[i] as number)))),
    residual: residualProjector(kept, n).map((row) => row.map(Math.fround)),
    t2Scale: 1,
    qScale: discarded.length > 0 ? Math.fround(1 / sigma2) : 0,
    ...envelopeOf(means, n, mean),
    guardScale: Math.fround(options.thresholdFactor / ENVELOPE_MARGIN),
  };
  const raw = statistics(params, windows);
  const limit = quantile(raw.t2.map((t, i) => t * params.t2Scale + (raw.q[i] as number) * params.qScale), options.quantile);
  if (!(limit > 0)) throw new FitError('the training windows all score 0: the data has no variation to learn from');
  params.qScale = Math.fround(params.qScale / limit);
  params.t2Scale = Math.fround(1 / limit);
  const metrics = {
    trainRows: set.rows.length,
    trainWindows: windows.length,
    components: k,
    explainedVariance: round(eigen.values.slice(0, k).reduce((a, b) => a + b, 0) / total),
    residualVariance: round(discarded.length > 0 ? sigma2 : 0),
    scoreLimit: round(limit),
    quantile: options.quantile,
    thresholdFactor: options.thresholdFactor,
    constantFeatures: constant,
    driftAllowance: Object.fromEntries(set.features.map((f, j) => [f, round(allowance[j] as number)])),
    envelopeMargin: ENVELOPE_MARGIN,
  };
  return new PcaModel(params, options.thresholdFactor, metrics);
}

/**
 * Lowest and highest training window mean per feature relative to the float32 `mean` the graph
 * subtracts (the guard averages centred readings: see pca-onnx.ts), and 1 / their distance (0 when
 * equal), as float32.
 */
function envelopeOf(means: readonly Float64Array[], n: number, mean: Float64Array): Pick<PcaParams, 'envelopeLo' | 'envelopeHi' | 'envelopeInvWidth'> {
  const lo = new Float64Array(n).fill(Infinity);
  const hi = new Float64Array(n).fill(-Infinity);
  for (const m of means) {
    for (let f = 0; f < n; f++) {
      lo[f] = Math.min(lo[f] as number, m[f] as number);
      hi[f] = Math.max(hi[f] as number, m[f] as number);
    }
  }
  const centre = mean.map(Math.fround);
  const envelopeLo = lo.map((v, f) => Math.fround(v - (centre[f] as number)));
  const envelopeHi = hi.map((v, f) => Math.fround(v - (centre[f] as number)));
  const envelopeInvWidth = envelopeLo.map((l, f) => ((envelopeHi[f] as number) > l ? Math.fround(1 / ((envelopeHi[f] as number) - l)) : 0));
  return { envelopeLo, envelopeHi, envelopeInvWidth };
}

/** 1 / min(1, von Neumann ratio) per feature, from the training rows in time order. */
export function driftAllowance(rows: readonly Float64Array[], starts?: readonly number[]): Float64Array {
  const n = rows[0]?.length ?? 0;
  // Steps within a run only: the step across a pause is not the reading-to-reading change.
  const diffs = segmentBounds(starts, rows.length).flatMap(([from, to]) =>
    rows.slice(from + 1, to).map((row, i) => row.map((v, j) => v - ((rows[from + i] as Float64Array)[j] as number))),
  );
  if (diffs.length < 2) return new Float64Array(n).fill(1);
  const level = columnStds(rows, columnMeans(rows));
  const step = columnStds(diffs, columnMeans(diffs));
  return level.map((s, j) => {
    const ratio = (0.5 * (step[j] as number) ** 2) / (s * s);
    return Number.isFinite(ratio) ? Math.min(MAX_DRIFT_ALLOWANCE, 1 / Math.min(1, ratio)) : 1;
  });
}

function chooseComponents(values: Float64Array, total: number, target: number, n: number): number {
  let k = 0;
  let acc = 0;
  while (k < values.length && (values[k] as number) > 1e-12 * total && acc < target * total) acc += values[k++] as number;
  return Math.max(1, Math.min(k, Math.max(1, n - 1)));
}

function residualProjector(kept: Float64Array[], n: number): Float64Array[] {
  return Array.from({ length: n }, (_, g) =>
    Float64Array.from({ length: n }, (_, f) => (g === f ? 1 : 0) - kept.reduce((s, p) => s + (p[g] as number) * (p[f] as number), 0)),
  );
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}
