/** The fitted MSET-like model's parameters, shared by the in-memory scorer and the ONNX graph. */
import type { RelationParams } from './relations.js';

export interface MsetParams {
  features: readonly string[];
  window: number;
  /** Centre of the training window means, per feature. */
  mean: Float64Array;
  /** 1 / horizon scale per feature; 0 for a feature that never varies in training (ignored). */
  invScale: Float64Array;
  /** Memory of representative normal states in scaled units: `memory[k][f]`. */
  memory: Float64Array[];
  /** 1 / (2·bandwidth²) of the Gaussian similarity kernel. */
  kernelGain: number;
  /** The relations channel (`mset-rel`, relations.ts), null for plain `mset`. */
  relations: RelationParams | null;
}

export const MSET_ALGORITHM = 'mset-horizon';
/** The variant with the relations channel. */
export const MSET_RELATIONS_ALGORITHM = 'mset-relations';

/** Added to Σ r² before dividing, so a zero residual gives zero contributions. */
export const MSET_CONTRIBUTION_EPSILON = 1e-12;
