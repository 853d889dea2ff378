/**
 * The registry's JSON documents (DESIGN.md "Blob layout"):
 * - `models/{source}/{version}/model.json`: what a model is, what it was trained on, how it
 *   compared with the live model, the decision, the baseline statistics for drift;
 * - `models/{source}/{version}/evaluations/{run time}-{id}.json`: one `train` run's evaluation of
 *   the version (model.json is written once and keeps the first; a rerun of the range after the
 *   labels changed makes the same version and is evaluated anew);
 * - `models/{source}/best.json`: the promoted version, with the versions promoted before it
 *   (newest first) so that a rollback knows where to go.
 * Read back through zod: a document the trainer did not write is refused with a clear reason.
 */
import { z } from 'zod';

export const RECORD_SCHEMA = 1;

/**
 * A model version: a blob path segment (models/<source>/<version>/) and the `version` the agent
 * accepts in a desired model entry (agent/edge/desired.ts, the same rule): 1-128 letters, digits,
 * `.`, `_`, `:`, `-`, starting with a letter or digit (so never `.` or `..`).
 */
export const MODEL_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const MODEL_VERSION_RULE = '1-128 characters: letters, digits, . _ : - (starting with a letter or digit)';
const modelVersion = z.string().regex(MODEL_VERSION_PATTERN, `not a model version (${MODEL_VERSION_RULE})`);

const evaluation = z.object({
  criterion: z.enum(['labels', 'synthetic-faults']),
  metric: z.enum(['f1', 'balanced-accuracy']),
  score: z.number(),
  f1: z.number(),
  far: z.number(),
  mar: z.number(),
  counts: z.object({ tp: z.number(), fp: z.number(), fn: z.number(), tn: z.number() }),
  threshold: z.number(),
  /** Positives inside confirmed-fault labels, and how many the model missed (absent when none, and from records written before it). */
  labelled: z.object({ rows: z.number(), missed: z.number() }).optional(),
  /** False alarms on the negatives: runs of flagged normal rows over their running hours (absent from records written before it). */
  alarms: z.object({ runs: z.number(), hours: z.number() }).optional(),
  /** Synthetic faults: the score on each placement of the faults (absent with labels, and from records written before it). */
  placements: z.array(z.number()).optional(),
});

/**
 * The technicians' labels (and withdrawals) a comparison used (train/labels-used.ts), so that a
 * verdict that changed between two runs of a range can be traced to the label that changed it.
 * Listed: each label of the source that gave at least one reading of the range its target (the
 * latest label covering a reading wins, labelTargets), not every label read: a pump's labels of
 * other months cannot change this comparison, and listing them would bury the few that did (a
 * label overruled everywhere by a newer one is left out too: only a withdrawal of the newer one,
 * listed then, brings it back). Withdrawals: those whose label covered a reading of the range.
 * The counts are exact; the lists hold at most LISTED_LABELS each, those that labelled the most
 * held-out rows first (then training rows left out, then readings), and `notListed` says how
 * many more there were. Absent from records written before 2026-12-08.
 */
const usedLabel = z.object({
  id: z.string(),
  kind: z.string(),
  faultType: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  author: z.string(),
  createdAt: z.string(),
  deviceId: z.string(),
  /** Readings of the range (as loaded, before cleaning) it gave their target. */
  readings: z.number().int(),
  /** Held-out rows both models were scored on that it gave their target. */
  heldOutRows: z.number().int(),
  /** Rows of the training part it left out as confirmed faults. */
  leftOutRows: z.number().int(),
});

const appliedWithdrawal = z.object({
  id: z.string(),
  /** The id of the label withdrawn. */
  withdraws: z.string(),
  /** The withdrawn label's kind. */
  kind: z.string(),
  author: z.string(),
  createdAt: z.string(),
  deviceId: z.string(),
  /** Readings of the range the withdrawn label covered. */
  readings: z.number().int(),
});

export const LabelsUsedSchema = z.object({
  /** The source's labels read, withdrawn ones left out. */
  read: z.number().int(),
  /** Of those, the labels that gave at least one reading of the range its target. */
  used: z.number().int(),
  /** Held-out rows scored that a label gave their target (the confirmed-fault ones are `challenger.labelled.rows`). */
  heldOutRows: z.number().int(),
  /** Training rows left out as confirmed faults (`data.faultRowsLeftOut`). */
  leftOutRows: z.number().int(),
  listed: z.array(usedLabel),
  notListed: z.number().int(),
  withdrawals: z.object({
    /** The source's withdrawals read. */
    read: z.number().int(),
    /** Of those, the withdrawals whose label covered at least one reading of the range. */
    applied: z.number().int(),
    listed: z.array(appliedWithdrawal),
    notListed: z.number().int(),
  }),
});
export type LabelsUsed = z.infer<typeof LabelsUsedSchema>;

const agentView = z.object({
  readings: z.number(),
  unscored: z.number(),
  maintenance: z.number(),
  normal: z.number(),
  flaggedNormal: z.number(),
  far: z.number(),
  faults: z.number(),
  missedFaults: z.number(),
  mar: z.number().nullable(),
});

const featureBaseline = z.object({
  count: z.number(),
  mean: z.number(),
  std: z.number(),
  min: z.number(),
  max: z.number(),
  edges: z.array(z.number()),
  shares: z.array(z.number()),
  percentiles: z.array(z.number()),
});

export const ModelRecordSchema = z.object({
  schema: z.literal(RECORD_SCHEMA),
  source: z.string(),
  version: modelVersion,
  algorithm: z.string(),
  features: z.array(z.string()),
  window: z.number().int(),
  threshold: z.number(),
  model: z.object({ blob: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().positive() }),
  data: z.object({
    from: z.string(),
    to: z.string(),
    readings: z.number().int(),
    /** Readings dropped as repeats (same timestamp and values) re-sent under new sequence numbers (absent from records written before it was added). */
    repeatedReadings: z.number().int().optional(),
    devices: z.array(z.string()),
    droppedFeatures: z.array(z.string()),
    /** Label blobs skipped because they are not valid label records (absent from records written before it was added). */
    skippedLabels: z.number().int().optional(),
    /** Features in most readings but none of the most recent ones (absent from records written before it was added). */
    staleFeatures: z.array(z.string()).optional(),
    excludedFeatures: z.array(z.string()).optional(),
    counterFeatures: z.array(z.string()).optional(),
    cleaning: z.record(z.string(), z.unknown()),
    trainRows: z.number().int(),
    /** Rows of the training part left out as confirmed faults: trainRows + this + holdoutRows = the cleaned rows. */
    faultRowsLeftOut: z.number().int().optional(),
    trainFrom: z.string(),
    trainTo: z.string(),
    holdoutRows: z.number().int(),
    holdoutFrom: z.string(),
    holdoutTo: z.string(),
    /**
     * The run's stopped-when rule, as the model's metadata holds it (inference/contract.ts
     * StoppedRuleJson: `feature` and `below` for one condition, `all` for several), `from`
     * (`--stopped-when` or the live model it was inherited from) and the rows of the range it
     * left out; absent when the run had none.
     */
    stopped: z
      .object({
        feature: z.string().optional(),
        below: z.number().optional(),
        all: z.array(z.object({ feature: z.string(), below: z.number() })).min(1).optional(),
        afterStartSeconds: z.number().int(),
        from: z.string(),
        stoppedRows: z.number().int(),
        startingRows: z.number().int(),
        /** Rows held as a stop's beginning (some conditions met, not all); absent in records written before. */
        stoppingRows: z.number().int().optional(),
      })
      .refine((s) => (s.all === undefined) === (s.feature !== undefined && s.below !== undefined) && (s.all === undefined || (s.feature === undefined && s.below === undefined)), {
        message: 'holds either "feature" and "below" (one condition) or "all" (several), not both',
      })
      .optional(),
  }),
  evaluation: z.object({
    criterion: z.enum(['labels', 'synthetic-faults']),
    description: z.string(),
    challenger: evaluation,
    champion: evaluation.nullable(),
    championVersion: z.string().nullable(),
    /** The raw held-out readings scored as the agent would (eval/as-agent.ts); absent from records written before it. */
    asAgent: z
      .object({
        from: z.string(),
        challenger: agentView,
        champion: agentView.nullable(),
      })
      .optional(),
    labels: LabelsUsedSchema.optional(),
  }),
  /** `maxFar`: the false-alarm ceiling (% of normal held-out rows) of the decision; absent from records written before it. */
  decision: z.object({
    promoted: z.boolean(),
    reason: z.string(),
    margin: z.number(),
    maxFar: z.number().optional(),
    maxAlarmsPerDay: z.number().optional(),
    /** Synthetic faults: the paired comparison over their placements (train/decide.ts); absent with labels, and from records written before it. */
    paired: z.object({ placements: z.number().int(), mean: z.number(), sd: z.number(), rule: z.string() }).optional(),
  }),
  baseline: z.record(z.string(), featureBaseline),
  /**
   * The baseline's empirical null for drift (drift/stray.ts): how far blocks of the training rows
   * stray from the whole baseline. Versioned on its own; absent from records written before it
   * (drift then judges as if readings were independent, with a warning).
   */
  driftNull: z
    .object({
      version: z.literal(1),
      factor: z.number().positive(),
      sizes: z.array(z.object({ rows: z.number().int().positive(), blocks: z.number().int().positive(), psi: z.record(z.string(), z.number()), ks: z.record(z.string(), z.number()) })),
    })
    .optional(),
  trainer: z.object({ version: z.string(), seed: z.number().int() }),
  createdAt: z.string(),
  /**
   * Set by a `rollback` that moved best.json away from this version (rollback.ts), and cleared by a
   * `rollback --version` that makes it best again: best.json's `rolledBack` says the same, but a
   * lost best.json loses it, and the repair (a rollback --version with best.json missing) rebuilds
   * that list from these. Absent from records written before it, or by older trainers.
   */
  rolledBack: z.object({ at: z.string(), to: z.string() }).optional(),
  /** When a `rollback` last made this version best (a train promotion is `decision.promoted` at `createdAt`). */
  restoredAt: z.string().optional(),
});
export type ModelRecord = z.infer<typeof ModelRecordSchema>;

/**
 * One run's evaluation of a version: model.json's parts that a run decides (its data range and
 * rows, both models' metrics, the criterion, the decision and its reason, the trainer's build and
 * seed, the live model's version in `evaluation.championVersion`), `createdAt` the run's time, and
 * the model's sha256 (which bytes were judged). Not the baseline: that is the version's, and equal
 * in every run that makes the version (the same training rows).
 */
export const EvaluationRecordSchema = ModelRecordSchema.pick({ schema: true, source: true, version: true, data: true, evaluation: true, decision: true, trainer: true, createdAt: true }).extend({
  kind: z.literal('evaluation'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type EvaluationRecord = z.infer<typeof EvaluationRecordSchema>;

/** The evaluation part of `record`, with `decision` as the run settled it (a lost race is not promoted). */
export function evaluationOf(record: ModelRecord, decision: ModelRecord['decision']): EvaluationRecord {
  const { schema, source, version, data, evaluation, trainer, createdAt } = record;
  return { schema, kind: 'evaluation', source, version, sha256: record.model.sha256, data, evaluation, decision, trainer, createdAt };
}

export const BestPointerSchema = z.object({
  schema: z.literal(RECORD_SCHEMA),
  source: z.string(),
  version: modelVersion,
  algorithm: z.string(),
  sha256: z.string(),
  size: z.number().int(),
  promotedAt: z.string(),
  reason: z.string(),
  /**
   * Versions that were best before, newest first. Not held to the version rule: a registry from
   * before it may hold any text here, and rollback reads and checks the record it picks.
   */
  history: z.array(z.object({ version: z.string(), promotedAt: z.string() })),
  /**
   * true: this version was made best by a run that was to deploy it (`--deploy`, `rollback`), and
   * no deploy of it has reached every target module yet; every `train`/`train-all --deploy` then
   * pushes it, and the deploy that updates every module clears it (write.ts setDeployPending).
   * Absent (older trainers never write it, and ignore it when reading) means nothing is pending.
   */
  deployPending: z.boolean().optional(),
  /**
   * Versions a `rollback` moved best.json away from (newest first, at most HISTORY_LIMIT): `train`
   * does not promote one of them again (the same range and options give the same version, and a
   * rerun would undo the rollback unseen); `rollback --version V` makes one best on purpose and
   * takes it off the list. Optional like deployPending: older trainers ignore it (and drop it).
   */
  rolledBack: z.array(z.object({ version: z.string(), at: z.string(), to: z.string() })).optional(),
});
export type BestPointer = z.infer<typeof BestPointerSchema>;

export const HISTORY_LIMIT = 20;

/**
 * The pointer after promoting `record`: the old best goes to the front of the history.
 * `deployPending`: the promoting run is to deploy it (marked in the same write as the promotion,
 * so that no crash or failed deploy can leave a best version undeployed without a trace).
 */
export function nextPointer(record: ModelRecord, previous: BestPointer | null, promotedAt: string, reason: string, deployPending = false): BestPointer {
  const history = previous ? [{ version: previous.version, promotedAt: previous.promotedAt }, ...previous.history] : [];
  return pointerTo(record, { promotedAt, reason, history: history.filter((h) => h.version !== record.version).slice(0, HISTORY_LIMIT), rolledBack: previous?.rolledBack, deployPending });
}

/**
 * best.json naming `record`, with the history, rollback list and deploy mark given (a promotion's
 * from nextPointer, a rollback's from rollback.ts); the optional fields only when they say something.
 */
export function pointerTo(
  record: ModelRecord,
  p: { promotedAt: string; reason: string; history: BestPointer['history']; rolledBack: BestPointer['rolledBack']; deployPending: boolean },
): BestPointer {
  return {
    schema: RECORD_SCHEMA,
    source: record.source,
    version: record.version,
    algorithm: record.algorithm,
    sha256: record.model.sha256,
    size: record.model.size,
    promotedAt: p.promotedAt,
    reason: p.reason,
    history: p.history,
    // A rollback or promotion that deploys marks it in the move itself, cleared once every module has it.
    ...(p.deployPending ? { deployPending: true } : {}),
    ...(p.rolledBack?.length ? { rolledBack: p.rolledBack } : {}),
  };
}

/** The rollback entry of `version` in `pointer` (it was rolled back from), if any. */
export function rolledBackEntry(pointer: BestPointer | null | undefined, version: string): { version: string; at: string; to: string } | undefined {
  return pointer?.rolledBack?.find((r) => r.version === version);
}

/**
 * What moved best.json to `pointer`, for messages: `a rollback (from X) moved it to V` or
 * `another run promoted V` (a rollback writes its reason as `rollback from X`, see rollback.ts).
 */
export function describeMove(pointer: BestPointer): string {
  const from = /^rollback from (\S+)/.exec(pointer.reason)?.[1];
  if (from !== undefined) return `a rollback moved it from ${from} to ${pointer.version}`;
  if (pointer.reason.startsWith('best.json restored by rollback')) return `a rollback --version wrote it, naming ${pointer.version}`;
  return `another run promoted ${pointer.version}`;
}
