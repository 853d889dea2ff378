/**
 * What `train` is asked for one source (TrainRequest) and what it gives back (TrainOutcome; a skip
 * made by `skipped`): what every stage of train/pipeline.ts shares, and train, train-all and the
 * report read.
 */
import type { StoppedRule } from '../../inference/contract.js';
import type { Target } from '../data/clean.js';
import type { DriftReport, DriftThresholds } from '../drift/compare.js';
import type { Evaluation } from '../eval/criterion.js';
import type { ModelRecord } from '../registry/records.js';
import type { SkipKind } from '../registry/run-record.js';

export interface TrainRequest {
  source: string;
  /** Epoch ms, inclusive / exclusive. */
  from: number;
  to: number;
  /** Share of the most recent cleaned rows held out for the comparison. */
  holdoutFraction: number;
  /** Score (balanced accuracy) the challenger must gain over the live model. */
  margin: number;
  /** The false-alarm ceiling, % of the normal held-out rows (`--max-far`; train/decide.ts). */
  maxFar: number;
  /** The alarm ceiling, false alarms a day (runs of flagged normal held-out rows; `--max-alarms-per-day`, 0: none; absent: 1). */
  maxAlarmsPerDay?: number;
  seed: number;
  algorithm?: string;
  window?: number;
  version?: string;
  /** Value names never used as features (`--exclude`). */
  exclude?: readonly string[];
  /** Train only when the range drifted from the live model's baseline. */
  ifDrifted?: DriftThresholds;
  /**
   * Compare and promote as usual even when the range ends at or before the end of the live
   * model's data (`--allow-older`); without it such a challenger is never promoted.
   */
  allowOlder?: boolean;
  /**
   * A range without a single reading, or with too few rows only because the pump was stopped by
   * the run's stopped-when rule, gives status `skipped` instead of PW_TRAINER_NO_DATA (train-all:
   * a quiet, retired, standby or seasonal pump is not a failure; too few usable readings still is).
   */
  skipWithoutReadings?: boolean;
  /** `--deploy`: a promotion writes best.json with its deploy pending (registry/records.ts deployPending). */
  deployPending?: boolean;
  /**
   * `--stopped-when` (and `--after-start`): the challenger's stopped-when rule; null (`none`) for
   * none; undefined to inherit the live model's (see `stoppedRuleOf`).
   */
  stoppedWhen?: StoppedRule | null;
}

export interface ScoredModel {
  version: string;
  algorithm: string;
  threshold: number;
  evaluation: Evaluation | null;
  /** Scores of the held-out rows, for the report. */
  scores: Float32Array | null;
}

export interface TrainOutcome {
  status: 'promoted' | 'kept' | 'skipped';
  /** Why a source was skipped, as a stable word (train-all's outcome record and --json). */
  skipKind?: SkipKind;
  reason: string;
  source: string;
  /** The blob this run's evaluation was written to (registry/evaluation.ts); absent when nothing was trained. */
  evaluationBlob?: string;
  /**
   * The version was registered before, and its model.json keeps the evaluation of the run at this
   * time (write-once), not this run's: only `evaluationBlob` holds this run's figures and verdict.
   */
  firstEvaluatedAt?: string;
  /** What the data scientist should know about the challenger beyond the decision. */
  warnings: string[];
  record: ModelRecord | null;
  drift: DriftReport | null;
  /** `train --if-drifted` that trained: `drift in <part>: <features>` (what triggered it). */
  retrained?: string;
  /** What the report draws; null when nothing was trained. */
  view: {
    timestamps: number[];
    targets: Target[];
    challenger: ScoredModel;
    champion: ScoredModel | null;
  } | null;
}

/** A source skipped: nothing trained, nothing registered. */
export function skipped(source: string, skipKind: SkipKind, reason: string, warnings: string[], drift: DriftReport | null = null): TrainOutcome {
  return { status: 'skipped', skipKind, reason, source, warnings, record: null, drift, view: null };
}
