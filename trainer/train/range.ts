/**
 * A range as `train` works on it: the source's readings of the range read, labelled and cleaned
 * (prepare.ts), the warnings for label blobs skipped, and the split of the cleaned rows into the
 * part trained on and the most recent part held out (split.ts).
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Progress } from '../progress.js';
import type { Live } from './live.js';
import { comparisonLoad, prepareData, skippedLabelWarning, type LabelSet, type Prepared } from './prepare.js';
import type { TrainRequest } from './request.js';
import { holdoutSplit } from './split.js';

/** The rows a range gives to train and hold out; `faultRows`: rows of the training part left out as confirmed faults. */
export interface RowCounts {
  train: number;
  holdout: number;
  faultRows: number;
}

export interface TrainRange extends Prepared {
  /** A warning for each label blob skipped, when the labels were read here (train-all warns once, for every source). */
  labelWarnings: string[];
  /** The first held-out cleaned row. */
  holdoutStart: number;
  /** The cleaned rows trained on: those before `holdoutStart` but confirmed faults. */
  trainIdx: number[];
  counts: RowCounts;
}

/**
 * `labels`: the labels already read (train-all reads them once, and warns about the skipped blobs
 * once); without them they are read here and each skipped blob is a warning of the outcome.
 */
export async function prepareRange(container: ContainerClient, req: TrainRequest, progress: Progress, live: Live, labels?: LabelSet): Promise<TrainRange> {
  const { champion, stop } = live;
  // The live model's features stay in the data even when excluded or counters: it is scored on the same rows.
  const load = comparisonLoad(req.exclude, champion?.record.features ?? []);
  const judgeDrift = req.ifDrifted !== undefined && champion !== null;
  const prepared = await prepareData(container, req, progress, { labels, raw: true, load, uncleaned: judgeDrift, stoppedWhen: stop?.rule });
  const labelWarnings = labels === undefined ? prepared.skippedLabels.map(skippedLabelWarning) : [];
  const { cleaned } = prepared;
  const { holdoutStart, trainIdx } = holdoutSplit(cleaned, req.holdoutFraction);
  const counts = { train: trainIdx.length, holdout: cleaned.series.rows.length - holdoutStart, faultRows: holdoutStart - trainIdx.length };
  return { ...prepared, labelWarnings, holdoutStart, trainIdx, counts };
}
