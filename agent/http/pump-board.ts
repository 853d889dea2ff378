import { basename } from 'node:path';
import type { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { stoppedState, trainingSpan, type TrainingSpan } from '../../inference/contract.js';
import { LEFT_OUT_PREFIXES, leftOutOfHistory, type InferenceEngine } from '../../inference/engine.js';
import type { FrozenSensor } from '../../inference/frozen.js';
import { isStartingReason, isStoppedReason, isStoppingReason, STOPPED_PREFIX, STOPPING_PREFIX } from '../../inference/stopped.js';
import type { ModelManager } from '../../inference/models.js';
import type { ModelStatus } from '../../inference/model-status.js';
import { monotonicNow } from '../../sync/clock.js';
import type { RefusedReading } from '../ingest/pipeline.js';
import { GenericRange, type GenericRangeView } from './generic-range.js';
import { PumpRefusals, REFUSAL_WINDOW_MS, type PumpRefusalsStatus, type PumpRefusalView } from '../ingest/pump-refusals.js';

/** A pump whose last reading arrived longer ago than this is shown as "stale data". */
export const STALE_AFTER_MS = 5 * 60_000;
/** An anomaly streak ends after this many normal readings in a row (one normal reading amid a fault does not clear it). */
export const CLEAR_AFTER_NORMALS = 5;
/**
 * A pump whose readings have all been refused for this long (or for longer than STALE_AFTER_MS
 * since its last accepted one) is shown as "readings refused", not with its last good reading.
 */
export const REFUSED_AFTER_MS = 60_000;
const SEED_ROWS = 200;
/**
 * A pump whose seeded rows begin inside an anomaly streak has the verdicts of up to this many of
 * its earlier rows read back, up to its newest anomaly before them (5.5 h at 1 Hz), so "Anomaly
 * since" says when the streak began, not the time of its 200th-newest reading; a streak older than
 * that is shown as "since at least".
 */
export const SEED_LOOKBACK_ROWS = 20_000;
/**
 * At most this many verdicts are read back over all pumps, so a gateway with many pumps in long
 * alarms is not held up at its first /pumps: only a row's time and verdict are read, not its
 * values, 4-8 times cheaper per row than a whole row (measured on a busy machine: 100 000 verdicts
 * in 0.9-1.2 s, 100 000 whole rows in 4.7-5.6 s; the earlier budget was 50 000 whole rows). The
 * pumps beyond it say "since at least" from their seeded rows.
 */
export const SEED_LOOKBACK_BUDGET = 100_000;
/**
 * Seeded rows that may begin inside an anomaly streak (no five normal verdicts before their first
 * anomaly, as when the pump stopped in alarm: its stopped rows have none) are decided by the pump's
 * newest anomaly before them and the normal verdicts after it. The walk over those verdicts, up the
 * (pump_id, seq) index, stops at the fifth normal one (a few rows for a streak that cleared); a
 * stop after an alarm is walked whole. At most this many rows are walked over all pumps (about
 * 1.2 s here at 0.6 µs a row), and at least SEED_WALK_MIN_ROWS for each pump: a walk cut short
 * before its fifth normal verdict keeps the alarm latched, as only normal readings clear it.
 */
export const SEED_WALK_BUDGET = 2_000_000;
export const SEED_WALK_MIN_ROWS = 1_000;
/**
 * A pump stopped since before its 200 seeded rows: up to this many of its earlier rows (28 h at
 * 1 Hz: a night's stop, a weekend's at 0.3 Hz) are looked back over for the last reading that
 * ran, so "Stopped since" says when the stop began; one walk down the (pump_id, seq) index that
 * reads the reason of each row, values only of the few that are not stopped. A stop older than
 * that is shown as "since at least".
 */
export const STOP_LOOKBACK_ROWS = 100_000;

export type PumpState = 'normal' | 'anomaly' | 'stopped' | 'no-model' | 'not-scored' | 'stale' | 'refused';

interface LastRow {
  seq: number;
  ts: number;
  receivedAt: number;
  values: Record<string, number | null>;
  score: number | null;
  anomaly: boolean | null;
  modelVersion: string | null;
  unscoredReason: string | null;
  contributions: Record<string, number> | null;
}

interface Track {
  last: LastRow | null;
  /** When the last reading arrived, on the monotonic clock ("stale" is measured on it, not on receivedAt). */
  arrivedAt: number;
  /** Time of the first anomalous reading of the current streak; null when the pump is not in an anomaly. */
  anomalySince: number | null;
  /** The streak began before the oldest row the seed read: anomalySince is a lower bound. */
  anomalySinceAtLeast: boolean;
  normalsInRow: number;
  lastAlert: { seq: number; ts: number; score: number | null; contributions: Record<string, number> | null } | null;
  /**
   * The current stop (its model's stopped-when rule): its first reading's seq and time, its newest
   * reading's reason, whether it began before the oldest row the seed looked at (`since` a lower
   * bound); null while the pump runs.
   */
  stop: { sinceSeq: number; since: number; reason: string; atLeast: boolean } | null;
  /**
   * Arrival (monotonic) of the first unscored reading since its last scored one (or its stop, or
   * the start); null while scored. As StatusMessages follows it for pump-not-scored (a stopped
   * reading clears it, a late reading or a resend leaves it as it was), but a reading in its
   * model's warm-up after a stop clears it too: /healthz is not degraded by the stop rule at work.
   */
  unscoredSince: number | null;
  /** The sensor names it sent a value of (at most MAX_SENSOR_NAMES), to tell a sensor it lacks from a gap. */
  sent: Set<string>;
}

/** NotScoredView's reason for pumps the default model cannot score: it needs sensors they do not send. */
export const DEFAULT_LACKS = 'the default model needs sensors these pumps do not send';

/** Sensor names remembered per pump (the names of one pump's readings; bounded all the same). */
const MAX_SENSOR_NAMES = 256;

/**
 * The model in use needs sensors the pump has never sent a value of since the agent started: not a
 * gap, its readings name other sensors (a site with its own tag names, scored by the default model).
 */
export interface LackedSensors {
  /** The model's sensors it sent no value of. */
  lacks: string[];
  /** The model's sensors it sends. */
  sends: string[];
  /** The pump's own sensors (its readings' names), those the model does not use; at most 20. */
  others: string[];
}

export interface PumpSummary {
  pumpId: string;
  state: PumpState;
  /**
   * Why: the unscored reason, the model that is missing, how long the data has been silent, or
   * how many readings were refused and why.
   */
  detail: string | null;
  /**
   * For a stale pump, or one whose readings are refused, the state of its last accepted reading
   * (an anomaly stays an anomaly until readings say otherwise: silence does not clear an alarm,
   * nor do refused readings); null otherwise.
   */
  lastState: Exclude<PumpState, 'stale' | 'refused'> | null;
  /**
   * The pump's refused readings (null when none was refused since the agent started): shown as the
   * state `refused` while only refused readings arrive, else as a warning next to the state.
   */
  refused: PumpRefusalView | null;
  anomalySince: string | null;
  /**
   * The anomaly streak began before the oldest reading the agent read back at start-up (it reads back
   * the verdicts of up to SEED_LOOKBACK_ROWS readings up to the pump's newest anomaly before its 200
   * newest readings): it has lasted at least since anomalySince.
   */
  anomalySinceAtLeast: boolean;
  /**
   * False while its newest reading is stopped by its model's stopped-when rule (state `stopped`,
   * since `stoppedSince`: its readings are stored, not scored, and raise no alarm); true when
   * the model has such a rule and the pump runs; null when its model has none (it cannot tell).
   * A reading held as a stop in the making (`pump stopping`) leaves it as it was (state
   * `not-scored`, the reason as detail).
   */
  running: boolean | null;
  /**
   * The first reading of the current stop. After a restart the agent looks back for it over up to
   * STOP_LOOKBACK_ROWS rows before the pump's 200 newest; a stop older than that has lasted at least
   * since stoppedSince (`stoppedSinceAtLeast`).
   */
  stoppedSince: string | null;
  stoppedSinceAtLeast: boolean;
  lastAlertAt: string | null;
  /** The latest anomalous reading: its score and each feature's contribution (the "why"). */
  lastAlert: { seq: number; ts: string; score: number | null; contributions: Record<string, number> | null } | null;
  lastReading: (Omit<LastRow, 'ts' | 'receivedAt'> & { ts: string; receivedAt: string }) | null;
  model: {
    key: string;
    version: string;
    threshold: number;
    features: string[];
    window: number;
    status: string;
    /** The time span of the rows it was trained on; `short` below a day (null when the model does not say). */
    training: TrainingSpan | null;
    /**
     * The default model is the file PUMPWATCH_DEFAULT_MODEL names (as one fitted for the site with
     * `pumpwatch-trainer fit`), not the generic one bundled with the agent: its file name; else null.
     */
    defaultFile: string | null;
  } | null;
  /**
   * The model deployed for this pump itself (its desired entry), whatever scores it now: `active`
   * once it scores the pump; `downloading`, `rejected` (refused, with the reason) or `rolled-back`
   * while `model` is still the generic default or an older model of the pump's own. null when no
   * model of its own was deployed (or only a shadow).
   */
  deployment: Deployment | null;
  /** A shadow model deployed for the pump: `shadow` while it scores beside the live one (never alerting), or its download or refusal. */
  shadow: Deployment | null;
  /**
   * Scored by the generic default model, which flagged nearly all its readings of the last hour
   * (agent/http/generic-range.ts): its readings are outside what that model knows, and its alarms
   * say little until a model of its own is deployed. null otherwise (and for a pump's own model).
   */
  outsideGenericRange: GenericRangeView | null;
  /**
   * Its sensors found frozen now (inference/frozen.ts): a run of identical readings, while the pump
   * runs, reaching its model's bound (`pumpwatch.stuck_after`); `since` the run's first reading.
   * Scored as ever meanwhile. Empty when none (and for a model without the bounds).
   */
  sensorFaults: SensorFaultView[];
  /** Not scored because its model needs sensors this pump has not sent at all (LackedSensors); null otherwise. */
  lackedSensors: LackedSensors | null;
}

/** Pumps that keep sending with none of their readings scored for the not-scored delay (PumpBoard.notScored). */
export interface NotScoredView {
  pumps: string[];
  /** The reason most of them give (their newest unscored reading's), and how many give it. */
  reason: string;
  reasonPumps: number;
  /** Of the pumps giving that reason: scored by the default model, which needs sensors they do not send. */
  defaultLacks: string[] | null;
}

export interface SensorFaultView {
  feature: string;
  kind: 'frozen';
  since: string;
  readings: number;
  value: number;
  after: number;
}

/** A frozen sensor as the agent's endpoints show it (`since` as ISO time): /pumps, /status, /metrics. */
export function sensorFaultView(f: FrozenSensor): SensorFaultView {
  return { ...f, since: new Date(f.since).toISOString() };
}

export interface Deployment {
  version: string | null;
  status: ModelStatus['status'];
  error: string | null;
  since: string;
}

/**
 * What the technician's page shows per pump, kept in memory from every committed micro-batch
 * (seeded once from the buffer), so the page's frequent polls never scan the readings table.
 */
export class PumpBoard {
  private readonly tracks = new Map<string, Track>();
  private seeded = false;
  /**
   * Before the seed: per pump, the seqs and monotonic times of the first and last rows committed
   * since the start. The seed reads those rows back from the buffer, but their receive times are
   * on the wall clock, which may have stepped since (NTP): their arrival is taken from here.
   */
  private readonly liveBeforeSeed = new Map<string, { firstSeq: number; firstAt: number; lastSeq: number; lastAt: number }>();
  private readonly refusals = new PumpRefusals((pumpId) => this.tracks.has(pumpId));
  private readonly genericRange = new GenericRange();

  constructor(
    private readonly deps: {
      buffer: BufferStore;
      engine: InferenceEngine;
      models: ModelManager;
      /** Wall clock: how long ago a reading received before the start was received, when the seed reads it. */
      clock?: () => number;
      /** Monotonic ms (default performance.now()); NTP steps the wall clock. */
      monotonic?: () => number;
      staleAfterMs?: number;
      /** PUMPWATCH_DEFAULT_MODEL: the default model loaded from it is the site's, not the bundled generic one. */
      configuredDefault?: string;
    },
  ) {}

  /** Commit listener: follows each pump's last reading and anomaly streak. */
  record(rows: readonly PredictionRow[], seqs: readonly number[]): void {
    // Committed just now: they arrived now on the monotonic clock, whatever the wall clock says.
    const now = this.monotonic();
    if (!this.seeded) {
      // the seed will read these rows from the buffer; it takes their arrival from here
      rows.forEach((row, i) => {
        const seq = seqs[i]!;
        const live = this.liveBeforeSeed.get(row.pumpId);
        if (live) Object.assign(live, { lastSeq: seq, lastAt: now });
        else this.liveBeforeSeed.set(row.pumpId, { firstSeq: seq, firstAt: now, lastSeq: seq, lastAt: now });
      });
      return;
    }
    rows.forEach((row, i) => this.apply(row, seqs[i]!, now));
  }

  /** Refusal listener: counts each pump's refused readings (a pump over the pump limit gets a card). */
  refused(refused: readonly RefusedReading[]): void {
    this.refusals.record(refused, this.monotonic());
  }

  /** For /status: each pump's refused readings, and those of pumps beyond what is followed. */
  refusalStatus(): PumpRefusalsStatus {
    return this.refusals.snapshot(this.monotonic());
  }

  /** For /status: the pumps outside the generic default model's range (see PumpSummary.outsideGenericRange). */
  outsideGenericRange(): Record<string, GenericRangeView> {
    this.seed();
    const out: Record<string, GenericRangeView> = {};
    for (const id of [...this.tracks.keys()].sort()) {
      const view = this.genericRangeOf(id);
      if (view) out[id] = view;
    }
    return out;
  }

  summaries(): PumpSummary[] {
    this.seed();
    const ids = new Set(this.tracks.keys());
    for (const key of Object.keys(this.deps.models.status())) if (key !== 'default') ids.add(key);
    for (const id of this.refusals.refusedOnlyPumps(this.monotonic())) ids.add(id);
    return [...ids].sort().map((id) => this.summary(id));
  }

  private seed(): void {
    if (this.seeded) return;
    const { buffer } = this.deps;
    const arrival = this.arrival();
    const budget = { marks: SEED_LOOKBACK_BUDGET, walk: SEED_WALK_BUDGET };
    for (const id of buffer.pumpIds()) {
      this.tracks.delete(id);
      const rows = buffer.predictions(id, { limit: SEED_ROWS });
      // Seeded rows that the streak before them may run into: where it stood at their oldest row.
      const before = rows.length === SEED_ROWS && firstVerdicts(rows) !== 'cleared' ? this.streakBefore(id, rows[0]!.seq, budget) : null;
      const streak = { anomalySince: null as number | null, normalsInRow: 0 };
      for (const mark of before?.marks ?? []) advanceStreak(streak, mark.anomaly, mark.ts);
      streak.normalsInRow = before?.normalsInRow ?? 0;
      const live = this.liveBeforeSeed.get(id);
      for (const row of rows) {
        const mapped = arrival(row.seq, row.receivedAt);
        this.apply(row, row.seq, live ? liveArrival(live, row.seq, mapped) : mapped, streak);
      }
      const t = this.tracks.get(id);
      // the streak that was running at the oldest verdict read back is still running: it began before it
      if (t && before?.atLeast && t.anomalySince === firstAnomalyTs(before.marks)) t.anomalySinceAtLeast = true;
      // a stop running since the oldest row read (none before its first stopped row ran): it may have begun before it
      const stop = t?.stop;
      if (stop && rows.length === SEED_ROWS && !rows.some((r) => r.seq < stop.sinceSeq && this.endsStop(r))) this.findStopStart(id, stop, rows[0]!.seq);
    }
    this.seeded = true;
    this.liveBeforeSeed.clear();
  }

  /**
   * Where the pump's anomaly streak stood just before `beforeSeq` (its oldest seeded row); null
   * when none ran. It runs when fewer than five normal verdicts follow the pump's newest anomaly
   * before it, however many unscored rows (a stop) came since: the 200 newest rows of a pump that
   * stopped in alarm hold no verdict at all (before 2026-12-07 a restart then cleared its alarm).
   * `marks`: the verdicts up to that anomaly, read back (at most SEED_LOOKBACK_ROWS) to where its
   * streak began, or `atLeast` when it began before them. Costs one seek of the anomalies' time
   * index, a walk of verdicts that stops at the fifth normal one (SEED_WALK_BUDGET) and the
   * read-back (SEED_LOOKBACK_BUDGET).
   */
  private streakBefore(
    pumpId: string,
    beforeSeq: number,
    budget: { marks: number; walk: number },
  ): { marks: Array<{ ts: number; anomaly: boolean | null }>; normalsInRow: number; atLeast: boolean } | null {
    const { buffer } = this.deps;
    const anomaly = buffer.newestAnomalyBefore(pumpId, beforeSeq);
    if (anomaly === null) return null;
    const walk = buffer.normalsAfter(pumpId, anomaly.seq, beforeSeq, CLEAR_AFTER_NORMALS, Math.max(SEED_WALK_MIN_ROWS, budget.walk));
    budget.walk -= walk.looked;
    if (walk.normals >= CLEAR_AFTER_NORMALS) return null;
    // at least the anomaly itself, whatever the budget: the alarm's time is known
    const limit = Math.max(1, Math.min(SEED_LOOKBACK_ROWS, budget.marks));
    const marks = buffer.anomalyMarks(pumpId, anomaly.seq + 1, limit);
    budget.marks -= marks.length;
    return { marks, normalsInRow: walk.normals, atLeast: marks.length === limit && firstVerdicts(marks) === 'anomaly' };
  }

  /** `streak`: where a new track's anomaly streak stands (the seed's read-back), else none. */
  private apply(row: PredictionRow, seq: number, arrivedAt: number, streak?: { anomalySince: number | null; normalsInRow: number }): void {
    let t = this.tracks.get(row.pumpId);
    if (!t) {
      const { anomalySince, normalsInRow } = streak ?? { anomalySince: null, normalsInRow: 0 };
      this.tracks.set(row.pumpId, (t = { last: null, arrivedAt, anomalySince, anomalySinceAtLeast: false, normalsInRow, lastAlert: null, stop: null, unscoredSince: null, sent: new Set() }));
    }
    // On every commit: a loop over the row's own keys, no array made, and none once the cap is reached.
    if (t.sent.size < MAX_SENSOR_NAMES) for (const name in row.values) if (row.values[name] !== null && t.sent.size < MAX_SENSOR_NAMES) t.sent.add(name);
    // a stop, and the warm-up its model's rule holds after it, are the rule at work, not a pump left unscored
    if (row.score !== null || isStoppedReason(row.unscoredReason) || isStartingReason(row.unscoredReason)) t.unscoredSince = null;
    else if (!leftOutOfHistory(row.unscoredReason)) t.unscoredSince ??= arrivedAt;
    if (isStoppedReason(row.unscoredReason)) t.stop = { sinceSeq: t.stop?.sinceSeq ?? seq, since: t.stop?.since ?? row.ts, reason: row.unscoredReason!, atLeast: t.stop?.atLeast ?? false };
    else if (this.endsStop(row)) t.stop = null;
    t.arrivedAt = arrivedAt;
    this.refusals.accepted(row.pumpId, arrivedAt);
    t.last = {
      seq,
      ts: row.ts,
      receivedAt: row.receivedAt,
      values: row.values,
      score: row.score,
      anomaly: row.anomaly,
      modelVersion: row.modelVersion,
      unscoredReason: row.unscoredReason,
      contributions: row.contributions ?? null,
    };
    if (row.anomaly === true) t.lastAlert = { seq, ts: row.ts, score: row.score, contributions: row.contributions ?? null };
    this.followGenericRange(row, arrivedAt);
    if (!advanceStreak(t, row.anomaly, row.ts)) t.anomalySinceAtLeast = false;
  }

  /**
   * True when a row that is not stopped says its pump runs: the rule of the pump's model says so
   * (stoppedState false: a value of one of its features at or above its bound; any row for a
   * model without a rule). Not a late reading nor a resend (they say nothing of now), nor one the
   * rule cannot tell (stoppedState null: a feature of the rule missing, as from a sensor that
   * reports every few dozen readings): such a reading ends no stop for the engine (StopRun) either.
   * Nor one held as a stop in the making (`pump stopping`: some of the rule's conditions met, not
   * all): it says neither that the pump stopped nor that it runs, so the pump stays as it was.
   */
  private endsStop(row: { pumpId: string; values: Record<string, number | null>; unscoredReason: string | null }): boolean {
    if (leftOutOfHistory(row.unscoredReason) || isStoppingReason(row.unscoredReason)) return false;
    const rule = this.deps.engine.modelFor(row.pumpId)?.meta.stoppedWhen;
    return rule === undefined || stoppedState(rule, row.values) === false;
  }

  /**
   * A stop that runs since the oldest of the pump's seeded rows (`beforeSeq`): looks further back
   * (at most STOP_LOOKBACK_ROWS rows, in one indexed query) for the newest row that ends a stop (as
   * endsStop says); the stop began at the first stopped row after it, or at least at the first
   * stopped row of those looked at.
   */
  private findStopStart(pumpId: string, stop: NonNullable<Track['stop']>, beforeSeq: number): void {
    const { buffer, engine } = this.deps;
    const rule = engine.modelFor(pumpId)?.meta.stoppedWhen;
    const ran = buffer.newestSeqOutside(pumpId, beforeSeq, STOP_LOOKBACK_ROWS, [STOPPED_PREFIX, STOPPING_PREFIX, ...LEFT_OUT_PREFIXES], rule?.when ?? null);
    let from: number | null;
    if (ran.seq !== null) from = ran.seq + 1;
    else {
      // none ran: the stop began at (or before) the pump's oldest row kept, or before the rows looked at
      from = ran.oldestSeq;
      stop.atLeast = ran.looked >= STOP_LOOKBACK_ROWS;
    }
    const first = from === null ? null : buffer.firstWithReason(pumpId, from, STOPPED_PREFIX);
    if (first !== null && first.seq < stop.sinceSeq) Object.assign(stop, { sinceSeq: first.seq, since: first.ts });
  }

  private summary(pumpId: string): PumpSummary {
    const t = this.tracks.get(pumpId);
    const last = t?.last ?? null;
    const model = this.modelOf(pumpId);
    const now = this.monotonic();
    const silentMs = t ? now - t.arrivedAt : 0;
    const staleAfter = this.deps.staleAfterMs ?? STALE_AFTER_MS;
    const refused = this.refusals.view(pumpId, now);
    const refusingFor = this.refusals.refusingFor(pumpId, now);
    let state: PumpState;
    let detail: string | null = null;
    let lastState: PumpSummary['lastState'] = null;
    if (last === null) {
      state = 'stale';
      const ago = this.refusals.sinceLast(pumpId, now);
      detail = ago === null ? 'no readings received yet' : `no reading accepted yet; the last refused one came ${Math.round(ago / 60_000)} min ago`;
    } else {
      if (t?.anomalySince != null) {
        // A stop does not clear an alarm (only normal readings do): the pump stays in anomaly, stopped or not.
        state = 'anomaly';
      } else if (t?.stop != null && model !== null) {
        state = 'stopped';
        detail = t.stop.reason;
      } else if (model === null) {
        state = 'no-model';
        detail = 'no model is active for this pump yet: readings are stored but not scored';
      } else if (last.score === null) {
        state = 'not-scored';
        detail = last.unscoredReason;
      } else {
        state = 'normal';
      }
      if (silentMs > staleAfter) {
        // Silence does not clear an alarm: the pump is stale, and says what it was doing last.
        lastState = state;
        state = 'stale';
        detail = `no reading for ${Math.round(silentMs / 60_000)} min`;
      }
    }
    // Readings arrive, all refused: say so, rather than show the last good reading or "no reading".
    if (refused !== null && refusingFor !== null && (last === null || silentMs > staleAfter || refusingFor >= REFUSED_AFTER_MS)) {
      if (last !== null) lastState = state === 'stale' ? lastState : (state as Exclude<PumpState, 'stale' | 'refused'>);
      state = 'refused';
      detail = refusedDetail(refused);
    }
    return {
      pumpId,
      state,
      detail,
      lastState,
      refused,
      anomalySince: iso(t?.anomalySince ?? null),
      anomalySinceAtLeast: t?.anomalySince != null && t.anomalySinceAtLeast,
      running: t?.stop != null ? false : this.deps.engine.modelFor(pumpId)?.meta.stoppedWhen && last !== null ? true : null,
      stoppedSince: iso(t?.stop?.since ?? null),
      stoppedSinceAtLeast: t?.stop?.atLeast ?? false,
      lastAlertAt: iso(t?.lastAlert?.ts ?? null),
      lastAlert: t?.lastAlert ? { ...t.lastAlert, ts: new Date(t.lastAlert.ts).toISOString() } : null,
      lastReading: last && { ...last, ts: new Date(last.ts).toISOString(), receivedAt: new Date(last.receivedAt).toISOString() },
      model,
      ...this.deploymentOf(pumpId),
      outsideGenericRange: this.genericRangeOf(pumpId),
      sensorFaults: this.deps.engine.sensorFaults(pumpId).map(sensorFaultView),
      lackedSensors: state === 'not-scored' ? this.lackedSensors(pumpId) : null,
    };
  }

  /** The sensors of the pump's model it has sent no value of since the start (null when none). */
  private lackedSensors(pumpId: string): LackedSensors | null {
    const t = this.tracks.get(pumpId);
    const features = this.deps.engine.modelFor(pumpId)?.meta.features;
    if (!t || !features) return null;
    const lacks = features.filter((f) => !t.sent.has(f));
    if (lacks.length === 0) return null;
    const used = new Set(features);
    return { lacks, sends: features.filter((f) => t.sent.has(f)), others: [...t.sent].filter((n) => !used.has(n)).sort().slice(0, 20) };
  }

  /**
   * The pumps that keep sending (a reading within `afterMs`) with none of their readings scored
   * for `afterMs`, and the commonest reason; null when none. A stopped pump is not counted.
   */
  notScored(afterMs: number): NotScoredView | null {
    this.seed();
    const now = this.monotonic();
    const pumps: string[] = [];
    const byReason = new Map<string, string[]>();
    /** The sensors each pump the default model cannot score lacks, found once. */
    const lackedBy = new Map<string, string[]>();
    for (const [id, t] of [...this.tracks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (t.unscoredSince === null || now - t.unscoredSince < afterMs || now - t.arrivedAt >= afterMs) continue;
      pumps.push(id);
      // "no value known yet for feature X": the same cause, whichever feature a pump names first
      const lacked = this.engineDefault(id) ? this.lackedSensors(id) : null;
      if (lacked) lackedBy.set(id, lacked.lacks);
      const reason = lacked ? DEFAULT_LACKS : (t.last?.unscoredReason ?? 'not scored');
      byReason.set(reason, [...(byReason.get(reason) ?? []), id]);
    }
    if (pumps.length === 0) return null;
    const [reason, ids] = [...byReason].sort((a, b) => b[1].length - a[1].length)[0]!;
    const lacks = reason === DEFAULT_LACKS ? [...new Set(ids.flatMap((id) => lackedBy.get(id) ?? []))] : null;
    return { pumps, reason, reasonPumps: ids.length, defaultLacks: lacks };
  }

  /** Scored by the gateway's default model (no live model of its own). */
  private engineDefault(pumpId: string): boolean {
    return !this.deps.engine.model(pumpId) && this.deps.engine.modelFor(pumpId) !== undefined;
  }

  /**
   * Counts the verdict of a reading scored by the generic default model (the pump has no live model
   * of its own, and the row carries the default model's version); a reading scored by the pump's
   * own model ends the count.
   */
  private followGenericRange(row: PredictionRow, arrivedAt: number): void {
    const { engine } = this.deps;
    if (engine.model(row.pumpId)) {
      this.genericRange.forget(row.pumpId);
      return;
    }
    const generic = engine.modelFor(row.pumpId);
    if (row.anomaly === null || row.modelVersion === null || !generic || generic.meta.version !== row.modelVersion) return;
    this.genericRange.record(row.pumpId, row.modelVersion, row.anomaly, arrivedAt);
  }

  /** The pump's mark, while the generic default model scores it. */
  private genericRangeOf(pumpId: string): GenericRangeView | null {
    const { engine } = this.deps;
    if (engine.model(pumpId)) return null;
    const generic = engine.modelFor(pumpId);
    return generic ? this.genericRange.view(pumpId, generic.meta.version, this.monotonic()) : null;
  }

  private monotonic(): number {
    return (this.deps.monotonic ?? monotonicNow)();
  }

  /**
   * Maps a row's receive time (wall clock) to the monotonic clock, as of now, for rows received
   * before the agent started (those since are timed by record()). The receive time is first
   * corrected by the clock steps the buffer recorded after the row, as retention does: a pump that
   * reported on a clock booted at 1970, minutes before NTP set it and the agent restarted, is not
   * "silent for 57 years". A receive time later than now (the clock was stepped back since, in a
   * step not recorded) counts as now.
   */
  private arrival(): (seq: number, receivedAt: number) => number {
    const corrected = this.deps.buffer.receiveTimeCorrection();
    const now = (this.deps.clock ?? Date.now)();
    const mono = this.monotonic();
    return (seq, receivedAt) => mono - Math.max(0, now - corrected(seq, receivedAt));
  }

  private modelOf(pumpId: string): PumpSummary['model'] {
    const { engine, models } = this.deps;
    const m = engine.modelFor(pumpId);
    if (!m) return null;
    const key = engine.model(pumpId) ? pumpId : 'default';
    const meta = m.meta;
    return {
      key,
      version: meta.version,
      threshold: meta.threshold,
      features: meta.features,
      window: meta.window,
      status: models.status()[key]?.status ?? 'active',
      training: trainingSpan(meta),
      defaultFile: key === 'default' && this.deps.configuredDefault !== undefined && m.origin === this.deps.configuredDefault ? basename(m.origin) : null,
    };
  }

  /**
   * The pump's own desired entry and its shadow's, from the model manager's status: a model refused
   * or stuck downloading leaves the pump scored by the default model, which alone does not say that
   * one was deployed.
   */
  private deploymentOf(pumpId: string): Pick<PumpSummary, 'deployment' | 'shadow'> {
    const entry = this.deps.models.status()[pumpId];
    if (!entry) return { deployment: null, shadow: null };
    const shadow = entry.shadow ?? null;
    // A pump with only a shadow is listed with the shadow's own status as its entry (ModelStatusBoard.all()).
    const onlyShadow = shadow !== null && entry.activeVersion === null && entry.status === shadow.status && entry.version === shadow.version && entry.since === shadow.since;
    return { deployment: onlyShadow ? null : deployment(entry), shadow: shadow && deployment(shadow) };
  }
}

/**
 * The arrival of a seeded row (`mapped`: its receive time through today's wall clock) when rows of
 * its pump were committed since the start: the last of them arrived at `lastAt`, those between the
 * first and the last between `firstAt` and `lastAt`, whatever the wall clock did since.
 */
function liveArrival(live: { firstSeq: number; firstAt: number; lastSeq: number; lastAt: number }, seq: number, mapped: number): number {
  if (seq === live.lastSeq) return live.lastAt;
  if (seq < live.firstSeq || seq > live.lastSeq) return mapped;
  return Math.min(live.lastAt, Math.max(live.firstAt, mapped));
}

const deployment = (s: ModelStatus): Deployment => ({ version: s.version, status: s.status, error: s.error, since: s.since });

/**
 * One reading's verdict applied to a streak: an anomaly starts it (or continues it), CLEAR_AFTER_NORMALS
 * normal readings in a row end it. Returns whether a streak is running afterwards.
 */
function advanceStreak(s: { anomalySince: number | null; normalsInRow: number }, anomaly: boolean | null, ts: number): boolean {
  if (anomaly === true) {
    s.anomalySince ??= ts;
    s.normalsInRow = 0;
  } else if (anomaly === false && s.anomalySince !== null && ++s.normalsInRow >= CLEAR_AFTER_NORMALS) {
    s.anomalySince = null;
    s.normalsInRow = 0;
  }
  return s.anomalySince !== null;
}

/**
 * What the rows (oldest first) show first: an anomaly before CLEAR_AFTER_NORMALS normal verdicts
 * (`anomaly`: they begin inside a streak, as far as they show, and the rows before them say when
 * it began), those normal verdicts before any anomaly (`cleared`: whatever streak ran before them
 * ended, so the rows alone say where the pump stands), or neither (null: no verdicts, as in a
 * stop, or too few normal ones: the streak before them decides).
 */
function firstVerdicts(rows: ReadonlyArray<{ anomaly: boolean | null }>): 'anomaly' | 'cleared' | null {
  let normals = 0;
  for (const row of rows) {
    if (row.anomaly === true) return 'anomaly';
    if (row.anomaly === false && ++normals >= CLEAR_AFTER_NORMALS) return 'cleared';
  }
  return null;
}

const firstAnomalyTs = (rows: ReadonlyArray<{ ts: number; anomaly: boolean | null }>): number | null => rows.find((r) => r.anomaly === true)?.ts ?? null;

/** "12 readings refused in the last 5 min; last: values.Pressure: expected a finite number…". */
export function refusedDetail(r: PumpRefusalView): string {
  const n = `${r.recent} reading${r.recent === 1 ? '' : 's'} refused in the last ${REFUSAL_WINDOW_MS / 60_000} min`;
  return r.overLimit
    ? `${n}: this gateway already takes readings of as many pumps as PUMPWATCH_MAX_PUMPS allows; last: ${r.lastReason}`
    : `${n}; last: ${r.lastReason}`;
}

const iso = (ts: number | null): string | null => (ts === null ? null : new Date(ts).toISOString());
