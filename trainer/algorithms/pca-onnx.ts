/**
 * The PCA T²+Q scorer as an ONNX graph (opset 17), the same arithmetic as the in-memory scorer:
 *   c        = features - mean                                  [batch, window, n]
 *   z        = Clip(c * invStd, ±L)                              [batch, window, n]
 *   zbar     = ReduceMean(z, axis 1)                             [batch, n]
 *   T²       = ReduceSum((zbar · whiten)², axis 1)               [batch]
 *   r        = zbar · (I - P·Pᵀ);  Q = ReduceSum(r², axis 1)      [batch]
 *   pca      = T² · t2Scale + Q · qScale                         [batch]
 *   m        = ReduceMean(c, axis 1)                             [batch, n]
 *   o        = Min(Relu(Max(lo - m, m - hi)) · invWidth, L)      [batch, n]
 *   guard    = ReduceMax(o, axis 1) · guardScale                 [batch]
 *   score    = Max(pca, guard)                                   [batch]
 *   contributions = guard > pca ? o / (ΣO + ε) : r² / (Q + ε)   [batch, n]
 * L = SCALED_LIMIT (saturation.ts): a reading far off saturates the score instead of overflowing.
 * The envelope (lo, hi) is relative to `mean`, and the guard averages the centred readings: a
 * float32 mean of raw readings (a voltage of 233: spacing 1.5e-5) times a large 1 / width drifted
 * up to 9e-5 from the in-memory score on SKAB; centred values are small, their mean exact enough.
 */
import { CONTRIBUTIONS_OUTPUT_NAME, INPUT_NAME, OUTPUT_NAME } from '../../inference/contract.js';
import { GraphBuilder, int, ints } from '../onnx/graph.js';
import { CONTRIBUTION_EPSILON, type PcaParams } from './pca-params.js';
import { SCALED_LIMIT } from './saturation.js';

export function pcaGraph(p: PcaParams): GraphBuilder {
  const n = p.features.length;
  const k = p.whiten.length;
  const g = new GraphBuilder('pumpwatch_pca_t2q');
  const x = g.input(INPUT_NAME, ['batch', p.window, n]);
  const mean = g.floatConst('mean', [n], p.mean);
  const invStd = g.floatConst('inv_std', [n], p.invStd);
  const whiten = g.floatConst('whiten', [n, k], transpose(p.whiten, n));
  const residual = g.floatConst('residual_projector', [n, n], p.residual.flatMap((row) => [...row]));
  const axis1 = g.int64Const('axis_1', [1], [1]);
  const t2Scale = g.floatConst('t2_scale', [], [p.t2Scale]);
  const qScale = g.floatConst('q_scale', [], [p.qScale]);
  const eps = g.floatConst('epsilon', [], [CONTRIBUTION_EPSILON]);
  const limitLo = g.floatConst('scaled_min', [], [-SCALED_LIMIT]);
  const limitHi = g.floatConst('scaled_max', [], [SCALED_LIMIT]);

  const centred = g.op('Sub', [x, mean], {}, 'centred');
  const z = g.op('Clip', [g.op('Mul', [centred, invStd], {}, 'standardised'), limitLo, limitHi], {}, 'standardised_clipped');
  const zbar = g.op('ReduceMean', [z], { axes: ints([1]), keepdims: int(0) }, 'window_mean');
  const t = g.op('MatMul', [zbar, whiten], {}, 'scores_whitened');
  const t2 = g.op('ReduceSum', [g.op('Mul', [t, t]), axis1], { keepdims: int(0) }, 't2');
  const r = g.op('MatMul', [zbar, residual], {}, 'residual');
  const r2 = g.op('Mul', [r, r], {}, 'residual_sq');
  const qKeep = g.op('ReduceSum', [r2, axis1], { keepdims: int(1) }, 'q_keep');
  const q = g.op('Squeeze', [qKeep, axis1], {}, 'q');
  const pca = g.op('Add', [g.op('Mul', [t2, t2Scale]), g.op('Mul', [q, qScale])], {}, 'pca_score');
  const lo = g.floatConst('envelope_lo', [n], p.envelopeLo);
  const hi = g.floatConst('envelope_hi', [n], p.envelopeHi);
  const invWidth = g.floatConst('envelope_inv_width', [n], p.envelopeInvWidth);
  const guardScale = g.floatConst('guard_scale', [], [p.guardScale]);
  const m = g.op('ReduceMean', [centred], { axes: ints([1]), keepdims: int(0) }, 'centred_window_mean');
  const beyond = g.op('Relu', [g.op('Max', [g.op('Sub', [lo, m]), g.op('Sub', [m, hi])])], {}, 'beyond_envelope');
  const o = g.op('Min', [g.op('Mul', [beyond, invWidth]), limitHi], {}, 'outside_widths');
  const guard = g.op('Mul', [g.op('ReduceMax', [o], { axes: ints([1]), keepdims: int(0) }), guardScale], {}, 'guard');
  g.node('Max', [pca, guard], [OUTPUT_NAME]);
  const fromQ = g.op('Div', [r2, g.op('Add', [qKeep, eps])], {}, 'q_shares');
  const fromGuard = g.op('Div', [o, g.op('Add', [g.op('ReduceSum', [o, axis1], { keepdims: int(1) }), eps])], {}, 'guard_shares');
  const guardWins = g.op('Unsqueeze', [g.op('Greater', [guard, pca]), axis1], {}, 'guard_decides');
  g.node('Where', [guardWins, fromGuard, fromQ], [CONTRIBUTIONS_OUTPUT_NAME]);
  g.output(OUTPUT_NAME, ['batch']);
  g.output(CONTRIBUTIONS_OUTPUT_NAME, ['batch', n]);
  return g;
}

function transpose(rows: readonly Float64Array[], n: number): number[] {
  const out: number[] = [];
  for (let f = 0; f < n; f++) for (const row of rows) out.push(row[f] as number);
  return out;
}
