/**
 * Runs of readings in training (TrainingSet.segmentStarts): a pause, or rows left out, starts a
 * new run, and no training window reaches across it, as no agent window does.
 */
import { describe, expect, it } from 'vitest';
import { segmentWindowMeans } from '../../trainer/algorithms/horizon.js';
import { fitMset, MSET_DEFAULTS } from '../../trainer/algorithms/mset.js';
import type { MsetModel } from '../../trainer/algorithms/mset-model.js';
import { driftAllowance } from '../../trainer/algorithms/pca.js';
import { mulberry32 as rng } from '../../trainer/eval/criterion.js';
import { FitError } from '../../trainer/errors.js';
import { fitTable } from '../../trainer/fit.js';
import { trainSegmentStarts } from '../../trainer/train/pipeline.js';
import { segmentBounds, segmentWindows } from '../../trainer/windows.js';

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** A pump that ran 300 readings at one set point, stopped, and ran 300 more at another (noise sd 1). */
function twoRuns(levels: [number, number] = [0, 20], seed = 3): Float64Array[] {
  const rand = rng(seed);
  return Array.from({ length: 600 }, (_, i) => Float64Array.of((i < 300 ? levels[0] : levels[1]) + gaussian(rand), 5 + gaussian(rand)));
}

describe('runs of training rows', () => {
  it('cuts the rows at each start, ignoring starts out of range, repeated or unordered', () => {
    expect(segmentBounds(undefined, 5)).toEqual([[0, 5]]);
    expect(segmentBounds([0, 3, 3, 9, -1, 1], 5)).toEqual([[0, 1], [1, 3], [3, 5]]);
    expect(segmentBounds([0], 0)).toEqual([]);
  });

  it('builds windows of each run only, full or padded with the run\'s own first row', () => {
    const rows = [1, 2, 3, 10, 11, 12, 13].map((v) => Float64Array.of(v));
    const firstOf = (w: Float64Array[]) => w.map((r) => r[0]);
    expect(segmentWindows(rows, 3, [0, 3], true).map(firstOf)).toEqual([[1, 2, 3], [10, 11, 12], [11, 12, 13]]);
    expect(segmentWindows(rows, 3, [0, 3], false).slice(3, 5).map(firstOf)).toEqual([[10, 10, 10], [10, 10, 11]]);
    expect(Array.from(segmentWindowMeans(rows, 3, [0, 3], true).data)).toEqual([2, 11, 12]);
    expect(Array.from(segmentWindowMeans(rows, 3, [0, 3], false).data)).toEqual([1, 4 / 3, 2, 10, 31 / 3, 11, 12]);
  });

  it('fits MSET on the windows of each run: its memory holds no state blending the two set points', () => {
    const rows = twoRuns();
    const set = { features: ['flow', 'temp'], rows, window: 10 };
    const everyWindow = { ...MSET_DEFAULTS, memoryStates: 1000 }; // the memory is then every training window
    const split = fitMset({ ...set, segmentStarts: [0, 300] }, everyWindow) as MsetModel;
    const joined = fitMset(set, everyWindow) as MsetModel;
    expect(split.metrics.trainWindows).toBe(2 * (300 - 9));
    expect(joined.metrics.trainWindows).toBe(600 - 9);
    // Memory states back in flow units: near 0 or near 20, never the 2, 4, ... 18 of a window across the pause.
    const flows = (m: MsetModel) => m.params.memory.map((state) => state[0]! / m.params.invScale[0]! + m.params.mean[0]!);
    const blended = (m: MsetModel) => flows(m).filter((v) => v > 5 && v < 15);
    expect(blended(split)).toEqual([]);
    expect(blended(joined)).toHaveLength(5); // as one run: the windows across the pause averaging 6, 8, ... 14
  });

  it('takes PCA\'s drift allowance from the steps within a run, not the jump across a pause', () => {
    const rows = twoRuns();
    const withRuns = driftAllowance(rows, [0, 300]);
    const noiseOnly = driftAllowance(rows.slice(0, 300));
    expect(withRuns[1]!).toBeCloseTo(driftAllowance(rows)[1]!, 1); // the steady feature: the same either way
    expect(withRuns[0]!).toBeGreaterThan(noiseOnly[0]!); // the level changed between runs: allowed for, from steps within runs
    expect(withRuns[0]!).toBeGreaterThan(driftAllowance(rows)[0]!); // the one jump counted as a step shrank it
  });

  it('refuses a window longer than every run, as it refuses one longer than the training rows', () => {
    // 40 runs of 5 readings and a window of 10: every training window was padded, and the agent never scores a run that short.
    const rows = twoRuns().slice(0, 200);
    const table = { features: ['flow', 'temp'], rows, timestamps: rows.map((_, i) => i * 1000), timestampColumn: 'ts', ignoredColumns: [] };
    const starts = rows.map((_, i) => i).filter((i) => i % 5 === 0);
    expect(() => fitTable({ ...table, segmentStarts: starts }, { window: 10 })).toThrow(
      new FitError('window 10 is longer than the longest run of the training rows (5 rows between pauses or left-out rows): no training row has a whole window of readings', '--window'),
    );
    // One run as long as the window is enough.
    expect(fitTable({ ...table, segmentStarts: [...starts.filter((s) => s < 100), 110, 120] }, { window: 10 }).metadata.window).toBe(10);
  });

  it('starts a run of training rows at each pause the cleaning found and where labelled fault rows were left out', () => {
    // Cleaned rows 0-9, a pause before row 7; rows 3 and 4 were labelled faults.
    expect(trainSegmentStarts([0, 1, 2, 5, 6, 7, 8, 9], [0, 7])).toEqual([0, 3, 5]);
    expect(trainSegmentStarts([0, 1, 2], [0])).toEqual([0]);
  });
});
