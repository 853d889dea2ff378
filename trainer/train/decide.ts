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
 * `champion` is null when no model was promoted yet; `championProblem` says why a registered
 * champion could not be scored on the held-out rows (it then cannot defend its place).
 */
export function decide(challenger: Contender, champion: Contender | null, margin: number, championProblem?: string): Decision {
  if (championProblem !== undefined) return { promoted: true, reason: `the live model cannot be scored on the held-out rows (${championProblem})`, margin };
  if (champion === null) return { promoted: true, reason: 'no model was promoted for this source yet', margin };
  if (champion.version === challenger.version) return { promoted: false, reason: `the challenger is the live model itself (version ${champion.version})`, margin };
  const a = challenger.evaluation;
  const b = champion.evaluation;
  const better = a.score >= b.score + margin;
  const detail = `${a.criterion}: challenger ${formatEvaluation(a)} vs live ${formatEvaluation(b)}, margin ${margin}`;
  return { promoted: better, reason: better ? `better on the held-out rows: ${detail}` : `not better by the margin: ${detail}`, margin };
}
