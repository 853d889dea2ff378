/**
 * The relations channel of `mset-rel`: how far each sensor is from what the other sensors imply.
 *
 * The MSET-like model measures every sensor against how far it normally moves (its horizon
 * scale), so it cannot see a sensor drifting by less than its normal range, even when the physics
 * says that sensor is wrong: measured on simulated pumps trained on three days (bench/field), it
 * found 34 of 140 half-hours in which one sensor read 2 standard deviations off. Here, on the same
 * scaled training window means z, without labels:
 * 1. each varying feature j is regressed on the other varying features (ridge, λ = RIDGE_PER_ROW
 *    × the training windows: a fixed share of the Gram matrix's own scale, so the shrinkage does not
 *    fade as training grows and two copies of one sensor stay a stable system; intercept not
 *    penalised): e_j = z_j − β_j0 − Σ_{k≠j} β_jk z_k, one linear map e = z·M + c;
 * 2. each residual is measured in its own horizon scale (horizon.ts on the training residuals):
 *    how far it normally moves over one more training span, so a relation that holds only
 *    loosely, or wanders, weighs less;
 * 3. channel score = max_j |e_j| / scale_j, compared with the same threshold as the MSET channel
 *    (the caller's Bonferroni correction covers both channels).
 * A relation the training range never showed (a few minutes of a pump: shared trends, not
 * physics) makes false alarms: trainer/QUALITY.md has the SKAB figures.
 */
import { solveSpd } from '../linalg/cholesky.js';
import { horizonScale, type Flat } from './horizon.js';
import { clipScaled } from './saturation.js';

/** Ridge penalty per training window (the scaled features have a spread of about 1). */
export const RIDGE_PER_ROW = 1e-3;

export interface RelationParams {
  /** e = z · matrix + offset; matrix[k][j] = 1 when k = j, −β_jk otherwise (0 for features that do not vary). */
  matrix: Float64Array[];
  offset: Float64Array;
  /** 1 / the horizon scale of each residual; 0 for a feature that does not vary. */
  invScale: Float64Array;
}

/**
 * Fits the channel on `z` (scaled training window means in time order, rows × n), which it
 * overwrites with the residuals. `varies[f]`: the feature varies in training.
 */
export function fitRelations(z: Flat, varies: readonly boolean[], opts: { window: number; trainRows: number; horizon: number }): { params: RelationParams; scale: Float64Array; lambda: number } {
  const n = z.cols;
  const gram = Array.from({ length: n + 1 }, () => new Float64Array(n + 1));
  const row = new Float64Array(n + 1);
  for (let i = 0; i < z.rows; i++) {
    for (let f = 0; f < n; f++) row[f] = z.data[i * n + f] as number;
    row[n] = 1;
    for (let a = 0; a <= n; a++) {
      const ga = gram[a] as Float64Array;
      for (let b = a; b <= n; b++) ga[b] = (ga[b] as number) + (row[a] as number) * (row[b] as number);
    }
  }
  for (let a = 0; a <= n; a++) for (let b = 0; b < a; b++) (gram[a] as Float64Array)[b] = (gram[b] as Float64Array)[a] as number;
  const matrix = Array.from({ length: n }, (_, k) => Float64Array.from({ length: n }, (_, j) => (k === j && varies[j] ? 1 : 0)));
  const offset = new Float64Array(n);
  const lambda = RIDGE_PER_ROW * Math.max(1, z.rows);
  for (let j = 0; j < n; j++) {
    if (!varies[j]) continue;
    const predictors = [...Array(n).keys()].filter((k) => k !== j && varies[k]);
    const idx = [...predictors, n];
    const a = idx.map((p, r) => Float64Array.from(idx, (q, c) => ((gram[p] as Float64Array)[q] as number) + (r === c && p !== n ? lambda : 0)));
    const beta = solveSpd(a, Float64Array.from(idx, (p) => (gram[p] as Float64Array)[j] as number));
    predictors.forEach((k, r) => ((matrix[k] as Float64Array)[j] = -(beta[r] as number)));
    offset[j] = -(beta[predictors.length] as number);
  }
  const e = new Float64Array(n);
  for (let i = 0; i < z.rows; i++) {
    const base = i * n;
    for (let j = 0; j < n; j++) {
      let s = offset[j] as number;
      for (let k = 0; k < n; k++) s += (z.data[base + k] as number) * ((matrix[k] as Float64Array)[j] as number);
      e[j] = s;
    }
    z.data.set(e, base);
  }
  const scale = horizonScale(z, opts).scale;
  const invScale = scale.map((s, j) => (varies[j] && s > 0 ? 1 / s : 0));
  return { params: { matrix, offset, invScale }, scale, lambda };
}

/** The channel's residuals of one scaled window mean, each in its horizon scale, clipped to ±SCALED_LIMIT (as the graph). */
export function scaledRelationResiduals(p: RelationParams, z: Float64Array): Float64Array {
  const n = z.length;
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = p.offset[j] as number;
    for (let k = 0; k < n; k++) s += (z[k] as number) * ((p.matrix[k] as Float64Array)[j] as number);
    out[j] = clipScaled(s * (p.invScale[j] as number));
  }
  return out;
}
