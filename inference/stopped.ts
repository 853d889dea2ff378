/**
 * Stopped pumps (a model's stopped-when rule, inference/contract.ts StoppedRule). A pump stops and
 * starts all the time (level control, duty/standby pairs, night shutdowns); a model fitted on a
 * running pump flags every reading of a stop. So a reading whose known values of the rule's
 * features are each below their bound (every condition met) is stored and not scored, nor is one within the rule's warm-up after the last
 * stopped reading of a stop that counted (contract.ts STOP_MIN_*: a glitch of a sample or two is
 * no start); the pump's window for that model starts again after both, so no window holds
 * readings from before and after a stop. Each model is judged by its own rule (a shadow by its
 * own), on the history the pump's models share: the stops are followed per rule (StopRun). A
 * reading the rule cannot tell (stoppedState null: one of its features missing, as from a sensor
 * that reports only every few dozen readings) is not stopped, and it neither counts towards a stop
 * nor ends one: inside a stop that counted it is taken as stopped (the pump has not been seen to
 * run; its reason names the value not yet known); else, if one of the rule's conditions is met, it
 * is held (stopping) until the missing value comes, as a stop's beginning (StopRun), starting
 * within a warm-up; else it is judged as any other (scored, or starting within a warm-up).
 */
import { isStopped, MAX_CARRY_READINGS, STOP_MIN_MS, STOP_MIN_READINGS, StopRun, stoppedState, stoppedValuesText, stoppingValuesText, type StopKind, type StoppedRule } from './contract.js';
import type { ValueHistory, Values } from './history.js';
import type { LoadedModel } from './model.js';

/** How a stored row's reason begins when its pump was stopped (isStoppedReason). */
export const STOPPED_PREFIX = 'pump stopped: ';
const STARTING_PREFIX = 'pump starting: ';
/** How a stored row's reason begins when its pump was held as a stop in the making (isStoppingReason). */
export const STOPPING_PREFIX = 'pump stopping: ';

/** True for a stored row's reason that says its pump was stopped (by its model's stopped-when rule). */
export function isStoppedReason(reason: string | null | undefined): boolean {
  return typeof reason === 'string' && reason.startsWith(STOPPED_PREFIX);
}

/** True for a stored row's reason that says its pump was warming up after a stop. */
export function isStartingReason(reason: string | null | undefined): boolean {
  return typeof reason === 'string' && reason.startsWith(STARTING_PREFIX);
}

/**
 * True for a stored row's reason that says it was held unscored as a stop in the making (some of
 * its model's stopped-when conditions met, not all): the pump was not stopped, nor known to run.
 */
export function isStoppingReason(reason: string | null | undefined): boolean {
  return typeof reason === 'string' && reason.startsWith(STOPPING_PREFIX);
}

export interface StopVerdict {
  kind: StopKind;
  reason: string;
}

/**
 * Why the reading is not scored by `model` as its pump is stopped, starting, or stopping (held:
 * StopRun), or null when it runs (or the model has no rule). A stopped or starting reading starts
 * the model's window again after it; a held one goes into the window (a dead sensor is scored on
 * a full window once its hold ends).
 */
export function stopVerdict(marks: StopMarks, model: LoadedModel, r: { ts: number; values: Values }, history: ValueHistory): StopVerdict | null {
  const rule = model.meta.stoppedWhen;
  if (!rule) return null;
  const run = marks.run(rule, history);
  const kind = run.judge(rule, r.values, r.ts);
  if (kind === null) return null;
  if (kind === 'stopped') {
    if (!isStopped(rule, r.values)) {
      // inside a stop that counted, a value not known yet: taken as stopped (StopRun.judge)
      return { kind, reason: `${STOPPED_PREFIX}${stoppingValuesText(rule, r.values)} (model ${model.version}'s stopped-when rule: ${unknownFeatures(rule, r.values)} not yet known, and a value not known ends no stop)` };
    }
    return { kind, reason: `${STOPPED_PREFIX}${stoppedValuesText(rule, r.values)} (model ${model.version}'s stopped-when rule)` };
  }
  if (kind === 'stopping') {
    const hold = run.waitingForValue
      ? `held until ${unknownFeatures(rule, r.values)} known, at most ${MAX_CARRY_READINGS} readings`
      : `held as a stop's beginning for ${STOP_MIN_READINGS} readings and ${STOP_MIN_MS / 1000} s, then scored as a sensor failing`;
    return { kind, reason: `${STOPPING_PREFIX}${stoppingValuesText(rule, r.values)} (model ${model.version}'s stopped-when rule: ${hold})` };
  }
  const since = r.ts - run.warmFrom;
  return {
    kind,
    reason: `${STARTING_PREFIX}${Math.max(0, Math.floor(since / 1000))} s since its last stopped reading at ${new Date(run.warmFrom).toISOString()}, scored from ${rule.afterStartSeconds} s (model ${model.version}'s warm-up)`,
  };
}

/** `"Flow" is`, `"Current" and "Flow" are`: the rule's features without a known value in `values`, as a hold's reason names them. */
function unknownFeatures(rule: StoppedRule, values: Values): string {
  const names = rule.when.filter((c) => !Number.isFinite(values[c.feature] ?? Number.NaN)).map((c) => JSON.stringify(c.feature));
  return `${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'}`;
}

/** A pump's stops, per stopped-when rule (inference/contract.ts StopRun: which stops count, and where a warm-up runs from). */
export class StopMarks {
  private readonly runs = new Map<string, StopRun>();

  /**
   * The pump's stops by `rule`. A rule not followed yet (a model swapped in) follows the pump's
   * history first, once, oldest reading first; then it takes over a later stop that counted by
   * another rule followed (the model swapped out, or the live one beside a shadow) if that stop
   * ended before the oldest reading of the history: a stop older than the history (256 readings, a
   * warm-up may be half an hour and more) is a stop of the pump all the same, and the new model
   * warms up after it too. A stop within the history is the other rule's own judgement of readings
   * the new rule has judged itself: not taken over. A stop that began before the history and ended
   * within it (or goes on) is going on, with its true beginning, when the new rule judges the
   * oldest reading kept: the new rule continues it if it calls those readings stopped too (seen
   * from its tail alone, a stop of two readings kept would be a glitch to it, and no warm-up
   * followed), and ends it at once if it calls them running.
   */
  run(rule: StoppedRule, history: ValueHistory): StopRun {
    const key = ruleKey(rule);
    let run = this.runs.get(key);
    if (run === undefined) {
      run = new StopRun();
      const oldest = history.size > 0 ? history.tsAt(history.size - 1) : Number.POSITIVE_INFINITY;
      let began = Number.POSITIVE_INFINITY;
      for (const other of this.runs.values()) if (other.stopBegan < oldest && other.warmFrom >= oldest) began = Math.min(began, other.stopBegan);
      if (began < oldest) run.goingOn(began);
      for (let age = history.size - 1; age >= 0; age--) run.judge(rule, history.valuesAt(age), history.tsAt(age));
      // Only a stop older than the history: one within it the new rule has just judged itself (and
      // may have found none: a dead current transmitter is no stop for a rule that asks the flow too).
      for (const other of this.runs.values()) if (other.warmFrom > run.warmFrom && other.warmFrom < oldest) run.counted(other.warmFrom);
      this.runs.set(key, run);
    }
    return run;
  }

  /** Forgets every stop (the pump's clock moved back: times measured from them mean nothing). */
  clear(): void {
    this.runs.clear();
  }

  /**
   * A row read back at start-up, just taken into `history`: it is followed by the rule of each of
   * `models` (the pump's live model and shadow); a stored `pump starting` reason (the live model's
   * verdict then) names the end of a stop that counted, which may be older than the rows read back:
   * a stop of the pump, so each model's rule counts it (as run() shares a stop with a new rule).
   * A row the live model's rule holds now (stopping) that was stored scored says the hold of its
   * run had ended then (the run began before the rows read back): it is not held again. A row the
   * rule cannot tell that was stored `pump stopped` was inside a stop that counted (it may have
   * counted before the rows read back): the readings after it that cannot be told are stopped too.
   * Returns what the live model's rule makes of the row (null without a rule).
   */
  replay(models: ReadonlyArray<LoadedModel | undefined>, r: { ts: number; values: Values; unscoredReason?: string | null }, history: ValueHistory): StopKind | null {
    let live: StopKind | null = null;
    models.forEach((m, i) => {
      const rule = m?.meta.stoppedWhen;
      if (!rule) return;
      const run = this.run(rule, history);
      let kind = run.judge(rule, r.values, r.ts);
      if (i === 0 && kind === 'stopping' && r.unscoredReason === null) run.holdEnded();
      if (i === 0 && kind !== 'stopped' && isStoppedReason(r.unscoredReason) && stoppedState(rule, r.values) === null) {
        run.takenAsStopped(r.ts);
        kind = 'stopped';
      }
      if (i === 0) live = kind;
    });
    if (isStartingReason(r.unscoredReason)) {
      const at = /since its last stopped reading at (\S+Z),/.exec(r.unscoredReason!)?.[1];
      const ts = at === undefined ? Number.NaN : Date.parse(at);
      if (Number.isFinite(ts) && ts <= r.ts) {
        for (const m of models) {
          const rule = m?.meta.stoppedWhen;
          if (rule) this.run(rule, history).counted(ts);
        }
      }
    }
    return live;
  }

  /**
   * Of the `take` readings before the newest in `history`, how many (the newest ones) come after
   * the last stop and its warm-up by `rule`: a window rebuilt from history replays only those.
   */
  runningAges(rule: StoppedRule, history: ValueHistory, take: number): number {
    const run = this.run(rule, history);
    for (let age = 1; age <= take; age++) {
      const ts = history.tsAt(age);
      if (isStopped(rule, history.valuesAt(age)) || ts <= run.lastStop || run.warming(rule, ts)) return age - 1;
    }
    return take;
  }
}

/** Keys of the rules met, so that a reading's verdict builds no string (a model's metadata lives as long as the model). */
const keys = new WeakMap<StoppedRule, string>();

function ruleKey(rule: StoppedRule): string {
  let key = keys.get(rule);
  if (key === undefined) {
    key = JSON.stringify([rule.when.map((c) => [c.feature, c.below]), rule.afterStartSeconds]);
    keys.set(rule, key);
  }
  return key;
}
