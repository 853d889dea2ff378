/**
 * Drift in `train`: the gate of `--if-drifted` (train only when the range drifted from the live
 * model's baseline; otherwise skip, saying what was checked), and the drift of the held-out rows
 * that every outcome reports.
 */
import type { LoadResult } from '../data/load.js';
import { compareWithBaseline, driftedNames, noNullWarning, type DriftReport, type DriftThresholds } from '../drift/compare.js';
import { notJudgedBrief } from '../drift/verdict.js';
import type { ScoredData } from '../eval/criterion.js';
import { lowerBound, upperBound } from '../linalg/stats.js';
import type { ModelRecord } from '../registry/records.js';
import { liveNewestOf, type Champion } from './live.js';
import { removedIn, type Uncleaned } from './prepare.js';
import type { TrainRange } from './range.js';
import { skipped, type TrainOutcome, type TrainRequest } from './request.js';

/** The gate's answer: skip (no drift, or inconclusive), or train, with what triggered it (`retrained`, under --if-drifted) and the warnings. */
export type DriftGate = { skip: TrainOutcome } | { retrained?: string; warnings: string[] };

/** Never NEW: what the loader left out of the challenger, and what the live model left out by its own --exclude (as drift reads it). */
function notNewOf(loaded: LoadResult, champion: Champion | null): string[] {
  return [...loaded.leftOutButKept, ...(champion?.record.data.excludedFeatures ?? [])];
}

/** `train --if-drifted` with a live model: skip unless the range drifted from its baseline; without either, train with no word. */
export function driftGate(req: TrainRequest, champion: Champion | null, range: TrainRange): DriftGate {
  const driftWarnings: string[] = [];
  if (!req.ifDrifted || !champion) return { warnings: driftWarnings };
  const { cleaned, holdoutStart } = range;
  if (!champion.record.driftNull) driftWarnings.push(noNullWarning(champion.record.version));
  const holdoutFrom = cleaned.series.timestamps[holdoutStart] as number;
  const { drift, parts, trigger, heldOutOnly, unjudged } = driftToRetrain(champion.record, range.uncleaned as Uncleaned, holdoutFrom, liveNewestOf(champion), req.ifDrifted, notNewOf(range.loaded, champion));
  if (!drift.drifted) {
    // Inconclusive (some features not judged in a part) is not drift: a retrain on the same rows would be judged by them again. Said, never passed off as "no drift".
    const reason =
      unjudged.length === 0
        ? `no drift from the baseline of live model ${champion.record.version}: not retrained (checked ${parts})`
        : `inconclusive: no drift from the baseline of live model ${champion.record.version} in what was judged, but not judged: ${unjudged.join('; ')}: not retrained (checked ${parts})`;
    return { skip: skipped(req.source, unjudged.length === 0 ? 'no-drift' : 'inconclusive', reason, [...range.labelWarnings, ...driftWarnings], drift) };
  }
  const retrained = `drift in ${trigger}: ${driftedNames(drift).join(', ')}`;
  if (heldOutOnly) driftWarnings.push(heldOutOnlyWarning(drift, holdoutFrom, range.trainIdx.length, req.holdoutFraction));
  return { retrained, warnings: driftWarnings };
}

/**
 * The held-out rows' drift from the baseline of the live model, or of the challenger when none is
 * live (`baseline`, `driftNull`: the challenger's record), by the run's thresholds (--psi/--ks with
 * --if-drifted) and the live model's empirical null (or the challenger's, as it was just computed).
 */
export function heldOutDrift(
  req: TrainRequest,
  champion: Champion | null,
  challenger: Pick<ModelRecord, 'baseline' | 'driftNull'>,
  loaded: LoadResult,
  scored: ScoredData,
  held: readonly number[],
): DriftReport {
  return compareWithBaseline(champion?.record.baseline ?? challenger.baseline, scored.series.features, held.map((i) => scored.series.rows[i] as Float64Array), req.ifDrifted, notNewOf(loaded, champion), {
    driftNull: (champion ? champion.record.driftNull : challenger.driftNull) ?? null,
  });
}

/**
 * `train --if-drifted`: whether the range's readings drifted from the live model's baseline: the
 * whole range, or its most recent part. A change confined to the last day of a 7-day range moved
 * Flow's PSI over the range to 0.126 only (under 0.25: "no drift") while the live model flagged
 * every reading of that day. So the held-out rows (from `holdoutFrom`, the first held-out
 * cleaned row's time), and the rows after the live model's data (`data.holdoutTo`: what it never
 * saw), when some but not all rows are, are each judged too, by the same thresholds (raised on
 * few rows and by the live model's empirical null). The readings are judged before stuck-run and
 * outlier removal (prepare.ts `Uncleaned`: a frozen sensor's readings are what cleaning drops).
 * `drift` is the first report that drifted, or the whole range's; `parts` names what was judged,
 * `trigger` the part that drifted, `unjudged` (when none drifted) the features of each part that
 * neither PSI nor KS could judge.
 */
function driftToRetrain(
  live: ModelRecord,
  u: Uncleaned,
  holdoutFrom: number,
  liveNewest: number,
  thresholds: DriftThresholds,
  notNew: readonly string[],
): { drift: DriftReport; parts: string; trigger: string; heldOutOnly: boolean; unjudged: string[] } {
  const n = u.rows.length;
  const held = n - lowerBound(u.timestamps, holdoutFrom);
  const after = Number.isFinite(liveNewest) ? n - upperBound(u.timestamps, liveNewest) : 0;
  const parts: Array<{ name: string; from: number }> = [
    { name: `the range's ${n} rows`, from: 0 },
    { name: `its ${held} held-out rows`, from: n - held },
  ];
  if (after > 0 && after < n) parts.push({ name: `the ${after} rows after the live model's data (${new Date(liveNewest).toISOString()})`, from: n - after });
  const names = parts.map((p) => p.name);
  const checked = `${names.slice(0, -1).join(', ')} and ${names.at(-1) as string}`;
  let first: DriftReport | null = null;
  const unjudged: string[] = [];
  for (const part of parts) {
    const drift = compareWithBaseline(live.baseline, u.features, part.from === 0 ? u.rows : u.rows.slice(part.from), thresholds, notNew, {
      driftNull: live.driftNull ?? null,
      removed: removedIn(u, part.from, n),
    });
    if (drift.drifted) return { drift, parts: checked, trigger: part.name, heldOutOnly: part.from > 0 && !trainingPartDrifted(live, u, n - held, thresholds, notNew), unjudged: [] };
    if (drift.verdict === 'inconclusive') unjudged.push(`${notJudgedBrief(drift)} in ${part.name}`);
    first ??= drift;
  }
  return { drift: first as DriftReport, parts: checked, trigger: '', heldOutOnly: false, unjudged };
}

/** Whether the rows before the held-out ones (`end`: the first held-out row), those the challenger trains on, drifted by the same judgement. */
function trainingPartDrifted(live: ModelRecord, u: Uncleaned, end: number, thresholds: DriftThresholds, notNew: readonly string[]): boolean {
  return compareWithBaseline(live.baseline, u.features, u.rows.slice(0, end), thresholds, notNew, { driftNull: live.driftNull ?? null, removed: removedIn(u, 0, end) }).drifted;
}

/**
 * A retrain triggered by drift that lies in the held-out rows only: the challenger is fitted on
 * the rows before them, which did not drift, so it cannot have learnt the new regime; it is only
 * judged on it (and is usually kept). Not fixed by moving the split: rows trained on cannot also
 * judge the model. Said, with what to do, rather than left to read as "retrained on the drift".
 */
function heldOutOnlyWarning(drift: DriftReport, holdoutFrom: number, trainRows: number, holdoutFraction: number): string {
  return (
    `the drift (${driftedNames(drift).join(', ')}) is in the held-out rows only (from ${new Date(holdoutFrom).toISOString()}): ` +
    `the challenger was trained on the ${trainRows} rows before them, which did not drift, so it has not learnt the drifted readings, only been judged on them; ` +
    `to train on them, run again with a later --to (or on a later night) once the drifted readings reach back beyond the newest ${Math.round(holdoutFraction * 100)} % of the range`
  );
}
