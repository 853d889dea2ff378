/**
 * A version's model.json (registry/records.ts ModelRecord): what it was trained on (range, rows,
 * cleaning, the stopped-when rule), both models' evaluations and the decision, the baseline for
 * drift, and the build that trained it.
 */
import { stoppedRuleToJson } from '../../inference/contract.js';
import { modelBlobName } from '../../sync/layout.js';
import { buildVersion } from '../../lib/build-info.js';
import { CLEAN_DEFAULTS, type Cleaned } from '../data/clean.js';
import type { LoadResult } from '../data/load.js';
import { baselineOf } from '../drift/baseline.js';
import { driftNullOf } from '../drift/stray.js';
import type { Evaluation, ScoredData } from '../eval/criterion.js';
import type { FitResult } from '../fit.js';
import { sha256 } from '../registry/model-blob.js';
import { RECORD_SCHEMA, type LabelsUsed, type ModelRecord } from '../registry/records.js';
import type { AsAgent } from './compare.js';
import type { Decision } from './decide.js';
import { labelsUsed } from './labels-used.js';
import type { Champion } from './live.js';
import type { TrainRange } from './range.js';
import type { TrainRequest } from './request.js';
import type { StoppedRun } from './run-stop.js';

/** What a record is made of, by name. */
export interface RecordParts {
  req: TrainRequest;
  loaded: LoadResult;
  cleaned: Cleaned;
  /** The split of the cleaned rows, and the rows trained on as the challenger saw them (its features only). */
  split: { trainIdx: number[]; holdoutStart: number; trainSet: { features: string[]; rows: Float64Array[] } };
  fit: FitResult;
  /** The comparison's criterion and description (eval/criterion.ts planEvaluation). */
  criterion: Evaluation['criterion'];
  description: string;
  challenger: Evaluation;
  /** The live model scored on the held-out rows (its evaluation null when it could not be), or null when none is live. */
  defender: { evaluation: Evaluation | null } | null;
  champion: Champion | null;
  decision: Decision;
  asAgent: AsAgent;
  createdAt: Date;
  /** Label blobs skipped as invalid. */
  skippedLabels: number;
  stop: StoppedRun | null;
  labels: LabelsUsed;
}

export function buildRecord(p: RecordParts): ModelRecord {
  const { req, loaded, cleaned, split, fit, stop } = p;
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
      skippedLabels: p.skippedLabels,
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
    evaluation: {
      criterion: p.criterion,
      description: p.description,
      challenger: p.challenger,
      champion: p.defender?.evaluation ?? null,
      championVersion: p.champion?.record.version ?? null,
      asAgent: p.asAgent,
      labels: p.labels,
    },
    decision: p.decision,
    baseline,
    driftNull: driftNullOf(baseline, split.trainSet.features, split.trainSet.rows),
    // the build that trained it (lib/build-info.ts), not package.json's 0.1.0 that every build says
    trainer: { version: buildVersion(), seed: req.seed },
    createdAt: p.createdAt.toISOString(),
  };
}

/** The labels the comparison used: those of the held-out rows scored (`held` of `scored`), and of the confirmed faults left out of training. */
export function labelsOfRun(range: TrainRange, scored: ScoredData, held: readonly number[]): LabelsUsed {
  const { cleaned, holdoutStart } = range;
  const leftOut = cleaned.series.timestamps.slice(0, holdoutStart).filter((_, i) => cleaned.targets[i] === 'anomaly');
  return labelsUsed(range.labelUse, held.map((i) => scored.series.timestamps[i] as number), leftOut);
}
