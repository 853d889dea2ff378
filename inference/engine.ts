import type { PredictionRow, Reading } from '../buffer/types.js';
import { GAP_INTERVALS, GAP_MIN_MS, isPause, MAX_CARRY_READINGS, pauseLimitMs, sortedMedian } from './contract.js';
import { FrozenWatch, type FrozenSensor } from './frozen.js';
import { StopMarks, stopVerdict } from './stopped.js';
import { ValueHistory } from './history.js';
import type { LoadedModel } from './model.js';
import { FeatureWindow, type PushResult } from './window.js';

/** The model key every pump without a model of its own falls back to. */
export const DEFAULT_MODEL_KEY = 'default';

/**
 * Raw readings kept per pump so a new model's window starts from real history, not padding: at
 * least this many, and more for a pump scored by a model whose window needs more (see
 * `historyNeeded`): a window and the readings a missing value may be carried over.
 */
const HISTORY = 256;

/**
 * Packed-window input buffers are kept from batch to batch, one per model group of a batch, up to
 * this many groups and this many floats each (8 MB; a default-model batch of 8 192 needs 2.6 MB).
 * Allocated per batch instead, megabytes of native memory are freed only when V8 collects them,
 * and glibc keeps the main heap grown to the most that was alive at once.
 */
const KEPT_INPUTS = 8;
const KEPT_INPUT_FLOATS = 2 * 1024 * 1024;

/**
 * A reading with a value beyond ±EXTREME_VALUE is an error code (1e20, 9.9e37, 3.4e38 are common
 * ones), not a measurement. A window holding one may overflow a model's float32 arithmetic (a
 * squared deviation passes 3.4e38 once it is 1.8e19 feature scales away); its non-finite score is
 * the reading's fault, not the model's, and must not roll a working model back. A model that
 * saturates instead (the trainer's clip scaled values) scores it finite and far above its
 * threshold: that is no anomaly of the pump either, so such a window is left unscored with the
 * value named whatever the model made of it (no alert for a sensor's error code). Below this bound
 * a non-finite score is the model's fault (a stopped pump's zeros must be scorable), and a value
 * far off is a measurement: a saturated score is an anomaly.
 */
export const EXTREME_VALUE = 1e15;

export interface ModelFault {
  key: string;
  model: LoadedModel;
  reason: string;
}

interface PumpState {
  id: string;
  /** As numbers, not the readings' objects (see ValueHistory). */
  history: ValueHistory;
  /**
   * The newest timestamp in the history (not the last to arrive: after a little disorder the last
   * is older); the pause and late rules measure from it. -Infinity when the history is empty.
   */
  newest: number;
  /** Late readings in a row, in time order (see `admit`): the last LATE_RUN_RESTART of them. */
  lateRun: LateReading[];
  /** The first of that run (older ones than the kept ones included) and when it arrived. */
  lateRunFirst: { ts: number; arrival: number; count: number } | null;
  live: { model: LoadedModel; win: FeatureWindow } | null;
  shadow: { model: LoadedModel; win: FeatureWindow } | null;
  /** The time of its last stopped reading by each stopped-when rule in use (see inference/stopped.ts). */
  stops: StopMarks;
  /** Its runs of identical values, for frozen sensors (inference/frozen.ts). */
  frozen: FrozenWatch;
}

interface LateReading {
  ts: number;
  values: Reading['values'];
}

/** One micro-batch's readings for one model: their row indexes and the packed windows. */
interface Group {
  model: LoadedModel;
  rows: number[];
  input: Float32Array;
  shadow: boolean;
}

/**
 * Scores readings in micro-batches across pumps: one `session.run` per model per batch. Each pump
 * uses its own model when one is assigned, else `default`. Swaps take effect between two batches,
 * because a batch resolves its models once, at its start. Callers must not overlap `score` calls.
 */
export class InferenceEngine {
  private readonly live = new Map<string, LoadedModel>();
  private readonly shadows = new Map<string, LoadedModel>();
  private readonly pumps = new Map<string, PumpState>();
  private readonly inputs: Float32Array[] = [];
  /** Groups created in the batch being scored (score calls do not overlap). */
  private groupsInBatch = 0;
  /** Readings the last `score` call added to each pump's history (see `forgetLastScore`). */
  private recordedInLastScore = new Map<string, number>();
  /** Each pump's frozen-sensor runs before the last `score` call (see `forgetLastScore`). */
  private frozenBeforeLastScore = new Map<string, ReturnType<FrozenWatch['snapshot']>>();

  /**
   * `now`: a monotonic clock (ms), for when readings arrive; the late rule tells a sender's
   * replayed backlog from a clock that moved back by how fast late readings come.
   */
  constructor(
    private readonly onFault: (fault: ModelFault) => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  setModel(key: string, model: LoadedModel | null): void {
    if (model) this.live.set(key, model);
    else this.live.delete(key);
    this.growHistories();
  }

  setShadow(key: string, model: LoadedModel | null): void {
    if (model) this.shadows.set(key, model);
    else this.shadows.delete(key);
    this.growHistories();
  }

  /**
   * Readings of history a pump needs so that a swap to any model in use, or a restart seeded with
   * this many readings, finds its window full: the longest window, and the readings over which a
   * missing value may have been carried into it. Never less than HISTORY.
   */
  historyNeeded(): number {
    let window = 0;
    for (const m of this.live.values()) window = Math.max(window, m.meta.window);
    for (const m of this.shadows.values()) window = Math.max(window, m.meta.window);
    return Math.max(HISTORY, window + MAX_CARRY_READINGS);
  }

  private growHistories(): void {
    const needed = this.historyNeeded();
    for (const state of this.pumps.values()) state.history.grow(needed);
  }

  model(key: string): LoadedModel | undefined {
    return this.live.get(key);
  }

  shadow(key: string): LoadedModel | undefined {
    return this.shadows.get(key);
  }

  /** The model that scores this pump now (its own, else the default). */
  modelFor(pumpId: string): LoadedModel | undefined {
    return this.live.get(pumpId) ?? this.live.get(DEFAULT_MODEL_KEY);
  }

  /**
   * The shadow that scores this pump beside its live model: its own, else the default's, and the
   * default's only while the default model is the one scoring it (a shadow is compared with the
   * live model it would replace).
   */
  shadowFor(pumpId: string): LoadedModel | undefined {
    return this.shadows.get(pumpId) ?? (this.live.has(pumpId) ? undefined : this.shadows.get(DEFAULT_MODEL_KEY));
  }

  keys(): string[] {
    return [...this.live.keys()];
  }

  pumpIds(): string[] {
    return [...this.pumps.keys()];
  }

  /** True when the pump's readings were scored or read back (seed) in this run. */
  tracks(pumpId: string): boolean {
    return this.pumps.has(pumpId);
  }

  /** True when the model scoring a pump this run tracks bounds the feature's frozen runs (`pumpwatch.stuck_after`). */
  boundsSensor(pumpId: string, feature: string): boolean {
    return this.pumps.has(pumpId) && this.modelFor(pumpId)?.meta.stuckAfter?.[feature] !== undefined;
  }

  /** The pump's sensors frozen now, by the bounds of the model that scores it (none without `pumpwatch.stuck_after`). */
  sensorFaults(pumpId: string): FrozenSensor[] {
    return this.pumps.get(pumpId)?.frozen.faults(this.modelFor(pumpId)?.meta.stuckAfter) ?? [];
  }

  /**
   * Rows a restart reads back per pump so that a frozen sensor's run is counted again up to its
   * bound (seed): the largest bound of the models in use, at most MAX_SEED_FOR_FROZEN.
   */
  frozenReadBack(): number {
    let most = 0;
    for (const m of this.live.values()) for (const n of Object.values(m.meta.stuckAfter ?? {})) most = Math.max(most, n);
    return Math.min(MAX_SEED_FOR_FROZEN, most);
  }

  /** Scores readings in arrival order; returns one row per reading, scored or with the reason it is not. */
  async score(readings: readonly Reading[], receivedAt: number): Promise<PredictionRow[]> {
    const rows: PredictionRow[] = new Array(readings.length);
    const arrival = this.now();
    const groups = new Map<LoadedModel, Group>();
    const shadowGroups = new Map<LoadedModel, Group>();
    const sizes = this.countPerModel(readings);
    this.groupsInBatch = 0;
    this.recordedInLastScore = new Map();
    this.frozenBeforeLastScore = new Map();
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      const state = this.state(r.pumpId);
      const model = this.modelFor(r.pumpId);
      const row: PredictionRow = {
        pumpId: r.pumpId, ts: r.ts, receivedAt, values: r.values,
        score: null, anomaly: null, modelVersion: model?.version ?? null, imputed: false,
        unscoredReason: model ? null : 'no model assigned to this pump and no default model',
      };
      rows[i] = row;
      if (repeats(state, r)) {
        // A resend (an HTTP retry after a lost answer, an MQTT redelivery): stored, as everything
        // is, but a window holding one reading twice is one the model was never trained on.
        row.unscoredReason = `${REPEAT_REASON} (same time, same values)`;
        continue;
      }
      const late = this.admit(state, r, arrival);
      if (late !== null) {
        // Stored, never scored: its window would be made of newer readings, and the pump's own
        // window would see a pause where there was none.
        row.unscoredReason = late;
        continue;
      }
      if (!this.frozenBeforeLastScore.has(state.id)) this.frozenBeforeLastScore.set(state.id, state.frozen.snapshot());
      this.record(state, r);
      const shadow = this.shadowFor(r.pumpId);
      // Both verdicts before either window moves: a rule shared by both is judged once, on the same marks.
      const stop = model ? stopVerdict(state.stops, model, r, state.history) : null;
      const shadowStop = shadow ? stopVerdict(state.stops, shadow, r, state.history) : null;
      if (model?.meta.stuckAfter) {
        const began = state.frozen.observe(model.meta.stuckAfter, r.values, r.ts, stop?.kind !== 'stopped');
        if (began.length > 0) row.sensorFaultsBegan = began;
      }
      if (model) {
        if (stop !== null && stop.kind !== 'stopping') {
          // Stopped or warming up: stored unscored, and the window starts again after it (windowFor
          // rebuilds it from the readings after the stop and warm-up: StopMarks.runningAges).
          state.live = null;
          row.unscoredReason = stop.reason;
        } else {
          state.live = this.windowFor(state, state.live, model);
          const pushed = state.live.win.push(r.values);
          row.imputed = pushed.imputed;
          // A stop in the making (held) is stored unscored but stays in the window, which is not
          // dropped: a sensor failing on a running pump is scored on a full window once its hold ends.
          if (stop !== null) row.unscoredReason = stop.reason;
          else if (pushed.ready) this.add(groups, model, state.live.win, i, sizes.get(model) ?? 1, false);
          else row.unscoredReason = unscoredReason(pushed, model.meta.window);
        }
      }
      if (shadow) {
        row.shadowModelVersion = shadow.version;
        if (shadowStop !== null && shadowStop.kind !== 'stopping') state.shadow = null;
        else {
          state.shadow = this.windowFor(state, state.shadow, shadow);
          if (state.shadow.win.push(r.values).ready && shadowStop === null) this.add(shadowGroups, shadow, state.shadow.win, i, readings.length, true);
        }
      }
    }
    for (const g of groups.values()) await this.runGroup(g, rows);
    for (const g of shadowGroups.values()) await this.runGroup(g, rows);
    return rows;
  }

  /**
   * Gives a pump the readings it had before the agent started (in arrival order, from the buffer),
   * so its window is full at its first reading instead of filling again. The pause rule still
   * holds: a first reading long after these starts the window again. A pump already scored is
   * left alone. The rows' `unscoredReason` replays what was decided when they came, as the arrival
   * times the late rules need are gone: a row left out then (late, a resend) stays out, and a row
   * taken in although late was where the pump's stream moved, so the history starts again there.
   * Rows without a reason given go through the late rule as they are. The stopped-when rules of
   * the pump's models are applied to the rows taken in, so its last stop (and a warm-up running
   * at the restart) is known again; a stored `pump starting` reason names its stop's time, for a
   * stop older than the rows read.
   */
  seed(pumpId: string, readings: ReadonlyArray<{ ts: number; values: Reading['values']; unscoredReason?: string | null; modelVersion?: string | null }>): void {
    const state = this.state(pumpId);
    if (state.history.size > 0) return;
    const models = [this.modelFor(pumpId), this.shadowFor(pumpId)];
    for (const r of readings) {
      if (leftOutOfHistory(r.unscoredReason)) continue;
      if (repeats(state, r)) continue;
      if (lateReason(state, r.ts) !== null) {
        if (r.unscoredReason === undefined) continue;
        this.restartOnClockStep(state); // as admit() did then
      }
      this.record(state, r);
      const kind = state.stops.replay(models, r, state.history);
      // Where the pump's frozen sensors stand, without alerting again those found before the restart.
      // A run that reached the bound only at rows another model scored (a swap to a lower bound just
      // before the restart) was maybe never alerted: it is found once more at the next reading
      // (frozen.ts observe `told`), rather than never. Rows without a version given count as this model's.
      const told = r.modelVersion === undefined || r.modelVersion === models[0]?.version;
      state.frozen.observe(models[0]?.meta.stuckAfter, r.values, r.ts, kind !== 'stopped', told);
    }
    this.endLateRun(state);
  }

  /**
   * Null when the reading goes into the pump's history (and windows); else why it is left out
   * (lateReason): a reading from before a pause behind the pump's newest one. Late readings are a
   * sender's replayed backlog, to be stored and left out, unless they are the pump's live stream
   * now: its clock moved back, or its newest reading was the odd one (a sensor clock hours ahead,
   * once). One wrong timestamp must not leave a pump unscored, without alarms, until its clock
   * catches up. The stream has moved when late readings
   * - come in time order, LATE_RUN_RESTART or more in a row, at the pace of their own timestamps
   *   (at least half as slowly as those advance; a backlog is sent faster than it was recorded,
   *   and in between the live readings the run starts again), or
   * - keep coming, LATE_RUN_RESTART or more, for longer than a pause (the pause rule, on the
   *   monotonic clock) with no reading near the newest in between.
   * Its history and windows then start again from the late run (the readings before it are kept
   * for the window, so a window of up to LATE_RUN_RESTART readings is scored at once).
   */
  private admit(state: PumpState, r: LateReading, arrival: number): string | null {
    const late = lateReason(state, r.ts);
    if (late === null) {
      this.endLateRun(state);
      return null;
    }
    const run = state.lateRun;
    if (state.lateRunFirst === null || r.ts <= run[run.length - 1]!.ts) {
      run.length = 0;
      state.lateRunFirst = { ts: r.ts, arrival, count: 0 };
    }
    run.push(r);
    if (run.length > LATE_RUN_RESTART) run.shift();
    const first = state.lateRunFirst;
    first.count++;
    const atPace = first.count >= LATE_RUN_RESTART && arrival - first.arrival >= (r.ts - first.ts) / 2;
    // Kept coming (from the first of the run, with no live reading since) for longer than a pause:
    // a sender that posts a minute of readings at once after its clock moved back. One upload of
    // a backlog after a quiet minute is not that: the next upload brings live readings again.
    const liveGone = first.count >= LATE_RUN_RESTART && arrival - first.arrival > gapMs(state.history);
    if (!atPace && !liveGone) return late;
    this.restartOnClockStep(state);
    const earlier = run.slice(0, -1);
    this.endLateRun(state);
    for (const e of earlier) this.record(state, e);
    return null;
  }

  private endLateRun(state: PumpState): void {
    if (state.lateRunFirst === null) return;
    state.lateRun.length = 0;
    state.lateRunFirst = null;
  }

  /**
   * Forgets the readings the last `score` call added, after their commit failed: they leave each
   * pump's history, and its windows are rebuilt from the history before them at its next reading.
   * A retry of the same readings then scores them as if they had been sent once.
   */
  forgetLastScore(): void {
    for (const [pumpId, n] of this.recordedInLastScore) {
      const state = this.pumps.get(pumpId);
      if (state) this.rewind(state, n);
    }
    for (const state of this.pumps.values()) this.endLateRun(state);
    for (const [pumpId, runs] of this.frozenBeforeLastScore) this.pumps.get(pumpId)?.frozen.restore(runs);
    this.recordedInLastScore = new Map();
    this.frozenBeforeLastScore = new Map();
  }

  private countPerModel(readings: readonly Reading[]): Map<LoadedModel, number> {
    const sizes = new Map<LoadedModel, number>();
    for (const r of readings) {
      const m = this.modelFor(r.pumpId);
      if (m) sizes.set(m, (sizes.get(m) ?? 0) + 1);
    }
    return sizes;
  }

  private add(groups: Map<LoadedModel, Group>, model: LoadedModel, win: FeatureWindow, row: number, capacity: number, shadow: boolean): void {
    let g = groups.get(model);
    if (!g) {
      g = { model, rows: [], input: this.input(this.groupsInBatch++, capacity * model.meta.window * model.meta.features.length), shadow };
      groups.set(model, g);
    }
    win.writeTo(g.input, g.rows.length * model.meta.window * model.meta.features.length);
    g.rows.push(row);
  }

  /** An input buffer of at least `floats` for the batch's `slot`-th group (see KEPT_INPUTS). */
  private input(slot: number, floats: number): Float32Array {
    const kept = this.inputs[slot];
    if (kept && kept.length >= floats) return kept;
    const fresh = new Float32Array(floats);
    if (slot < KEPT_INPUTS && floats <= KEPT_INPUT_FLOATS) this.inputs[slot] = fresh;
    return fresh;
  }

  private async runGroup(g: Group, rows: PredictionRow[]): Promise<void> {
    const n = g.rows.length;
    const stride = g.model.meta.window * g.model.meta.features.length;
    let out;
    try {
      out = await g.model.run(g.input.subarray(0, n * stride), n);
    } catch (err) {
      const reason = `model ${g.model.version} failed: ${(err as Error).message}`;
      if (!g.shadow) for (const i of g.rows) rows[i]!.unscoredReason = reason;
      this.onFault({ key: this.keyOf(g.model, g.shadow), model: g.model, reason });
      return;
    }
    const { threshold, features } = g.model.meta;
    let nonFinite = 0;
    for (let k = 0; k < n; k++) {
      const row = rows[g.rows[k]!]!;
      const s = out.scores[k]!;
      // Only windows that would not be scored as normal are looked through (a few dozen floats each).
      const extreme = Number.isFinite(s) && s <= threshold ? null : extremeValue(g.input, k * stride, stride, features);
      if (!Number.isFinite(s) && extreme === null) nonFinite++;
      if (g.shadow) {
        row.shadowScore = Number.isFinite(s) ? s : null;
        continue;
      }
      if (extreme !== null) {
        const made = Number.isFinite(s) ? ` scored it ${s.toPrecision(3)}, an error code's score, not the pump's` : "'s score overflowed";
        row.unscoredReason = `not scored: its window holds ${extreme}, beyond ±${EXTREME_VALUE.toExponential()} (an error code, not a measurement), and model ${g.model.version}${made}`;
        continue;
      }
      if (!Number.isFinite(s)) {
        row.unscoredReason = `model ${g.model.version} produced a non-finite score`;
        continue;
      }
      row.score = s;
      row.threshold = threshold;
      row.anomaly = s > threshold;
      if (row.anomaly && out.contributions) row.contributions = contributionsOf(out.contributions, k, features);
    }
    if (nonFinite > 0) this.onFault({ key: this.keyOf(g.model, g.shadow), model: g.model, reason: `${nonFinite} of ${n} scores were not finite` });
  }

  private keyOf(model: LoadedModel, shadow: boolean): string {
    for (const [key, m] of shadow ? this.shadows : this.live) if (m === model) return key;
    return DEFAULT_MODEL_KEY;
  }

  private state(pumpId: string): PumpState {
    let s = this.pumps.get(pumpId);
    if (!s) {
      s = { id: pumpId, history: new ValueHistory(this.historyNeeded(), true), newest: -Infinity, lateRun: [], lateRunFirst: null, live: null, shadow: null, stops: new StopMarks(), frozen: new FrozenWatch() };
      this.pumps.set(pumpId, s);
    }
    return s;
  }

  /** Adds a reading to the pump's history; after a pause (see GAP_FACTOR) its windows start again from it. */
  private record(state: PumpState, r: LateReading): void {
    if (pausedBefore(state, r.ts)) {
      this.rewind(state, state.history.size);
      state.frozen.clear(); // a sensor's run is not counted across a pause: what it read meanwhile is unknown
    }
    state.history.push(r.values, r.ts);
    if (r.ts > state.newest) state.newest = r.ts;
    this.recordedInLastScore.set(state.id, (this.recordedInLastScore.get(state.id) ?? 0) + 1);
  }

  /** Drops the pump's newest `n` readings from its history; its windows are rebuilt from the rest when next needed. */
  /**
   * The pump's stream moved to another clock: its windows start again, and its stops and frozen
   * runs are forgotten (timed on the clock that moved, the pump would warm up until it caught up).
   */
  private restartOnClockStep(state: PumpState): void {
    this.rewind(state, state.history.size);
    state.stops.clear();
    state.frozen.clear();
  }

  private rewind(state: PumpState, n: number): void {
    state.history.dropNewest(n);
    let newest = -Infinity;
    for (let age = 0; age < state.history.size; age++) newest = Math.max(newest, state.history.tsAt(age));
    state.newest = newest;
    state.live = null;
    state.shadow = null;
  }

  /**
   * The pump's window for `model`, rebuilt from raw history when the model changed. A model with a
   * stopped-when rule gets only the readings since its pump's last stop and warm-up by that rule.
   */
  private windowFor(state: PumpState, current: PumpState['live'], model: LoadedModel): NonNullable<PumpState['live']> {
    if (current && current.model === model) return current;
    const win = new FeatureWindow(model.meta.features, model.meta.window);
    // Replay history up to (not including) the reading being scored now, oldest first.
    // A value missing from the newest readings is carried from up to MAX_CARRY_READINGS before.
    let take = Math.min(state.history.size - 1, model.meta.window - 1 + MAX_CARRY_READINGS);
    const rule = model.meta.stoppedWhen;
    if (rule) take = state.stops.runningAges(rule, state.history, take);
    for (let age = take; age >= 1; age--) win.push(state.history.valuesAt(age));
    return { model, win };
  }
}

/**
 * At most this many rows per pump are read back at a restart for frozen sensors (a few seconds of
 * SQLite for a hundred pumps); a model whose bound is longer counts a run again from the oldest of
 * them, so a sensor frozen since before them may be alerted once more.
 */
export const MAX_SEED_FOR_FROZEN = 10_000;

/** Late readings in a row after which a pump's windows start again from them (see `admit`). */
export const LATE_RUN_RESTART = 3;

const LATE_REASON = "not scored: older than this pump's newest reading";
// The first of a resent pair may itself be unscored (its window still filling), so the reason
// says "sent", not "scored".
const REPEAT_REASON = 'not scored: repeats a reading this pump already sent';
/** The same reason as written before 2026-12-07: rows in buffers (and blobs) still carry it. */
const REPEAT_REASON_BEFORE = 'not scored again: repeats a reading of this pump already scored';

/** How the reasons of rows left out of a pump's history begin (late, a resend): leftOutOfHistory. */
export const LEFT_OUT_PREFIXES: readonly string[] = [LATE_REASON, REPEAT_REASON, REPEAT_REASON_BEFORE];

/** True for a stored row's reason that says it was left out of the pump's history (late, a resend). */
export function leftOutOfHistory(reason: string | null | undefined): boolean {
  return typeof reason === 'string' && LEFT_OUT_PREFIXES.some((prefix) => reason.startsWith(prefix));
}

/**
 * True when `ts` comes after a pause in the pump's readings, by the pause rule the trainer's
 * segments follow too (isPause in contract.ts: longer than GAP_FACTOR × the median of its last
 * GAP_INTERVALS intervals since its windows last started, and than GAP_MIN_MS).
 */
function pausedBefore(state: PumpState, ts: number): boolean {
  if (state.history.size === 0) return false;
  return isPause(ts - state.newest, state.history.size, () => recentMedian(state.history));
}

/** The pause rule's threshold for this pump (pauseLimitMs of its recent intervals), GAP_MIN_MS with none. */
function gapMs(history: ValueHistory): number {
  return history.size < 2 ? GAP_MIN_MS : pauseLimitMs(recentMedian(history));
}

/** The median of the pump's last GAP_INTERVALS intervals (at least one: two readings kept). */
function recentMedian(history: ValueHistory): number {
  const n = Math.min(history.size - 1, GAP_INTERVALS);
  const intervals = new Float64Array(n);
  for (let age = 0; age < n; age++) intervals[age] = history.tsAt(age) - history.tsAt(age + 1);
  return sortedMedian(intervals.sort());
}

/**
 * Why a reading from before a pause (by the pause rule) behind the pump's newest one is not
 * scored, or null. A little disorder (two senders, clock jitter) is scored in arrival order, as
 * it always was; a replayed backlog would make the next live reading look like it came after a
 * pause, so it is stored unscored and the pump's window is left as it was.
 */
function lateReason(state: PumpState, ts: number): string | null {
  if (state.history.size === 0) return null;
  const newest = state.newest;
  if (newest - ts <= GAP_MIN_MS || newest - ts <= gapMs(state.history)) return null;
  return `${LATE_REASON} (${new Date(newest).toISOString()}) by more than a pause; windows are scored in time order`;
}

/** True when the pump's history holds a reading with this reading's time and values (searched only when it is not newer than all of them). */
function repeats(state: PumpState, r: LateReading): boolean {
  return r.ts <= state.newest && state.history.holds(r.ts, r.values);
}


/** `"Flow" = 1e+20` for the first value beyond ±EXTREME_VALUE in one packed window, else null. */
function extremeValue(input: Float32Array, from: number, stride: number, features: readonly string[]): string | null {
  for (let j = 0; j < stride; j++) {
    const v = input[from + j]!;
    if (Math.abs(v) > EXTREME_VALUE) return `"${features[j % features.length]!}" = ${v.toPrecision(3)}`;
  }
  return null;
}

function contributionsOf(all: Float32Array, k: number, features: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  const f = features.length;
  for (let j = 0; j < f; j++) out[features[j]!] = all[k * f + j]!;
  return out;
}

/** Why a reading the window could not score stays unscored. */
function unscoredReason(pushed: PushResult, window: number): string {
  if (pushed.missing !== null) return `no value known yet for feature "${pushed.missing}"`;
  if (pushed.stale !== null) {
    return `no value for feature "${pushed.stale.feature}" in the last ${pushed.stale.readings} readings (a missing value is carried forward for at most ${MAX_CARRY_READINGS})`;
  }
  return `window filling: ${pushed.filled} of ${window} readings`;
}
