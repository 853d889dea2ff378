/**
 * The promotion rule: the challenger replaces the live model only when its score (F1 with
 * labels, balanced accuracy with synthetic faults: eval/criterion.ts) is better by a margin.
 */
import type { Evaluation } from '../eval/criterion.js';

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
  const f = (x: number) => x.toFixed(4);
  if (championProblem !== undefined) return { promoted: true, reason: `the live model cannot be scored on the held-out rows (${championProblem})`, margin };
  if (champion === null) return { promoted: true, reason: 'no model was promoted for this source yet', margin };
  if (champion.version === challenger.version) return { promoted: false, reason: `the challenger is the live model itself (version ${champion.version})`, margin };
  const a = challenger.evaluation;
  const b = champion.evaluation;
  const better = a.score >= b.score + margin;
  const detail = `${a.criterion}, ${a.metric}: challenger ${f(a.score)} (F1 ${f(a.f1)}, FAR ${a.far.toFixed(2)} %, MAR ${a.mar.toFixed(2)} %) vs live ${f(b.score)} (F1 ${f(b.f1)}, FAR ${b.far.toFixed(2)} %, MAR ${b.mar.toFixed(2)} %), margin ${margin}`;
  return { promoted: better, reason: better ? `better on the held-out rows: ${detail}` : `not better by the margin: ${detail}`, margin };
}
