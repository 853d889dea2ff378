/**
 * The lines `train` (and `train-all`, per source) and the report's header open with: what was
 * kept or promoted, and where the run's evaluation was recorded.
 */
import type { ModelRecord } from '../registry/records.js';
import { reasonGist } from '../train/decide.js';
import type { TrainOutcome } from '../train/pipeline.js';
import { LISTED_LABELS } from '../train/labels-used.js';

/**
 * What the first line says: `promoted V (…)`, or `kept live L; challenger V (…) not promoted
 * (<gist of the reason>)`. "kept" always names the live model: after a rollback from V, a rerun
 * read `kept V` as if V were on the gateways. Shared with the report's header.
 */
export function headline(o: TrainOutcome, r: ModelRecord): string {
  const model = `${r.version} (${r.algorithm}, window ${r.window}, threshold ${r.threshold})`;
  if (o.status === 'promoted') return `promoted ${model}`;
  const live = r.evaluation.championVersion;
  if (live === r.version) return `kept live ${model}: the challenger is that very version`;
  return `kept ${live === null ? 'no live model' : `live ${live}`}; challenger ${model} not promoted (${reasonGist(o.reason, r.version)})`;
}

/**
 * Where this run's evaluation went, and, when the version was registered before, that its
 * model.json keeps the first run's (write-once): an audit of model.json alone reads that one.
 */
export function recordedLine(o: TrainOutcome): string | null {
  if (o.evaluationBlob === undefined) return null;
  if (o.firstEvaluatedAt === undefined) return `this run's evaluation in ${o.evaluationBlob}`;
  return `model.json keeps its first evaluation (at ${o.firstEvaluatedAt}); this run's is in ${o.evaluationBlob}`;
}

/**
 * How many technicians' labels and withdrawals this run's comparison used, and the evaluation
 * blob that lists them (registry/records.ts LabelsUsedSchema): `5 of the 7 labels read gave
 * readings of the range their target (300 held-out rows, 0 training rows left out as faults); 1
 * of the 1 withdrawal read took its label off readings of the range; listed in models/…`.
 * Null for a run that wrote no evaluation (or, as records before it, none of these counts).
 */
export function labelsLine(o: TrainOutcome): string | null {
  const l = o.record?.evaluation.labels;
  if (o.evaluationBlob === undefined || l === undefined) return null;
  const w = l.withdrawals;
  const left = l.notListed + w.notListed;
  const capped = left === 0 ? '' : ` (at most ${LISTED_LABELS} of each, those that labelled the most held-out rows first; ${l.notListed} labels and ${w.notListed} withdrawals more are counted, not listed)`;
  return (
    `${l.used} of the ${l.read} ${l.read === 1 ? 'label' : 'labels'} read gave readings of the range their target (${l.heldOutRows} held-out rows, ${l.leftOutRows} training rows left out as faults); ` +
    `${w.applied} of the ${w.read} ${w.read === 1 ? 'withdrawal' : 'withdrawals'} read took ${w.applied === 1 ? 'its label' : 'their labels'} off readings of the range; listed in ${o.evaluationBlob}${capped}`
  );
}
