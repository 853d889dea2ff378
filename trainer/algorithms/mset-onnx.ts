/**
 * The MSET-like scorer as an ONNX graph (opset 17), the same arithmetic as the in-memory scorer:
 *   zbar  = ReduceMean(Clip((features - mean) * invScale, ±L), axis 1) [batch, n]
 *   e     = ReduceSum((zbar[:, None, :] - memory)², axis 2)          [batch, K]
 *   w     = Softmax(-gain · e, axis 1);  zhat = w · memory           [batch, n]
 *   r     = zbar - zhat
 *   score = ReduceMax(|r|, axis 1)                                  [batch]
 *   contributions = r² / (Σ r² + ε)                                 [batch, n]
 * with the relations channel (`mset-rel`):
 *   e     = Clip((zbar · M + c) · invRelScale, ±L);  rel = ReduceMax(|e|, axis 1)
 *   score = Max(ReduceMax(|r|), rel)
 *   contributions = rel > ReduceMax(|r|) ? e² / (Σ e² + ε) : r² / (Σ r² + ε)
 * L = SCALED_LIMIT (saturation.ts): a reading far off saturates the score instead of overflowing.
 */
import { CONTRIBUTIONS_OUTPUT_NAME, INPUT_NAME, OUTPUT_NAME } from '../../inference/contract.js';
import { GraphBuilder, int, ints } from '../onnx/graph.js';
import { MSET_CONTRIBUTION_EPSILON, type MsetParams } from './mset-params.js';
import { SCALED_LIMIT } from './saturation.js';

export function msetGraph(p: MsetParams): GraphBuilder {
  const n = p.features.length;
  const k = p.memory.length;
  const g = new GraphBuilder(p.relations ? 'pumpwatch_mset_relations' : 'pumpwatch_mset_horizon');
  const x = g.input(INPUT_NAME, ['batch', p.window, n]);
  const mean = g.floatConst('mean', [n], p.mean);
  const invScale = g.floatConst('inv_scale', [n], p.invScale);
  const memory = g.floatConst('memory', [k, n], p.memory.flatMap((row) => [...row]));
  const negGain = g.floatConst('neg_kernel_gain', [], [-p.kernelGain]);
  const axis1 = g.int64Const('axis_1', [1], [1]);
  const axis2 = g.int64Const('axis_2', [1], [2]);
  const eps = g.floatConst('epsilon', [], [MSET_CONTRIBUTION_EPSILON]);
  const lo = g.floatConst('scaled_min', [], [-SCALED_LIMIT]);
  const hi = g.floatConst('scaled_max', [], [SCALED_LIMIT]);

  const z = g.op('Clip', [g.op('Mul', [g.op('Sub', [x, mean], {}, 'centred'), invScale], {}, 'scaled'), lo, hi], {}, 'scaled_clipped');
  const zbar = g.op('ReduceMean', [z], { axes: ints([1]), keepdims: int(0) }, 'window_mean');
  const diff = g.op('Sub', [g.op('Unsqueeze', [zbar, axis1], {}, 'window_mean_3d'), memory], {}, 'to_memory');
  const dist = g.op('ReduceSum', [g.op('Mul', [diff, diff]), axis2], { keepdims: int(0) }, 'sq_distance');
  const weights = g.op('Softmax', [g.op('Mul', [dist, negGain], {}, 'logits')], { axis: int(1) }, 'similarity');
  const r = g.op('Sub', [zbar, g.op('MatMul', [weights, memory], {}, 'estimate')], {}, 'residual');
  const shares = (v: string, hint: string) => {
    const v2 = g.op('Mul', [v, v], {}, `${hint}_sq`);
    return g.op('Div', [v2, g.op('Add', [g.op('ReduceSum', [v2, axis1], { keepdims: int(1) }, `${hint}_total`), eps])], {}, `${hint}_shares`);
  };
  if (!p.relations) {
    // Plain `mset`: no node of the relations channel in its graph.
    g.node('ReduceMax', [g.op('Abs', [r])], [OUTPUT_NAME], { axes: ints([1]), keepdims: int(0) });
    const r2 = g.op('Mul', [r, r], {}, 'residual_sq');
    const total = g.op('ReduceSum', [r2, axis1], { keepdims: int(1) }, 'residual_total');
    g.node('Div', [r2, g.op('Add', [total, eps])], [CONTRIBUTIONS_OUTPUT_NAME]);
  } else {
    const rel = p.relations;
    const m = g.floatConst('relations_matrix', [n, n], rel.matrix.flatMap((row) => [...row]));
    const c = g.floatConst('relations_offset', [n], rel.offset);
    const relInv = g.floatConst('relations_inv_scale', [n], rel.invScale);
    const e = g.op('Clip', [g.op('Mul', [g.op('Add', [g.op('MatMul', [zbar, m]), c], {}, 'relation_residual'), relInv], {}, 'relation_scaled'), lo, hi], {}, 'relation_clipped');
    const stateScore = g.op('ReduceMax', [g.op('Abs', [r])], { axes: ints([1]), keepdims: int(0) }, 'state_score');
    const relScore = g.op('ReduceMax', [g.op('Abs', [e])], { axes: ints([1]), keepdims: int(0) }, 'relation_score');
    g.node('Max', [stateScore, relScore], [OUTPUT_NAME]);
    const relDecides = g.op('Unsqueeze', [g.op('Greater', [relScore, stateScore]), axis1], {}, 'relation_decides');
    g.node('Where', [relDecides, shares(e, 'relation'), shares(r, 'residual')], [CONTRIBUTIONS_OUTPUT_NAME]);
  }
  g.output(OUTPUT_NAME, ['batch']);
  g.output(CONTRIBUTIONS_OUTPUT_NAME, ['batch', n]);
  return g;
}
