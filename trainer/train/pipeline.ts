/**
 * `train` for one source: readings of the range (sync reader, de-duplicated) → labels → cleaning
 * → the most recent part held out → challenger fitted on the rest → challenger and live model
 * scored on the same held-out rows with the same metric → decision → registry (the version
 * always; best.json only when promoted, by a conditional write on the ETag read first).
 * Reproducible: the same data, options and seed give the same model bytes and the same decision.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Stores } from '../cloud/context.js';
import { describeStoppedRule, readModelMetadata, stoppedRuleToJson, type StoppedRule, type StuckAfter } from '../../inference/contract.js';
import { bestModelBlobName, modelBlobName } from '../../sync/layout.js';
import { CLEAN_DEFAULTS, rowsWith, type Cleaned, type Target } from '../data/clean.js';
import { withoutFeatures } from '../data/counters.js';
import type { LoadResult } from '../data/load.js';
import { baselineOf } from '../drift/baseline.js';
import { driftNullOf } from '../drift/stray.js';
import { compareWithBaseline, driftedNames, noNullWarning, type DriftReport, type DriftThresholds } from '../drift/compare.js';
import { notJudgedBrief } from '../drift/verdict.js';
import { FitError, TrainerError, UsageError } from '../errors.js';
import { lowerBound, upperBound } from '../linalg/stats.js';
import { scoreAsAgent, type AgentView, type RawReadings } from '../eval/as-agent.js';
import { evaluate, faultSpreads, HELD_OUT_ROWS, planEvaluation, type Evaluation, type ScoredData } from '../eval/criterion.js';
import { OnnxScorer, rowsOf } from '../eval/score.js';
import { buildVersion } from '../../lib/build-info.js';
import { fitTable, spanWarnings } from '../fit.js';
import { finishing, type Progress } from '../progress.js';
import { describeMove, evaluationOf, nextPointer, RECORD_SCHEMA, rolledBackEntry, type LabelsUsed, type ModelRecord } from '../registry/records.js';
import { recordEvaluation } from '../registry/evaluation.js';
import { readBestOrUnfinished, type UnfinishedPromotion } from '../registry/best-record.js';
import { readModelBytes, sha256 } from '../registry/model-blob.js';
import { readBest, type BestState } from '../registry/read.js';
import { registerVersion, type Registered } from '../registry/register.js';
import type { SkipKind } from '../registry/run-record.js';
import { rewriteRecord, writeBest } from '../registry/write.js';
import { decide, unlessRolledBack, type Decision } from './decide.js';
import { labelsUsed } from './labels-used.js';
import { between, comparisonLoad, newerReadingsNote, noUsableRows, prepareData, removedIn, skippedLabelWarning, type LabelSet, type Uncleaned } from './prepare.js';
import { holdoutSplit, MIN_HOLDOUT_ROWS, MIN_TRAIN_ROWS, trainSegmentStarts } from './split.js';
import { dataWarnings, evaluationWarnings, rawReadingWarnings } from './warnings.js';

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

export { MIN_HOLDOUT_ROWS, MIN_TRAIN_ROWS, TRAIN_DEFAULTS, trainSegmentStarts } from './split.js';

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

interface Champion {
  state: BestState;
  record: ModelRecord;
  bytes: Uint8Array;
}

/**
 * `stores`: the gateways' uploads (`data`: readings/, labels/) and the model registry (`models`),
 * two containers (see cloud/context.ts). `labels`: the labels already read (train-all reads them
 * once, and warns about the skipped blobs once); without them they are read here and each skipped
 * blob is a warning of the outcome.
 */
export async function trainSource(stores: Stores, req: TrainRequest, progress: Progress, now: () => Date, labels?: LabelSet): Promise<TrainOutcome> {
  return finishing(progress, () => trainRange(stores, req, progress, now, labels));
}

async function trainRange({ data: container, models }: Stores, req: TrainRequest, progress: Progress, now: () => Date, labels?: LabelSet): Promise<TrainOutcome> {
  const { champion, unfinished } = await loadChampion(models, req.source, now());
  const best = champion?.state ?? null;
  const stop = stoppedRuleOf(req, champion);
  // A first promotion that did not finish (no best.json): only a challenger of that very version may go on (finishUnfinished).
  const refused = (err: unknown): unknown => unfinished?.refusal ?? err;
  // The live model's features stay in the data even when excluded or counters: it is scored on the same rows.
  const load = comparisonLoad(req.exclude, champion?.record.features ?? []);
  const judgeDrift = req.ifDrifted !== undefined && champion !== null;
  const { loaded, cleaned, raw, skippedLabels, labelUse, uncleaned, stopped } = await prepareData(container, req, progress, { labels, raw: true, load, uncleaned: judgeDrift, stoppedWhen: stop?.rule });
  const labelWarnings = labels === undefined ? skippedLabels.map(skippedLabelWarning) : [];
  if (loaded.readings === 0) {
    if (unfinished !== null) throw unfinished.refusal;
    if (!req.skipWithoutReadings) throw await noUsableRows(container, req, 0);
    return { status: 'skipped', skipKind: 'no-readings', reason: `no readings ${between(req)}${await newerReadingsNote(container, req)}`, source: req.source, warnings: labelWarnings, record: null, drift: null, view: null };
  }
  const { holdoutStart, trainIdx } = holdoutSplit(cleaned, req.holdoutFraction);
  const counts = { train: trainIdx.length, holdout: cleaned.series.rows.length - holdoutStart, faultRows: holdoutStart - trainIdx.length };
  // Too few rows only because the pump was stopped (a standby or seasonal pump): nothing is wrong with its data.
  const stoppedOnly = stop ? stoppedShortage(req, cleaned, counts, stop) : null;
  if (stoppedOnly !== null) {
    if (unfinished !== null) throw unfinished.refusal;
    if (!req.skipWithoutReadings) throw new TrainerError('PW_TRAINER_NO_DATA', `"${req.source}" was ${stoppedOnly}`);
    return { status: 'skipped', skipKind: 'stopped', reason: stoppedOnly, source: req.source, warnings: labelWarnings, record: null, drift: null, view: null };
  }
  await checkEnough(container, req, cleaned, counts, stop).catch((err: unknown) => {
    throw refused(err);
  });

  // What both models are scored on: the cleaned rows that have every feature the live model alone
  // uses (cleaning kept the others for the challenger's training, whatever model is live).
  const { view: scored, index } = rowsWith(cleaned, loaded.leftOutButKept);
  const scoredHoldout = index === null ? holdoutStart : lowerBound(index, holdoutStart);
  // The newest reading of the live model's data; a record without one (hand-made) is not compared by it.
  const liveNewest = champion ? Date.parse(champion.record.data.holdoutTo) : NaN;

  // Never NEW: what the loader left out of the challenger, and what the live model left out by its own --exclude (as drift reads it).
  const notNew = [...loaded.leftOutButKept, ...(champion?.record.data.excludedFeatures ?? [])];
  let retrained: string | undefined;
  const driftWarnings: string[] = [];
  if (req.ifDrifted && champion) {
    if (!champion.record.driftNull) driftWarnings.push(noNullWarning(champion.record.version));
    const { drift, parts, trigger, heldOutOnly, unjudged } = driftToRetrain(champion.record, uncleaned as Uncleaned, cleaned.series.timestamps[holdoutStart] as number, liveNewest, req.ifDrifted, notNew);
    if (!drift.drifted) {
      // Inconclusive (some features not judged in a part) is not drift: a retrain on the same rows would be judged by them again. Said, never passed off as "no drift".
      const reason =
        unjudged.length === 0
          ? `no drift from the baseline of live model ${champion.record.version}: not retrained (checked ${parts})`
          : `inconclusive: no drift from the baseline of live model ${champion.record.version} in what was judged, but not judged: ${unjudged.join('; ')}: not retrained (checked ${parts})`;
      return { status: 'skipped', skipKind: unjudged.length === 0 ? 'no-drift' : 'inconclusive', reason, source: req.source, warnings: [...labelWarnings, ...driftWarnings], record: null, drift, view: null };
    }
    retrained = `drift in ${trigger}: ${driftedNames(drift).join(', ')}`;
    if (heldOutOnly) driftWarnings.push(heldOutOnlyWarning(drift, cleaned.series.timestamps[holdoutStart] as number, trainIdx.length, req.holdoutFraction));
  }

  progress.stage(`fitting on ${trainIdx.length} rows`);
  const trainRows = trainIdx.map((i) => cleaned.series.rows[i] as Float64Array);
  // A copy when the live model keeps features the challenger leaves out (never in place: these rows are the cleaned data's).
  const trainSet = withoutFeatures({ features: cleaned.series.features, timestamps: trainIdx.map((i) => cleaned.series.timestamps[i] as number), rows: trainRows }, loaded.leftOutButKept);
  const stoppedRun = stop && stopped ? { ...stop, rows: stopped } : null;
  const missing = stoppedRun ? stoppedRun.rule.when.filter((c) => !trainSet.features.includes(c.feature)).map((c) => c.feature) : [];
  if (stoppedRun && missing.length > 0) {
    const why = missing.every((f) => loaded.series.features.includes(f)) ? `which this run leaves out of the challenger's features` : `which ${missing.length > 1 ? 'are not features' : 'is not a feature'} of the readings of the range`;
    throw new UsageError(
      `${stoppedRun.from}'s stopped-when rule (${describeStoppedRule(stoppedRun.rule)}) names ${missing.map((f) => `"${f}"`).join(' and ')}, ${why} (${trainSet.features.join(', ')}): ` +
        `give --stopped-when with one of them, or --stopped-when none`,
    );
  }
  let fit: ReturnType<typeof fitRange>;
  try {
    fit = fitRange(req, { ...trainSet, timestampColumn: 'ts', ignoredColumns: [], segmentStarts: trainSegmentStarts(trainIdx, cleaned.segmentStarts) }, stoppedRun, cleaned.stuckAfter);
  } catch (err) {
    throw refused(err);
  }
  if (unfinished !== null && fit.metadata.version !== unfinished.record.version) throw unfinished.refusal;
  progress.stage('comparing with the live model');
  // Synthetic faults only in the features the challenger watches: the others were left out on purpose.
  const std = faultSpreads(trainRows, cleaned.series.features, fit.metadata.features);
  const plan = planEvaluation(scored, scoredHoldout, std, req.seed, HELD_OUT_ROWS);
  const unscored = cleaned.series.rows.length - holdoutStart - (scored.series.rows.length - scoredHoldout);
  if (unscored > 0) plan.description += `; ${unscored} held-out rows without ${loaded.leftOutButKept.join(', ')} (which only the live model uses) are scored by neither model`;
  // Both models are judged on the rows where the pump runs by the one rule of this run.
  if (stoppedRun) plan.description += `; rows where the pump is stopped or starting by ${describeStoppedRule(stoppedRun.rule)} (${stoppedRun.from}'s rule) are left out for both models`;
  const held = range(scoredHoldout, scored.series.rows.length);
  const challenger = await scoreModel(fit.bytes, plan, scored, held);
  const defender = champion ? await scoreModel(champion.bytes, plan, scored, held) : null;
  const newest = cleaned.series.timestamps[cleaned.series.timestamps.length - 1] as number;
  const decided = decide(
    { version: fit.metadata.version, evaluation: challenger.evaluation as Evaluation },
    defender?.evaluation ? { version: champion!.record.version, evaluation: defender.evaluation } : null,
    { margin: req.margin, maxFar: req.maxFar, maxAlarmsPerDay: req.maxAlarmsPerDay },
    defender && !defender.evaluation ? defender.problem : undefined,
    champion && !req.allowOlder && Number.isFinite(liveNewest) && newest < liveNewest
      ? { newest: new Date(newest).toISOString(), liveVersion: champion.record.version, liveNewest: new Date(liveNewest).toISOString() }
      : undefined,
  );
  const decision = finishUnfinished(unlessRolledBack(decided, req.source, fit.metadata.version, rolledBackEntry(best?.pointer, fit.metadata.version)), unfinished);
  progress.stage('scoring as the agent would');
  const asAgent = await asTheAgentWould(req.source, raw as RawReadings, cleaned.series.timestamps[holdoutStart] as number, fit.bytes, defender?.evaluation ? champion!.bytes : null);

  progress.stage('writing the registry');
  const leftOut = cleaned.series.timestamps.slice(0, holdoutStart).filter((_, i) => cleaned.targets[i] === 'anomaly');
  const labelsOfRun = labelsUsed(labelUse, held.map((i) => scored.series.timestamps[i] as number), leftOut);
  const record = buildRecord(req, loaded, cleaned, { trainIdx, holdoutStart, trainSet }, fit, plan.criterion, plan.description, challenger.evaluation as Evaluation, defender, champion, decision, asAgent, now(), skippedLabels.length, stoppedRun, labelsOfRun);
  const registered = await registerVersion(models, record, fit.bytes);
  progress.finish();
  const settled = decision.promoted ? await promote(models, record, best, registered, req.deployPending === true) : { lost: null, rewritten: false };
  // Written after the promotion settled: a run that lost the race to best.json records itself as not promoted.
  const evaluationBlob = await recordEvaluation(models, evaluationOf(record, settled.lost ? { ...decision, promoted: false, reason: settled.lost.reason } : decision));
  if (settled.lost) throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `${settled.lost.message}; this run's evaluation is in ${evaluationBlob}`, { cause: settled.lost.cause });
  return {
    status: decision.promoted ? 'promoted' : 'kept',
    reason: decision.reason,
    source: req.source,
    evaluationBlob,
    ...(registered.existing !== null && !settled.rewritten ? { firstEvaluatedAt: registered.existing.createdAt } : {}),
    warnings: [
      ...spanWarnings(fit.metadata, 'the comparison on the most recent rows'),
      ...evaluationWarnings(challenger.evaluation as Evaluation, req.maxFar, req.maxAlarmsPerDay, asAgent.challenger),
      ...dataWarnings(loaded, cleaned.stats, constantFeaturesOf(fit.model.metrics), req.exclude ?? []),
      ...rawReadingWarnings(challenger.evaluation as Evaluation, asAgent.challenger),
      ...labelWarnings,
      ...driftWarnings,
    ],
    record,
    // The run's thresholds (--psi/--ks with --if-drifted), and the live model's empirical null (or the challenger's, as it was just computed).
    drift: compareWithBaseline(champion?.record.baseline ?? record.baseline, scored.series.features, held.map((i) => scored.series.rows[i] as Float64Array), req.ifDrifted, notNew, {
      driftNull: (champion ? champion.record.driftNull : record.driftNull) ?? null,
    }),
    ...(retrained === undefined ? {} : { retrained }),
    view: {
      timestamps: held.map((i) => scored.series.timestamps[i] as number),
      targets: held.map((i) => scored.targets[i] ?? null),
      challenger: { version: fit.metadata.version, algorithm: fit.metadata.algorithm, threshold: fit.metadata.threshold, evaluation: challenger.evaluation, scores: challenger.scores },
      champion: champion && defender ? { version: champion.record.version, algorithm: champion.record.algorithm, threshold: champion.record.threshold, evaluation: defender.evaluation, scores: defender.scores } : null,
    },
  };
}

/**
 * Moves best.json to `record` (conditional on the ETag read before the decision) and keeps the
 * version's model.json truthful about it.
 *
 * model.json is written first, by registerVersion, with this run's decision: best.json must
 * never name a version without a record. Then:
 * - the move fails (another run promoted first): model.json is rewritten, conditional on its
 *   own ETag, as not promoted, "another run promoted X first", and `lost` says so, for the
 *   conflict error that names this version as registered but not best (a record an earlier run
 *   wrote, when this version was best once, is left as it is). Unless X is this very version
 *   (two runs of the same data): it is best, the record is true as it stands, and the run succeeded;
 * - the move succeeds on a version whose model.json an earlier run had written as not promoted
 *   (it lost such a race, or kept the live model): model.json is rewritten with this run's record
 *   (`rewritten`).
 * A conditional rewrite that finds model.json changed leaves it: another run settled it since.
 * The one state this cannot exclude: a process killed between the model.json write and the move
 * leaves `promoted: true` on a version best.json never named; a later run of that version that
 * promotes it or loses the race rewrites it. No lock, no second document: best.json alone says
 * which version is live, model.json says what became of its run. The caller throws `lost` once
 * it has recorded this run's evaluation (registry/evaluation.ts) as not promoted.
 */
async function promote(
  container: ContainerClient,
  record: ModelRecord,
  best: BestState | null,
  registered: Registered,
  deployPending: boolean,
): Promise<{ lost: { reason: string; message: string; cause: unknown } | null; rewritten: boolean }> {
  try {
    await writeBest(container, nextPointer(record, best?.pointer ?? null, record.createdAt, record.decision.reason, deployPending), best?.etag ?? null);
  } catch (err) {
    if (!(err instanceof TrainerError) || err.code !== 'PW_TRAINER_REGISTRY_CONFLICT') throw err;
    const now = await readBest(container, record.source).then(
      (s) => s?.pointer ?? null,
      () => null,
    );
    const winner = now?.version ?? null;
    // Two runs of the same data: the other one promoted this very version, which is best.
    if (winner === record.version) return { lost: null, rewritten: false };
    const json = modelBlobName(record.source, record.version, 'model.json');
    // A rollback is named as one: "promoted" would hide that someone took a model off the gateways meanwhile.
    const reason = now === null ? 'best.json changed while this run was deciding (another run moved it)' : `${describeMove(now)} first`;
    // Only the record this run wrote: an earlier run's (this version was best once) stays as it was.
    const rewritten = registered.existing === null && (await rewriteRecord(container, { ...record, decision: { ...record.decision, promoted: false, reason } }, registered.etag));
    const message = `${bestModelBlobName(record.source)} changed while this run was deciding: ${reason}; ${record.version} is registered (${json}${registered.existing === null ? ', not promoted' : ''}) but is not best; run again to compare it with the live model`;
    return { lost: { reason, message, cause: err }, rewritten };
  }
  if (registered.existing !== null && !registered.existing.decision.promoted) return { lost: null, rewritten: await rewriteRecord(container, record, registered.etag) };
  return { lost: null, rewritten: false };
}

/** The live model, or (no best.json) the first promotion that did not finish, which only its own version may finish. */
async function loadChampion(container: ContainerClient, source: string, now: Date): Promise<{ champion: Champion | null; unfinished: UnfinishedPromotion | null }> {
  const { best, unfinished } = await readBestOrUnfinished(container, source, now);
  if (!best) return { champion: null, unfinished };
  return { champion: { state: best.state, record: best.record, bytes: await readModelBytes(container, best.record) }, unfinished: null };
}

/**
 * The challenger is the version of a first promotion that did not finish (its model.json says
 * promoted, best.json was never written: a run stopped between the two). It is promoted, as that
 * run decided with no live model either; registerVersion keeps its model.json, and the
 * promotion writes best.json (If-None-Match: *) as that run would have.
 */
function finishUnfinished(decision: Decision, unfinished: UnfinishedPromotion | null): Decision {
  if (unfinished === null || !decision.promoted) return decision;
  const r = unfinished.record;
  return { ...decision, reason: `${decision.reason}; this finishes the promotion of ${r.version} a run began at ${r.createdAt} (its model.json says promoted) and that did not write best.json` };
}

async function scoreModel(bytes: Uint8Array, plan: ReturnType<typeof planEvaluation>, cleaned: ScoredData, held: number[]) {
  const scorer = await OnnxScorer.load(bytes);
  try {
    const missing = scorer.missingFeatures(cleaned.series.features);
    if (missing.length > 0) return { evaluation: null, scores: null, problem: `it needs ${missing.join(', ')}, absent from the data` };
    const evaluation = await evaluate(scorer, plan);
    const scores = await scorer.score(rowsOf(cleaned.series, cleaned.segmentStarts), held);
    return { evaluation, scores, problem: undefined };
  } finally {
    await scorer.release();
  }
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

/** The raw readings from the first held-out row's time on, scored by the challenger and (when it can be scored) the live model. */
async function asTheAgentWould(source: string, raw: RawReadings, fromTs: number, challenger: Uint8Array, champion: Uint8Array | null): Promise<AsAgent> {
  // The first raw reading at or after the first held-out row (readings are in time order).
  const from = lowerBound(raw.timestamps, fromTs);
  return {
    from: new Date(fromTs).toISOString(),
    challenger: await scoreAsAgent(challenger, source, raw, from),
    champion: champion ? await scoreAsAgent(champion, source, raw, from) : null,
  };
}

interface AsAgent {
  from: string;
  challenger: AgentView;
  champion: AgentView | null;
}

/** The rows a range gives to train and hold out; `faultRows`: rows of the training part left out as confirmed faults. */
interface RowCounts {
  train: number;
  holdout: number;
  faultRows: number;
}

const tooFew = (c: RowCounts): boolean => c.train < MIN_TRAIN_ROWS || c.holdout < MIN_HOLDOUT_ROWS;

/** `too few running rows to train (0, need 100)`, with the held-out rows when they are short too. */
function shortOf(c: RowCounts, rows: string): string {
  const parts = [
    ...(c.train < MIN_TRAIN_ROWS ? [`train (${c.train}, need ${MIN_TRAIN_ROWS})`] : []),
    ...(c.holdout < MIN_HOLDOUT_ROWS ? [`hold out (${c.holdout}, need ${MIN_HOLDOUT_ROWS})`] : []),
  ];
  return `too few ${rows} to ${parts.join(' and to ')}`;
}

/**
 * Why the range is skipped when its rows are too few because the pump was stopped: with the rows
 * the stopped-when rule left out counted as usable (split as the others), there would be enough.
 * A pump on standby or out of season for the whole range is stopped by its model's own rule,
 * night after night: a failure there (PW_TRAINER_NO_DATA, exit 4 in train-all) failed its
 * shard every night for nothing a person could repair. null when there are enough rows, when
 * none was stopped, or when they are too few even so (checkEnough fails, with the stopped count).
 */
function stoppedShortage(req: TrainRequest, cleaned: Cleaned, c: RowCounts, stop: RunStop): string | null {
  const stopped = cleaned.stats.droppedStopped ?? 0;
  if (!tooFew(c) || stopped === 0) return null;
  const rows = cleaned.series.rows.length + stopped;
  const holdoutStart = Math.floor(rows * (1 - req.holdoutFraction));
  if (tooFew({ train: holdoutStart - c.faultRows, holdout: rows - holdoutStart, faultRows: c.faultRows })) return null;
  const from = stop.from === '--stopped-when' ? 'given by --stopped-when' : `inherited from ${stop.from}`;
  return `stopped for ${stopped} of ${cleaned.stats.inputRows} readings ${between(req)} (stop rule ${describeStoppedRule(stop.rule)}, ${from}): ${shortOf(c, 'running rows')}`;
}

async function checkEnough(container: ContainerClient, req: TrainRequest, cleaned: Cleaned, c: RowCounts, stop: RunStop | null): Promise<void> {
  if (!tooFew(c)) return;
  const s = cleaned.stats;
  const stopped = stop && s.droppedStopped ? `, ${s.droppedStopped} stopped by the stop rule ${describeStoppedRule(stop.rule)}` : '';
  throw new TrainerError(
    'PW_TRAINER_NO_DATA',
    `not enough usable rows of "${req.source}" ${between(req)}: ${c.train} to train (need ${MIN_TRAIN_ROWS}) and ${c.holdout} held out (need ${MIN_HOLDOUT_ROWS}) ` +
      `from ${s.inputRows} readings (${s.droppedMissing} dropped for missing values${missingDetail(s.missingByFeature)}, ${s.droppedMaintenance} in maintenance${stopped}` +
      `${c.faultRows > 0 ? `, ${c.faultRows} inside confirmed-fault labels, never trained on` : ''})${await newerReadingsNote(container, req)}`,
  );
}

/** `: Flow missing in 120, Pressure in 40` (most first), or '' when no row was dropped for a missing value. */
function missingDetail(byFeature: Record<string, number>): string {
  const parts = Object.entries(byFeature)
    .filter(([, rows]) => rows > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return parts.length === 0 ? '' : `: ${parts.map(([name, rows], i) => `${name}${i === 0 ? ' missing' : ''} in ${rows}`).join(', ')}`;
}

function constantFeaturesOf(metrics: Record<string, unknown>): string[] {
  const c = metrics.constantFeatures;
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
}

/** The challenger; rows no model can be fitted on (no feature varies) are a data problem of the range, like too few rows. */

/** The stopped-when rule of a run and where it comes from. */
export interface RunStop {
  rule: StoppedRule;
  /** `--stopped-when`, or `live model <version>` (inherited). */
  from: string;
}

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

/** `stuckAfter`: the frozen-sensor bounds cleaning found on the range's rows before carrying values forward (the rows fitted on hold carried values). */
function fitRange(req: TrainRequest, table: Parameters<typeof fitTable>[0], stop: (RunStop & { rows: { stopped: number; starting: number; stopping: number } }) | null, stuckAfter: StuckAfter | undefined): ReturnType<typeof fitTable> {
  try {
    return fitTable(table, { source: req.source, algorithm: req.algorithm, window: req.window, version: req.version, ...(stop ? { stoppedWhen: stop.rule, stoppedLeftOut: stop.rows } : {}), stuckAfter: stuckAfter ?? {} });
  } catch (err) {
    if (!(err instanceof FitError)) throw err;
    const what = `cannot fit a model on the rows of "${req.source}" ${between(req)}: ${err.message}`;
    // An option the rows do not fit is bad usage (exit 2), as in `fit`; too few or too flat rows are the range's data.
    if (err.option !== undefined) throw new FitError(what, err.option);
    throw new TrainerError('PW_TRAINER_NO_DATA', what, { cause: err });
  }
}

function buildRecord(
  req: TrainRequest,
  loaded: LoadResult,
  cleaned: Cleaned,
  split: { trainIdx: number[]; holdoutStart: number; trainSet: { features: string[]; rows: Float64Array[] } },
  fit: ReturnType<typeof fitTable>,
  criterion: Evaluation['criterion'],
  description: string,
  challenger: Evaluation,
  defender: { evaluation: Evaluation | null } | null,
  champion: Champion | null,
  decision: Decision,
  asAgent: AsAgent,
  createdAt: Date,
  skippedLabels: number,
  stop: (RunStop & { rows: { stopped: number; starting: number; stopping: number } }) | null,
  labels: LabelsUsed,
): ModelRecord {
  const ts = cleaned.series.timestamps;
  const iso = (i: number | undefined) => new Date(ts[i ?? 0] as number).toISOString();
  const m = fit.metadata;
  const baseline = baselineOf(split.trainSet.features, split.trainSet.rows);
  return {
    schema: RECORD_SCHEMA,
    source: req.source,
    version: m.version,
    algorithm: m.algorithm,
    features: m.features,
    window: m.window,
    threshold: m.threshold,
    model: { blob: modelBlobName(req.source, m.version, 'model.onnx'), sha256: sha256(fit.bytes), size: fit.bytes.length },
    data: {
      from: new Date(req.from).toISOString(),
      to: new Date(req.to).toISOString(),
      readings: loaded.readings,
      repeatedReadings: loaded.repeatedReadings,
      skippedLabels,
      devices: loaded.devices,
      droppedFeatures: loaded.droppedFeatures,
      staleFeatures: loaded.staleFeatures,
      excludedFeatures: loaded.excludedFeatures,
      counterFeatures: loaded.counterFeatures.map((c) => c.name),
      cleaning: { ...cleaned.stats, options: CLEAN_DEFAULTS },
      trainRows: split.trainIdx.length,
      faultRowsLeftOut: split.holdoutStart - split.trainIdx.length,
      trainFrom: iso(split.trainIdx[0]),
      trainTo: iso(split.trainIdx.at(-1)),
      holdoutRows: ts.length - split.holdoutStart,
      holdoutFrom: iso(split.holdoutStart),
      holdoutTo: iso(ts.length - 1),
      ...(stop ? { stopped: { ...stoppedRuleToJson(stop.rule), afterStartSeconds: stop.rule.afterStartSeconds, from: stop.from, stoppedRows: stop.rows.stopped, startingRows: stop.rows.starting, ...(stop.rule.when.length > 1 ? { stoppingRows: stop.rows.stopping } : {}) } } : {}),
    },
    evaluation: { criterion, description, challenger, champion: defender?.evaluation ?? null, championVersion: champion?.record.version ?? null, asAgent, labels },
    decision,
    baseline,
    driftNull: driftNullOf(baseline, split.trainSet.features, split.trainSet.rows),
    // the build that trained it (lib/build-info.ts), not package.json's 0.1.0 that every build says
    trainer: { version: buildVersion(), seed: req.seed },
    createdAt: createdAt.toISOString(),
  };
}


function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
