/**
 * The stopped-when rule of a `train` run: where it comes from (`--stopped-when`, or inherited from
 * the live model), the rows it left out of the range, and the check that the challenger can carry
 * it (the features it names are among the challenger's).
 */
import { describeStoppedRule, readModelMetadata, type StoppedRule } from '../../inference/contract.js';
import { UsageError } from '../errors.js';
import type { TrainRequest } from './request.js';

/** The stopped-when rule of a run and where it comes from. */
export interface RunStop {
  rule: StoppedRule;
  /** `--stopped-when`, or `live model <version>` (inherited). */
  from: string;
}

/** A run's rule with the rows of the range it left out (prepare-loaded.ts `stopped`). */
export type StoppedRun = RunStop & { rows: { stopped: number; starting: number; stopping: number } };

/**
 * The run's stopped-when rule: `--stopped-when` when given (`none`: no rule), else the live
 * model's, so that a pump whose model knows it stops keeps that knowledge through retraining.
 */
export function stoppedRuleOf(req: Pick<TrainRequest, 'stoppedWhen'>, champion: { record: { version: string }; bytes: Uint8Array } | null): RunStop | null {
  if (req.stoppedWhen === null) return null;
  if (req.stoppedWhen !== undefined) return { rule: req.stoppedWhen, from: '--stopped-when' };
  if (!champion) return null;
  let rule: StoppedRule | undefined;
  try {
    rule = readModelMetadata(champion.bytes).stoppedWhen;
  } catch {
    // A live model that cannot be read is reported by its comparison ("not scorable"); it gives no rule.
    return null;
  }
  return rule ? { rule, from: `live model ${champion.record.version}` } : null;
}

/**
 * A usage error when the run's rule names a feature the challenger does not have: `features`, the
 * challenger's; `loadedFeatures`, every feature of the range's readings (one of them that the
 * challenger lacks was left out by this run: --exclude, a counter, kept only for the live model).
 */
export function checkStopFeatures(stoppedRun: StoppedRun | null, features: readonly string[], loadedFeatures: readonly string[]): void {
  const missing = stoppedRun ? stoppedRun.rule.when.filter((c) => !features.includes(c.feature)).map((c) => c.feature) : [];
  if (stoppedRun && missing.length > 0) {
    const why = missing.every((f) => loadedFeatures.includes(f)) ? `which this run leaves out of the challenger's features` : `which ${missing.length > 1 ? 'are not features' : 'is not a feature'} of the readings of the range`;
    throw new UsageError(
      `${stoppedRun.from}'s stopped-when rule (${describeStoppedRule(stoppedRun.rule)}) names ${missing.map((f) => `"${f}"`).join(' and ')}, ${why} (${features.join(', ')}): ` +
        `give --stopped-when with one of them, or --stopped-when none`,
    );
  }
}
