/** The fitted PCA T²+Q model: in-memory Float64 scoring and its ONNX export (same arithmetic). */
import { FittedModel, type ScoreResult, type WindowBatch } from './algorithm.js';
import { pcaGraph } from './pca-onnx.js';
import { CONTRIBUTION_EPSILON, PCA_ALGORITHM, type PcaParams } from './pca-params.js';
import { clipScaled, SCALED_LIMIT } from './saturation.js';

export interface Statistics {
  /** Σ (zbar · whiten_k)², per window. */
  t2: Float64Array;
  /** ‖zbar · (I - P·Pᵀ)‖², per window. */
  q: Float64Array;
  residuals: Float64Array[];
  /** Per window and feature: how far the window mean lies outside the training envelope, in envelope widths (0 inside, at most SCALED_LIMIT). */
  outside: Float64Array[];
}

/**
 * zbar = mean over the window of the standardised readings (each clipped to ±SCALED_LIMIT), then
 * T² and Q of zbar; the guard's window mean is of the centred readings, as the envelope is.
 */
export function statistics(p: PcaParams, batch: WindowBatch): Statistics {
  const n = p.features.length;
  const t2 = new Float64Array(batch.length);
  const q = new Float64Array(batch.length);
  const outside: Float64Array[] = [];
  const residuals = batch.map((win, b) => {
    const zbar = new Float64Array(n);
    const m = new Float64Array(n);
    for (const row of win) {
      for (let f = 0; f < n; f++) {
        const centred = (row[f] as number) - (p.mean[f] as number);
        zbar[f] = (zbar[f] as number) + clipScaled(centred * (p.invStd[f] as number));
        m[f] = (m[f] as number) + centred;
      }
    }
    for (let f = 0; f < n; f++) {
      zbar[f] = (zbar[f] as number) / win.length;
      m[f] = (m[f] as number) / win.length;
    }
    outside.push(m.map((v, f) => Math.min(SCALED_LIMIT, Math.max(0, (p.envelopeLo[f] as number) - v, v - (p.envelopeHi[f] as number)) * (p.envelopeInvWidth[f] as number))));
    t2[b] = p.whiten.reduce((s, w) => s + dot(zbar, w) ** 2, 0);
    const r = Float64Array.from({ length: n }, (_, f) => p.residual.reduce((s, row, g) => s + (zbar[g] as number) * (row[f] as number), 0));
    q[b] = r.reduce((s, v) => s + v * v, 0);
    return r;
  });
  return { t2, q, residuals, outside };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

export class PcaModel extends FittedModel<PcaParams> {
  readonly algorithm = PCA_ALGORITHM;

  /**
   * score = max(T²·t2Scale + Q·qScale, guard); contributions = each feature's share of Q, or,
   * when the guard decides the score, each feature's share of the distance outside the envelope.
   */
  score(batch: WindowBatch): ScoreResult {
    const p = this.params;
    const { t2, q, residuals, outside } = statistics(p, batch);
    const pca = t2.map((t, b) => t * p.t2Scale + (q[b] as number) * p.qScale);
    const guard = outside.map((o) => o.reduce((a, v) => Math.max(a, v), 0) * p.guardScale);
    const scores = pca.map((s, b) => Math.max(s, guard[b] as number));
    const contributions = residuals.map((r, b) => {
      if ((guard[b] as number) > (pca[b] as number)) {
        const o = outside[b] as Float64Array;
        const total = o.reduce((a, v) => a + v, 0);
        return o.map((v) => v / (total + CONTRIBUTION_EPSILON));
      }
      return r.map((v) => (v * v) / ((q[b] as number) + CONTRIBUTION_EPSILON));
    });
    return { scores, contributions };
  }

  toOnnxGraph() {
    return pcaGraph(this.params);
  }
}
