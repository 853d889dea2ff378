/** The fitted MSET-like model: in-memory Float64 scoring and its ONNX export (same arithmetic). */
import { FittedModel, type ScoreResult, type WindowBatch } from './algorithm.js';
import { msetGraph } from './mset-onnx.js';
import { MSET_ALGORITHM, MSET_CONTRIBUTION_EPSILON, type MsetParams } from './mset-params.js';

/** zbar = mean over the window of (reading - mean) · invScale. */
export function scaledWindowMean(p: MsetParams, win: readonly ArrayLike<number>[]): Float64Array {
  const n = p.features.length;
  const z = new Float64Array(n);
  for (const row of win) for (let f = 0; f < n; f++) z[f] = (z[f] as number) + ((row[f] as number) - (p.mean[f] as number)) * (p.invScale[f] as number);
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

export class MsetModel extends FittedModel<MsetParams> {
  readonly algorithm = MSET_ALGORITHM;

  /** score = max |r_f| (horizon standard deviations); contributions = r_f² / Σ r². */
  score(batch: WindowBatch): ScoreResult {
    const res = residuals(this.params, batch);
    const scores = Float64Array.from(res, (r) => r.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
    const contributions = res.map((r) => {
      const total = r.reduce((s, v) => s + v * v, 0);
      return r.map((v) => (v * v) / (total + MSET_CONTRIBUTION_EPSILON));
    });
    return { scores, contributions };
  }

  toOnnxGraph() {
    return msetGraph(this.params);
  }
}
