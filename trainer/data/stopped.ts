/**
 * A model's stopped-when rule on the trainer's side (`--stopped-when "Current<0.5"`,
 * `--after-start SECONDS`): parsed from the options, checked against the features, and applied to
 * rows in time order as the agent applies it to readings (inference/stopped.ts): a row is stopped
 * when its known value of the feature is below the bound, and starting (left out as well) while
 * less than the warm-up has passed since the last stopped row of a stop that counted (StopRun:
 * three stopped rows in a row, or a minute of them).
 */
import { MAX_AFTER_START_SECONDS, StopRun, quoteName, quoteNames, stoppedRuleProblem, stoppedValue, type StoppedRule } from '../../inference/contract.js';
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
  const m = /^\s*([^<>=!]*?)\s*(<=|>=|==|!=|<|>|=)\s*(.*?)\s*$/.exec(raw);
  if (!m) throw new UsageError(`--stopped-when "${raw}": expected FEATURE<NUMBER, e.g. "Current<0.5" (no "<" found)`);
  const [, feature, op, number] = m as unknown as [string, string, string, string];
  if (feature === '') throw new UsageError(`--stopped-when "${raw}": no feature name before "${op}" (expected FEATURE<NUMBER, e.g. "Current<0.5")`);
  if (op !== '<') throw new UsageError(`--stopped-when "${raw}": the operator is "${op}", only "<" is supported (a pump is stopped while FEATURE is below NUMBER)`);
  if (number === '') throw new UsageError(`--stopped-when "${raw}": no number after "<" (expected FEATURE<NUMBER, e.g. "Current<0.5")`);
  const below = Number(number);
  if (!Number.isFinite(below)) throw new UsageError(`--stopped-when "${raw}": "${number}" is not a finite number`);
  let afterStartSeconds = 0;
  if (afterStart !== undefined) {
    const s = String(afterStart).trim();
    afterStartSeconds = /^\d+$/.test(s) ? Number(s) : Number.NaN;
    if (!Number.isSafeInteger(afterStartSeconds) || afterStartSeconds > MAX_AFTER_START_SECONDS) {
      throw new UsageError(`--after-start must be an integer from 0 to ${MAX_AFTER_START_SECONDS} (seconds), got "${String(afterStart)}"`);
    }
  }
  return { feature, below, afterStartSeconds };
}

/** Refuses a rule whose feature is not among the model's features (or that the agent would refuse). */
export function checkStoppedRule(rule: StoppedRule, features: readonly string[], flag = '--stopped-when'): void {
  if (!features.includes(rule.feature)) {
    throw new UsageError(`${flag}: unknown feature ${quoteName(rule.feature)}: the model's features are ${quoteNames(features)}`);
  }
  const problem = stoppedRuleProblem(rule, features);
  if (problem !== null) throw new UsageError(`${flag}: the rule ${problem}`);
}

export interface StoppedRows {
  /** 1 for each row left out: stopped, or starting. */
  out: Uint8Array;
  stopped: number;
  starting: number;
}

/** Marks the rows (in time order) that `rule` leaves out. `features` names the columns of `rows`. */
export function stoppedRows(rule: StoppedRule, features: readonly string[], timestamps: ArrayLike<number>, rows: ReadonlyArray<ArrayLike<number>>): StoppedRows {
  const f = features.indexOf(rule.feature);
  const out = new Uint8Array(rows.length);
  let stopped = 0;
  let starting = 0;
  const run = new StopRun();
  const one: Record<string, number> = {};
  for (let i = 0; i < rows.length; i++) {
    one[rule.feature] = f < 0 ? Number.NaN : (rows[i]![f] as number);
    const ts = timestamps[i] as number;
    const isStopped = stoppedValue(rule, one) !== null;
    run.observe(isStopped, ts);
    if (isStopped) {
      out[i] = 1;
      stopped++;
    } else if (run.warming(rule, ts)) {
      out[i] = 1;
      starting++;
    }
  }
  return { out, stopped, starting };
}
