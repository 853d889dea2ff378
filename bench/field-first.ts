/**
 * bench/field's `--first-model HOURS`: a gateway fitting a pump's first model as the agent does it
 * (agent/first-model/job.ts): the rows the bundled default model scored, as the buffer holds them,
 * are looked at by the agent's check every 10 minutes of reading time; when they are due (the job's
 * own rules: a `waiting` pump again once its running span can have grown enough, a `refused` one
 * once its readings span another HOURS past the refused ones) the newest 7 days of them, at most
 * 250 000, go through the agent's own fit (`fitFirstModelHere`, the same code and bytes as its
 * worker thread), and a fitted model is validated as the updater validates it and switched in for
 * the pump, in the engine that scored the rows, from the next reading on (the seconds the fit and the
 * install take on a gateway are not simulated). Figures only.
 */
import { fitFirstModelHere, type FirstModelFitResult } from '../agent/first-model/fit.js';
import { fitDue, FIRST_MODEL_MAX_ROWS, FIRST_MODEL_WINDOW_MS, fullBy } from '../agent/first-model/job.js';
import type { PredictionRow, StoredRow } from '../buffer/types.js';
import type { InferenceEngine } from '../inference/engine.js';
import { LoadedModel } from '../inference/model.js';
import { validateModel } from '../inference/validate.js';

/** The agent's check runs every 10 minutes (agent/wiring/first-model.ts FIRST_MODEL_CHECK, on the clock's tens of minutes). */
export const FIRST_MODEL_CHECK_MS = 10 * 60_000;
/** Readings the updater validates a model on (the newest of the pump's). */
const VALIDATE_READINGS = 256;

type State =
  | { kind: 'none' }
  | { kind: 'waiting'; neededHours: number; spanHours: number; newestTs: number; fullByTs: number | null }
  | { kind: 'refused'; lastTs: number }
  | { kind: 'fitted' }
  | { kind: 'invalid'; reason: string };

/** One fit the check ran (not the checks it skipped as not due). */
export interface FitAttempt {
  /** The check's time (reading time). */
  at: number;
  result: FirstModelFitResult;
  /** Wall time the fit took here (ms). */
  ms: number;
}

/** One pump of a gateway with `PUMPWATCH_FIRST_MODEL_AFTER_HOURS` = `afterHours`. */
export class GatewayPump {
  private readonly rows: StoredRow[] = [];
  private seq = 0;
  private state: State = { kind: 'none' };
  readonly attempts: FitAttempt[] = [];
  /** The last `waiting` answer of the fit (the pump not yet fitted). */
  lastWaiting: FirstModelFitResult | null = null;
  /** The first model once switched in, and when. */
  model: LoadedModel | null = null;
  installedAt: number | null = null;

  constructor(
    readonly pumpId: string,
    readonly afterHours: number,
    /** The engine that scores the pump as the agent's does: the bundled model under `default`. */
    private readonly engine: InferenceEngine,
    private readonly bundled: LoadedModel,
  ) {}

  /** Whether the pump is done with fitting (fitted, or a fitted model the validation refused). */
  get settled(): boolean {
    return this.state.kind === 'fitted' || this.state.kind === 'invalid';
  }

  /** Why a fitted model was not switched in (validation), else null. */
  get invalidReason(): string | null {
    return this.state.kind === 'invalid' ? this.state.reason : null;
  }

  get refusals(): FitAttempt[] {
    return this.attempts.filter((a) => a.result.kind === 'refused');
  }

  /** Rows the agent committed: kept while a fit may still need them (the newest FIRST_MODEL_MAX_ROWS within the window). */
  buffer(rows: readonly PredictionRow[]): void {
    if (this.settled) return;
    for (const row of rows) this.rows.push({ ...row, seq: ++this.seq });
    if (this.rows.length > 2 * FIRST_MODEL_MAX_ROWS) this.rows.splice(0, this.rows.length - FIRST_MODEL_MAX_ROWS);
  }

  /** The agent's check at reading time `at` (the rows up to it committed). Returns the attempt when it ran a fit. */
  async check(at: number): Promise<FitAttempt | null> {
    if (this.settled || !this.due()) return null;
    const { rows, full } = this.fitRows();
    const started = performance.now();
    // As the job: all a fit reads reached (the most rows, or the window), fitted on them whatever span they hold.
    const result = await fitFirstModelHere({ pumpId: this.pumpId, rows, defaultModel: this.bundled.meta, afterHours: full ? 0 : this.afterHours });
    const attempt = { at, result, ms: performance.now() - started };
    const lastTs = (rows.at(-1) as StoredRow).ts;
    if (result.kind === 'waiting') {
      this.state = { kind: 'waiting', neededHours: this.afterHours, spanHours: result.spanHours, newestTs: lastTs, fullByTs: full ? null : fullBy({ count: rows.length, oldestTs: (rows[0] as StoredRow).ts, newestTs: lastTs }, FIRST_MODEL_MAX_ROWS, FIRST_MODEL_WINDOW_MS) };
      this.lastWaiting = result;
      return attempt; // not counted among attempts: the job does not call it a fit either
    }
    this.attempts.push(attempt);
    if (result.kind === 'refused') {
      this.state = { kind: 'refused', lastTs };
      return attempt;
    }
    const model = await LoadedModel.fromBytes(result.bytes, 'bench');
    try {
      await validateModel(model, new Map([[this.pumpId, rows.slice(-VALIDATE_READINGS)]]));
    } catch (err) {
      await model.release();
      this.state = { kind: 'invalid', reason: err instanceof Error ? err.message : String(err) };
      return attempt;
    }
    this.engine.setModel(this.pumpId, model);
    this.model = model;
    this.installedAt = at;
    this.state = { kind: 'fitted' };
    this.rows.length = 0;
    return attempt;
  }

  /** The job's rules (fitDue): a refused pump once its readings span another afterHours; a waiting one once its span can have grown enough. */
  private due(): boolean {
    const newest = this.rows.at(-1);
    if (!newest) return false;
    const refused = this.state.kind === 'refused' ? { lastTs: this.state.lastTs, retryAfterSpanHours: Math.max(this.afterHours, 1) } : null;
    return fitDue(newest.ts, this.afterHours, refused, this.state.kind === 'waiting' ? this.state : null);
  }

  /**
   * The job's readRows: the newest FIRST_MODEL_MAX_ROWS rows within FIRST_MODEL_WINDOW_MS of the
   * newest, oldest first (the simulator's readings come in time order: the first is the oldest);
   * `full` when they are all a fit reads.
   */
  private fitRows(): { rows: StoredRow[]; full: boolean } {
    const newest = (this.rows.at(-1) as StoredRow).ts;
    const kept = this.rows.slice(-FIRST_MODEL_MAX_ROWS);
    const from = kept.findIndex((r) => r.ts >= newest - FIRST_MODEL_WINDOW_MS);
    return { rows: kept.slice(from), full: kept.length >= FIRST_MODEL_MAX_ROWS || from > 0 };
  }

  async release(): Promise<void> {
    if (this.model) await this.model.release();
    this.model = null;
  }
}

/** `fitted gw-… (n rows fitted on, k of m held out flagged, s h running)` or `refused (s h running): reason`. */
export function describeFit(r: FirstModelFitResult): string {
  if (r.kind === 'fitted') return `fitted ${r.version} (${r.trainRows} rows fitted on, ${r.heldOutFlagged} of ${r.heldOutRows} held out flagged in ${r.heldOutEpisodes} runs over ${r.heldOutHours} h, ${r.spanHours} h running)`;
  return `${r.kind} (${r.spanHours} h running): ${r.reason}`;
}

/** A step in demand, as bench/field counts the false alarms after it. */
export interface StepAt {
  ts: number;
  /** Relative change of the flow asked for. */
  change: number;
}

/** False alarms after steps in demand, within a span after each (a day, an hour: `tallySteps`' `afterMs`). */
export interface StepCounts {
  steps: number;
  /** Steps followed by at least one false alarm within the span. */
  stepsWithAlarm: number;
  /** False-alarm episodes beginning within the span after a step, and the time those spans cover (ms, their union). */
  inDayAfter: number;
  dayAfterMs: number;
  /** The other false-alarm episodes, and the rest of the time. */
  elsewhere: number;
  elsewhereMs: number;
}

export const emptyStepCounts = (): StepCounts => ({ steps: 0, stepsWithAlarm: 0, inDayAfter: 0, dayAfterMs: 0, elsewhere: 0, elsewhereMs: 0 });

/**
 * False-alarm episodes (their first readings' times) in the `afterMs` after each step in demand
 * within [fromTs, toTs), against those at other times; a step's span is cut at toTs.
 */
export function tallySteps(t: StepCounts, steps: readonly StepAt[], episodes: readonly number[], fromTs: number, toTs: number, afterMs: number): void {
  const inside = steps.filter((s) => s.ts >= fromTs && s.ts < toTs);
  t.steps += inside.length;
  const after = (ts: number): boolean => inside.some((s) => ts >= s.ts && ts < s.ts + afterMs);
  for (const s of inside) if (episodes.some((ts) => ts >= s.ts && ts < s.ts + afterMs)) t.stepsWithAlarm++;
  for (const ts of episodes) {
    if (ts < fromTs || ts >= toTs) continue;
    if (after(ts)) t.inDayAfter++;
    else t.elsewhere++;
  }
  // The union of the spans after the steps, cut at toTs.
  let covered = 0;
  let end = Number.NEGATIVE_INFINITY;
  for (const s of inside) {
    const from = Math.max(s.ts, end);
    const to = Math.min(toTs, s.ts + afterMs);
    if (to > from) covered += to - from;
    end = Math.max(end, to);
  }
  t.dayAfterMs += covered;
  t.elsewhereMs += toTs - fromTs - covered;
}
