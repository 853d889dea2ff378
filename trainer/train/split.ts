/**
 * How `train` splits a range's cleaned rows: the oldest part to fit on, the most recent part held
 * out to judge the model on, and the least rows of each. Storage-free: the agent splits its buffer
 * rows the same way to check the first model it fits for a pump (agent/first-model/).
 */
import type { Cleaned } from '../data/clean.js';

/**
 * `maxFar` 5 %: the false-alarm ceiling of the decision (train/decide.ts; why this figure:
 * trainer/README.md, "Decide").
 */
export const TRAIN_DEFAULTS = { holdoutFraction: 0.2, margin: 0.01, seed: 1, maxFar: 5, maxAlarmsPerDay: 1 };
export const MIN_TRAIN_ROWS = 100;
export const MIN_HOLDOUT_ROWS = 20;

/**
 * The split of cleaned rows: those from `holdoutStart` on (the newest `holdoutFraction`) are held
 * out; `trainIdx`, the rows before it but those labelled as confirmed faults (never trained on).
 */
export function holdoutSplit(cleaned: Pick<Cleaned, 'series' | 'targets'>, holdoutFraction: number): { holdoutStart: number; trainIdx: number[] } {
  const holdoutStart = Math.floor(cleaned.series.rows.length * (1 - holdoutFraction));
  const trainIdx: number[] = [];
  for (let i = 0; i < holdoutStart; i++) if (cleaned.targets[i] !== 'anomaly') trainIdx.push(i);
  return { holdoutStart, trainIdx };
}

/**
 * Where the training rows start a new run: at a pause or a hole the cleaning left (its segment
 * starts), and where labelled fault rows were left out between two training rows.
 */
export function trainSegmentStarts(trainIdx: readonly number[], cleanedStarts: readonly number[]): number[] {
  const startsRun = new Set(cleanedStarts);
  return trainIdx.flatMap((row, k) => (k === 0 || startsRun.has(row) || row !== (trainIdx[k - 1] as number) + 1 ? [k] : []));
}
