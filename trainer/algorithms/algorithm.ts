/**
 * What every anomaly-detection algorithm of the trainer provides: fit on training rows without
 * labels, score windows in memory (Float64, for thresholds and tests), and export the same
 * scoring as an ONNX graph that follows the model contract's input and output (inference/contract.ts).
 */
import type { GraphBuilder } from '../onnx/graph.js';

export interface TrainingSet {
  /** Feature names, in the order of the values in each row (and of the model input). */
  features: readonly string[];
  /** Training rows in time order: raw sensor values, one per feature. */
  rows: readonly Float64Array[];
  /** Readings per window (>= 1); the score is for the last reading of each window. */
  window: number;
  /**
   * Rows that start a new run (a pause in the readings, or rows left out before it), ascending;
   * absent or `[0]`: one run. No window spans a start, as the agent never scores a window that
   * reaches back across a pause.
   */
  segmentStarts?: readonly number[];
}

/**
 * A batch of windows: `batch[b][t][f]`, t = 0 the oldest reading, t = window - 1 the reading
 * that is scored. Same layout as the ONNX input `features` [batch, window, n_features].
 */
export type WindowBatch = readonly (readonly ArrayLike<number>[])[];

export interface ScoreResult {
  /** One anomaly score per window; `score > threshold` is an anomaly. */
  scores: Float64Array;
  /** Per window, each feature's share (0..1) of the anomaly, as the ONNX `contributions` output. */
  contributions: Float64Array[];
}

export interface TrainedModel {
  readonly algorithm: string;
  readonly features: readonly string[];
  readonly window: number;
  readonly threshold: number;
  /** JSON-safe figures about the fit (written to `pumpwatch.metrics`). */
  readonly metrics: Record<string, unknown>;
  score(batch: WindowBatch): ScoreResult;
  /** The scoring as an ONNX graph: input `features`, outputs `score` and `contributions`. */
  toOnnxGraph(): GraphBuilder;
}

/**
 * What every trained model keeps the same way: its fitted parameters (with the features and the
 * window they were fitted on), its threshold and the figures of its fit. Subclasses score.
 */
export abstract class FittedModel<P extends { readonly features: readonly string[]; readonly window: number }> implements TrainedModel {
  abstract readonly algorithm: string;
  constructor(
    readonly params: P,
    readonly threshold: number,
    readonly metrics: Record<string, unknown>,
  ) {}

  get features(): readonly string[] {
    return this.params.features;
  }

  get window(): number {
    return this.params.window;
  }

  abstract score(batch: WindowBatch): ScoreResult;
  abstract toOnnxGraph(): GraphBuilder;
}

export interface Algorithm {
  readonly name: string;
  readonly defaultWindow: number;
  /** Throws a FitError when the rows cannot make a model (too few, nothing varies, ...). */
  fit(set: TrainingSet): TrainedModel;
}
