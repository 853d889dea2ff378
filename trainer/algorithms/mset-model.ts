/** The fitted MSET-like model: in-memory Float64 scoring and its ONNX export (same arithmetic). */
import { FittedModel, type ScoreResult, type WindowBatch } from './algorithm.js';
import { msetGraph } from './mset-onnx.js';
import { MSET_ALGORITHM, MSET_CONTRIBUTION_EPSILON, MSET_RELATIONS_ALGORITHM, type MsetParams } from './mset-params.js';
import { scaledRelationResiduals } from './relations.js';
import { clipScaled } from './saturation.js';

/** zbar = mean over the window of (reading - mean) · invScale, each clipped to ±SCALED_LIMIT. */
export function scaledWindowMean(p: MsetParams, win: readonly ArrayLike<number>[]): Float64Array {
  const n = p.features.length;
  const z = new Float64Array(n);
  for (const row of win) for (let f = 0; f < n; f++) z[f] = (z[f] as number) + clipScaled(((row[f] as number) - (p.mean[f] as number)) * (p.invScale[f] as number));
  return z.map((v) => v / win.length);
}

/** The kernel estimate of z from the memory: Σ softmax(-gain · ‖z - d_k‖²)_k · d_k. */
export function estimate(p: MsetParams, z: Float64Array): Float64Array {
  const logits = p.memory.map((d) => {
    let e = 0;
    for (let f = 0; f < z.length; f++) e += ((z[f] as number) - (d[f] as number)) ** 2;
    return -e * p.kernelGain;
  });
  const top = Math.max(...logits);
  const weights = logits.map((l) => Math.exp(l - top));
  const total = weights.reduce((a, b) => a + b, 0);
  const out = new Float64Array(z.length);
  p.memory.forEach((d, k) => {
    const w = (weights[k] as number) / total;
    for (let f = 0; f < z.length; f++) out[f] = (out[f] as number) + w * (d[f] as number);
  });
  return out;
}

/** Residual of each window: scaled window mean minus its estimate from the memory. */
export function residuals(p: MsetParams, batch: WindowBatch): Float64Array[] {
  return batch.map((win) => {
    const z = scaledWindowMean(p, win);
    const est = estimate(p, z);
    return z.map((v, f) => v - (est[f] as number));
  });
}

const largestAbs = (r: Float64Array) => r.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const shares = (r: Float64Array) => {
  const total = r.reduce((s, v) => s + v * v, 0);
  return r.map((v) => (v * v) / (total + MSET_CONTRIBUTION_EPSILON));
};

export class MsetModel extends FittedModel<MsetParams> {
  get algorithm(): string {
    return this.params.relations ? MSET_RELATIONS_ALGORITHM : MSET_ALGORITHM;
  }

  /**
   * score = max |r_f| (horizon standard deviations), or with relations the larger of that and
   * max |e_f| (the relation residuals in their horizon scales); contributions = the deciding
   * channel's squared residuals, as shares.
   */
  score(batch: WindowBatch): ScoreResult {
    const p = this.params;
    const res = residuals(p, batch);
    const rel = p.relations ? batch.map((win) => scaledRelationResiduals(p.relations as NonNullable<MsetParams['relations']>, scaledWindowMean(p, win))) : null;
    const scores = Float64Array.from(res, (r, b) => Math.max(largestAbs(r), rel ? largestAbs(rel[b] as Float64Array) : 0));
    const contributions = res.map((r, b) => (rel && largestAbs(rel[b] as Float64Array) > largestAbs(r) ? shares(rel[b] as Float64Array) : shares(r)));
    return { scores, contributions };
  }

  toOnnxGraph() {
    return msetGraph(this.params);
  }
}
