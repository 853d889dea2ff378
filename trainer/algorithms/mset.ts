/**
 * An MSET-like similarity model in horizon units (the default; trainer/QUALITY.md says why).
 *
 * Multivariate State Estimation (Singer et al., 1997) keeps a memory of representative normal
 * states and estimates each new state from the memory states it resembles; the residual is the
 * part that no normal state explains. Here, fitted on the training rows only, without labels:
 * 1. the statistic is the mean of the last `window` readings (it averages out sensor noise);
 * 2. each feature is scaled by its **horizon scale** (horizon.ts): how far its window mean
 *    normally moves over one more training span, estimated from the variogram of the training
 *    window means. Slow wander (temperatures, demand-driven flow) is thereby expected, reading
 *    noise is not inflated; a feature that never varies gets weight 0;
 * 3. memory: at most 64 scaled training window means — each feature's lowest and highest state,
 *    then states evenly spaced in the order of their distance from the centre (MSET's vector
 *    ordering), so the memory spans the normal range in every direction;
 * 4. estimate: a Nadaraya–Watson kernel average of the memory, weights softmax(-‖z - d‖² / 2h²),
 *    h² the median squared distance from a memory state to its nearest neighbour. A state among
 *    the normal ones is estimated well; one outside them is pulled back to the nearest ones;
 * 5. score = the largest absolute residual over the features, in horizon standard deviations;
 *    threshold = the two-sided normal quantile with Bonferroni correction over the n varying
 *    features at family error α = 0.01: Φ⁻¹(1 - α / 2n) (3.23 for 8 features). The threshold
 *    depends on no in-sample score: in-sample scores of a short training period are optimistic.
 * 6. `mset-rel` (options.relations) adds the relations channel (relations.ts): each feature
 *    against what the others imply, in the horizon scale of that residual; the score is the larger
 *    of the two channels, and the Bonferroni correction counts both (2n tests: 3.42 for 8).
 */
import { FitError } from '../errors.js';
import { normalQuantile } from '../linalg/normal.js';
import { lowerBound } from '../linalg/stats.js';
import type { Algorithm, TrainedModel, TrainingSet } from './algorithm.js';
import { segmentBounds } from '../windows.js';
import { columnMeans, horizonScale, rowOf, segmentWindowMeans, type Flat } from './horizon.js';
import { MsetModel } from './mset-model.js';
import { MSET_ALGORITHM, MSET_RELATIONS_ALGORITHM, type MsetParams } from './mset-params.js';
import { fitRelations } from './relations.js';

export interface MsetOptions {
  /** Family false-alarm probability per window across all features. */
  alpha: number;
  /** Largest number of memory states. */
  memoryStates: number;
  /** Horizon in training spans (1: the model is retrained after one more span of data). */
  horizonSpans: number;
  /** Add the relations channel (relations.ts): `--algo mset-rel`. */
  relations: boolean;
}

export const MSET_DEFAULTS: MsetOptions = { alpha: 0.01, memoryStates: 64, horizonSpans: 1, relations: false };
/** Ten readings (10 s at 1 Hz): averages out sensor noise, short next to the minutes a fault lasts. */
export const MSET_DEFAULT_WINDOW = 10;

const MIN_ROWS = 10;
/** Smallest kernel bandwidth² (scaled units): memory states that nearly coincide stay usable. */
const MIN_BANDWIDTH_SQ = 1e-6;

export const msetAlgorithm = (options: Partial<MsetOptions> = {}): Algorithm => ({
  name: options.relations ? MSET_RELATIONS_ALGORITHM : MSET_ALGORITHM,
  defaultWindow: MSET_DEFAULT_WINDOW,
  fit: (set) => fitMset(set, { ...MSET_DEFAULTS, ...options }),
});

export function fitMset(set: TrainingSet, options: MsetOptions): TrainedModel {
  const n = set.features.length;
  if (set.rows.length < MIN_ROWS) throw new FitError(`MSET needs at least ${MIN_ROWS} training rows, got ${set.rows.length}`);
  const fullCount = segmentBounds(set.segmentStarts, set.rows.length).reduce((a, [from, to]) => a + Math.max(0, to - from - (set.window - 1)), 0);
  const means = segmentWindowMeans(set.rows, set.window, set.segmentStarts, fullCount >= Math.max(MIN_ROWS, 2 * n));
  const centre = columnMeans(means);
  const horizon = horizonScale(means, { window: set.window, trainRows: set.rows.length, horizon: options.horizonSpans * set.rows.length });
  const varies = (f: number) => (horizon.scale[f] as number) > 1e-12 * Math.max(1, Math.abs(centre[f] as number));
  const constant = set.features.filter((_, f) => !varies(f));
  const varying = n - constant.length;
  if (varying === 0) throw new FitError('no feature varies in the training rows');
  const mean = centre.map(Math.fround);
  const invScale = horizon.scale.map((s, f) => (varies(f) ? Math.fround(1 / s) : 0));
  // Scaled in place: the window means are not needed any more.
  for (let i = 0; i < means.data.length; i++) means.data[i] = ((means.data[i] as number) - (mean[i % n] as number)) * (invScale[i % n] as number);
  const memory = selectMemory(means, options.memoryStates).map((d) => d.map(Math.fround));
  const bandwidthSq = Math.max(MIN_BANDWIDTH_SQ, medianNearestSq(memory));
  // The relations are fitted on the scaled window means, which they overwrite (the memory is chosen).
  const rel = options.relations
    ? fitRelations(means, set.features.map((_, f) => varies(f)), { window: set.window, trainRows: set.rows.length, horizon: options.horizonSpans * set.rows.length })
    : null;
  const relations = rel
    ? { matrix: rel.params.matrix.map((r) => r.map(Math.fround)), offset: rel.params.offset.map(Math.fround), invScale: rel.params.invScale.map(Math.fround) }
    : null;
  const params: MsetParams = { features: set.features, window: set.window, mean, invScale, memory, kernelGain: Math.fround(1 / (2 * bandwidthSq)), relations };
  // Bonferroni over every test a window gets: one per varying feature, per channel.
  const tests = varying * (relations ? 2 : 1);
  const threshold = round(normalQuantile(1 - options.alpha / (2 * tests)));
  const metrics = {
    trainRows: set.rows.length,
    trainWindows: means.rows,
    memoryStates: memory.length,
    bandwidthSq: round(bandwidthSq),
    horizonRows: options.horizonSpans * set.rows.length,
    alpha: options.alpha,
    scoreUnit: 'largest residual in horizon standard deviations',
    horizonScale: Object.fromEntries(set.features.map((f, j) => [f, round(horizon.scale[j] as number)])),
    constantFeatures: constant,
    ...(rel
      ? {
          scoreUnit: 'largest residual in horizon standard deviations, of the state estimate or of the relations to the other features',
          ridgeLambda: round(rel.lambda),
          relationsScale: Object.fromEntries(set.features.map((f, j) => [f, round(rel.scale[j] as number)])),
        }
      : {}),
  };
  return new MsetModel(params, threshold, metrics);
}

/**
 * Per-feature extremes first, then states evenly spaced in the order of their norm (ties by
 * time); duplicates dropped; returned in time order, copies.
 */
export function selectMemory(states: Flat, max: number): Float64Array[] {
  const n = states.cols;
  const picked = new Set<number>();
  for (let f = 0; f < n; f++) {
    let lo = 0;
    let hi = 0;
    for (let i = 1; i < states.rows; i++) {
      const v = states.data[i * n + f] as number;
      if (v < (states.data[lo * n + f] as number)) lo = i;
      if (v > (states.data[hi * n + f] as number)) hi = i;
    }
    if (states.rows > 0) picked.add(lo).add(hi);
  }
  for (const i of evenlyByNorm(states, picked, Math.max(0, max - picked.size))) picked.add(i);
  const seen = new Set<string>();
  return [...picked]
    .sort((a, b) => a - b)
    .map((i) => Float64Array.from(rowOf(states, i)))
    .filter((s) => {
      const key = s.join(',');
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, Math.max(max, 1));
}

/** `take` indices (not in `skip`) at evenly spaced ranks of the squared norm, ties by index. */
function evenlyByNorm(states: Flat, skip: ReadonlySet<number>, take: number): number[] {
  const n = states.cols;
  const count = states.rows - skip.size;
  const k = Math.min(take, count);
  if (k <= 0) return [];
  const norms = new Float64Array(states.rows);
  for (let i = 0; i < states.rows; i++) {
    let s = 0;
    for (let f = 0; f < n; f++) s += (states.data[i * n + f] as number) ** 2;
    norms[i] = skip.has(i) ? Infinity : s;
  }
  const sorted = Float64Array.from(norms).sort();
  const out: number[] = [];
  for (let j = 0; j < k; j++) {
    const rank = k > 1 ? Math.round((j * (count - 1)) / (k - 1)) : 0;
    const value = sorted[rank] as number;
    let tie = rank - lowerBound(sorted, value);
    for (let i = 0; i < states.rows; i++) {
      if (norms[i] === value && tie-- === 0) {
        out.push(i);
        break;
      }
    }
  }
  return out;
}

/** Median over memory states of the squared distance to the nearest other state (1 for a single state). */
export function medianNearestSq(memory: readonly Float64Array[]): number {
  if (memory.length < 2) return 1;
  const nearest = memory.map((a, i) =>
    memory.reduce((best, b, j) => (i === j ? best : Math.min(best, a.reduce((s, v, f) => s + (v - (b[f] as number)) ** 2, 0))), Infinity),
  );
  const sorted = nearest.sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 === 1 ? (sorted[Math.floor(mid)] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}
