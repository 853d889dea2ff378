/**
 * The lines `train` (and `train-all`, per source) and the report's header open with: what was
 * kept or promoted, and where the run's evaluation was recorded.
 */
import type { ModelRecord } from '../registry/records.js';
import { reasonGist } from '../train/decide.js';
import type { TrainOutcome } from '../train/pipeline.js';

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
