/**
 * The comparison: the challenger and the live model scored on the same held-out rows with the same
 * metric and the same synthetic faults (eval/criterion.ts), the decision (decide.ts) with what a
 * run adds to it (older data, a version rolled back from, an unfinished first promotion), and both
 * models scored on the raw held-out readings as the agent would score them (eval/as-agent.ts).
 */
import { describeStoppedRule } from '../../inference/contract.js';
import { rowsWith } from '../data/clean.js';
import { scoreAsAgent, type AgentView, type RawReadings } from '../eval/as-agent.js';
import { evaluate, faultSpreads, HELD_OUT_ROWS, planEvaluation, type Evaluation, type EvaluationPlan, type ScoredData } from '../eval/criterion.js';
import { OnnxScorer, rowsOf } from '../eval/score.js';
import { lowerBound } from '../linalg/stats.js';
import { rolledBackEntry } from '../registry/records.js';
import { decide, unlessRolledBack, type Decision } from './decide.js';
import type { Fitted } from './fit-range.js';
import { finishUnfinished, liveNewestOf, type Live } from './live.js';
import type { TrainRange } from './range.js';
import type { TrainRequest } from './request.js';
import { MIN_HOLDOUT_ROWS } from './split.js';

/**
 * The rows both models are scored on, and the first held-out one among them. `liveProblem`: why
 * the live model is not scored (too few held-out rows have a feature only it uses), else undefined.
 */
export interface ComparisonRows {
  scored: ScoredData;
  scoredHoldout: number;
  liveProblem?: string;
}

/** A model scored on the held-out rows; `problem`: why it could not be (then `evaluation` and `scores` are null). */
export interface ScoredRun {
  evaluation: Evaluation | null;
  scores: Float32Array | null;
  problem: string | undefined;
}

export interface Comparison {
  plan: EvaluationPlan;
  /** The held-out rows of `scored`. */
  held: number[];
  challenger: ScoredRun;
  /** The live model scored, or null when there is none. */
  defender: ScoredRun | null;
  decision: Decision;
}

export interface AsAgent {
  from: string;
  challenger: AgentView;
  champion: AgentView | null;
}

/**
 * What both models are scored on: the cleaned rows that have every feature the live model alone
 * uses (cleaning kept the others for the challenger's training, whatever model is live).
 */
export function comparisonRows(range: TrainRange): ComparisonRows {
  const { cleaned, holdoutStart, loaded } = range;
  const { view: scored, index } = rowsWith(cleaned, loaded.leftOutButKept);
  const scoredHoldout = index === null ? holdoutStart : lowerBound(index, holdoutStart);
  const withThem = scored.series.rows.length - scoredHoldout;
  const held = cleaned.series.rows.length - holdoutStart;
  if (withThem >= MIN_HOLDOUT_ROWS || withThem === held) return { scored, scoredHoldout };
  // The pump has (nearly) stopped sending a feature only the live model uses: judged on the few
  // rows that still have it, both models were compared on as little as one held-out row, and the
  // live model kept. It cannot score such a pump on the gateway either, so it is not scored, and
  // the challenger is judged on every held-out row (decide.ts: a live model that cannot be scored).
  const features = loaded.leftOutButKept.join(', ');
  return {
    scored: cleaned,
    scoredHoldout: holdoutStart,
    liveProblem: `it needs ${features}, which only ${withThem} of the ${held} held-out rows have (at least ${MIN_HOLDOUT_ROWS} are needed to judge it)`,
  };
}

export async function compareWithLive(req: TrainRequest, live: Live, range: TrainRange, rows: ComparisonRows, fitted: Fitted): Promise<Comparison> {
  const { cleaned, loaded, holdoutStart } = range;
  const { scored, scoredHoldout } = rows;
  const { fit, stoppedRun } = fitted;
  const { champion } = live;
  // Synthetic faults only in the features the challenger watches: the others were left out on purpose.
  const std = faultSpreads(fitted.trainRows, cleaned.series.features, fit.metadata.features);
  const plan = planEvaluation(scored, scoredHoldout, std, req.seed, HELD_OUT_ROWS);
  const unscored = cleaned.series.rows.length - holdoutStart - (scored.series.rows.length - scoredHoldout);
  if (unscored > 0) plan.description += `; ${unscored} held-out rows without ${loaded.leftOutButKept.join(', ')} (which only the live model uses) are scored by neither model`;
  // Both models are judged on the rows where the pump runs by the one rule of this run.
  if (stoppedRun) plan.description += `; rows where the pump is stopped or starting by ${describeStoppedRule(stoppedRun.rule)} (${stoppedRun.from}'s rule) are left out for both models`;
  const held = rowsFrom(scoredHoldout, scored.series.rows.length);
  const challenger = await scoreModel(fit.bytes, plan, scored, held);
  const defender = champion === null ? null : rows.liveProblem !== undefined ? { evaluation: null, scores: null, problem: rows.liveProblem } : await scoreModel(champion.bytes, plan, scored, held);
  const decision = decideRun(req, live, fit.metadata.version, cleaned.series.timestamps, challenger, defender);
  return { plan, held, challenger, defender, decision };
}

/** The decision of decide.ts, kept from a version rolled back from, and finishing an unfinished first promotion. */
function decideRun(req: TrainRequest, live: Live, version: string, timestamps: readonly number[], challenger: ScoredRun, defender: ScoredRun | null): Decision {
  const { champion, unfinished } = live;
  const newest = timestamps[timestamps.length - 1] as number;
  const liveNewest = liveNewestOf(champion);
  const decided = decide(
    { version, evaluation: challenger.evaluation as Evaluation },
    defender?.evaluation ? { version: champion!.record.version, evaluation: defender.evaluation } : null,
    { margin: req.margin, maxFar: req.maxFar, maxAlarmsPerDay: req.maxAlarmsPerDay },
    defender && !defender.evaluation ? defender.problem : undefined,
    champion && !req.allowOlder && Number.isFinite(liveNewest) && newest < liveNewest
      ? { newest: new Date(newest).toISOString(), liveVersion: champion.record.version, liveNewest: new Date(liveNewest).toISOString() }
      : undefined,
  );
  return finishUnfinished(unlessRolledBack(decided, req.source, version, rolledBackEntry(champion?.state.pointer, version)), unfinished);
}

async function scoreModel(bytes: Uint8Array, plan: EvaluationPlan, cleaned: ScoredData, held: number[]): Promise<ScoredRun> {
  const scorer = await OnnxScorer.load(bytes);
  try {
    const missing = scorer.missingFeatures(cleaned.series.features);
    if (missing.length > 0) return { evaluation: null, scores: null, problem: `it needs ${missing.join(', ')}, absent from the data` };
    const evaluation = await evaluate(scorer, plan);
    const scores = await scorer.score(rowsOf(cleaned.series, cleaned.segmentStarts), held);
    return { evaluation, scores, problem: undefined };
  } finally {
    await scorer.release();
  }
}

/** The raw readings from the first held-out row's time on, scored by the challenger and (when it can be scored) the live model. */
export async function asTheAgentWould(source: string, raw: RawReadings, fromTs: number, challenger: Uint8Array, champion: Uint8Array | null): Promise<AsAgent> {
  // The first raw reading at or after the first held-out row (readings are in time order).
  const from = lowerBound(raw.timestamps, fromTs);
  return {
    from: new Date(fromTs).toISOString(),
    challenger: await scoreAsAgent(challenger, source, raw, from),
    champion: champion ? await scoreAsAgent(champion, source, raw, from) : null,
  };
}

/** The row indices [from, to). */
function rowsFrom(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
