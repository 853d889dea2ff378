/** The fitted PCA T²+Q parameters, shared by the in-memory scorer and the ONNX graph. */

/** Everything the in-memory and ONNX scorers need. */
export interface PcaParams {
  features: readonly string[];
  window: number;
  mean: Float64Array;
  /** 1 / std per feature, 0 for features that do not vary in training. */
  invStd: Float64Array;
  /** Kept components scaled by 1/sqrt(eigenvalue): `whiten[k][f]`. */
  whiten: Float64Array[];
  /** Residual projector I - P·Pᵀ, `residual[g][f]`. */
  residual: Float64Array[];
  /** score = T²·t2Scale + Q·qScale (qScale 0 when every component is kept). */
  t2Scale: number;
  qScale: number;
  /**
   * The envelope guard (see pca.ts): lowest and highest training window mean per feature, minus
   * `mean` (the guard averages centred readings), and 1 / (highest - lowest), 0 for features whose
   * window means are all equal. score = max(T²·t2Scale + Q·qScale,
   * guardScale · the largest distance of a window mean outside its envelope, in envelope widths).
   */
  envelopeLo: Float64Array;
  envelopeHi: Float64Array;
  envelopeInvWidth: Float64Array;
  guardScale: number;
}

/** Added to Q before dividing, so a zero residual gives zero contributions. */
export const CONTRIBUTION_EPSILON = 1e-12;

export const PCA_ALGORITHM = 'pca-t2q';
