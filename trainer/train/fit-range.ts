/**
 * The challenger: fitted on the range's training rows (the cleaned rows before the held-out part,
 * confirmed faults left out), with the run's stopped-when rule and the frozen-sensor bounds
 * cleaning found.
 */
import type { StuckAfter } from '../../inference/contract.js';
import { withoutFeatures } from '../data/counters.js';
import { FitError, TrainerError } from '../errors.js';
import { fitTable, type FitResult } from '../fit.js';
import { refused, type Live } from './live.js';
import { between } from './prepare.js';
import type { TrainRange } from './range.js';
import type { TrainRequest } from './request.js';
import { checkStopFeatures, type StoppedRun } from './run-stop.js';
import { trainSegmentStarts } from './split.js';

export interface Fitted {
  fit: FitResult;
  /** The cleaned rows trained on, every feature of the cleaned data. */
  trainRows: Float64Array[];
  /** The rows trained on as the challenger saw them (its features only). */
  trainSet: { features: string[]; rows: Float64Array[] };
  /** The run's stopped-when rule and the rows it left out, or null. */
  stoppedRun: StoppedRun | null;
}

export function fitChallenger(req: TrainRequest, live: Live, range: TrainRange): Fitted {
  const { cleaned, loaded, trainIdx } = range;
  const trainRows = trainIdx.map((i) => cleaned.series.rows[i] as Float64Array);
  // A copy when the live model keeps features the challenger leaves out (never in place: these rows are the cleaned data's).
  const trainSet = withoutFeatures({ features: cleaned.series.features, timestamps: trainIdx.map((i) => cleaned.series.timestamps[i] as number), rows: trainRows }, loaded.leftOutButKept);
  const stoppedRun = live.stop && range.stopped ? { ...live.stop, rows: range.stopped } : null;
  checkStopFeatures(stoppedRun, trainSet.features, loaded.series.features);
  let fit: FitResult;
  try {
    fit = fitRange(req, { ...trainSet, timestampColumn: 'ts', ignoredColumns: [], segmentStarts: trainSegmentStarts(trainIdx, cleaned.segmentStarts) }, stoppedRun, cleaned.stuckAfter);
  } catch (err) {
    throw refused(live, err);
  }
  if (live.unfinished !== null && fit.metadata.version !== live.unfinished.record.version) throw live.unfinished.refusal;
  return { fit, trainRows, trainSet, stoppedRun };
}

/**
 * The challenger; rows no model can be fitted on (no feature varies) are a data problem of the range, like too few rows.
 * `stuckAfter`: the frozen-sensor bounds cleaning found on the range's rows before carrying values forward (the rows fitted on hold carried values).
 */
function fitRange(req: TrainRequest, table: Parameters<typeof fitTable>[0], stop: StoppedRun | null, stuckAfter: StuckAfter | undefined): FitResult {
  try {
    return fitTable(table, { source: req.source, algorithm: req.algorithm, window: req.window, version: req.version, ...(stop ? { stoppedWhen: stop.rule, stoppedLeftOut: stop.rows } : {}), stuckAfter: stuckAfter ?? {} });
  } catch (err) {
    if (!(err instanceof FitError)) throw err;
    const what = `cannot fit a model on the rows of "${req.source}" ${between(req)}: ${err.message}`;
    // An option the rows do not fit is bad usage (exit 2), as in `fit`; too few or too flat rows are the range's data.
    if (err.option !== undefined) throw new FitError(what, err.option);
    throw new TrainerError('PW_TRAINER_NO_DATA', what, { cause: err });
  }
}
