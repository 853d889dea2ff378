/**
 * Where a `train` run's evaluation was recorded, for its output (and `train-all`'s) and its report.
 */
import type { TrainOutcome } from '../train/pipeline.js';

/**
 * Where this run's evaluation went, and, when the version was registered before, that its
 * model.json keeps the first run's (write-once): an audit of model.json alone reads that one.
 */
export function recordedLine(o: TrainOutcome): string | null {
  if (o.evaluationBlob === undefined) return null;
  if (o.firstEvaluatedAt === undefined) return `this run's evaluation in ${o.evaluationBlob}`;
  return `model.json keeps its first evaluation (at ${o.firstEvaluatedAt}); this run's is in ${o.evaluationBlob}`;
}
