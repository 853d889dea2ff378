/**
 * The promotion rule: the challenger replaces the live model only when its score (the balanced
 * accuracy: eval/criterion.ts) is better by a margin, under a false-alarm ceiling: a model that
 * flags more than `maxFar` % of the normal held-out rows cannot defend its place against a
 * challenger within it, and a challenger above it never replaces a live model within it.
 *
 * Why a ceiling beside the balanced accuracy: the balanced accuracy weighs a false alarm on a
 * normal row as much as a missed fault row, so a live model trained at another operating point,
 * flagging half of the normal readings while catching nearly every synthetic fault, scored 0.72
 * and was kept against a challenger that flagged none of them (0.61, missing 79 % of the
 * synthetic faults). In the field every one of those false alarms reaches a technician, reading
 * after reading; alarms that are mostly false get ignored, the true ones with them. The
 * ceiling's default and why: trainer/README.md, "Decide". Beside the share, the alarms: runs of
 * flagged normal rows, more than a model raising `maxAlarmsPerDay` a day would raise, put a model
 * over the ceiling too (overCeiling): a model flickering about its threshold flags few rows but alerts a
 * technician at each run.
 *
 * With synthetic faults, "better by the margin" is judged placement by placement (eval/criterion.ts
 * PLACEMENTS): the mean of the challenger's paired differences must reach the margin, and be told
 * apart from the placements' noise, mean − 2·SE > 0 (SE: their standard deviation / √placements).
 * One placement caught or missed one block more and moved the gap by 0.02, twice the margin: the
 * seed decided. The paired figures are in the reason and in model.json (`decision.paired`).
 */
import { ALARMS_PER_DAY, alarmsRule, describeAlarms, tooManyAlarms } from '../eval/alarms.js';
import { formatEvaluation, type Evaluation } from '../eval/criterion.js';

export interface Decision {
  promoted: boolean;
  reason: string;
  margin: number;
  /** The false-alarm ceiling (% of the normal held-out rows) it was decided under; absent from records written before 2026-12-06. */
  maxFar?: number;
  /** The alarm ceiling (false alarms a day, runs of flagged normal rows; 0: none) it was decided under; absent from records written before 2026-12-06 (evening). */
  maxAlarmsPerDay?: number;
  /** Synthetic faults: the paired comparison over their placements; absent with labels and from records written before 2026-12-07. */
  paired?: Paired;
}

/** The challenger's score minus the live model's, placement by placement. */
export interface Paired {
  placements: number;
  /** Mean and standard deviation of the differences. */
  mean: number;
  sd: number;
  rule: string;
}

export const PAIRED_RULE = 'mean paired difference >= margin and mean - 2 SE > 0';

/**
 * `margin`: score the challenger must gain; `maxFar`: the false-alarm ceiling, % of the normal
 * held-out rows (`--max-far`); `maxAlarmsPerDay`: the alarm ceiling (`--max-alarms-per-day`, 0:
 * none; absent: ALARMS_PER_DAY).
 */
export interface DecisionRule {
  margin: number;
  maxFar: number;
  maxAlarmsPerDay?: number;
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
 *
 * With both scored: a live model above the false-alarm ceiling is replaced by a challenger within
 * it that finds at least one positive (a challenger that flags nothing at all would silence the
 * pump's alarms: it is compared as usual); a challenger above the ceiling never replaces a live
 * model within it; otherwise (both within, or both above) the score decides, by the margin.
 */
export function decide(challenger: Contender, champion: Contender | null, rule: DecisionRule, championProblem?: string, older?: OlderRange): Decision {
  const { margin, maxFar } = rule;
  const maxAlarmsPerDay = rule.maxAlarmsPerDay ?? ALARMS_PER_DAY;
  const pairs = champion === null ? null : paired(challenger.evaluation, champion.evaluation);
  const decided = (promoted: boolean, reason: string): Decision => ({ promoted, reason, margin, maxFar, maxAlarmsPerDay, ...(pairs ? { paired: pairs } : {}) });
  if (champion !== null && champion.version === challenger.version) return decided(false, `the challenger is the live model itself (version ${champion.version})`);
  const detail =
    champion === null
      ? null
      : `${challenger.evaluation.criterion}: challenger ${formatEvaluation(challenger.evaluation)} vs live ${formatEvaluation(champion.evaluation)}, margin ${margin}, false-alarm ceiling ${maxFar} %` +
        (pairs ? `; ${describePaired(pairs)}` : '');
  if (older !== undefined) {
    const figures = detail !== null ? `; on the held-out rows: ${detail}` : championProblem !== undefined ? `; the live model cannot be scored on them (${championProblem})` : '';
    return decided(
      false,
      `older data: its newest reading (${older.newest}) is older than the newest of live model ${older.liveVersion}'s data (${older.liveNewest}); older data never replaces a newer model (--allow-older to compare as usual)${figures}`,
    );
  }
  if (championProblem !== undefined) return decided(true, `the live model cannot be scored on the held-out rows (${championProblem})`);
  if (champion === null) return decided(true, 'no model was promoted for this source yet');
  const c = challenger.evaluation;
  const l = champion.evaluation;
  // Why each is over the ceilings, or null: worked out once, for the decision and its reason.
  const liveOver = overCeiling(l, rule);
  const challengerOver = overCeiling(c, rule);
  if (liveOver !== null && challengerOver === null && c.counts.tp > 0) {
    return decided(true, `the live model ${liveOver}, and the challenger ${withinCeiling(c)}, within it: ${detail}`);
  }
  if (challengerOver !== null && liveOver === null) {
    return decided(false, `the challenger ${challengerOver}, and the live model ${withinCeiling(l)}, within it: ${detail}`);
  }
  const byMargin = pairs ? pairs.mean >= margin : c.score >= l.score + margin;
  const beyondNoise = pairs === null || pairs.mean - 2 * standardError(pairs) > 0;
  const better = byMargin && beyondNoise;
  const both =
    challengerOver === null || liveOver === null
      ? ''
      : c.far > maxFar && l.far > maxFar
        ? ' (both flag more normal rows than the false-alarm ceiling allows)'
        : ' (both raise more false alarms than the ceilings allow)';
  const not = byMargin ? 'not better beyond the noise of the fault placements' : 'not better by the margin';
  return decided(better, better ? `better on the held-out rows${both}: ${detail}` : `${not}${both}: ${detail}`);
}

/** The paired comparison of two evaluations on the same placements of synthetic faults, or null (labels, a record without placements). */
function paired(c: Evaluation, l: Evaluation): Paired | null {
  const a = c.placements;
  const b = l.placements;
  if (a === undefined || b === undefined || a.length !== b.length || a.length < 2) return null;
  const d = a.map((x, k) => x - (b[k] as number));
  const mean = d.reduce((sum, x) => sum + x, 0) / d.length;
  const sd = Math.sqrt(d.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (d.length - 1));
  return { placements: d.length, mean: Number(mean.toFixed(6)), sd: Number(sd.toFixed(6)), rule: PAIRED_RULE };
}

function standardError(p: Paired): number {
  return p.sd / Math.sqrt(p.placements);
}

/** `paired over 16 placements of the synthetic faults: challenger − live +0.0123 on average (SD 0.0101, SE 0.0025); promoted when …` */
function describePaired(p: Paired): string {
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`;
  return `paired over ${p.placements} placements of the synthetic faults: challenger − live ${signed(p.mean)} on average (SD ${p.sd.toFixed(4)}, SE ${standardError(p).toFixed(4)}; rule: ${p.rule})`;
}

const pct = (x: number) => `${x.toFixed(2)} %`;

/**
 * Why a model's false alarms on the normal held-out rows are over the ceilings, or null: it flags
 * more than `maxFar` % of them (`--max-far`), or its runs of flags there are more alarms than a
 * model raising one a day would raise in their running hours (eval/alarms.ts: a model that flickers
 * about its threshold flags few rows in many runs, each an alert). An evaluation without `alarms`
 * (a record written before them) is judged on the share alone.
 */
export function overCeiling(e: Evaluation, rule: Pick<DecisionRule, 'maxFar' | 'maxAlarmsPerDay'>): string | null {
  const perDay = rule.maxAlarmsPerDay ?? ALARMS_PER_DAY;
  if (e.far > rule.maxFar) return `flags ${pct(e.far)} of the normal held-out rows, above the false-alarm ceiling of ${rule.maxFar} % (--max-far)`;
  if (e.alarms && tooManyAlarms(e.alarms.runs, e.alarms.hours, perDay)) {
    return `would raise ${describeAlarms(e.alarms)} on the normal held-out rows (${pct(e.far)} of them flagged): ${alarmsRule(perDay)} (--max-alarms-per-day)`;
  }
  return null;
}

/** `0.12 %` or `0.12 % (1 false alarm in 9.6 h)` */
function withinCeiling(e: Evaluation): string {
  return `${pct(e.far)}${e.alarms ? ` (${e.alarms.runs} false alarm${e.alarms.runs === 1 ? '' : 's'} in ${Number(e.alarms.hours.toFixed(2))} h)` : ''}`;
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
    ...decision,
    promoted: false,
    reason:
      `${version} was rolled back from at ${rolledBack.at} (best.json went to ${rolledBack.to}), and a version rolled back from is not promoted again by train ` +
      `(to make it best on purpose: pumpwatch-trainer rollback --source ${source} --version ${version}); without that: ${decision.reason}`,
  };
}

/**
 * The gist of a decision's reason, for the first line of `train`: its first clause, before the
 * figures (the first `: ` or `; ` outside brackets), and for a version rolled back from, when.
 * The whole reason stays on the decision line and in the records.
 */
export function reasonGist(reason: string, version: string): string {
  const rolledBack = new RegExp(`^${version.replace(/[.]/g, '\\.')} was rolled back from at (\\S+)`).exec(reason);
  if (rolledBack) return `rolled back from at ${rolledBack[1]}`;
  let depth = 0;
  for (let i = 0; i < reason.length - 1; i++) {
    const ch = reason[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && (ch === ':' || ch === ';') && reason[i + 1] === ' ') return reason.slice(0, i);
  }
  return reason;
}
