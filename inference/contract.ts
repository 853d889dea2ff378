/**
 * Model contracts 1 and 2 (DESIGN.md "Model (ONNX)", README "Model contracts 1 and 2"). Shared by
 * the agent and the trainer: the trainer writes these names, the agent reads and checks them.
 * Change only with a new version, or (contract 2) a new rule named in `pumpwatch.requires`.
 *
 * - input  `features`: float32 [batch, window, n_features], raw sensor values in `features` order;
 * - output `score`:    float32 [batch], anomaly score of the last reading of each window;
 * - optional output `contributions`: float32 [batch, n_features], each feature's share of the
 *   score (used for "top contributing features" in alerts). Consumers that do not know it ignore it.
 */
import protobuf from 'protobufjs';

/**
 * The contracts this code reads. Contract 2 is contract 1 plus `pumpwatch.requires`, the rules
 * (MODEL_RULES) an agent must apply to read the model's scores right. Agents before it refuse any
 * contract but 1, so a model with a rule is written as contract 2: an older agent, which would
 * ignore the rule (score a stopped pump, and alarm on it), refuses the model instead. A model
 * without rules stays contract 1, which every agent reads (contractFor).
 */
export const CONTRACT_VERSIONS = [1, 2] as const;
export type ContractVersion = (typeof CONTRACT_VERSIONS)[number];
export const INPUT_NAME = 'features';
export const OUTPUT_NAME = 'score';
export const CONTRIBUTIONS_OUTPUT_NAME = 'contributions';

export const META_KEYS = {
  contract: 'pumpwatch.contract',
  features: 'pumpwatch.features',
  window: 'pumpwatch.window',
  threshold: 'pumpwatch.threshold',
  source: 'pumpwatch.source',
  version: 'pumpwatch.version',
  trainedAt: 'pumpwatch.trained_at',
  algorithm: 'pumpwatch.algorithm',
  metrics: 'pumpwatch.metrics',
  /** Optional (see StoppedRule): a model without it scores every reading, as before. */
  stoppedWhen: 'pumpwatch.stopped_when',
  /** Optional (see StuckAfter): a model without it has no frozen-sensor check. */
  stuckAfter: 'pumpwatch.stuck_after',
  /** Contract 2 (MODEL_RULES): the rules the model carries, comma-separated; may be empty. */
  requires: 'pumpwatch.requires',
} as const;

/**
 * The rules a model may carry that change what its scores mean, by the name `pumpwatch.requires`
 * gives them, with the metadata key and the ModelMetadata field that hold each. In a contract-2
 * model a rule is named there exactly when its key is present. A later rule is added here (no new
 * contract number): agents that do not know its name refuse the model instead of reading it
 * without the rule.
 */
export const MODEL_RULES = {
  'stopped-when': { key: META_KEYS.stoppedWhen, field: 'stoppedWhen' },
  'stuck-after': { key: META_KEYS.stuckAfter, field: 'stuckAfter' },
} as const;
export type ModelRule = keyof typeof MODEL_RULES;
type RuleField = (typeof MODEL_RULES)[ModelRule]['field'];
const RULE_NAMES = Object.keys(MODEL_RULES) as ModelRule[];

/**
 * What this code reads, as the agent reports it in its module twin's `state` and
 * `pumpwatch-trainer deploy` checks before it sends a gateway a model (trainer/deploy/agent-reads.ts):
 * made from the lists the reader checks models against, so the report cannot drift from the reader.
 */
export interface ModelReads {
  modelContracts: number[];
  modelRules: string[];
}

export function modelReads(): ModelReads {
  return { modelContracts: [...CONTRACT_VERSIONS], modelRules: [...RULE_NAMES] };
}

/** The largest finite float32: model inputs are float32, so a larger magnitude becomes Infinity. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * The longest window a model may ask for. The agent keeps a window of readings per pump and builds
 * batches of windows to validate and score; a model claiming millions would have it allocate
 * gigabytes. 1 000 readings is over 16 minutes at 1 Hz (the trainer's algorithms use 10).
 */
export const MAX_WINDOW = 1000;

/**
 * The names a reading's values and a model's features may take, one rule for both sides: a model
 * is matched to readings by name, so a model needing more values than a reading may carry, or a
 * value name no reading can carry, would be activated and never score. The agent's ingest refuses
 * readings against them, the trainer refuses such feature columns, and a model whose features
 * break them is refused as not contract 1.
 * - at most MAX_FEATURES values per reading (features per model);
 * - a name of 1 to MAX_NAME_LENGTH characters (UTF-16 code units, as JavaScript counts them);
 * - not `__proto__`: the name of JavaScript's prototype accessor. JSON.parse keeps it as a key, but
 *   a copy of the values by assignment (zod's record does one) drops it. Other names of
 *   Object.prototype (`constructor`, `toString`) are plain keys of a parsed reading and are read
 *   as values (a lookup of one that a reading lacks gives a function, not a number);
 * - no character that is not shown as itself (INVISIBLE_IN_NAMES).
 */
export const MAX_FEATURES = 256;
export const MAX_NAME_LENGTH = 128;
export const RESERVED_NAMES: readonly string[] = ['__proto__'];

/**
 * Characters a name may not hold: controls (Unicode Cc: C0, DEL, C1), format characters (Cf: the
 * bidirectional overrides, embeddings, isolates and marks U+202A–202E, U+2066–2069, U+200E/U+200F
 * and U+061C; the zero-width U+200B–200D, U+2060, U+FEFF; the soft hyphen U+00AD; the tags …) and
 * the line and paragraph separators U+2028/2029 (Zl, Zp). A name is an identifier, matched to a
 * model's features code unit by code unit and shown on the page, in alerts and in the trainer's
 * output: `Flow\u200B` looks like `Flow` and is another feature (a model would wait for it for
 * ever), and an override reverses what follows it on screen (OT security review, 2026-12-08).
 * A label's note keeps the marks LRM/RLM and the zero-width joiners (prose in two directions, an
 * emoji); an identifier needs none of them: the bidirectional algorithm shows a name written in
 * one script right without them. Also lone surrogates (Cs: UTF-8 cannot carry one, so the name in
 * the lake became U+FFFD and another name than the buffer's) and the letters that show as nothing
 * (the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the braille blank U+2800: a name of U+115F
 * alone looked empty; the security re-check).
 */
const INVISIBLE_IN_NAMES = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115f\u1160\u3164\uffa0\u2800]/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** The same, every occurrence: for quoting a name in a message (quoteName). */
const INVISIBLE_IN_NAMES_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115f\u1160\u3164\uffa0\u2800]/gu;

/** `U+202E` */
const codePoint = (ch: string): string => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `name` cannot name a value or a feature (`is empty`, …: said of the name), or null when it can. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME_LENGTH) {
    // The limit counts UTF-16 code units (as JavaScript does); said so when that is not the characters a person counts.
    const chars = [...name].length;
    const long = chars === name.length ? `${chars} characters` : `${name.length} UTF-16 code units (${chars} characters)`;
    return `is ${long} long, at most ${MAX_NAME_LENGTH} allowed`;
  }
  if (RESERVED_NAMES.includes(name)) return 'is reserved: a JavaScript object cannot hold a value by that name';
  // Printable ASCII, nearly every name, skips the Unicode classes: they doubled a reading's validation (230 → 540 ns for 8 values).
  const m = PRINTABLE_ASCII.test(name) ? null : INVISIBLE_IN_NAMES.exec(name);
  if (m !== null) {
    const at = [...name.slice(0, m.index)].length + 1; // in characters, as a person counts them
    return `has an invisible or control character (${codePoint(m[0])} at character ${at}): control, bidirectional, zero-width and blank characters are refused in a name, which must show as it is matched`;
  }
  return null;
}

/**
 * A name as messages quote it: JSON-quoted, cut after 40 characters (a name too long is said so,
 * not printed whole), its invisible characters written as escapes (`\u202e`): quoted as they
 * are, an override would turn the message itself around.
 */
export function quoteName(name: string): string {
  return JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name).replace(INVISIBLE_IN_NAMES_ALL, (ch) => {
    const cp = ch.codePointAt(0)!;
    return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}

export interface ModelMetadata {
  /** The contract the model was written to (the trainer: contractFor); contract 2 names its rules in `pumpwatch.requires`. */
  contract: ContractVersion;
  features: string[];
  window: number;
  threshold: number;
  source: string;
  version: string;
  trainedAt: string;
  algorithm: string;
  metrics: Record<string, unknown>;
  /** When the pump counts as stopped (optional key `pumpwatch.stopped_when`); absent: never. */
  stoppedWhen?: StoppedRule;
  /** Per noisy analog feature, the readings in a row after which an unchanged value is a frozen sensor (optional key `pumpwatch.stuck_after`); absent: no check. */
  stuckAfter?: StuckAfter;
}

/**
 * A model's frozen-sensor bounds: per feature that was a noisy analog signal in its training rows
 * (its value changed between at least half of its consecutive readings), the number of identical
 * readings in a row after which the sensor is frozen (a dead 4–20 mA loop held by the PLC, a hung
 * Modbus register). The trainer derives each from the longest run it saw (trainer/data/runs.ts);
 * a feature not named (a set point, a status, a slow transmitter polled fast: one that holds its
 * value by nature) is never judged. The agent counts a feature's identical readings while its pump
 * runs (inference/frozen.ts). Metadata `pumpwatch.stuck_after`, e.g. `{"Current": 60, "Volume
 * Flow RateRMS": 129}`; agents before it ignore the key, so it makes a model contract 2 (`stuck-after`).
 */
export type StuckAfter = Readonly<Record<string, number>>;

/**
 * The fewest readings in a row a frozen-sensor bound may be: a sensor that holds its value for
 * fewer (a PLC holding the last value over a short outage of its fieldbus) is the gap the agent
 * itself bridges by carrying a missing value forward (MAX_CARRY_READINGS), not a fault.
 */
export const MIN_STUCK_AFTER = 60;
/** The most: a day of readings at 1 Hz (the agent reads that many rows back per pump at a restart). */
export const MAX_STUCK_AFTER = 86_400;

/** Checks a `pumpwatch.stuck_after` value against a model's features; the problem in words (said of the key's value), or null. */
export function stuckAfterProblem(value: unknown, features: readonly string[]): string | null {
  if (!isObject(value)) return 'must be a JSON object of feature names and numbers of readings, e.g. {"Current": 60}';
  for (const [feature, n] of Object.entries(value)) {
    if (!features.includes(feature)) return `names ${quoteName(feature)}, which is not one of the model's features (${quoteNames(features)})`;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < MIN_STUCK_AFTER || n > MAX_STUCK_AFTER) {
      return `gives ${quoteName(feature)} ${JSON.stringify(n) ?? 'nothing'}: readings in a row must be an integer from ${MIN_STUCK_AFTER} to ${MAX_STUCK_AFTER}`;
    }
  }
  return null;
}

/**
 * A model's stopped-when rule: the pump is stopped while EVERY condition of `when` has a known
 * (finite) value below its bound; for `afterStartSeconds` after the last stopped reading of a stop
 * that counted (STOP_MIN_READINGS in a row or STOP_MIN_MS of them) it is starting (warm-up). The
 * agent stores such readings unscored (a model fitted on a running pump flags every reading of a
 * stop) and starts the pump's windows again after them; the trainer leaves them out of training.
 * A rule on one sensor cannot tell a stop from that sensor failing (a dead current transmitter on
 * a running pump reads 0 A): a second condition on another sensor (a low flow) tells them apart.
 * Metadata `pumpwatch.stopped_when` (StoppedRuleJson), either one condition,
 * `{"feature":"Current","below":0.5,"afterStartSeconds":600}` (the form a previous agent reads),
 * or several, `{"all":[{"feature":"Current","below":0.2},{"feature":"Volume Flow RateRMS","below":5}],"afterStartSeconds":1800}`.
 * Agents before it ignore the key, so it makes a model contract 2 (`stopped-when`).
 */
export interface StoppedRule {
  /** The conditions, all of which a stopped reading meets (at least one, each on its own feature). */
  when: readonly StopCondition[];
  afterStartSeconds: number;
}

/** One condition of a stopped-when rule: a known value of `feature` below `below`. */
export interface StopCondition {
  feature: string;
  below: number;
}

/**
 * A stopped-when rule as a model's metadata (and a training run's model.json) holds it. A rule of
 * one condition is written in the one-condition form, which agents before the `all` form read;
 * those agents refuse the `all` form as an unknown key (the model is not activated: nothing is
 * scored by a rule they do not know).
 */
export type StoppedRuleJson =
  | { feature: string; below: number; afterStartSeconds?: number }
  | { all: Array<{ feature: string; below: number }>; afterStartSeconds?: number };

/** The longest warm-up a stopped-when rule may ask for: a day. */
export const MAX_AFTER_START_SECONDS = 86_400;
const ONE_CONDITION_KEYS = ['feature', 'below', 'afterStartSeconds'];
const ALL_KEYS = ['all', 'afterStartSeconds'];
const CONDITION_KEYS = ['feature', 'below'];
const RULE_SHAPES = '{"feature", "below", "afterStartSeconds"} or {"all": [{"feature", "below"}, …], "afterStartSeconds"}';

/**
 * Checks a stopped-when rule's JSON (StoppedRuleJson) against a model's features; the problem in
 * words (said of the rule), or null when it is sound. Used on the agent's side
 * (parseModelMetadata) and the trainer's (on stoppedRuleToJson of the rule it writes).
 */
export function stoppedRuleProblem(rule: unknown, features: readonly string[]): string | null {
  if (!isObject(rule)) return `must be a JSON object ${RULE_SHAPES}`;
  const keys = Object.keys(rule);
  if ('all' in rule) {
    const mixed = keys.filter((k) => CONDITION_KEYS.includes(k));
    if (mixed.length > 0) return `mixes its two forms: "all" with ${mixed.map((k) => quoteName(k)).join(' and ')} (give one condition as {"feature", "below"}, or every condition in "all")`;
  }
  // A misspelt key ignored would be a condition or a warm-up silently not applied.
  const known = 'all' in rule ? ALL_KEYS : ONE_CONDITION_KEYS;
  const unknown = keys.filter((k) => !known.includes(k));
  if (unknown.length > 0) return `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => quoteName(k)).join(', ')} (known: ${known.join(', ')})`;
  if ('all' in rule) {
    const all = rule.all;
    if (!Array.isArray(all) || all.length === 0) return `"all" must be a non-empty JSON array of conditions {"feature", "below"}, got ${JSON.stringify(all)?.slice(0, 80) ?? 'nothing'}`;
    const seen = new Set<string>();
    for (let i = 0; i < all.length; i++) {
      const c: unknown = all[i];
      const at = `"all"[${i}]`;
      if (!isObject(c)) return `${at} must be a JSON object {"feature", "below"}`;
      const extra = Object.keys(c).filter((k) => !CONDITION_KEYS.includes(k));
      if (extra.length > 0) return `${at} has unknown key${extra.length > 1 ? 's' : ''} ${extra.map((k) => quoteName(k)).join(', ')} (known: ${CONDITION_KEYS.join(', ')})`;
      const problem = conditionProblem(c, features);
      if (problem !== null) return `${at}: ${problem}`;
      const feature = c.feature as string;
      if (seen.has(feature)) return `"all" names the feature ${quoteName(feature)} twice (one condition per feature)`;
      seen.add(feature);
    }
  } else {
    const problem = conditionProblem(rule, features);
    if (problem !== null) return problem;
  }
  const after = rule.afterStartSeconds;
  if (after !== undefined && (typeof after !== 'number' || !Number.isInteger(after) || after < 0 || after > MAX_AFTER_START_SECONDS)) {
    return `"afterStartSeconds" must be an integer from 0 to ${MAX_AFTER_START_SECONDS}, got ${JSON.stringify(after)}`;
  }
  return null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function conditionProblem(c: Record<string, unknown>, features: readonly string[]): string | null {
  if (typeof c.feature !== 'string') return '"feature" must be the name of one of the model\'s features';
  if (!features.includes(c.feature)) return `"feature" ${quoteName(c.feature)} is not one of the model's features (${quoteNames(features)})`;
  if (typeof c.below !== 'number' || !Number.isFinite(c.below)) return `"below" must be a finite number, got ${JSON.stringify(c.below) ?? 'nothing'}`;
  return null;
}

/** The rule of a sound StoppedRuleJson (stoppedRuleProblem said null), in the one shape the code uses. */
export function stoppedRuleFromJson(json: StoppedRuleJson): StoppedRule {
  const when = 'all' in json ? json.all.map((c) => ({ feature: c.feature, below: c.below })) : [{ feature: json.feature, below: json.below }];
  return { when, afterStartSeconds: json.afterStartSeconds ?? 0 };
}

/** The rule as metadata holds it: one condition in the one-condition form (which agents before `all` read), several in `all`. */
export function stoppedRuleToJson(rule: StoppedRule): StoppedRuleJson {
  const [only] = rule.when;
  if (rule.when.length === 1 && only) return { feature: only.feature, below: only.below, afterStartSeconds: rule.afterStartSeconds };
  return { all: rule.when.map((c) => ({ feature: c.feature, below: c.below })), afterStartSeconds: rule.afterStartSeconds };
}

/**
 * What `rule` says of a reading: true (stopped) when every condition's feature has a known finite
 * value below its bound; false (running) when any condition's feature has a known value at or
 * above its bound; null when it cannot tell: no condition is broken, but a feature is missing
 * (null, absent or non-finite; a sensor that reports only every few dozen readings). A null
 * reading is not stopped, and it neither counts towards a stop nor ends one (StopRun.observe);
 * inside a stop that counted it is taken as stopped (StopRun.judge: the stop has not ended);
 * else, meeting one of the conditions, it is held until the value comes (StopRun), else judged as any other.
 */
export function stoppedState(rule: StoppedRule, values: Readonly<Record<string, number | null | undefined>>): boolean | null {
  let known = true;
  for (const c of rule.when) {
    const v = values[c.feature];
    if (!(typeof v === 'number' && Number.isFinite(v))) known = false;
    else if (v >= c.below) return false;
  }
  return known ? true : null;
}

/** True when a reading is stopped by `rule` (stoppedState true): every condition's feature has a known finite value below its bound. */
export function isStopped(rule: StoppedRule, values: Readonly<Record<string, number | null | undefined>>): boolean {
  return stoppedState(rule, values) === true;
}

/**
 * True when a reading meets some but not all of `rule`'s conditions: a known value below its bound
 * for one, and for another a known value at or above its bound (stoppedState false) or no known
 * value (stoppedState null: a sensor that reports only every few readings). Either a stop in the
 * making (a motor's current falls at once, the flow coasts down, and a meter that averages its last
 * counts still reads flow; or the flow is not in yet) or a sensor failing on a running pump (a dead
 * current transmitter): StopRun holds such readings unscored for a while to tell which. A rule of
 * one condition never has such readings.
 */
export function partlyStopped(rule: StoppedRule, values: Readonly<Record<string, number | null | undefined>>): boolean {
  let below = false;
  let other = false;
  for (const c of rule.when) {
    const v = values[c.feature];
    if (typeof v === 'number' && Number.isFinite(v) && v < c.below) below = true;
    else other = true;
  }
  return below && other;
}

/** `"Current" = 0.02, below 0.2 and "Flow" = 0.1, below 5`: a stopped reading's values by the rule, as a reason says them. */
export function stoppedValuesText(rule: StoppedRule, values: Readonly<Record<string, number | null | undefined>>): string {
  return rule.when.map((c) => `${JSON.stringify(c.feature)} = ${values[c.feature]}, below ${c.below}`).join(' and ');
}

/**
 * `"Current" = 0.01, below 0.2; "Flow" = 63, not yet below 5`: a partly stopped reading's values by
 * the rule (partlyStopped), as a reason says them; a value not known is `"Flow" = unknown (bound 5)`.
 */
export function stoppingValuesText(rule: StoppedRule, values: Readonly<Record<string, number | null | undefined>>): string {
  return rule.when
    .map((c) => {
      const v = values[c.feature];
      const known = typeof v === 'number' && Number.isFinite(v);
      if (!known) return `${JSON.stringify(c.feature)} = unknown (bound ${c.below})`;
      return `${JSON.stringify(c.feature)} = ${v}, ${v < c.below ? 'below' : 'not yet below'} ${c.below}`;
    })
    .join('; ');
}

/**
 * A stop counts as one (a warm-up follows it) once its stopped readings in a row number
 * STOP_MIN_READINGS or span STOP_MIN_MS. A shorter one (a transmitter's glitch reading 0 for a
 * sample or two, a running pump's noise dipping under the bound) is no start: those readings are
 * stored unscored all the same, and the window starts again after them, but no warm-up follows.
 */
export const STOP_MIN_READINGS = 3;
export const STOP_MIN_MS = 60_000;

/**
 * What a stopped-when rule makes of a reading (StopRun.judge): `stopped` (every condition met),
 * `starting` (within the warm-up after a stop that counted), `stopping` (some conditions met, not
 * all: held as a stop in the making), or null: scored.
 */
export type StopKind = 'stopped' | 'starting' | 'stopping';

/**
 * One pump's stops by one rule, followed reading by reading in time order (the agent's engine and
 * the trainer's row filter share it through `judge`, so both leave out the same readings).
 *
 * A reading that meets some of the rule's conditions but not all (partlyStopped) is held, not
 * scored, as a stop in the making. While one of its run breaks a condition (a known value at or
 * above its bound), the run is held for its first STOP_MIN_READINGS readings and as long as
 * STOP_MIN_MS has not passed since its first one (whichever lasts longer: a meter that averages
 * its last counts shows flow for a reading or two whatever the interval; a real flow coasts down
 * over seconds, several readings of a pump read every second). If every condition is met next, it
 * was the stop's beginning. A run that lasts longer is a sensor failing on a running pump (a dead
 * current transmitter, a dead flow meter): its readings are scored from then on. A run that breaks
 * no condition, a value only unknown (a flow meter that reports every few dozen readings, the
 * current already ~0), is held until that value comes (then as above), at most
 * MAX_CARRY_READINGS readings (after which the agent no longer carries the last value forward to
 * score it): scored on the value carried from the running pump, a stop's first readings would be
 * flagged. A held reading is not stopped: it does not count towards a stop, and (breaking a
 * condition) it ends a run of stopped readings, as before.
 *
 * Inside a stop that counted (its stopped readings not yet ended by a running one), a reading the
 * rule cannot tell (stoppedState null: a sparse flow meter between two of its reports, the current
 * ~0) is taken as stopped: a value not known ends no stop, and the pump has not been seen to run.
 * It still does not count towards a stop; the warm-up runs from the last reading taken as stopped.
 */
export class StopRun {
  /** The last reading taken as stopped (-Infinity: none seen). */
  lastStop = -Infinity;
  /** The last reading taken as stopped of the last stop that counted (STOP_MIN_*): the warm-up runs from it. */
  warmFrom = -Infinity;
  /**
   * The first stopped reading of the last stop that counted (-Infinity: none; for a stop known only
   * by its end, counted(), that end): a model swapped in takes over a stop that began before the
   * readings it judges itself (StopMarks.run).
   */
  stopBegan = -Infinity;
  private first = Number.NaN;
  /** The first stopped reading of the last run of them (kept after a running reading ends it: counted()). */
  private runFirst = Number.NaN;
  private count = 0;
  /** The run of stopped readings going on counted as a stop (STOP_MIN_*): a reading the rule cannot tell is taken as stopped. */
  private inStop = false;
  /** Readings taken as stopped since the last one the rule called stopped (bounded by MAX_CARRY_READINGS, as a hold is). */
  private unknownInStop = 0;
  /** The run of partly stopped readings (partlyStopped): its first reading, how many, its last, and whether one broke a condition. */
  private partFirst = Number.NaN;
  private partCount = 0;
  private partLast = -Infinity;
  private partBroken = false;

  /**
   * Follows the reading (`values` at `ts`) and says what the rule makes of it (StopKind), null
   * when it is scored. Stopped before starting before stopping: a partly stopped reading within
   * a warm-up is starting (unscored all the same, its window started again after the warm-up).
   */
  judge(rule: StoppedRule, values: Readonly<Record<string, number | null | undefined>>, ts: number): StopKind | null {
    const state = stoppedState(rule, values);
    if (state === null && this.inStop && this.unknownInStop < MAX_CARRY_READINGS) {
      this.takenAsStopped(ts);
      return 'stopped';
    }
    if (state === true) this.unknownInStop = 0;
    this.observe(state, ts);
    const held = this.hold(partlyStopped(rule, values), state, ts);
    if (state === true) return 'stopped';
    if (this.warming(rule, ts)) return 'starting';
    return held ? 'stopping' : null;
  }

  /**
   * A reading at `ts` the rule cannot tell, taken as stopped: inside a stop that counted (judge), or
   * stored so (a row read back at a restart whose stop began before the rows read back). It does not
   * count towards the stop, nor is it held; the stop's warm-up runs from it if it is the last.
   */
  takenAsStopped(ts: number): void {
    this.unknownInStop++;
    if (!this.inStop) {
      // the stop counted before the readings this run saw: its beginning is not known
      if (Number.isNaN(this.first)) this.first = this.runFirst = ts;
      this.count = Math.max(this.count, STOP_MIN_READINGS);
      this.inStop = true;
      this.stopBegan = this.first;
    }
    this.hold(false, true, ts);
    this.lastStop = Math.max(this.lastStop, ts);
    this.warmFrom = Math.max(this.warmFrom, ts);
  }

  /**
   * A stop that counted, begun at `began`, is going on at the first reading this run is to judge
   * (another rule's run saw it begin before the readings this one judges: StopMarks.run). The
   * stopped readings that come next continue it; a running one ends it, as any stop.
   */
  goingOn(began: number): void {
    this.first = this.runFirst = began;
    this.count = STOP_MIN_READINGS;
    this.inStop = true;
    this.stopBegan = began;
  }

  /** True while the run of partly stopped readings going on has broken no condition: it waits for a value not known yet. */
  get waitingForValue(): boolean {
    return this.partCount > 0 && !this.partBroken;
  }

  /**
   * The hold of a partly stopped reading (see the class): true while it is held. Any reading that
   * is not partly stopped ends the run, but one the rule cannot tell (stoppedState null).
   */
  private hold(partial: boolean, state: boolean | null, ts: number): boolean {
    if (!partial) {
      if (state !== null) {
        this.partFirst = Number.NaN;
        this.partCount = 0;
        this.partBroken = false;
      }
      return false;
    }
    if (Number.isNaN(this.partFirst)) this.partFirst = ts;
    if (ts > this.partLast) this.partCount++; // the same reading judged twice (a live model and its shadow) counts once
    this.partLast = Math.max(this.partLast, ts);
    if (state === false) this.partBroken = true;
    if (!this.partBroken) return this.partCount <= MAX_CARRY_READINGS;
    return this.partCount <= STOP_MIN_READINGS || ts - this.partFirst < STOP_MIN_MS;
  }

  /**
   * The run of partly stopped readings going on is known to be held no longer (a stored row of it
   * was scored: its run began before the rows read back at a restart): it is scored until it ends.
   */
  holdEnded(): void {
    if (Number.isNaN(this.partFirst)) return;
    this.partFirst = -Infinity;
    this.partCount = Number.POSITIVE_INFINITY;
  }

  /**
   * A reading at `ts`, stopped (true) or running (false) by the rule (stoppedState); null (the
   * rule cannot tell: a feature missing) changes nothing: a stop's readings in a row are counted
   * over it, and it does not end the stop.
   */
  observe(stopped: boolean | null, ts: number): void {
    if (stopped === null) return;
    if (!stopped) {
      this.first = Number.NaN;
      this.count = 0;
      this.inStop = false;
      return;
    }
    if (Number.isNaN(this.first)) this.first = this.runFirst = ts;
    if (ts > this.lastStop) this.count++; // the same reading judged twice (a live model and its shadow) counts once
    this.lastStop = Math.max(this.lastStop, ts);
    if (this.count >= STOP_MIN_READINGS || ts - this.first >= STOP_MIN_MS) {
      this.warmFrom = Math.max(this.warmFrom, ts);
      this.inStop = true;
      this.stopBegan = this.first;
    }
  }

  /**
   * A stop known to have counted, ending at `ts` (read back from a stored warm-up reason, or
   * another rule's stop taken over): begun, if this run saw it, with the stopped readings it saw
   * up to `ts`, else no later than `ts`.
   */
  counted(ts: number): void {
    if (ts > this.warmFrom) this.stopBegan = ts === this.lastStop && this.runFirst <= ts ? this.runFirst : ts;
    this.lastStop = Math.max(this.lastStop, ts);
    this.warmFrom = Math.max(this.warmFrom, ts);
  }

  /** True while `ts` is within `rule`'s warm-up after the last stop that counted. */
  warming(rule: StoppedRule, ts: number): boolean {
    return ts - this.warmFrom < rule.afterStartSeconds * 1000;
  }
}

/** Names as messages list them: quoted, the first 10 and how many more. */
export function quoteNames(names: readonly string[]): string {
  const shown = names.slice(0, 10).map((n) => quoteName(n)).join(', ');
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown;
}

/** `Current<0.2 & Volume Flow RateRMS<5, warm-up 1800 s`: a rule as messages show it (and `--stopped-when` takes it). */
export function describeStoppedRule(rule: StoppedRule): string {
  return `${rule.when.map((c) => `${c.feature}<${c.below}`).join(' & ')}${rule.afterStartSeconds > 0 ? `, warm-up ${rule.afterStartSeconds} s` : ''}`;
}

/**
 * What a model failed on: `not-onnx` (not ONNX bytes at all), `runtime` (ONNX that onnxruntime
 * refuses), `contract` (ONNX, but not PumpWatch contract 1 or 2).
 */
export type ModelContractProblem = 'not-onnx' | 'runtime' | 'contract';

export class ModelContractError extends Error {
  readonly code = 'PW_MODEL_CONTRACT';
  /** `detail`: the cause alone, without the message's framing (for callers that word it their own way). */
  constructor(
    message: string,
    readonly problem: ModelContractProblem = 'contract',
    readonly detail: string = message,
  ) {
    super(message);
    this.name = 'ModelContractError';
  }
}

/** The rules `meta` carries (MODEL_RULES), in their fixed order. */
export function rulesOf(meta: Pick<ModelMetadata, RuleField>): ModelRule[] {
  return RULE_NAMES.filter((rule) => meta[MODEL_RULES[rule].field] !== undefined);
}

/** The lowest contract that says what a model with these rules means: 1 without rules (every agent reads it), else 2. */
export function contractFor(meta: Pick<ModelMetadata, RuleField>): ContractVersion {
  return rulesOf(meta).length === 0 ? 1 : 2;
}

/**
 * Turns metadata into ONNX `metadata_props` entries (used by the trainer's writer, which sets
 * `contract` by contractFor). Contract 2 gets `pumpwatch.requires` from the rules present;
 * contract 1 with a rule is the form the trainer wrote before contract 2, which older agents
 * misread: written only to test that the agent still reads the models the registry holds.
 */
export function metadataToProps(meta: ModelMetadata): Record<string, string> {
  return {
    [META_KEYS.contract]: String(meta.contract),
    ...(meta.contract === 2 ? { [META_KEYS.requires]: rulesOf(meta).join(',') } : {}),
    [META_KEYS.features]: JSON.stringify(meta.features),
    [META_KEYS.window]: String(meta.window),
    [META_KEYS.threshold]: String(meta.threshold),
    [META_KEYS.source]: meta.source,
    [META_KEYS.version]: meta.version,
    [META_KEYS.trainedAt]: meta.trainedAt,
    [META_KEYS.algorithm]: meta.algorithm,
    [META_KEYS.metrics]: JSON.stringify(meta.metrics),
    ...(meta.stoppedWhen ? { [META_KEYS.stoppedWhen]: JSON.stringify(stoppedRuleToJson(meta.stoppedWhen)) } : {}),
    ...(meta.stuckAfter ? { [META_KEYS.stuckAfter]: JSON.stringify(meta.stuckAfter) } : {}),
  };
}

/** Checks `metadata_props` against contract 1 or 2; throws a ModelContractError naming the first problem. */
export function parseModelMetadata(props: Record<string, string>): ModelMetadata {
  const get = (key: string): string => {
    const v = props[key];
    if (v === undefined) throw new ModelContractError(`model metadata lacks "${key}"`);
    return v;
  };
  const contractText = get(META_KEYS.contract);
  const contract = CONTRACT_VERSIONS.find((c) => String(c) === contractText);
  if (contract === undefined) {
    throw new ModelContractError(
      `model metadata "${META_KEYS.contract}" is "${contractText}", this agent reads contracts ${CONTRACT_VERSIONS.join(' and ')} (a model of a later contract needs a newer agent)`,
    );
  }
  // Contract 1 has no `requires`: its rules (written so until contract 2) are read as always.
  if (contract === 2) checkRequires(get(META_KEYS.requires), props);
  let features: unknown;
  try {
    features = JSON.parse(get(META_KEYS.features));
  } catch {
    throw new ModelContractError(`model metadata "${META_KEYS.features}" is not JSON`);
  }
  if (
    !Array.isArray(features) ||
    features.length === 0 ||
    !features.every((f) => typeof f === 'string' && f.length > 0) ||
    new Set(features).size !== features.length
  ) {
    throw new ModelContractError(
      `model metadata "${META_KEYS.features}" must be a non-empty JSON array of distinct names`,
    );
  }
  // A model from elsewhere (not written by this trainer) may break the reading's limits: activated, it would never score.
  if (features.length > MAX_FEATURES) {
    throw new ModelContractError(
      `model metadata "${META_KEYS.features}" names ${features.length} features, at most ${MAX_FEATURES} allowed (a reading carries at most ${MAX_FEATURES} values)`,
    );
  }
  for (const name of features as string[]) {
    const problem = nameProblem(name);
    if (problem !== null) {
      throw new ModelContractError(`model metadata "${META_KEYS.features}": the feature name ${quoteName(name)} ${problem} (no reading can carry a value by that name)`);
    }
  }
  const windowText = get(META_KEYS.window);
  const window = Number(windowText);
  if (!Number.isInteger(window) || window < 1 || window > MAX_WINDOW) {
    throw new ModelContractError(`model metadata "${META_KEYS.window}" must be an integer from 1 to ${MAX_WINDOW}, got "${windowText}"`);
  }
  const thresholdText = get(META_KEYS.threshold);
  const threshold = Number(thresholdText);
  if (thresholdText.trim() === '' || !Number.isFinite(threshold)) {
    throw new ModelContractError(`model metadata "${META_KEYS.threshold}" must be a finite number, got "${thresholdText}"`);
  }
  const source = get(META_KEYS.source);
  const version = get(META_KEYS.version);
  if (version.trim() === '') throw new ModelContractError(`model metadata "${META_KEYS.version}" is empty`);
  const trainedAt = get(META_KEYS.trainedAt);
  if (Number.isNaN(Date.parse(trainedAt))) {
    throw new ModelContractError(`model metadata "${META_KEYS.trainedAt}" is not an ISO date: "${trainedAt}"`);
  }
  const algorithm = get(META_KEYS.algorithm);
  let metrics: unknown;
  try {
    metrics = JSON.parse(get(META_KEYS.metrics));
  } catch {
    throw new ModelContractError(`model metadata "${META_KEYS.metrics}" is not JSON`);
  }
  if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) {
    throw new ModelContractError(`model metadata "${META_KEYS.metrics}" must be a JSON object`);
  }
  const stoppedWhen = parseStoppedWhen(props[META_KEYS.stoppedWhen], features as string[]);
  const stuckAfter = parseStuckAfter(props[META_KEYS.stuckAfter], features as string[]);
  return {
    contract,
    features: features as string[],
    window,
    threshold,
    source,
    version,
    trainedAt,
    algorithm,
    metrics: metrics as Record<string, unknown>,
    ...(stoppedWhen ? { stoppedWhen } : {}),
    ...(stuckAfter ? { stuckAfter } : {}),
  };
}

/** The rule names of a `pumpwatch.requires` text, as written (an empty name kept, for checkRequires to refuse). */
export function requiredNames(text: string): string[] {
  return text === '' ? [] : text.split(',').map((n) => n.trim());
}

/**
 * A contract-2 model's `pumpwatch.requires` against the rules this agent applies and the keys the
 * model carries. A rule it does not know is refused first: its key is one this agent would ignore,
 * and the scores mean something else without it. A key present but not required would be ignored
 * by an agent that does not know it, and one required but absent is a rule missing: both refused.
 */
function checkRequires(text: string, props: Record<string, string>): void {
  const key = META_KEYS.requires;
  const names = requiredNames(text);
  const unknown = [...new Set(names.filter((n) => !(RULE_NAMES as string[]).includes(n)))];
  if (unknown.includes('')) throw new ModelContractError(`model metadata "${key}" names an empty rule: ${quoteName(text)} (comma-separated rule names, e.g. "stopped-when,stuck-after")`);
  if (unknown.length > 0) {
    throw new ModelContractError(
      `model metadata "${key}" names ${unknown.length > 1 ? 'rules' : 'a rule'} this agent does not know: ${quoteNames(unknown)} (it applies ${RULE_NAMES.join(', ')}); the model needs a newer agent`,
    );
  }
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new ModelContractError(`model metadata "${key}" names ${quoteName(twice)} twice`);
  for (const rule of RULE_NAMES) {
    const ruleKey = MODEL_RULES[rule].key;
    const present = props[ruleKey] !== undefined;
    const required = names.includes(rule);
    if (present && !required) throw new ModelContractError(`model metadata has "${ruleKey}" but "${key}" (${quoteName(text)}) does not name "${rule}": an agent that does not know the rule would score without it`);
    if (required && !present) throw new ModelContractError(`model metadata "${key}" names "${rule}" but the model lacks "${ruleKey}"`);
  }
}

/** The optional frozen-sensor bounds of a model's metadata (undefined when absent); a bad value is refused. */
function parseStuckAfter(text: string | undefined, features: readonly string[]): StuckAfter | undefined {
  const value = parseOptionalJson(META_KEYS.stuckAfter, text, (v) => stuckAfterProblem(v, features));
  return value === undefined ? undefined : Object.freeze({ ...(value as Record<string, number>) });
}

/** The optional stopped-when rule of a model's metadata (undefined when absent); a bad one is refused. */
function parseStoppedWhen(text: string | undefined, features: readonly string[]): StoppedRule | undefined {
  const rule = parseOptionalJson(META_KEYS.stoppedWhen, text, (v) => stoppedRuleProblem(v, features));
  return rule === undefined ? undefined : stoppedRuleFromJson(rule as StoppedRuleJson);
}

/**
 * An optional JSON metadata value (undefined when the key is absent), refused with a
 * ModelContractError naming the key when it is not JSON or `problem` finds it unsound.
 */
function parseOptionalJson(key: string, text: string | undefined, problem: (value: unknown) => string | null): unknown {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ModelContractError(`model metadata "${key}" is not JSON: ${quoteName(text)}`);
  }
  const found = problem(value);
  if (found !== null) throw new ModelContractError(`model metadata "${key}" ${found}`);
  return value;
}

/**
 * A pause in a pump's readings longer than GAP_FACTOR × its typical interval (and at least
 * GAP_MIN_MS) ends its windows: the trainer starts a new segment there and the agent a new window,
 * so no window reaches back across a pause, in training or in service (a pump back after a day of
 * maintenance is not scored on readings from before it).
 */
export const GAP_FACTOR = 10;
export const GAP_MIN_MS = 60_000;
/**
 * A pump's typical interval is the median of its most recent intervals, at most this many, since
 * its windows last started: a pump that went from a reading a second to one every 10 s is judged
 * at its new pace within a minute or so, not at the pace that held for most of a range.
 */
export const GAP_INTERVALS = 31;

/** The longest step that is not a pause for a pump whose recent intervals have this median. */
export function pauseLimitMs(medianIntervalMs: number): number {
  return Math.max(GAP_MIN_MS, GAP_FACTOR * medianIntervalMs);
}

/**
 * The pause rule, the agent's (inference/engine.ts) and the trainer's (pauseStarts): true when a
 * reading `stepMs` after its pump's newest one comes after a pause. `readings`: the pump's
 * readings since its windows last started (with fewer than 2 there is no interval to judge by:
 * never a pause); `medianIntervalMs`: the median of their last GAP_INTERVALS intervals, asked for
 * only when the step is longer than GAP_MIN_MS (a pump read every second costs one comparison).
 */
export function isPause(stepMs: number, readings: number, medianIntervalMs: () => number): boolean {
  if (readings < 2 || stepMs <= GAP_MIN_MS) return false;
  return stepMs > pauseLimitMs(medianIntervalMs());
}

/** The median of the first `n` values of an ascending array. */
export function sortedMedian(sorted: ArrayLike<number>, n = sorted.length): number {
  return n % 2 === 1 ? sorted[(n - 1) >> 1]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/**
 * The readings that start a run of one pump's readings (`timestamps`, in time order) between
 * pauses by isPause, as the agent, given them one by one, starts its windows again: index 0 first
 * (when there is one), then each reading after a pause. The intervals since the last start are
 * kept sorted (at most GAP_INTERVALS: a binary search to drop the oldest and one to add the
 * newest), so n readings cost O(n log GAP_INTERVALS). `limits`, when given (length n), receives
 * at each index the longest step before that reading that would not have been a pause (Infinity
 * where none is: fewer than 2 readings since a start), for holes measured elsewhere.
 */
export function pauseStarts(timestamps: ArrayLike<number>, limits?: Float64Array): number[] {
  const n = timestamps.length;
  if (n === 0) return [];
  const starts = [0];
  const ring = new Float64Array(GAP_INTERVALS); // the intervals in arrival order
  const sorted = new Float64Array(GAP_INTERVALS);
  let count = 0; // intervals kept
  let oldest = 0; // ring slot of the oldest
  let readings = 1; // since the last start
  let newest = timestamps[0]!;
  if (limits) limits[0] = Infinity;
  const median = () => sortedMedian(sorted, count);
  for (let i = 1; i < n; i++) {
    const ts = timestamps[i]!;
    if (limits) limits[i] = readings < 2 ? Infinity : pauseLimitMs(median());
    if (isPause(ts - newest, readings, median)) {
      starts.push(i);
      count = 0;
      oldest = 0;
      readings = 1;
      newest = ts;
      continue;
    }
    const step = ts - timestamps[i - 1]!; // an interval as the agent's history holds them, in arrival order
    if (count === GAP_INTERVALS) {
      const at = firstAtLeast(sorted, count, ring[oldest]!);
      sorted.copyWithin(at, at + 1, count);
      count--;
      ring[oldest] = step;
      oldest = (oldest + 1) % GAP_INTERVALS;
    } else ring[(oldest + count) % GAP_INTERVALS] = step;
    const at = firstAtLeast(sorted, count, step);
    sorted.copyWithin(at + 1, at, count);
    sorted[at] = step;
    count++;
    readings++;
    newest = Math.max(newest, ts);
  }
  return starts;
}

/** The first index of ascending `sorted[0, n)` holding a value ≥ `value` (n when none does). */
function firstAtLeast(sorted: Float64Array, n: number, value: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A value missing from a pump's readings is carried forward from the last known one for at most
 * this many readings in a row. The trainer drops rows still missing a value after that; the agent
 * leaves such a reading unscored and starts the pump's window again, so neither side scores a
 * pump on a value from long ago (a sensor removed, dead or renamed).
 */
export const MAX_CARRY_READINGS = 60;

/**
 * A model trained on less than a day has not seen its pump's daily cycle (ambient temperature,
 * demand): normal variation it has not seen raises alarms in the field (`bench/quality`, "How long
 * a range to train on"). The trainer warns about such a model; the technician's page says so.
 */
export const FULL_CYCLE_MS = 86_400_000;

export interface TrainingSpan {
  /** First and last training timestamps (ISO 8601). */
  from: string;
  to: string;
  spanMs: number;
  /** Shorter than FULL_CYCLE_MS. */
  short: boolean;
}

/**
 * The time span of the rows a model was trained on, from `metrics.trainFrom` and
 * `metrics.trainTo` (the trainer's fit writes both). These keys are optional in contract 1: null
 * when a model lacks them or they are not dates in order.
 */
export function trainingSpan(meta: Pick<ModelMetadata, 'metrics'>): TrainingSpan | null {
  const { trainFrom, trainTo } = meta.metrics;
  if (typeof trainFrom !== 'string' || typeof trainTo !== 'string') return null;
  const from = Date.parse(trainFrom);
  const to = Date.parse(trainTo);
  if (!Number.isFinite(from) || !Number.isFinite(to) || to < from) return null;
  const spanMs = to - from;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), spanMs, short: spanMs < FULL_CYCLE_MS };
}

// ONNX ModelProto field numbers (onnx/onnx.proto): metadata_props = 14 (StringStringEntryProto key=1 value=2).
const MODEL_METADATA_PROPS_FIELD = 14;

/**
 * Reads `metadata_props` from serialised ONNX bytes. onnxruntime-node does not expose them, so the
 * top level of the ModelProto is walked with protobufjs' wire reader (nested messages are skipped).
 */
export function readMetadataProps(bytes: Uint8Array): Record<string, string> {
  const props: Record<string, string> = {};
  const reader = protobuf.Reader.create(bytes);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 0) throw new Error('field number 0');
      if (field === MODEL_METADATA_PROPS_FIELD && wire === 2) {
        const entry = protobuf.Reader.create(reader.bytes());
        let key = '';
        let value = '';
        while (entry.pos < entry.len) {
          const t = entry.uint32();
          if (t >>> 3 === 1 && (t & 7) === 2) key = entry.string();
          else if (t >>> 3 === 2 && (t & 7) === 2) value = entry.string();
          else entry.skipType(t & 7);
        }
        props[key] = value;
      } else {
        reader.skipType(wire);
      }
    }
  } catch (err) {
    const detail = `protobuf parse failed: ${(err as Error).message}`;
    throw new ModelContractError(`not an ONNX model (${detail})`, 'not-onnx', detail);
  }
  return props;
}

/** Reads and checks the contract-1 or -2 metadata of serialised ONNX bytes. */
export function readModelMetadata(bytes: Uint8Array): ModelMetadata {
  if (bytes.length === 0) throw new ModelContractError('model file is empty', 'not-onnx', 'the file is empty');
  return parseModelMetadata(readMetadataProps(bytes));
}
