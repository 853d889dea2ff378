/**
 * Sliding windows over rows in time order, as the agent builds them: each row is scored with the
 * `window` readings ending at it; before enough readings exist the window is padded with the
 * first reading.
 */
import type { WindowBatch } from './algorithms/algorithm.js';

/** The [from, to) row ranges of the runs that `starts` begin (see TrainingSet.segmentStarts). */
export function segmentBounds(starts: readonly number[] | undefined, rows: number): Array<[number, number]> {
  const inner = [...new Set((starts ?? []).filter((s) => Number.isInteger(s) && s > 0 && s < rows))].sort((a, b) => a - b);
  const edges = [0, ...inner, rows];
  return rows === 0 ? [] : edges.slice(0, -1).map((from, i) => [from, edges[i + 1] as number]);
}

/**
 * Sliding windows of each run (segmentBounds), never across a start; `full`: only windows whose
 * readings all lie in their run, otherwise each run's first windows are padded with its first row.
 */
export function segmentWindows<T extends ArrayLike<number>>(rows: readonly T[], window: number, starts: readonly number[] | undefined, full: boolean): T[][] {
  return segmentBounds(starts, rows.length).flatMap(([from, to]) => {
    const windows = slidingWindows(rows.slice(from, to), window);
    return full ? windows.slice(window - 1) : windows;
  });
}

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
