/**
 * A model's stopped-when rule on the trainer's side (`--stopped-when "Current<0.5"`, or several
 * conditions joined by `&`: `"Current<0.2 & Volume Flow RateRMS<5"`; `--after-start SECONDS`):
 * parsed from the options, checked against the features, and applied to rows in time order as the
 * agent applies it to readings (inference/stopped.ts): a row is stopped when its known value of
 * every condition's feature is below that condition's bound, and starting (left out as well) while
 * less than the warm-up has passed since the last stopped row of a stop that counted (StopRun:
 * three stopped rows in a row, or a minute of them). A row without one of the features that
 * breaks no condition (stoppedState null) neither counts towards a stop nor ends one: inside a stop
 * that counted it is stopped (the agent stores it `pump stopped`); else, meeting one of the
 * conditions, it is left out as stopping until the value comes (at most MAX_CARRY_READINGS rows),
 * as the agent holds it.
 */
import { MAX_AFTER_START_SECONDS, StopRun, quoteName, quoteNames, stoppedRuleFromJson, stoppedRuleProblem, stoppedRuleToJson, type StopCondition, type StoppedRule } from '../../inference/contract.js';
import { UsageError } from '../errors.js';

/**
 * The rule `--stopped-when` and `--after-start` give (the feature not yet checked), undefined when
 * neither is given, null for `--stopped-when none` (no rule: `train` inherits none either).
 */
export function parseStoppedWhenOption(text: unknown, afterStart: unknown): StoppedRule | null | undefined {
  if (text === undefined || text === 'none') {
    if (afterStart !== undefined) throw new UsageError(`--after-start needs --stopped-when ${text === undefined ? '' : 'with a rule '}(the warm-up follows a stop that rule defines)`);
    return text === undefined ? undefined : null;
  }
  const raw = String(text);
  const parts = raw.split('&');
  const when = parts.map((part) => parseCondition(raw, part, parts.length > 1));
  const seen = new Set<string>();
  for (const c of when) {
    if (seen.has(c.feature)) throw new UsageError(`--stopped-when "${raw}": the feature ${quoteName(c.feature)} is named twice (one condition per feature)`);
    seen.add(c.feature);
  }
  let afterStartSeconds = 0;
  if (afterStart !== undefined) {
    const s = String(afterStart).trim();
    afterStartSeconds = /^\d+$/.test(s) ? Number(s) : Number.NaN;
    if (!Number.isSafeInteger(afterStartSeconds) || afterStartSeconds > MAX_AFTER_START_SECONDS) {
      throw new UsageError(`--after-start must be an integer from 0 to ${MAX_AFTER_START_SECONDS} (seconds), got "${String(afterStart)}"`);
    }
  }
  return { when, afterStartSeconds };
}

const EXAMPLE = 'expected FEATURE<NUMBER, or several joined by "&", e.g. "Current<0.2 & Volume Flow RateRMS<5"';

/** One `FEATURE<NUMBER` of `--stopped-when "<raw>"` (the feature name may hold spaces; both trimmed). */
function parseCondition(raw: string, part: string, several: boolean): StopCondition {
  const where = several ? ` (in "${part.trim()}")` : '';
  if (part.trim() === '') throw new UsageError(`--stopped-when "${raw}": an empty condition${several ? ' between or beside "&"' : ''} (${EXAMPLE})`);
  const m = /^\s*([^<>=!]*?)\s*(<=|>=|==|!=|<|>|=)\s*(.*?)\s*$/.exec(part);
  if (!m) throw new UsageError(`--stopped-when "${raw}": ${EXAMPLE} (no "<" found${where})`);
  const [, feature, op, number] = m as unknown as [string, string, string, string];
  if (feature === '') throw new UsageError(`--stopped-when "${raw}": no feature name before "${op}"${where} (${EXAMPLE})`);
  if (op !== '<') throw new UsageError(`--stopped-when "${raw}": the operator is "${op}"${where}, only "<" is supported (a pump is stopped while FEATURE is below NUMBER)`);
  if (number === '') throw new UsageError(`--stopped-when "${raw}": no number after "<"${where} (${EXAMPLE})`);
  const below = Number(number);
  if (!Number.isFinite(below)) throw new UsageError(`--stopped-when "${raw}": "${number}" is not a finite number${where}`);
  return { feature, below };
}

/** Refuses a rule naming a feature that is not among the model's features (or that the agent would refuse). */
export function checkStoppedRule(rule: StoppedRule, features: readonly string[], flag = '--stopped-when'): void {
  const unknown = rule.when.filter((c) => !features.includes(c.feature));
  if (unknown.length > 0) {
    throw new UsageError(`${flag}: unknown feature${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => quoteName(c.feature)).join(', ')}: the model's features are ${quoteNames(features)}`);
  }
  const problem = stoppedRuleProblem(stoppedRuleToJson(rule), features);
  if (problem !== null) throw new UsageError(`${flag}: the rule ${problem}`);
}

/** The rule a training run's model.json records (`data.stopped`: one condition's `feature` and `below`, or `all`). */
export function recordedStoppedRule(stop: { feature?: string | undefined; below?: number | undefined; all?: Array<{ feature: string; below: number }> | undefined; afterStartSeconds: number }): StoppedRule {
  if (stop.all !== undefined) return stoppedRuleFromJson({ all: stop.all, afterStartSeconds: stop.afterStartSeconds });
  return stoppedRuleFromJson({ feature: stop.feature ?? '', below: stop.below ?? Number.NaN, afterStartSeconds: stop.afterStartSeconds });
}

export interface StoppedRows {
  /** 1 for each row left out: stopped, starting, or stopping. */
  out: Uint8Array;
  /**
   * 1 for each row stopped or starting: the agent starts the pump's window again after it, so its
   * values, and those before it, are never carried past it (cleanSeries `carryBreaks`). A row held
   * as stopping stays in the agent's window: values are carried over it.
   */
  restarts: Uint8Array;
  stopped: number;
  starting: number;
  /** Rows held as a stop in the making (some of the rule's conditions met, not all: StopRun.judge). */
  stopping: number;
}

/** Marks the rows (in time order) that `rule` leaves out, as the agent's engine does (StopRun.judge). `features` names the columns of `rows`. */
export function stoppedRows(rule: StoppedRule, features: readonly string[], timestamps: ArrayLike<number>, rows: ReadonlyArray<ArrayLike<number>>): StoppedRows {
  const columns = rule.when.map((c) => features.indexOf(c.feature));
  const out = new Uint8Array(rows.length);
  const restarts = new Uint8Array(rows.length);
  const counts = { stopped: 0, starting: 0, stopping: 0 };
  const run = new StopRun();
  const one: Record<string, number> = {};
  for (let i = 0; i < rows.length; i++) {
    rule.when.forEach((c, k) => {
      const f = columns[k] as number;
      one[c.feature] = f < 0 ? Number.NaN : (rows[i]![f] as number);
    });
    // A row missing one of the rule's features (NaN) and breaking no condition neither counts towards a stop nor ends one (stopped inside one that counted).
    const kind = run.judge(rule, one, timestamps[i] as number);
    if (kind !== null) {
      out[i] = 1;
      if (kind !== 'stopping') restarts[i] = 1;
      counts[kind]++;
    }
  }
  return { out, restarts, ...counts };
}
