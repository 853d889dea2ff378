/**
 * Stopped pumps (a model's stopped-when rule, inference/contract.ts StoppedRule). A pump stops and
 * starts all the time (level control, duty/standby pairs, night shutdowns); a model fitted on a
 * running pump flags every reading of a stop. So a reading whose known value of the rule's feature
 * is below its bound is stored and not scored, nor is one within the rule's warm-up after the last
 * stopped reading; the pump's window for that model starts again after both, so no window holds
 * readings from before and after a stop. Each model is judged by its own rule (a shadow by its
 * own), on the history the pump's models share: the stops are kept per rule, as the time of the
 * last stopped reading.
 */
import { stoppedValue, type StoppedRule } from './contract.js';
import type { ValueHistory, Values } from './history.js';
import type { LoadedModel } from './model.js';

const STOPPED_PREFIX = 'pump stopped: ';
const STARTING_PREFIX = 'pump starting: ';

/** True for a stored row's reason that says its pump was stopped (by its model's stopped-when rule). */
export function isStoppedReason(reason: string | null | undefined): boolean {
  return typeof reason === 'string' && reason.startsWith(STOPPED_PREFIX);
}

/** True for a stored row's reason that says its pump was warming up after a stop. */
export function isStartingReason(reason: string | null | undefined): boolean {
  return typeof reason === 'string' && reason.startsWith(STARTING_PREFIX);
}

export interface StopVerdict {
  stopped: boolean;
  reason: string;
}

/** Why the reading is not scored by `model` as its pump is stopped or starting, or null when it runs (or the model has no rule). */
export function stopVerdict(marks: StopMarks, model: LoadedModel, r: { ts: number; values: Values }, history: ValueHistory): StopVerdict | null {
  const rule = model.meta.stoppedWhen;
  if (!rule) return null;
  const value = stoppedValue(rule, r.values);
  if (value !== null) {
    marks.note(rule, r.ts);
    return { stopped: true, reason: `${STOPPED_PREFIX}${JSON.stringify(rule.feature)} = ${value}, below ${rule.below} (model ${model.version}'s stopped-when rule)` };
  }
  const last = marks.last(rule, history);
  const since = r.ts - last;
  if (since >= rule.afterStartSeconds * 1000) return null;
  return {
    stopped: false,
    reason: `${STARTING_PREFIX}${Math.max(0, Math.floor(since / 1000))} s since its last stopped reading at ${new Date(last).toISOString()}, scored from ${rule.afterStartSeconds} s (model ${model.version}'s warm-up)`,
  };
}

/** The time of a pump's last stopped reading, per stopped-when rule. */
export class StopMarks {
  /** -Infinity: the history was looked through and holds no stop. */
  private readonly marks = new Map<string, number>();

  /** A stopped reading at `ts`. */
  note(rule: StoppedRule, ts: number): void {
    const key = ruleKey(rule);
    this.marks.set(key, Math.max(this.marks.get(key) ?? -Infinity, ts));
  }

  /**
   * The time of the last stopped reading by `rule`. A rule not followed yet (a model swapped in)
   * finds it in the pump's history, once.
   */
  last(rule: StoppedRule, history: ValueHistory): number {
    const key = ruleKey(rule);
    let last = this.marks.get(key);
    if (last === undefined) {
      last = -Infinity;
      for (let age = 0; age < history.size; age++) {
        if (stoppedValue(rule, history.valuesAt(age)) !== null) last = Math.max(last, history.tsAt(age));
      }
      this.marks.set(key, last);
    }
    return last;
  }

  /** Forgets every stop (the pump's clock moved back: times measured from them mean nothing). */
  clear(): void {
    this.marks.clear();
  }

  /**
   * A row read back at start-up, taken into the history: a stop by the rule of any of `models`
   * (the pump's live model and shadow) is noted; a stored `pump starting` reason (the live
   * model's verdict then) names the time of its stop, which may be older than the rows read back.
   */
  replay(models: ReadonlyArray<LoadedModel | undefined>, r: { ts: number; values: Values; unscoredReason?: string | null }): void {
    for (const m of models) {
      const rule = m?.meta.stoppedWhen;
      if (rule && stoppedValue(rule, r.values) !== null) this.note(rule, r.ts);
    }
    const rule = models[0]?.meta.stoppedWhen;
    if (rule && isStartingReason(r.unscoredReason)) {
      const at = /since its last stopped reading at (\S+Z),/.exec(r.unscoredReason!)?.[1];
      const ts = at === undefined ? Number.NaN : Date.parse(at);
      if (Number.isFinite(ts) && ts <= r.ts) this.note(rule, ts);
    }
  }

  /**
   * Of the `take` readings before the newest in `history`, how many (the newest ones) come after
   * the last stop and warm-up by `rule`: a window rebuilt from history replays only those.
   */
  runningAges(rule: StoppedRule, history: ValueHistory, take: number): number {
    const last = this.last(rule, history);
    const warmMs = rule.afterStartSeconds * 1000;
    for (let age = 1; age <= take; age++) {
      if (stoppedValue(rule, history.valuesAt(age)) !== null || history.tsAt(age) - last < warmMs || history.tsAt(age) <= last) return age - 1;
    }
    return take;
  }
}

/** Keys of the rules met, so that a reading's verdict builds no string (a model's metadata lives as long as the model). */
const keys = new WeakMap<StoppedRule, string>();

function ruleKey(rule: StoppedRule): string {
  let key = keys.get(rule);
  if (key === undefined) {
    key = `${rule.feature}\u0000${rule.below}\u0000${rule.afterStartSeconds}`;
    keys.set(rule, key);
  }
  return key;
}
