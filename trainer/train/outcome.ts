/**
 * What `train` gives back for a source it trained (request.ts TrainOutcome): the decision with the
 * warnings the data scientist should read beside it, the held-out rows' drift and what the report
 * draws (a skip is request.ts `skipped`).
 */
import type { Evaluation } from '../eval/criterion.js';
import { spanWarnings } from '../fit.js';
import type { ModelRecord } from '../registry/records.js';
import type { AsAgent, ComparisonRows, Comparison } from './compare.js';
import { heldOutDrift, type DriftGate } from './drift-gate.js';
import type { Fitted } from './fit-range.js';
import type { Champion } from './live.js';
import type { Published } from './publish.js';
import type { TrainRange } from './range.js';
import type { TrainOutcome, TrainRequest } from './request.js';
import { dataWarnings, evaluationWarnings, rawReadingWarnings } from './warnings.js';

/** The stages' results a trained outcome is assembled from, by name. */
export interface TrainedParts {
  req: TrainRequest;
  champion: Champion | null;
  range: TrainRange;
  gate: Exclude<DriftGate, { skip: TrainOutcome }>;
  fitted: Fitted;
  rows: ComparisonRows;
  compared: Comparison;
  asAgent: AsAgent;
  record: ModelRecord;
  published: Published;
}

export function trainedOutcome(p: TrainedParts): TrainOutcome {
  const { req, champion, range, fitted, compared, asAgent, record } = p;
  const { scored } = p.rows;
  const { held, challenger, defender, decision } = compared;
  const { fit } = fitted;
  return {
    status: decision.promoted ? 'promoted' : 'kept',
    reason: decision.reason,
    source: req.source,
    ...p.published,
    warnings: [
      ...spanWarnings(fit.metadata, 'the comparison on the most recent rows'),
      ...evaluationWarnings(challenger.evaluation as Evaluation, req.maxFar, req.maxAlarmsPerDay, asAgent.challenger),
      ...dataWarnings(range.loaded, range.cleaned.stats, constantFeaturesOf(fit.model.metrics), req.exclude ?? []),
      ...rawReadingWarnings(challenger.evaluation as Evaluation, asAgent.challenger),
      ...range.labelWarnings,
      ...p.gate.warnings,
    ],
    record,
    // The run's thresholds (--psi/--ks with --if-drifted), and the live model's empirical null (or the challenger's, as it was just computed).
    drift: heldOutDrift(req, champion, record, range.loaded, scored, held),
    ...(p.gate.retrained === undefined ? {} : { retrained: p.gate.retrained }),
    view: {
      timestamps: held.map((i) => scored.series.timestamps[i] as number),
      targets: held.map((i) => scored.targets[i] ?? null),
      challenger: { version: fit.metadata.version, algorithm: fit.metadata.algorithm, threshold: fit.metadata.threshold, evaluation: challenger.evaluation, scores: challenger.scores },
      champion: champion && defender ? { version: champion.record.version, algorithm: champion.record.algorithm, threshold: champion.record.threshold, evaluation: defender.evaluation, scores: defender.scores } : null,
    },
  };
}

function constantFeaturesOf(metrics: Record<string, unknown>): string[] {
  const c = metrics.constantFeatures;
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
}
