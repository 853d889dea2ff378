/**
 * Sliding windows over rows in time order, as the agent builds them: each row is scored with the
 * `window` readings ending at it; before enough readings exist the window is padded with the
 * first reading.
 */
import type { WindowBatch } from './algorithms/algorithm.js';

export function slidingWindows<T extends ArrayLike<number>>(rows: readonly T[], window: number): T[][] {
  if (rows.length === 0) return [];
  const first = rows[0] as T;
  return rows.map((_, i) =>
    Array.from({ length: window }, (_, t) => {
      const k = i - (window - 1) + t;
      return k < 0 ? first : (rows[k] as T);
    }),
  );
}

/** Flattens a batch of windows into the ONNX input layout [batch, window, n_features]. */
export function toInputTensor(batch: WindowBatch, nFeatures: number): Float32Array {
  const window = batch[0]?.length ?? 0;
  const out = new Float32Array(batch.length * window * nFeatures);
  batch.forEach((w, b) =>
    w.forEach((row, t) => {
      for (let f = 0; f < nFeatures; f++) out[(b * window + t) * nFeatures + f] = row[f] as number;
    }),
  );
  return out;
}
