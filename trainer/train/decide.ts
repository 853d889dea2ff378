/**
 * The promotion rule: the challenger replaces the live model only when its score (F1 with
 * labels, balanced accuracy with synthetic faults: eval/criterion.ts) is better by a margin.
 */
import { formatEvaluation, type Evaluation } from '../eval/criterion.js';

export interface Decision {
  promoted: boolean;
  reason: string;
  margin: number;
}

export interface Contender {
  version: string;
  evaluation: Evaluation;
}

/**
 * Data older than the live model's (`train` without `--allow-older`): the range's newest reading
 * is older than the newest reading the live model was trained and evaluated on. The live model has
 * seen newer data, and a challenger scored on older held-out rows says nothing about the pump as
 * it runs now. Readings, not the requested range: a live model trained with a `--to` in the future
 * must not block the ranges after its data.
 */
export interface OlderRange {
  /** The range's newest reading (ISO 8601). */
  newest: string;
  liveVersion: string;
  /** The newest reading of the live model's data (model.json `data.holdoutTo`). */
  liveNewest: string;
}

/**
 * `champion` is null when no model was promoted yet; `championProblem` says why a registered
 * champion could not be scored on the held-out rows (it then cannot defend its place); `older`:
 * the range is older than the live model's, and the challenger is never promoted (the scores are
 * still compared and given in the reason).
 */
export function decide(challenger: Contender, champion: Contender | null, margin: number, championProblem?: string, older?: OlderRange): Decision {
  if (champion !== null && champion.version === challenger.version) return { promoted: false, reason: `the challenger is the live model itself (version ${champion.version})`, margin };
  const detail = champion === null ? null : `${challenger.evaluation.criterion}: challenger ${formatEvaluation(challenger.evaluation)} vs live ${formatEvaluation(champion.evaluation)}, margin ${margin}`;
  if (older !== undefined) {
    const figures = detail !== null ? `; on the held-out rows: ${detail}` : championProblem !== undefined ? `; the live model cannot be scored on them (${championProblem})` : '';
    return {
      promoted: false,
      reason: `older data: its newest reading (${older.newest}) is older than the newest of live model ${older.liveVersion}'s data (${older.liveNewest}); older data never replaces a newer model (--allow-older to compare as usual)${figures}`,
      margin,
    };
  }
  if (championProblem !== undefined) return { promoted: true, reason: `the live model cannot be scored on the held-out rows (${championProblem})`, margin };
  if (champion === null) return { promoted: true, reason: 'no model was promoted for this source yet', margin };
  const better = challenger.evaluation.score >= champion.evaluation.score + margin;
  return { promoted: better, reason: better ? `better on the held-out rows: ${detail}` : `not better by the margin: ${detail}`, margin };
}

/**
 * A version a `rollback` moved best.json away from (best.json `rolledBack`) is not promoted again
 * by `train`: the same range and options give the same version, so a rerun of the range (a Job
 * retried on a fixed --from/--to, the nightly run) would undo the rollback unseen and put the
 * model someone took off the gateways back on them. `rollback --version V` makes it best on purpose.
 */
export function unlessRolledBack(decision: Decision, source: string, version: string, rolledBack: { at: string; to: string } | undefined): Decision {
  if (!decision.promoted || rolledBack === undefined) return decision;
  return {
    promoted: false,
    reason:
      `${version} was rolled back from at ${rolledBack.at} (best.json went to ${rolledBack.to}), and a version rolled back from is not promoted again by train ` +
      `(to make it best on purpose: pumpwatch-trainer rollback --source ${source} --version ${version}); without that: ${decision.reason}`,
    margin: decision.margin,
  };
}
