/**
 * `train` for one source: readings of the range (sync reader, de-duplicated) → labels → cleaning
 * → the most recent part held out → challenger fitted on the rest → challenger and live model
 * scored on the same held-out rows with the same metric → decision → registry (the version
 * always; best.json only when promoted, by a conditional write on the ETag read first).
 * Reproducible: the same data, options and seed give the same model bytes and the same decision.
 *
 * Each stage is a module of train/: live.ts (the live model), range.ts (the range read, cleaned and
 * split), skip-checks.ts, drift-gate.ts (--if-drifted), fit-range.ts, compare.ts (comparison,
 * decision, scoring as the agent would), record.ts (model.json), publish.ts (registry, promotion,
 * evaluation record), outcome.ts.
 */
import type { Stores } from '../cloud/context.js';
import { finishing, type Progress } from '../progress.js';
import { asTheAgentWould, compareWithLive, comparisonRows } from './compare.js';
import { driftGate } from './drift-gate.js';
import { fitChallenger } from './fit-range.js';
import { loadLive } from './live.js';
import { trainedOutcome } from './outcome.js';
import type { LabelSet } from './prepare.js';
import { publish } from './publish.js';
import { prepareRange } from './range.js';
import { buildRecord, labelsOfRun } from './record.js';
import type { TrainOutcome, TrainRequest } from './request.js';
import { skipShortRange } from './skip-checks.js';

export type { ScoredModel, TrainOutcome, TrainRequest } from './request.js';
export { stoppedRuleOf, type RunStop } from './run-stop.js';
export { MIN_HOLDOUT_ROWS, MIN_TRAIN_ROWS, TRAIN_DEFAULTS, trainSegmentStarts } from './split.js';

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
  const live = await loadLive(models, req, now());
  const range = await prepareRange(container, req, progress, live, labels);
  const short = await skipShortRange(container, req, live, range);
  if (short !== null) return short;
  const rows = comparisonRows(range);
  const gate = driftGate(req, live.champion, range);
  if ('skip' in gate) return gate.skip;

  progress.stage(`fitting on ${range.trainIdx.length} rows`);
  const fitted = fitChallenger(req, live, range);
  progress.stage('comparing with the live model');
  const compared = await compareWithLive(req, live, range, rows, fitted);
  const { challenger, defender, held } = compared;
  progress.stage('scoring as the agent would');
  const holdoutFrom = range.cleaned.series.timestamps[range.holdoutStart] as number;
  const asAgent = await asTheAgentWould(req.source, range.raw!, holdoutFrom, fitted.fit.bytes, defender?.evaluation ? live.champion!.bytes : null);

  progress.stage('writing the registry');
  const record = buildRecord({
    req,
    loaded: range.loaded,
    cleaned: range.cleaned,
    split: { trainIdx: range.trainIdx, holdoutStart: range.holdoutStart, trainSet: fitted.trainSet },
    fit: fitted.fit,
    criterion: compared.plan.criterion,
    description: compared.plan.description,
    challenger: challenger.evaluation!,
    defender,
    champion: live.champion,
    decision: compared.decision,
    asAgent,
    createdAt: now(),
    skippedLabels: range.skippedLabels.length,
    stop: fitted.stoppedRun,
    labels: labelsOfRun(range, rows.scored, held),
  });
  const published = await publish(models, record, fitted.fit.bytes, live.champion?.state ?? null, req.deployPending === true, progress);
  return trainedOutcome({ req, champion: live.champion, range, gate, fitted, rows, compared, asAgent, record, published });
}
