/**
 * Real ONNX files that a model update must refuse or roll back, written with the trainer's own
 * ONNX writer (trainer/onnx): never mocks. Each loads in onnxruntime-node unless stated.
 */
import { INPUT_NAME, OUTPUT_NAME, metadataToProps, type ModelMetadata } from '../../inference/contract.js';
import { GraphBuilder, int, ints } from '../../trainer/onnx/graph.js';
import { encodeModel } from '../../trainer/onnx/model.js';
import { TEST_FEATURES } from './models.js';

function meta(version: string, overrides: Partial<ModelMetadata> = {}): ModelMetadata {
  return {
    contract: 1,
    features: [...TEST_FEATURES],
    window: 1,
    threshold: 1e6,
    source: 'default',
    version,
    trainedAt: '2026-01-01T00:00:00.000Z',
    algorithm: 'test-graph',
    metrics: {},
    ...overrides,
  };
}

/** score = sqrt(mean(features) - floor): finite while the readings' mean stays above `floor`, NaN below. */
function sqrtGraph(nFeatures: number, window: number, floor: number, inputWidth = nFeatures): GraphBuilder {
  const g = new GraphBuilder('pumpwatch_test_sqrt');
  const x = g.input(INPUT_NAME, ['batch', window, inputWidth]);
  const mean = g.op('ReduceMean', [x], { axes: ints([1, 2]), keepdims: int(0) }, 'mean');
  const shifted = g.op('Sub', [mean, g.floatConst('floor', [], [floor])], {}, 'shifted');
  g.node('Sqrt', [shifted], [OUTPUT_NAME]);
  g.output(OUTPUT_NAME, ['batch']);
  return g;
}

/**
 * A contract-1 model whose score is NaN whenever the mean of a window's values is below `floor`
 * (default 5: normal test readings average about 11, readings with Flow = 0 about 1).
 */
export function nanBelowModel(version: string, floor = 5): Uint8Array {
  return encodeModel(sqrtGraph(TEST_FEATURES.length, 1, floor), { metadata: metadataToProps(meta(version)), producerVersion: 'test' });
}

/**
 * score = Σ features² over the window: finite on readings, Infinity once a value passes 1.8e19 (a
 * sensor's error code such as 1e30), as a model without the trainer's saturation overflows
 * (trainer/algorithms/saturation.ts; the bundled default model of 2026-12 is one).
 */
export function overflowModel(version: string, window = 1): Uint8Array {
  const g = new GraphBuilder('pumpwatch_test_square_sum');
  const x = g.input(INPUT_NAME, ['batch', window, TEST_FEATURES.length]);
  g.node('ReduceSum', [g.op('Mul', [x, x], {}, 'squared'), g.int64Const('axes', [2], [1, 2])], [OUTPUT_NAME], { keepdims: int(0) });
  g.output(OUTPUT_NAME, ['batch']);
  return encodeModel(g, { metadata: metadataToProps(meta(version, { window })), producerVersion: 'test' });
}

/** A model that gives NaN on every reading (mean is never above 1e9). */
export function alwaysNanModel(version: string): Uint8Array {
  return nanBelowModel(version, 1e9);
}

/** A valid graph with no PumpWatch metadata at all. */
export function modelWithoutMetadata(): Uint8Array {
  return encodeModel(sqrtGraph(TEST_FEATURES.length, 1, 0), { metadata: {}, producerVersion: 'test' });
}

/** Metadata says 3 features, the input takes 5 per reading. */
export function wrongInputShapeModel(version: string): Uint8Array {
  return encodeModel(sqrtGraph(TEST_FEATURES.length, 1, 0, TEST_FEATURES.length + 2), {
    metadata: metadataToProps(meta(version)),
    producerVersion: 'test',
  });
}

/** A well-formed model that needs a feature the test pumps never send. */
export function extraFeatureModel(version: string): Uint8Array {
  const features = [...TEST_FEATURES, 'Vibration'];
  return encodeModel(sqrtGraph(features.length, 1, 0), { metadata: metadataToProps(meta(version, { features })), producerVersion: 'test' });
}

/**
 * A model that scores 0 but multiplies two size × size matrices per run, built from the input so
 * that onnxruntime cannot fold it away at load: a graph that takes a long time per run.
 */
export function slowModel(version: string, size = 2000): Uint8Array {
  const g = new GraphBuilder('pumpwatch_test_slow');
  const x = g.input(INPUT_NAME, ['batch', 1, TEST_FEATURES.length]);
  const level = g.op('ReduceMean', [x], { axes: ints([0, 1, 2]), keepdims: int(0) }, 'level');
  const big = g.op('Expand', [level, g.int64Const('big_shape', [2], [size, size])], {}, 'big');
  const total = g.op('ReduceSum', [g.op('MatMul', [big, big], {}, 'product')], { keepdims: int(0) }, 'total');
  const perWindow = g.op('ReduceMean', [x], { axes: ints([1, 2]), keepdims: int(0) }, 'per_window');
  const zero = g.floatConst('zero', [], [0]);
  g.node('Add', [g.op('Mul', [perWindow, zero], {}, 'zeros'), g.op('Mul', [total, zero], {}, 'nothing')], [OUTPUT_NAME]);
  g.output(OUTPUT_NAME, ['batch']);
  return encodeModel(g, { metadata: metadataToProps(meta(version)), producerVersion: 'test' });
}
